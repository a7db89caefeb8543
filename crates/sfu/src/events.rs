//! Domain events: every state change of a call, as the media plane sees it, carrying the
//! WebRTC event IDs of spec §4.2. Emitted on a bounded queue; the telemetry side persists them.

use hearth_types::{CommId, RoomKey, SdkAppId, UserId};

/// Why a user left a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    /// The client said goodbye (WHIP/WHEP DELETE, exit message).
    Left,
    /// The client stopped answering (ICE timeout).
    Timeout,
    /// The same user entered again; this older session was replaced.
    Replaced,
    /// An operator removed the user.
    Kicked,
    /// An operator dismissed the room.
    RoomDismissed,
    /// The server is shutting down.
    ServerShutdown,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// First entry into an empty room: a new call begins (no WebRTC event ID).
    CallStarted {
        creator: UserId,
    },
    /// Last exit or dismissal: the call ends (no WebRTC event ID).
    CallEnded,
    Entered {
        client_ip: String,
        device_type: String,
        sdk_version: String,
        /// Entered as an anchor (may publish), not as audience.
        anchor: bool,
        /// A media bot of Hearth (recording, relay, …).
        bot: bool,
    },
    /// The user switched between anchor and audience (no WebRTC event ID).
    RoleChanged {
        anchor: bool,
    },
    Exited {
        reason: ExitReason,
    },
    AudioOn,
    AudioOff,
    VideoOn,
    VideoOff,
    /// Screen share (TRTC sub stream) on/off; reported with the video IDs.
    SubStreamOn,
    SubStreamOff,
    SubscribedVideo {
        publisher: UserId,
    },
    SubscribedAudio {
        publisher: UserId,
    },
    UnsubscribedVideo {
        publisher: UserId,
    },
    UnsubscribedAudio {
        publisher: UserId,
    },
    MediaConnected,
    MediaDisconnected,
    SignalingConnected,
    SignalingDisconnected,
    /// One quality metric over the last sample period (the `DataType` names of
    /// DescribeCallDetailInfo). `peer` is empty upstream and names the remote user downstream.
    Quality {
        peer: String,
        metric: &'static str,
        value: f64,
    },
    /// Seconds of media the user received over the last sample period, by usage class
    /// (`Audio` when no video reached it; else the class of the pixels of every video stream it
    /// received, summed). Nothing is emitted for a user who received nothing.
    Usage {
        class: &'static str,
        secs: f64,
    },
    /// The longest round-trip time to the user over the last sample period, from RTCP on any
    /// of its media lines (none when nothing measured it).
    RoundTrip {
        ms: f64,
    },
}

impl EventKind {
    /// The WebRTC event ID (spec §4.2); `None` for call-level events.
    pub fn webrtc_event_id(&self) -> Option<u32> {
        Some(match self {
            EventKind::CallStarted { .. }
            | EventKind::CallEnded
            | EventKind::Quality { .. }
            | EventKind::Usage { .. }
            | EventKind::RoundTrip { .. }
            | EventKind::RoleChanged { .. } => return None,
            EventKind::Entered { .. } => 32788,
            EventKind::Exited { .. } => 32789,
            EventKind::AudioOn => 32769,
            EventKind::AudioOff => 32771,
            EventKind::VideoOn | EventKind::SubStreamOn => 32768,
            EventKind::VideoOff | EventKind::SubStreamOff => 32770,
            EventKind::SubscribedVideo { .. } => 32776,
            EventKind::SubscribedAudio { .. } => 32777,
            EventKind::UnsubscribedVideo { .. } => 32778,
            EventKind::UnsubscribedAudio { .. } => 32779,
            EventKind::MediaConnected => 32793,
            EventKind::MediaDisconnected => 32792,
            EventKind::SignalingConnected => 32791,
            EventKind::SignalingDisconnected => 32790,
        })
    }
}

/// One event of one user in one call.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainEvent {
    /// Unix time in milliseconds.
    pub at_ms: i64,
    pub app: SdkAppId,
    pub room: RoomKey,
    pub comm_id: CommId,
    pub user: UserId,
    pub kind: EventKind,
}
