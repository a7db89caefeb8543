//! Hearth's own multi-party clients (`docs/protocol.md`) as the media plane sees them: roles,
//! media sources, the roster, and the notices a worker sends to a client's signaling task.

use crate::core::StreamKind;
use hearth_types::UserId;

/// TRTC roles: an anchor publishes and subscribes; an audience member only subscribes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Anchor,
    Audience,
}

/// What a published media line carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    Mic,
    Camera,
    Screen,
}

impl Source {
    pub fn stream(self) -> StreamKind {
        match self {
            Source::Screen => StreamKind::Sub,
            Source::Mic | Source::Camera => StreamKind::Main,
        }
    }
}

/// One user as other clients see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterUser {
    pub user: UserId,
    pub audio: bool,
    pub video: bool,
    pub sub: bool,
    pub audio_muted: bool,
    pub video_muted: bool,
    pub bot: bool,
}

/// A media line of a subscribe-connection offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferedTrack {
    pub mid: String,
    pub user: UserId,
    pub stream: StreamKind,
    pub audio: bool,
}

/// Why the server ends a client's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeReason {
    Kicked,
    RoomDismissed,
    Replaced,
    Timeout,
    ServerShutdown,
}

/// Worker → client signaling task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientNotice {
    /// A new offer for the subscribe connection; answer with `client_answer`.
    Offer {
        sdp: String,
        tracks: Vec<OfferedTrack>,
    },
    UserEntered(RosterUser),
    UserExited(UserId),
    UserUpdated(RosterUser),
    /// The session is over; the socket should close after telling the client.
    Ended(NoticeReason),
    /// An operator blocked (or, both false, unblocked) the client's audio and/or video.
    Blocked {
        audio: bool,
        video: bool,
    },
    /// Another user's custom message (its command id, its number among that user's messages).
    Custom {
        user: UserId,
        cmd_id: u8,
        seq: u32,
        data: std::sync::Arc<[u8]>,
    },
}

/// What `client_enter` returns.
#[derive(Debug, Clone)]
pub struct ClientEntered {
    pub session: crate::SessionRef,
    pub roster: Vec<RosterUser>,
}
