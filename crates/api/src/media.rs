//! The API's only way to media tasks (recording, relay, ingest and transcription): a handle
//! supplied by whoever runs them, so that the API knows nothing of processes or GStreamer.

use crate::error::ApiError;
use hearth_media_proto::layout::Layout;
use hearth_media_proto::{
    AudioEncode, Command, Conversation, Ingest, Recording, Relay, RelayUpdate, Subscriptions,
    Transcription, VideoEncode,
};
use hearth_types::{RoomKey, SdkAppId, UnixSecs};
use std::future::Future;
use std::pin::Pin;

pub type TaskFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, TaskError>> + Send + 'a>>;

/// Why a task operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskError {
    /// No such task of this application, it has ended, or its ResourceExpiredHour passed.
    NotFound,
    /// The machine's budget for media tasks is spent.
    Concurrency,
    /// Media tasks cannot run here (no worker binary, no GStreamer): the message says what.
    Unavailable(String),
    /// A parameter that only running the task could judge (storage credentials, a bucket, an
    /// image URL, the robot's entry).
    Invalid(String),
    /// The task could not be started or changed.
    Failed(String),
    /// A stream URL that is not allowed or could not be opened.
    StreamUrl(String),
    /// The same task is already running.
    Exists(String),
    /// The task existed and has ended.
    Finished,
    /// Something the spec allows that this server's engines do not do.
    NotAbility(String),
}

impl From<TaskError> for ApiError {
    fn from(e: TaskError) -> Self {
        match e {
            TaskError::NotFound => ApiError::TaskNotFound,
            TaskError::Concurrency => ApiError::RestrictedConcurrency,
            TaskError::Unavailable(m) | TaskError::Failed(m) => ApiError::FailedOperation(m),
            TaskError::Invalid(m) => ApiError::InvalidParameter(m),
            TaskError::StreamUrl(m) => ApiError::InvalidParameterOf {
                detail: "StreamUrl",
                message: m,
            },
            TaskError::Exists(m) => ApiError::TaskExist(m),
            TaskError::Finished => ApiError::TaskFinished,
            TaskError::NotAbility(m) => ApiError::NotAbility(m),
        }
    }
}

/// Where recording files go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Storage {
    /// CloudStorage: an S3-compatible store.
    S3 {
        /// `https://s3.<region>.amazonaws.com`, COS's S3 endpoint, or the SDK's EndpointUrl.
        endpoint: String,
        region: String,
        bucket: String,
        access_key: String,
        secret_key: String,
        /// FileNamePrefix elements; files go to `p1/p2/<TaskId>/<file>`.
        prefix: Vec<String>,
    },
    /// CloudVod: Hearth's own store, served over signed, expiring URLs.
    Vod {
        /// Seconds until the media expires; 0 = kept (subject to retention).
        expire_secs: u64,
        /// Custom file prefix (UserDefineRecordId).
        user_prefix: Option<String>,
    },
}

/// A recording to start.
#[derive(Debug, Clone)]
pub struct RecordingStart {
    pub app: SdkAppId,
    pub room: RoomKey,
    pub user_id: String,
    pub user_sig: String,
    pub private_map_key: Option<String>,
    /// Image fields of its layout hold URLs; the task fetches them.
    pub recording: Recording,
    pub storage: Storage,
    pub expire_hours: u64,
}

/// A relay to start (StartPublishCdnStream).
#[derive(Debug, Clone)]
pub struct RelayStart {
    pub app: SdkAppId,
    pub room: RoomKey,
    pub user_id: String,
    pub user_sig: String,
    /// Image fields of its layout and watermarks hold URLs; the task fetches them.
    pub relay: Relay,
    /// AudioEncode and VideoEncode as asked (updates may not change them).
    pub audio: Option<AudioEncode>,
    pub video_encode: Option<VideoEncode>,
}

/// What an UpdatePublishCdnStream request says about the task's shape, checked against how
/// it was started.
#[derive(Debug, Clone)]
pub struct RelayChange {
    pub sequence: u64,
    pub transcoding: bool,
    pub audio: Option<AudioEncode>,
    pub video_encode: Option<VideoEncode>,
    /// VideoParams was given (a task started audio-only cannot take video).
    pub video_params: bool,
    pub update: RelayUpdate,
}

