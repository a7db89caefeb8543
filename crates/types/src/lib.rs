//! Identifiers and units shared by every Hearth part: applications, rooms, users, calls, time.
//! Pure data with validation; no IO.

mod ids;
mod metrics;
mod room;
mod time;

pub use ids::{CommId, SdkAppId, UserId};
pub use metrics::QUALITY_METRICS;
pub use room::{RoomKey, RoomKeyError};
pub use time::UnixSecs;
