//! Identifiers and units shared by every Hearth part: applications, rooms, users, calls, time.
//! Pure data with validation; no IO.

mod ids;
mod metrics;
mod room;
mod time;

pub use ids::{CommId, SdkAppId, UserId};
pub use metrics::QUALITY_METRICS;
pub use room::{RoomKey, RoomKeyError};
pub use time::{unix_ms, UnixSecs};

/// TRTC's resolution classes of usage (`Audio` aside): SD up to 640×480 pixels, HD up to
/// 1280×720, FullHD up to 1920×1080, 2K up to 2560×1440, 4K above.
pub fn resolution_class(width: u32, height: u32) -> &'static str {
    pixel_class(u64::from(width) * u64::from(height))
}

/// The usage class of pictures of `pixels` in all (several streams received at once count by
/// their sum, as TRTC bills a user's aggregate resolution); 0 pixels is `Audio`.
pub fn pixel_class(pixels: u64) -> &'static str {
    match pixels {
        0 => "Audio",
        p if p <= 640 * 480 => "SD",
        p if p <= 1280 * 720 => "HD",
        p if p <= 1920 * 1080 => "FullHD",
        p if p <= 2560 * 1440 => "2K",
        _ => "4K",
    }
}

/// The usage keys of DescribeTrtcUsage and DescribeRecordingUsage, in order.
pub const USAGE_KEYS: [&str; 6] = ["Audio", "SD", "HD", "FullHD", "2K", "4K"];
