//! What a valid `call` message is: callees, media, room and ring timeout, checked and turned
//! into a [`CallRequest`]; and how a call's room is chosen when the caller names none.

use crate::proto::ProtoError;
use hearth_store::CallMedia;
use hearth_types::RoomKey;
use rand::Rng;
use std::collections::HashSet;
use std::time::Duration;

/// Invitees of one group call (TUICallKit's group calls hold 9 people; Hearth allows more).
pub const MAX_CALLEES: usize = 16;
/// Longest ring a caller may ask for.
pub const MAX_RING_SECS: u64 = 300;
/// Longest user id (TRTC's limit).
const MAX_USER_ID_BYTES: usize = 32;

/// A checked `call` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRequest {
    pub callees: Vec<String>,
    pub media: CallMedia,
    pub group: bool,
    /// `None`: the book picks a free numeric room.
    pub room: Option<RoomKey>,
    /// `None`: the server's default.
    pub timeout: Option<Duration>,
}

fn bad(m: impl Into<String>) -> ProtoError {
    ProtoError::BadRequest(m.into())
}

/// Checks a user id named in a message (the caller's own comes from their UserSig).
pub fn check_user_id(u: &str) -> Result<(), ProtoError> {
    if u.is_empty() || u.len() > MAX_USER_ID_BYTES {
        return Err(bad(format!(
            "user ids are 1 to {MAX_USER_ID_BYTES} bytes long"
        )));
    }
    if !u.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(format!(
            "user id {u:?} has characters other than printable ASCII"
        )));
    }
    Ok(())
}

impl CallRequest {
    pub fn parse(
        callees: Vec<String>,
        media: &str,
        group: bool,
        roomid: Option<u64>,
        strroomid: Option<String>,
        timeout: Option<u64>,
    ) -> Result<Self, ProtoError> {
        let media = match media {
            "audio" => CallMedia::Audio,
            "video" => CallMedia::Video,
            other => return Err(bad(format!("media must be audio or video, not {other:?}"))),
        };
        if callees.is_empty() {
            return Err(bad("callees is empty"));
        }
        if !group && callees.len() != 1 {
            return Err(bad(
                "a one-to-one call has exactly one callee; set group for more",
            ));
        }
        if callees.len() > MAX_CALLEES {
            return Err(bad(format!("at most {MAX_CALLEES} callees per call")));
        }
        let mut seen = HashSet::new();
        for c in &callees {
            check_user_id(c)?;
            if !seen.insert(c.as_str()) {
                return Err(bad(format!("{c:?} is listed twice")));
            }
        }
        let room = match (roomid, strroomid) {
            (None, None) => None,
            (Some(n), None) => Some(RoomKey::num(n).map_err(|e| bad(e.to_string()))?),
            (None, Some(s)) => Some(RoomKey::string(&s).map_err(|e| bad(e.to_string()))?),
            (Some(_), Some(_)) => return Err(bad("give at most one of roomid and strroomid")),
        };
        let timeout = match timeout {
            None => None,
            Some(t) if (1..=MAX_RING_SECS).contains(&t) => Some(Duration::from_secs(t)),
            Some(_) => return Err(bad(format!("timeout is 1 to {MAX_RING_SECS} seconds"))),
        };
        Ok(CallRequest {
            callees,
            media,
            group,
            room,
            timeout,
        })
    }
}

/// A numeric room for a call that names none (the book retries while it is taken).
pub fn random_room() -> RoomKey {
    let n = rand::thread_rng().gen_range(100_000_000..=u32::MAX - 1);
    RoomKey::Num(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(callees: &[&str], media: &str, group: bool) -> Result<CallRequest, ProtoError> {
        CallRequest::parse(
            callees.iter().map(|s| s.to_string()).collect(),
            media,
            group,
            None,
            None,
            None,
        )
    }

    #[test]
    fn accepts_single_and_group_calls() {
        let r = parse(&["bob"], "video", false).unwrap();
        assert_eq!((r.media, r.group, r.room), (CallMedia::Video, false, None));
        assert!(parse(&["bob", "carol"], "audio", true).is_ok());
        assert!(parse(&["bob"], "audio", true).is_ok());
    }

    #[test]
    fn refuses_bad_calls_with_a_reason() {
        for (callees, media, group) in [
            (&[][..], "audio", false),
            (&["bob", "carol"][..], "audio", false),
            (&["bob"][..], "hologram", false),
            (&["bob", "bob"][..], "audio", true),
            (&[""][..], "audio", false),
            (&["bo b"][..], "audio", false),
            (
                &["a-very-long-user-id-that-is-over-32-bytes"][..],
                "audio",
                false,
            ),
        ] {
            assert!(
                matches!(parse(callees, media, group), Err(ProtoError::BadRequest(_))),
                "{callees:?} {media} {group}"
            );
        }
        let many: Vec<String> = (0..=MAX_CALLEES).map(|i| format!("u{i}")).collect();
        assert!(CallRequest::parse(many, "audio", true, None, None, None).is_err());
        let both = CallRequest::parse(
            vec!["b".into()],
            "audio",
            false,
            Some(1),
            Some("x".into()),
            None,
        );
        assert!(both.is_err());
        for t in [0, MAX_RING_SECS + 1] {
            assert!(
                CallRequest::parse(vec!["b".into()], "audio", false, None, None, Some(t)).is_err()
            );
        }
        assert!(CallRequest::parse(vec!["b".into()], "audio", false, Some(0), None, None).is_err());
    }

    #[test]
    fn takes_the_room_the_caller_names() {
        let r = CallRequest::parse(
            vec!["b".into()],
            "audio",
            false,
            None,
            Some("room-1".into()),
            Some(5),
        )
        .unwrap();
        assert_eq!(r.room, Some(RoomKey::string("room-1").unwrap()));
        assert_eq!(r.timeout, Some(Duration::from_secs(5)));
    }
}