/// A stream ingest to start (StartStreamIngest).
#[derive(Debug, Clone)]
pub struct IngestStart {
    pub app: SdkAppId,
    pub room: RoomKey,
    pub user_id: String,
    pub user_sig: String,
    pub private_map_key: Option<String>,
    /// Its URL is checked and opened by the task; the server fills in its limits.
    pub ingest: Ingest,
}

/// UpdateStreamIngest: each given part changes.
#[derive(Debug, Clone, Default)]
pub struct IngestChange {
    pub url: Option<String>,
    pub volume: Option<u32>,
    pub pause: Option<bool>,
}

/// A transcription to start (StartAITranscription).
#[derive(Debug, Clone)]
pub struct TranscriptionStart {
    pub app: SdkAppId,
    pub room: RoomKey,
    pub user_id: String,
    pub user_sig: String,
    pub session_id: Option<String>,
    /// The server fills in its engine.
    pub job: Transcription,
}

/// A conversation to start (StartAIConversation).
#[derive(Debug, Clone)]
pub struct ConversationStart {
    pub app: SdkAppId,
    pub room: RoomKey,
    pub user_id: String,
    pub user_sig: String,
    pub session_id: Option<String>,
    /// The server fills in its engine and outbound rules.
    pub job: Conversation,
}

/// The kinds of AI task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AiKind {
    Transcription,
    Conversation,
}

impl AiKind {
    pub fn name(self) -> &'static str {
        match self {
            AiKind::Transcription => "transcription",
            AiKind::Conversation => "conversation",
        }
    }
}

/// Which AI task a request means: by TaskId (among the caller's apps), or by SdkAppId and
/// SessionId.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AiTaskRef {
    Task(String),
    Session(SdkAppId, String),
}

/// DescribeAITranscription's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiTaskInfo {
    pub task_id: String,
    /// `InProgress`, or `Stopped` once it has ended (within the retention).
    pub status: &'static str,
    pub started: UnixSecs,
    pub session_id: Option<String>,
}

/// A file of a running recording (StorageFile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedFile {
    pub file_name: String,
    pub user_id: Option<String>,
    pub track_type: &'static str,
    pub begin_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingInfo {
    /// `Idle`, `InProgress` or `Exited`.
    pub status: &'static str,
    pub files: Vec<RecordedFile>,
}

/// Operations on media tasks.
pub trait MediaTasks: Send + Sync + 'static {
    /// Starts a recording; answers once the robot is in the room.
    fn create_recording(&self, req: RecordingStart) -> TaskFuture<'_, String>;
    fn describe_recording(&self, app: SdkAppId, task_id: String) -> TaskFuture<'_, RecordingInfo>;
    /// Replaces the layout and/or subscriptions of a running recording.
    fn modify_recording(
        &self,
        app: SdkAppId,
        task_id: String,
        layout: Option<Layout>,
        subscriptions: Option<Subscriptions>,
    ) -> TaskFuture<'_, ()>;
    /// Stops a recording (its files finish uploading afterwards).
    fn delete_recording(&self, app: SdkAppId, task_id: String) -> TaskFuture<'_, ()>;
    /// Starts a relay; answers once the robot is in the room.
    fn start_relay(&self, req: RelayStart) -> TaskFuture<'_, String>;
    fn update_relay(
        &self,
        app: SdkAppId,
        task_id: String,
        change: RelayChange,
    ) -> TaskFuture<'_, ()>;
    fn stop_relay(&self, app: SdkAppId, task_id: String) -> TaskFuture<'_, ()>;
    /// Starts an ingest; answers once its source plays and the robot is in the room.
    fn start_ingest(&self, req: IngestStart) -> TaskFuture<'_, String>;
    /// Whether the ingest runs (`NotFound` when it does not).
    fn describe_ingest(&self, app: SdkAppId, task_id: String) -> TaskFuture<'_, ()>;
    fn update_ingest(
        &self,
        app: SdkAppId,
        task_id: String,
        change: IngestChange,
    ) -> TaskFuture<'_, ()>;
    /// Stops an ingest (`Finished` for one that has ended, `NotFound` for one never started).
    fn stop_ingest(&self, app: SdkAppId, task_id: String) -> TaskFuture<'_, ()>;
    /// Starts a transcription; answers once the robot is in the room.
    fn start_transcription(&self, req: TranscriptionStart) -> TaskFuture<'_, String>;
    /// Starts a conversation; answers once the robot is in the room.
    fn start_conversation(&self, req: ConversationStart) -> TaskFuture<'_, String>;
    /// An AI task of `kind` of one of `apps`.
    fn describe_ai(
        &self,
        kind: AiKind,
        apps: Vec<SdkAppId>,
        task: AiTaskRef,
    ) -> TaskFuture<'_, AiTaskInfo>;
    /// Stops a running AI task of `kind` of one of `apps` (`NotFound` otherwise).
    fn stop_ai(&self, kind: AiKind, apps: Vec<SdkAppId>, task_id: String) -> TaskFuture<'_, ()>;
    /// Hands a running AI task of `kind` of one of `apps` a command (Update/Control).
    fn command_ai(
        &self,
        kind: AiKind,
        apps: Vec<SdkAppId>,
        task_id: String,
        command: Command,
    ) -> TaskFuture<'_, ()>;
}

