//! The JSON messages of Hearth's client protocol v1 (`docs/protocol.md`), both directions, and
//! the one table of protocol error codes.

use serde::{Deserialize, Serialize};

pub const PROTOCOL_VERSION: u32 = 1;
/// Refuses a first message (`enter`, `login`) of another protocol version.
pub fn check_version(v: u32) -> Result<(), ProtoError> {
    if v == PROTOCOL_VERSION {
        Ok(())
    } else {
        Err(ProtoError::BadRequest(format!(
            "protocol version {v} is not supported; use {PROTOCOL_VERSION}"
        )))
    }
}

/// Largest text frame accepted.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMsg {
    Enter {
        v: u32,
        sdkappid: u32,
        userid: String,
        usersig: String,
        roomid: Option<u64>,
        strroomid: Option<String>,
        role: Option<String>,
        privatemapkey: Option<String>,
        autosubscribe: Option<bool>,
        resume: Option<String>,
        /// A media bot of Hearth: marked `bot` in rosters.
        bot: Option<bool>,
    },
    Exit {},
    Publish {
        sdp: String,
        #[serde(default)]
        tracks: Vec<TrackSource>,
    },
    Unpublish {
        source: String,
    },
    Mute {
        source: String,
        muted: bool,
    },
    Subscribe {
        userid: String,
        stream: Option<String>,
        quality: Option<String>,
    },
    Unsubscribe {
        userid: String,
        stream: Option<String>,
    },
    Answer {
        sdp: String,
    },
    Role {
        role: String,
    },
    Ping {},
    Login {
        v: u32,
        sdkappid: u32,
        userid: String,
        usersig: String,
    },
    Logout {},
    Call {
        callees: Vec<String>,
        media: String,
        #[serde(default)]
        group: bool,
        roomid: Option<u64>,
        strroomid: Option<String>,
        timeout: Option<u64>,
    },
    Accept {
        callid: String,
    },
    Reject {
        callid: String,
    },
    Cancel {
        callid: String,
    },
    Hangup {
        callid: String,
    },
    /// A custom message to the rest of the room: command id 1–10, base64 payload.
    Custom {
        cmdid: u8,
        data: String,
    },
    Stats {
        capture_fps: Option<f64>,
        app_cpu: Option<f64>,
        sys_cpu: Option<f64>,
        #[serde(default)]
        remote: Vec<RemoteStats>,
    },
}

/// What a client measured of one remote user's main stream over the last report period.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteStats {
    pub userid: String,
    pub decode_fps: Option<f64>,
    pub video_block_ms: Option<f64>,
    pub audio_block_ms: Option<f64>,
}

impl ClientMsg {
    pub fn name(&self) -> &'static str {
        match self {
            ClientMsg::Enter { .. } => "enter",
            ClientMsg::Exit {} => "exit",
            ClientMsg::Publish { .. } => "publish",
            ClientMsg::Unpublish { .. } => "unpublish",
            ClientMsg::Mute { .. } => "mute",
            ClientMsg::Subscribe { .. } => "subscribe",
            ClientMsg::Unsubscribe { .. } => "unsubscribe",
            ClientMsg::Answer { .. } => "answer",
            ClientMsg::Role { .. } => "role",
            ClientMsg::Ping {} => "ping",
            ClientMsg::Stats { .. } => "stats",
            ClientMsg::Custom { .. } => "custom",
            ClientMsg::Login { .. } => "login",
            ClientMsg::Logout {} => "logout",
            ClientMsg::Call { .. } => "call",
            ClientMsg::Accept { .. } => "accept",
            ClientMsg::Reject { .. } => "reject",
            ClientMsg::Cancel { .. } => "cancel",
            ClientMsg::Hangup { .. } => "hangup",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackSource {
    pub mid: String,
    pub source: String,
}

#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct User {
    pub userid: String,
    pub audio: bool,
    pub video: bool,
    pub sub: bool,
    pub audio_muted: bool,
    pub video_muted: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub bot: bool,
}

#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct OfferTrack {
    pub mid: String,
    pub userid: String,
    pub stream: &'static str,
    pub kind: &'static str,
}

/// A call as the calling messages describe it (`docs/protocol.md`, Calls).
#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct CallInfo {
    pub callid: String,
    pub caller: String,
    pub callees: Vec<String>,
    /// "audio" or "video".
    pub media: &'static str,
    pub group: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roomid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strroomid: Option<String>,
    /// For the room of the call, when the application requires one (filled in per recipient).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privatemapkey: Option<String>,
}

