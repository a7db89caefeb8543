//! Conversions between records and column values: rooms as (kind, string), leave reasons,
//! identifier lists as JSON, and page bounds. Anything unreadable becomes `StoreError::Corrupt`.

use crate::{LeaveReason, StoreError, StoreResult};
use hearth_types::{RoomKey, SdkAppId};

/// A room as stored: `('num', "123")` or `('str', "123")`.
pub(super) fn room_columns(room: &RoomKey) -> (&'static str, String) {
    match room {
        RoomKey::Num(n) => ("num", n.to_string()),
        RoomKey::Str(s) => ("str", s.clone()),
    }
}

pub(super) fn room_from_columns(kind: &str, string: String) -> StoreResult<RoomKey> {
    match kind {
        "num" => string
            .parse::<u32>()
            .map(RoomKey::Num)
            .map_err(|_| StoreError::Corrupt(format!("numeric room {string:?} is not a number"))),
        "str" => Ok(RoomKey::Str(string)),
        other => Err(StoreError::Corrupt(format!("unknown room kind {other:?}"))),
    }
}

pub(super) fn leave_reason_from_column(s: Option<String>) -> StoreResult<Option<LeaveReason>> {
    s.map(|s| {
        LeaveReason::parse(&s)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown leave reason {s:?}")))
    })
    .transpose()
}

pub(super) fn app_from_column(v: i64) -> StoreResult<SdkAppId> {
    u32::try_from(v)
        .map(SdkAppId)
        .map_err(|_| StoreError::Corrupt(format!("SdkAppId {v} out of range")))
}

/// A list of strings or numbers as a JSON array (also the parameter of `json_each` filters).
pub(super) fn to_json<T: serde::Serialize>(v: &[T]) -> String {
    // Serializing strings and integers cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "[]".to_owned())
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(
    what: &str,
    s: &str,
) -> StoreResult<Vec<T>> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Page bounds as SQL integers (saturating; SQLite treats them as 64-bit signed).
pub(super) fn sql_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn count_from_column(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