/// Where no media tasks run (API tests, a server built without workers).
pub struct NoMediaTasks(pub String);

impl MediaTasks for NoMediaTasks {
    fn create_recording(&self, _: RecordingStart) -> TaskFuture<'_, String> {
        let m = self.0.clone();
        Box::pin(async move { Err(TaskError::Unavailable(m)) })
    }
    fn describe_recording(&self, _: SdkAppId, _: String) -> TaskFuture<'_, RecordingInfo> {
        Box::pin(async { Err(TaskError::NotFound) })
    }
    fn modify_recording(
        &self,
        _: SdkAppId,
        _: String,
        _: Option<Layout>,
        _: Option<Subscriptions>,
    ) -> TaskFuture<'_, ()> {
        Box::pin(async { Err(TaskError::NotFound) })
    }
    fn delete_recording(&self, _: SdkAppId, _: String) -> TaskFuture<'_, ()> {
        Box::pin(async { Err(TaskError::NotFound) })
    }
    fn start_relay(&self, _: RelayStart) -> TaskFuture<'_, String> {
        let m = self.0.clone();
        Box::pin(async move { Err(TaskError::Unavailable(m)) })
    }
    fn update_relay(&self, _: SdkAppId, _: String, _: RelayChange) -> TaskFuture<'_, ()> {
        Box::pin(async { Err(TaskError::NotFound) })
    }
    fn stop_relay(&self, _: SdkAppId, _: String) -> TaskFuture<'_, ()> {
        Box::pin(async { Err(TaskError::NotFound) })
    }
    fn start_ingest(&self, _: IngestStart) -> TaskFuture<'_, String> {
        let m = self.0.clone();
        Box::pin(async move { Err(TaskError::Unavailable(m)) })
    }
    fn describe_ingest(&self, _: SdkAppId, _: String) -> TaskFuture<'_, ()> {
        Box::pin(async { Err(TaskError::NotFound) })
    }
    fn update_ingest(&self, _: SdkAppId, _: String, _: IngestChange) -> TaskFuture<'_, ()> {
        Box::pin(async { Err(TaskError::NotFound) })
    }
    fn stop_ingest(&self, _: SdkAppId, _: String) -> TaskFuture<'_, ()> {
        Box::pin(async { Err(TaskError::NotFound) })
    }
    fn start_transcription(&self, _: TranscriptionStart) -> TaskFuture<'_, String> {
        let m = self.0.clone();
        Box::pin(async move { Err(TaskError::Unavailable(m)) })
    }
    fn start_conversation(&self, _: ConversationStart) -> TaskFuture<'_, String> {
        let m = self.0.clone();
        Box::pin(async move { Err(TaskError::Unavailable(m)) })
    }
    fn describe_ai(&self, _: AiKind, _: Vec<SdkAppId>, _: AiTaskRef) -> TaskFuture<'_, AiTaskInfo> {
        Box::pin(async { Err(TaskError::NotFound) })
    }
    fn stop_ai(&self, _: AiKind, _: Vec<SdkAppId>, _: String) -> TaskFuture<'_, ()> {
        Box::pin(async { Err(TaskError::NotFound) })
    }
    fn command_ai(&self, _: AiKind, _: Vec<SdkAppId>, _: String, _: Command) -> TaskFuture<'_, ()> {
        Box::pin(async { Err(TaskError::NotFound) })
    }
}
