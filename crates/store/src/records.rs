//! The records the store keeps and the queries it answers.

use hearth_types::{CommId, RoomKey, SdkAppId, UnixSecs, UserId};

/// One application: SdkAppId, its UserSig key, and the identifiers allowed to call the
/// IM-style REST APIs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppRecord {
    pub sdk_app_id: SdkAppId,
    pub secret_key: String,
    pub admins: Vec<String>,
    pub created_at: UnixSecs,
}

/// One API key pair and the applications it may act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialRecord {
    pub secret_id: String,
    pub secret_key: String,
    pub apps: Vec<SdkAppId>,
    pub created_at: UnixSecs,
}

/// One lifetime of a room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    pub comm_id: CommId,
    pub sdk_app_id: SdkAppId,
    pub room: RoomKey,
    /// The user whose entry created the call.
    pub creator: String,
    pub created_at: UnixSecs,
    /// Set when the call ended (last exit or dismissal).
    pub destroyed_at: Option<UnixSecs>,
}

/// Why a session ended, as later reported in events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaveReason {
    Normal,
    Timeout,
    Kicked,
    RoomDismissed,
    Replaced,
    ServerShutdown,
}

impl LeaveReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaveReason::Normal => "normal",
            LeaveReason::Timeout => "timeout",
            LeaveReason::Kicked => "kicked",
            LeaveReason::RoomDismissed => "room_dismissed",
            LeaveReason::Replaced => "replaced",
            LeaveReason::ServerShutdown => "server_shutdown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "normal" => LeaveReason::Normal,
            "timeout" => LeaveReason::Timeout,
            "kicked" => LeaveReason::Kicked,
            "room_dismissed" => LeaveReason::RoomDismissed,
            "replaced" => LeaveReason::Replaced,
            "server_shutdown" => LeaveReason::ServerShutdown,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub i64);

/// A user entering a call.
#[derive(Clone, PartialEq, Eq)]
pub struct NewSession {
    pub comm_id: CommId,
    pub sdk_app_id: SdkAppId,
    pub user_id: UserId,
    pub joined_at: UnixSecs,
    pub device_type: String,
    pub sdk_version: String,
    pub client_ip: String,
}

/// One entry of a user into a call, and its exit if it happened.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: SessionId,
    pub comm_id: CommId,
    pub sdk_app_id: SdkAppId,
    pub room: RoomKey,
    pub user_id: UserId,
    pub joined_at: UnixSecs,
    pub left_at: Option<UnixSecs>,
    pub leave_reason: Option<LeaveReason>,
    pub device_type: String,
    pub sdk_version: String,
    pub client_ip: String,
}

/// One page of a listing, with the number of matches over all pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallQuery {
    pub sdk_app_id: SdkAppId,
    pub start: UnixSecs,
    pub end: UnixSecs,
    /// Matches the room as TRTC prints it (numeric and string rooms alike).
    pub room_string: Option<String>,
    pub offset: u64,
    pub limit: u64,
}

#[derive(Clone, PartialEq, Eq)]
pub struct SessionQuery {
    pub sdk_app_id: SdkAppId,
    pub comm_id: CommId,
    pub start: UnixSecs,
    pub end: UnixSecs,
    /// Empty = all users.
    pub user_ids: Vec<UserId>,
    pub offset: u64,
    pub limit: u64,
}

/// One event of a user (spec §4 numeric ids; time in ms; params -1 when unused).
#[derive(Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub sdk_app_id: SdkAppId,
    pub comm_id: CommId,
    pub user_id: UserId,
    pub time_ms: i64,
    pub event_id: u32,
    pub param_one: i64,
    pub param_two: i64,
}

