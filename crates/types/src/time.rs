//! Wall-clock time as the API speaks it: Unix seconds.

use serde::{Deserialize, Serialize};
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in whole seconds.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct UnixSecs(pub i64);

/// Now, in Unix milliseconds.
pub fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl UnixSecs {
    pub fn now() -> Self {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        UnixSecs(d.as_secs() as i64)
    }

    /// Start of the UTC day containing this instant.
    pub fn day_start(self) -> Self {
        UnixSecs(self.0 - self.0.rem_euclid(86_400))
    }
}
