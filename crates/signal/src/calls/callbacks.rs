//! TUICallKit's call-status callbacks of a call record as it is saved: the first save of a call
//! is `Call.CallbackAfterStartCall` (the caller calling, the invitees waiting), the save that
//! gives it a result is `Call.CallbackAfterEndCall` (the record as the call-record API has it).
//! Queued in the store's outbox with the record, ordered per call.

use hearth_callbacks::{Directory, Group};
use hearth_store::{CallLog, CallMedia, NewCallback};
use hearth_types::RoomKey;
use serde_json::json;
use std::collections::HashSet;

/// Which calls have been announced.
#[derive(Default)]
pub(super) struct CallCallbacks {
    started: HashSet<String>,
}

fn media(m: CallMedia) -> &'static str {
    match m {
        CallMedia::Audio => "Audio",
        CallMedia::Video => "Video",
    }
}

impl CallCallbacks {
    /// The callback a saved record makes, if the app listens to calls.
    pub fn of(&mut self, dir: &Directory, log: &CallLog, now_ms: i64) -> Option<NewCallback> {
        let first = self.started.insert(log.call_id.clone());
        let ended = log.result.is_some();
        if ended {
            self.started.remove(&log.call_id);
        }
        if !dir.wants(log.sdk_app_id, Group::Calls) || (!first && !ended) {
            return None;
        }
        let (room, room_type) = match &log.room {
            RoomKey::Num(n) => (n.to_string(), 1),
            RoomKey::Str(s) => (s.clone(), 2),
        };
        let (event_type, body) = if ended {
            let result = log.result.map(|r| r.as_str()).unwrap_or_default();
            (
                2,
                json!({
                    "CallbackCommand": hearth_callbacks::call_command(2),
                    "CallRecord": {
                        "CallId": log.call_id, "Caller_Account": log.caller,
                        "Callee_List_Account": log.callees,
                        "MediaType": media(log.media),
                        "CallType": if log.group { "MultiCall" } else { "SingleCall" },
                        "StartTime": log.started_at.0,
                        "EndTime": log.ended_at.map_or(0, |t| t.0),
                        "AcceptTime": log.accepted_at.map_or(0, |t| t.0),
                        "CallResult": result,
                        "RoomId": room, "RoomIdType": room_type,
                    },
                    "EventTime": now_ms,
                }),
            )
        } else {
            let mut users = vec![json!({"User_Account": log.caller, "Status": "Calling"})];
            users.extend(
                log.callees
                    .iter()
                    .map(|c| json!({"User_Account": c, "Status": "Waiting"})),
            );
            (
                1,
                json!({
                    "CallbackCommand": hearth_callbacks::call_command(1),
                    "CallInfo": {
                        "CallId": log.call_id, "CallMediaType": media(log.media), "ChatGroupId": "",
                        "RoomId": room, "RoomIdType": room_type,
                    },
                    "UserList": users,
                    "EventTime": now_ms,
                }),
            )
        };
        Some(NewCallback {
            app: log.sdk_app_id,
            group: Group::Calls.id(),
            event_type,
            order_key: format!("call:{}", log.call_id),
            info_json: body.to_string(),
            created_ms: now_ms,
        })
    }
}
