//! The sans-IO room core: who is in a room, which tracks they publish, who receives what, and
//! the forwarding decisions (simulcast layer per subscriber, switched on keyframes; keyframe
//! requests throttled). Time is passed in; nothing here touches a socket or str0m.

mod keyframe;
mod layers;
mod presence;
mod room;

pub use keyframe::{KeyframeThrottle, KEYFRAME_REQUEST_INTERVAL};
pub use layers::{FrameVerdict, LayerChoice, LayerSelector};
pub use presence::{Added, Presence, Removed};
pub use room::{Forward, KeyframeAsk, ParticipantId, Room, SubscriptionId, TrackId, TrackInfo};

/// What kind of media a track carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
}

/// Which stream of a user a track belongs to: TRTC's main (camera, mic) or sub (screen share).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    Main,
    Sub,
}

/// A simulcast layer, 0 = lowest. Tracks without simulcast have the single layer 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Layer(pub u8);