#[derive(Clone, PartialEq, Eq)]
pub struct EventQuery {
    pub sdk_app_id: SdkAppId,
    pub comm_id: CommId,
    pub user_id: UserId,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// One metric value of one user at one time; `peer` is the remote user for downstream
/// metrics, empty for upstream.
#[derive(Clone, PartialEq)]
pub struct QualitySample {
    pub sdk_app_id: SdkAppId,
    pub comm_id: CommId,
    pub user_id: UserId,
    pub peer: String,
    pub metric: String,
    pub time: UnixSecs,
    pub value: f64,
}

/// One series of a call as read back: one metric of one user (towards `peer`, empty upstream),
/// its points by time (points of the same second in the order they were recorded).
#[derive(Clone, Debug, PartialEq)]
pub struct QualitySeries {
    pub user_id: UserId,
    pub peer: String,
    pub metric: String,
    pub points: Vec<(UnixSecs, f64)>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct QualityQuery {
    pub sdk_app_id: SdkAppId,
    pub comm_id: CommId,
    pub start: UnixSecs,
    pub end: UnixSecs,
    /// Empty = all users.
    pub user_ids: Vec<UserId>,
    /// Empty = all metrics.
    pub metrics: Vec<String>,
}

/// A media task (recording, relay, ingest, AI bot): its kind, state and parameters as JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskRecord {
    pub task_id: String,
    pub sdk_app_id: SdkAppId,
    pub kind: String,
    pub state: String,
    pub room: Option<RoomKey>,
    pub params_json: String,
    pub created_at: UnixSecs,
    pub ended_at: Option<UnixSecs>,
}

/// Rooms and users of one UTC day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaleDay {
    pub day_start: UnixSecs,
    pub rooms: u64,
    /// Distinct users.
    pub users: u64,
    /// Room entries.
    pub entries: u64,
}

/// Scale over one bucket of time `[start, start + step)` (the monitoring dashboards).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaleBucket {
    pub start: UnixSecs,
    /// Sessions and calls (rooms) open at `start`.
    pub online_users: u64,
    pub online_rooms: u64,
    /// Most sessions and calls open at once during the bucket.
    pub peak_users: u64,
    pub peak_rooms: u64,
    /// Distinct users with a session, and calls, overlapping the bucket.
    pub users: u64,
    pub rooms: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PurgeCounts {
    pub calls: u64,
    pub sessions: u64,
    pub events: u64,
    pub quality_samples: u64,
    pub tasks: u64,
    pub call_logs: u64,
    /// Usage, freeze and entry-attempt rows.
    pub rollups: u64,
}

/// One placed call (TUICallKit's CallRecord, seed 003): who called whom, when it rang, was
/// answered and ended, and how it ended. `result` is `None` while the call is going on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallLog {
    /// A UUID.
    pub call_id: String,
    pub sdk_app_id: SdkAppId,
    pub caller: String,
    pub media: CallMedia,
    /// False: one-to-one (`SingleCall`); true: group (`MultiCall`).
    pub group: bool,
    pub callees: Vec<String>,
    pub room: RoomKey,
    pub started_at: UnixSecs,
    pub accepted_at: Option<UnixSecs>,
    pub ended_at: Option<UnixSecs>,
    pub result: Option<CallResult>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallMedia {
    Audio,
    Video,
}

impl CallMedia {
    /// As the call-record API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            CallMedia::Audio => "Audio",
            CallMedia::Video => "Video",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Audio" => Some(CallMedia::Audio),
            "Video" => Some(CallMedia::Video),
            _ => None,
        }
    }
}

/// How a call ended, as the call-record API spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallResult {
    /// The caller cancelled before anyone answered.
    Cancel,
    /// The (last) invitee declined.
    Reject,
    /// The (last) invitee's ring timed out.
    NotAnswer,
    /// Connected, and the last party left by hanging up.
    NormalEnd,
    /// The (last) invitee was in another call.
    CallBusy,
    /// A party dropped off the network (or the server restarted) and that ended the call.
    Interrupt,
}

