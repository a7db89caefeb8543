//! The messages the rest of the server sends to a worker, and what comes back.

use crate::core::{ParticipantId, StreamKind};
use hearth_types::{RoomKey, SdkAppId, UserId};
use thiserror::Error;
use tokio::sync::oneshot;

/// Who is entering, and from where.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub app: SdkAppId,
    pub room: RoomKey,
    pub user: UserId,
    pub client_ip: String,
    pub device_type: String,
    pub sdk_version: String,
    /// A media bot of Hearth (marked in rosters so that other bots can skip it).
    pub bot: bool,
}

/// A session the media plane accepted: its answer, and what a later `leave` must quote.
#[derive(Debug, Clone)]
pub struct Joined {
    pub session: SessionRef,
    /// The SDP answer, with our ICE candidate.
    pub answer: String,
}

/// Names one session on one worker; `token` makes it unguessable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRef {
    pub worker: usize,
    pub peer: ParticipantId,
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SfuError {
    #[error("the SDP offer is malformed: {0}")]
    BadSdp(String),
    #[error("the SDP offer has no supported codec (Opus, VP8 or H.264)")]
    NoSupportedCodec,
    #[error("the SDP offer does not {0}")]
    WrongDirection(&'static str),
    #[error("that user publishes nothing in this room")]
    PublisherNotFound,
    #[error("no such session")]
    SessionNotFound,
    #[error("no such room")]
    RoomNotFound,
    #[error("that user is not in the room")]
    UserNotFound,
    #[error("not allowed: {0}")]
    Forbidden(&'static str),
    /// A client message the protocol does not allow (bad fields or size).
    #[error("{0}")]
    BadMessage(&'static str),
    /// The client sends faster than its limit.
    #[error("{0}")]
    RateLimited(&'static str),
    #[error("the media plane is not running")]
    Unavailable,
    /// The worker holds its configured number of media connections (or clients): the join
    /// is refused rather than degrading everyone in it.
    #[error("this media server is at its capacity of {0} media connections per worker; retry later or on another server")]
    Full(usize),
    /// The user or the application holds as many media sessions as it may.
    #[error("{0}")]
    TooManySessions(String),
}

/// Counts that show what a worker holds (for tests and health).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkerStats {
    pub rooms: usize,
    pub peers: usize,
    pub addr_routes: usize,
    pub ufrag_routes: usize,
    pub tracks: usize,
    pub subscriptions: usize,
    pub timers: usize,
    pub events_dropped: u64,
    /// Domain events waiting for the recorder.
    pub events_queued: usize,
    /// ICE-TCP connections open.
    pub tcp_connections: usize,
    /// Users present in rooms.
    pub users: usize,
    pub counters: Counters,
}

/// Monotonic traffic counters of a worker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Datagrams and bytes routed to a peer.
    pub datagrams_in: u64,
    pub bytes_in: u64,
    /// Datagrams and bytes sent (media forwarded, RTCP, STUN, DTLS).
    pub datagrams_out: u64,
    pub bytes_out: u64,
    /// Frames forwarded to subscribers.
    pub frames_forwarded: u64,
    /// Packets forwarded to subscribers.
    pub packets_forwarded: u64,
    /// Packets not forwarded to a subscriber whose send queue was over its bound (or that
    /// waited for a keyframe after it).
    pub queue_drops: u64,
    /// Times a subscriber's line went over its bound and was set to resume at a keyframe.
    pub queue_skips: u64,
    /// Datagrams the socket refused (buffer full).
    pub send_drops: u64,
    /// `sendmmsg` calls, and datagrams that went in UDP GSO messages (runs to one address).
    pub send_calls: u64,
    pub gso_datagrams: u64,
    /// Joins refused because the worker was at its capacity.
    pub refused_full: u64,
    /// Packets handed to another worker that holds more viewers of the room.
    pub packets_relayed: u64,
    /// Packets not handed over because that worker's queue was full.
    pub relay_drops: u64,
    /// Handed-over packets a mirror dropped because they reached it too late (it had fallen
    /// behind); its viewers resumed at a keyframe.
    pub relay_stale: u64,
}

/// A user present in a room, with what they publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomUser {
    pub user: UserId,
    pub sessions: usize,
    /// Publishes (WHIP, or a client in the anchor role); else audience (WHEP viewers too).
    pub anchor: bool,
    pub audio: bool,
    pub video: bool,
    pub sub_video: bool,
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, SfuError>>;

pub(crate) enum Command {
    Publish {
        req: JoinRequest,
        offer: String,
        reply: Reply<Joined>,
    },
    Play {
        req: JoinRequest,
        publisher: UserId,
        stream: StreamKind,
        offer: String,
        /// Another worker is tried when this one is full: a refusal here is not counted.
        spill: bool,
        reply: Reply<Joined>,
    },
    /// The home worker of a room: what a viewer placed on another worker needs of it.
    Describe {
        app: SdkAppId,
        room: RoomKey,
        publisher: UserId,
        stream: StreamKind,
        reply: Reply<crate::worker::MirrorOf>,
    },
    /// A WHEP viewer on a worker that mirrors the room of another (its home).
    PlayMirrored {
        req: JoinRequest,
        publisher: UserId,
        stream: StreamKind,
        offer: String,
        of: crate::worker::MirrorOf,
        /// No other worker is tried after this one: a refusal is counted.
        last: bool,
        reply: Reply<Joined>,
    },
    /// The home worker of a room: what a protocol client placed on another worker needs.
    DescribeRoom {
        app: SdkAppId,
        room: RoomKey,
        reply: Reply<crate::worker::MirrorOf>,
    },
    /// A protocol client of the audience on a worker that mirrors the room of another.
    EnterMirrored {
        req: JoinRequest,
        autosubscribe: bool,
        notify: tokio::sync::mpsc::Sender<crate::client::ClientNotice>,
        of: crate::worker::MirrorOf,
        last: bool,
        reply: Reply<crate::client::ClientEntered>,
    },
    /// The home worker of a room: a session another worker admitted (a WHEP viewer of
    /// `publisher`, or a protocol client when `None`) is present in the room, and the packets
    /// it receives go to that worker.
    Attach {
        req: JoinRequest,
        viewer: ParticipantId,
        publisher: Option<UserId>,
        stream: StreamKind,
        of: crate::worker::MirrorOf,
        reply: Reply<()>,
    },
    Leave {
        session: SessionRef,
        reply: Reply<()>,
    },
    Dismiss {
        app: SdkAppId,
        room: RoomKey,
        reply: Reply<()>,
    },
    RoomUsers {
        app: SdkAppId,
        room: RoomKey,
        reply: Reply<Vec<RoomUser>>,
    },
    Stats {
        reply: Reply<WorkerStats>,
    },
    Kick {
        app: SdkAppId,
        room: RoomKey,
        users: Vec<UserId>,
        reply: Reply<Vec<UserId>>,
    },
    Block {
        app: SdkAppId,
        room: RoomKey,
        user: UserId,
        blocked: crate::Blocked,
        reply: Reply<()>,
    },
    Client(ClientCommand),
    Shutdown,
}

/// Commands of a multi-party client session.
pub(crate) enum ClientCommand {
    Enter {
        req: JoinRequest,
        role: crate::client::Role,
        autosubscribe: bool,
        notify: tokio::sync::mpsc::Sender<crate::client::ClientNotice>,
        /// Another worker is tried when this one is full: a refusal here is not counted.
        spill: bool,
        reply: Reply<crate::client::ClientEntered>,
    },
    Attach {
        session: SessionRef,
        notify: tokio::sync::mpsc::Sender<crate::client::ClientNotice>,
        reply: Reply<crate::client::ClientEntered>,
    },
    Detach {
        session: SessionRef,
        reply: Reply<()>,
    },
    Publish {
        session: SessionRef,
        sdp: String,
        sources: Vec<(String, crate::client::Source)>,
        reply: Reply<String>,
    },
    Answer {
        session: SessionRef,
        sdp: String,
        reply: Reply<()>,
    },
    Subscribe {
        session: SessionRef,
        user: UserId,
        stream: StreamKind,
        quality: Option<crate::core::LayerChoice>,
        on: bool,
        reply: Reply<()>,
    },
    Mute {
        session: SessionRef,
        source: crate::client::Source,
        muted: bool,
        reply: Reply<()>,
    },
    Unpublish {
        session: SessionRef,
        source: crate::client::Source,
        reply: Reply<()>,
    },
    Role {
        session: SessionRef,
        role: crate::client::Role,
        reply: Reply<()>,
    },
    Exit {
        session: SessionRef,
        reply: Reply<()>,
    },
    /// Quality the client measured: `(peer, metric, value)`, peer empty for its own upstream.
    Report {
        session: SessionRef,
        samples: Vec<(String, &'static str, f64)>,
        reply: Reply<()>,
    },
    /// A custom message to the rest of the room.
    Custom {
        session: SessionRef,
        cmd_id: u8,
        data: Vec<u8>,
        reply: Reply<()>,
    },
}
