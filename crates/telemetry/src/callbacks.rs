//! The room and media event callbacks (TRTC's groups 1 and 2) a domain event makes, for the
//! apps that listen to them: `EventInfo` in TRTC's shape, ordered per room.

use hearth_callbacks::{room_id, Directory, Group};
use hearth_sfu::events::{DomainEvent, EventKind, ExitReason};
use hearth_store::NewCallback;
use hearth_types::{CommId, RoomKey, UserId};
use serde_json::json;
use std::collections::HashMap;

/// TRTC's role values.
const ANCHOR: u8 = 20;
const AUDIENCE: u8 = 21;

/// What the callbacks need to remember between events: each user's role in each call, and a
/// counter that makes `UniqueId`s unique within a millisecond.
#[derive(Default)]
pub struct CallbackState {
    anchors: HashMap<(CommId, UserId), bool>,
    seq: u64,
}

/// TRTC's `TerminalType` from the client's device description.
fn terminal_type(device: &str) -> u8 {
    let d = device.to_ascii_lowercase();
    if d.contains("windows") {
        1
    } else if d.contains("android") {
        2
    } else if d.contains("ios") || d.contains("iphone") || d.contains("ipad") {
        3
    } else if d.contains("linux") {
        4
    } else {
        100
    }
}

/// TRTC's exit `Reason`: 1 left, 2 timeout, 3 removed (by an operator, by the room's dismissal,
/// or by the same user entering again).
fn exit_reason(r: ExitReason) -> u8 {
    match r {
        ExitReason::Left => 1,
        ExitReason::Timeout | ExitReason::ServerShutdown => 2,
        ExitReason::Kicked | ExitReason::RoomDismissed | ExitReason::Replaced => 3,
    }
}

/// The order key of a room's room and media events.
pub fn room_order_key(room: &RoomKey) -> String {
    match room {
        RoomKey::Num(n) => format!("room:n:{n}"),
        RoomKey::Str(s) => format!("room:s:{s}"),
    }
}

impl CallbackState {
    /// The callback `e` makes, if it makes one the app listens to.
    pub fn of(&mut self, dir: &Directory, e: &DomainEvent) -> Option<NewCallback> {
        let key = (e.comm_id.clone(), e.user.clone());
        // Roles are tracked whoever listens, so that a later exit knows its role.
        match &e.kind {
            EventKind::Entered { anchor, .. } | EventKind::RoleChanged { anchor } => {
                self.anchors.insert(key.clone(), *anchor);
            }
            EventKind::CallEnded => self.anchors.retain(|(c, _), _| *c != e.comm_id),
            _ => {}
        }
        let (group, event_type) = match &e.kind {
            EventKind::CallStarted { .. } => (Group::Room, 101),
            EventKind::CallEnded => (Group::Room, 102),
            EventKind::Entered { .. } => (Group::Room, 103),
            EventKind::Exited { .. } => (Group::Room, 104),
            EventKind::RoleChanged { .. } => (Group::Room, 105),
            EventKind::VideoOn => (Group::Media, 201),
            EventKind::VideoOff => (Group::Media, 202),
            EventKind::AudioOn => (Group::Media, 203),
            EventKind::AudioOff => (Group::Media, 204),
            EventKind::SubStreamOn => (Group::Media, 205),
            EventKind::SubStreamOff => (Group::Media, 206),
            _ => return None,
        };
        let role = |anchor: bool| if anchor { ANCHOR } else { AUDIENCE };
        let exit_role = match &e.kind {
            EventKind::Exited { .. } => Some(self.anchors.remove(&key).unwrap_or(true)),
            _ => None,
        };
        if !dir.wants(e.app, group) {
            return None;
        }
        self.seq = self.seq.wrapping_add(1);
        let mut info = json!({
            "RoomId": room_id(&e.room),
            "EventTs": e.at_ms.div_euclid(1000),
            "EventMsTs": e.at_ms,
        });
        let o = info.as_object_mut().expect("an object");
        if !matches!(e.kind, EventKind::CallEnded) {
            let user = match &e.kind {
                EventKind::CallStarted { creator } => creator.as_str().to_owned(),
                _ => e.user.as_str().to_owned(),
            };
            o.insert("UserId".into(), json!(user));
        }
        // Unique per event (within a millisecond, 1000 events), for deduplication.
        o.insert(
            "UniqueId".into(),
            json!(e.at_ms as u64 * 1000 + self.seq % 1000),
        );
        match &e.kind {
            EventKind::Entered {
                anchor,
                device_type,
                ..
            } => {
                o.insert("Role".into(), json!(role(*anchor)));
                o.insert("TerminalType".into(), json!(terminal_type(device_type)));
                o.insert("UserType".into(), json!(1));
                o.insert("Reason".into(), json!(1));
            }
            EventKind::Exited { reason } => {
                o.insert("Role".into(), json!(role(exit_role.unwrap_or(true))));
                o.insert("Reason".into(), json!(exit_reason(*reason)));
            }
            EventKind::RoleChanged { anchor } => {
                o.insert("Role".into(), json!(role(*anchor)));
            }
            _ => {}
        }
        Some(NewCallback {
            app: e.app,
            group: group.id(),
            event_type,
            order_key: room_order_key(&e.room),
            info_json: info.to_string(),
            created_ms: e.at_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_callbacks::AppCallbacks;
    use hearth_types::SdkAppId;
    use serde_json::Value;

    fn ev(kind: EventKind) -> DomainEvent {
        DomainEvent {
            at_ms: 1_765_000_000_100,
            app: SdkAppId(1400000001),
            room: RoomKey::Num(1234),
            comm_id: CommId("c1".into()),
            user: UserId("alice".into()),
            kind,
        }
    }

    #[test]
    fn room_events_in_trtc_shape_for_listening_apps_only() {
        let dir = Directory::default();
        let mut st = CallbackState::default();
        let entered = EventKind::Entered {
            client_ip: "10.0.0.1".into(),
            device_type: "Chrome on Linux".into(),
            sdk_version: "1".into(),
            anchor: false,
            bot: false,
        };
        assert!(st.of(&dir, &ev(entered.clone())).is_none());
        dir.replace(HashMap::from([(
            SdkAppId(1400000001),
            AppCallbacks {
                key: "k".into(),
                urls: HashMap::from([(Group::Room, "http://x/".into())]),
            },
        )]));
        let cb = st.of(&dir, &ev(entered)).unwrap();
        assert_eq!((cb.group, cb.event_type), (1, 103));
        assert_eq!(cb.order_key, "room:n:1234");
        let info: Value = serde_json::from_str(&cb.info_json).unwrap();
        assert_eq!(info["RoomId"], 1234);
        assert_eq!(info["UserId"], "alice");
        assert_eq!(
            (&info["Role"], &info["TerminalType"], &info["Reason"]),
            (&json!(21), &json!(4), &json!(1))
        );
        // The media group is not listened to; the exit remembers the role.
        assert!(st.of(&dir, &ev(EventKind::AudioOn)).is_none());
        let exit = st
            .of(
                &dir,
                &ev(EventKind::Exited {
                    reason: ExitReason::Kicked,
                }),
            )
            .unwrap();
        let info: Value = serde_json::from_str(&exit.info_json).unwrap();
        assert_eq!((&info["Role"], &info["Reason"]), (&json!(21), &json!(3)));
    }
}