impl CallResult {
    pub fn as_str(self) -> &'static str {
        match self {
            CallResult::Cancel => "Cancel",
            CallResult::Reject => "Reject",
            CallResult::NotAnswer => "NotAnswer",
            CallResult::NormalEnd => "NormalEnd",
            CallResult::CallBusy => "CallBusy",
            CallResult::Interrupt => "Interrupt",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Cancel" => CallResult::Cancel,
            "Reject" => CallResult::Reject,
            "NotAnswer" => CallResult::NotAnswer,
            "NormalEnd" => CallResult::NormalEnd,
            "CallBusy" => CallResult::CallBusy,
            "Interrupt" => CallResult::Interrupt,
            _ => return None,
        })
    }
}

/// Seconds of media users of one room received in one 5-minute bucket, by usage class
/// ([`hearth_types::USAGE_KEYS`] order: Audio, SD, HD, FullHD, 2K, 4K).
#[derive(Clone, Debug, PartialEq)]
pub struct UsageRecord {
    pub sdk_app_id: SdkAppId,
    pub room: RoomKey,
    /// Start of the bucket (a multiple of [`USAGE_BUCKET_SECS`]).
    pub bucket: UnixSecs,
    pub secs: [f64; 6],
}

/// Usage is kept per 5 minutes.
pub const USAGE_BUCKET_SECS: i64 = 300;

/// Usage summed over a group: one bucket of time, or one room.
#[derive(Clone, Debug, PartialEq)]
pub struct UsageSum {
    /// The bucket's start (by time), or the room (by room).
    pub bucket: UnixSecs,
    pub room: Option<RoomKey>,
    pub secs: [f64; 6],
}

/// One attempt to enter a room, refused ones included (the join success rates).
#[derive(Clone, Debug, PartialEq)]
pub struct EntryAttempt {
    pub sdk_app_id: SdkAppId,
    pub time_ms: i64,
    pub room: String,
    pub user_id: String,
    pub ok: bool,
    /// From the request to the answer.
    pub join_ms: i64,
    /// Why it was refused.
    pub error: Option<String>,
}

/// The quality of one room over one bucket: clients' freeze reports (milliseconds watched or
/// listened, and frozen of them) and the users' round-trip samples (how many, and how many
/// were slow).
#[derive(Clone, Debug, PartialEq)]
pub struct QualityRollup {
    pub sdk_app_id: SdkAppId,
    pub room: RoomKey,
    /// Start of its 10-second bucket.
    pub bucket: UnixSecs,
    pub video_ms: f64,
    pub video_frozen_ms: f64,
    pub audio_ms: f64,
    pub audio_frozen_ms: f64,
    pub rtt_samples: u64,
    pub rtt_slow: u64,
}

/// Quality rollups are kept per 10 seconds for a day, then per hour.
pub const QUALITY_ROLLUP_SECS: i64 = 10;

/// The quality dashboards' figures over one bucket of time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QualityBucket {
    pub start: UnixSecs,
    pub video_ms: f64,
    pub video_frozen_ms: f64,
    pub audio_ms: f64,
    pub audio_frozen_ms: f64,
    pub rtt_samples: u64,
    pub rtt_slow: u64,
    pub attempts: u64,
    pub joined: u64,
    pub joined_in_5s: u64,
}

/// An event callback to queue (its body's `EventInfo` already serialized).
#[derive(Debug, Clone, PartialEq)]
pub struct NewCallback {
    pub app: SdkAppId,
    /// TRTC's `EventGroupId` (1 room, 2 media, 3 recording, …).
    pub group: u16,
    pub event_type: u16,
    /// Deliveries with the same app and key go out in order (`room:<room>` for a room's room
    /// and media events, `task:<id>` for a task's).
    pub order_key: String,
    pub info_json: String,
    /// When the event happened (Unix ms).
    pub created_ms: i64,
}

/// A queued event callback.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedCallback {
    pub id: i64,
    pub cb: NewCallback,
    pub attempts: u32,
    /// Not to be tried before this (Unix ms).
    pub next_ms: i64,
}
