//! A client of Hearth's own protocol (`docs/protocol.md`) in Rust: it enters a room over the
//! WebSocket, follows the roster and notices, subscribes to users' streams over a str0m
//! subscribe connection and hands out whole frames with their timing, and publishes audio and
//! video frames over a publish connection. Media bots use it as apps use the browser SDK, so a
//! bot is an ordinary user of the room.

mod peer;
mod proto;
mod publisher;
mod session;
mod subscriber;

pub use proto::{Role, RoomId, User};
pub use session::{join, Client, JoinParams};

use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// A user's stream: camera (main) or screen (sub).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stream {
    Main,
    Sub,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Main => "main",
            Stream::Sub => "sub",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Audio,
    Video,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Opus,
    Vp8,
    Vp9,
    H264,
}

/// A simulcast layer of published video: TRTC's small and big video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    Small,
    /// The full picture (also the only layer without simulcast).
    Full,
}

/// Which of a user's media a frame belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrackKey {
    pub user: Arc<str>,
    pub stream: Stream,
    pub kind: Kind,
}

/// One depacketized frame (H.264 in Annex-B).
#[derive(Debug, Clone)]
pub struct Frame {
    pub track: TrackKey,
    pub codec: Codec,
    pub data: Arc<[u8]>,
    /// RTP time, extended (no wrap), in `clock_rate` units.
    pub rtp_time: u64,
    pub clock_rate: u32,
    /// When its first packet arrived.
    pub arrival: Instant,
    /// The newest RTCP sender report of this track: (sender's wallclock, RTP time), for
    /// putting the sender's tracks on one clock.
    pub sender_report: Option<(SystemTime, u64)>,
    pub keyframe: bool,
    /// False after a gap: the decoder may need a keyframe.
    pub contiguous: bool,
}

/// What the room tells the client.
#[derive(Debug, Clone)]
pub enum Event {
    /// A user entered (the roster at entry comes as one of these per user, sorted by id).
    UserEntered(User),
    /// A user published, unpublished, muted or unmuted something.
    UserUpdated(User),
    UserExited(String),
    /// A subscribed track is being received.
    TrackAdded(TrackKey),
    /// A subscribed track is gone (its user unpublished or left).
    TrackRemoved(TrackKey),
    Frame(Frame),
    /// A receiver of what this client publishes asked for a keyframe of a video layer.
    KeyframeRequested(Layer),
    /// A custom message another client of the room sent (`cmd_id` 1–10, at most 1 KB).
    Custom {
        user: String,
        cmd_id: u8,
        data: Vec<u8>,
    },
    /// An `error` answer of the server to one of this client's requests (the session goes on).
    Error {
        code: u16,
        message: String,
    },
    /// The session is over: `reason` is the server's notice (`kicked`, `room_dismissed`, …) or
    /// what broke.
    Closed {
        reason: String,
        message: String,
    },
}
