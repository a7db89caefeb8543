//! Newtypes for the application, user and call identifiers of TRTC.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A TRTC application id (`SdkAppId`, e.g. `1400000001`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SdkAppId(pub u32);

impl fmt::Display for SdkAppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A user identifier inside one application (TRTC `UserId`, the UserSig identifier).
/// Its `Debug` is masked: identifiers are user data and stay out of logs unless printed on
/// purpose with `Display`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub String);

impl UserId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId(<{} bytes>)", self.0.len())
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One lifetime of a room: `{SdkAppId}_{room number}_{create time s}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CommId(pub String);

impl CommId {
    /// Builds the CommId of a call of `room` in `app` created at `created`.
    pub fn new(app: SdkAppId, room: &crate::RoomKey, created: crate::UnixSecs) -> Self {
        CommId(format!("{}_{}_{}", app.0, room.number(), created.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The SdkAppId prefix, when the id has the documented three-part shape.
    pub fn sdk_app_id(&self) -> Option<SdkAppId> {
        let mut parts = self.0.split('_');
        let app = parts.next()?.parse().ok()?;
        parts.next()?.parse::<u64>().ok()?;
        parts.next()?.parse::<i64>().ok()?;
        parts.next().is_none().then_some(SdkAppId(app))
    }
}

impl fmt::Display for CommId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RoomKey, UnixSecs};

    #[test]
    fn comm_id_of_numeric_room_has_the_room_number_in_the_middle() {
        let id = CommId::new(
            SdkAppId(1400188366),
            &RoomKey::Num(3501),
            UnixSecs(1586952940),
        );
        assert_eq!(id.as_str(), "1400188366_3501_1586952940");
        assert_eq!(id.sdk_app_id(), Some(SdkAppId(1400188366)));
    }

    #[test]
    fn malformed_comm_ids_have_no_app() {
        for bad in ["", "1400_1", "x_1_2", "1_2_3_4", "1_a_3"] {
            assert_eq!(CommId(bad.into()).sdk_app_id(), None, "{bad}");
        }
    }
}