#[derive(Debug, Serialize, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    Entered {
        session: String,
        userid: String,
        role: &'static str,
        roster: Vec<User>,
        /// TURN servers with the user's credentials, when the server has some configured.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        ice_servers: Vec<crate::turn::IceServer>,
    },
    Exited {},
    PublishAnswer {
        sdp: String,
    },
    Offer {
        sdp: String,
        tracks: Vec<OfferTrack>,
    },
    UserEntered {
        user: User,
    },
    UserExited {
        userid: String,
    },
    UserUpdated {
        user: User,
    },
    Role {
        role: &'static str,
    },
    Notice {
        reason: &'static str,
        message: String,
    },
    /// Another user's custom message, base64, numbered per sender.
    Custom {
        userid: String,
        cmdid: u8,
        seq: u32,
        data: String,
    },
    Pong {},
    LoggedIn {
        userid: String,
    },
    LoggedOut {},
    CallPlaced {
        #[serde(flatten)]
        call: CallInfo,
    },
    Invited {
        #[serde(flatten)]
        call: CallInfo,
        /// Seconds left to answer.
        timeout: u64,
    },
    CallState {
        #[serde(flatten)]
        call: CallInfo,
        accepted: Vec<String>,
        ringing: Vec<String>,
    },
    CallAccepted {
        callid: String,
        userid: String,
    },
    CallRejected {
        callid: String,
        userid: String,
    },
    CallBusy {
        callid: String,
        userid: String,
    },
    CallNoAnswer {
        callid: String,
        userid: String,
    },
    CallLeft {
        callid: String,
        userid: String,
        /// "hangup", "dropped", "removed" (RemoveUser), "dismissed" (DismissRoom) or
        /// "not_entered" (accepted but never entered the call's room in time).
        reason: &'static str,
    },
    CallEnded {
        callid: String,
        result: &'static str,
    },
    Error {
        code: u16,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        request: Option<&'static str>,
    },
}

/// Protocol errors and whether the connection survives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    BadRequest(String),
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    EnterTimeout,
    Conflict(String),
    TooLarge,
    Binary,
    Unavailable,
    /// The media server is at capacity (the message says so).
    Full(String),
    /// The client sends faster than a limit allows (the message says which).
    TooMany(String),
    /// The socket sends more messages or bytes than its limit: it is closed.
    Flooding(String),
    /// The user or the application holds as many sockets, or media sessions, as it may.
    AtLimit(String),
}

impl ProtoError {
    /// (code, message, close the socket after sending)
    pub fn parts(&self) -> (u16, String, bool) {
        match self {
            ProtoError::BadRequest(m) => (400, m.clone(), false),
            ProtoError::Unauthorized(m) => (401, m.clone(), true),
            ProtoError::Forbidden(m) => (403, m.clone(), false),
            ProtoError::NotFound(m) => (404, m.clone(), false),
            ProtoError::EnterTimeout => (408, "no enter or login within 10 s".into(), true),
            ProtoError::Conflict(m) => (409, m.clone(), false),
            ProtoError::TooLarge => (
                413,
                format!("frames are limited to {MAX_FRAME_BYTES} bytes"),
                true,
            ),
            ProtoError::Binary => (
                415,
                "binary frames are not part of the protocol".into(),
                true,
            ),
            ProtoError::Unavailable => (503, "the media plane is unavailable".into(), true),
            ProtoError::Full(m) => (503, m.clone(), true),
            ProtoError::TooMany(m) => (429, m.clone(), false),
            ProtoError::Flooding(m) | ProtoError::AtLimit(m) => (429, m.clone(), true),
        }
    }
}

impl From<hearth_sfu::SfuError> for ProtoError {
    fn from(e: hearth_sfu::SfuError) -> Self {
        use hearth_sfu::SfuError as E;
        match e {
            E::BadSdp(_) | E::NoSupportedCodec | E::WrongDirection(_) => {
                ProtoError::BadRequest(e.to_string())
            }
            E::PublisherNotFound | E::RoomNotFound | E::UserNotFound => {
                ProtoError::NotFound(e.to_string())
            }
            E::SessionNotFound => ProtoError::Unauthorized("the session is gone".into()),
            E::Forbidden(m) => ProtoError::Forbidden(m.into()),
            E::Unavailable => ProtoError::Unavailable,
            E::Full(_) => ProtoError::Full(e.to_string()),
            E::BadMessage(m) => ProtoError::BadRequest(m.into()),
            E::RateLimited(m) => ProtoError::TooMany(m.into()),
            E::TooManySessions(m) => ProtoError::AtLimit(m),
        }
    }
}
