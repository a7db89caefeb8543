//! What a media task is asked to do ([`TaskSpec`]), what may change while it runs
//! ([`Command`]) and what it reports ([`Event`]).

use crate::layout::Layout;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How the worker enters the room: as any client of Hearth's protocol.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Join {
    /// `ws://host:port/ws/v1`.
    pub ws_url: String,
    pub sdk_app_id: u32,
    pub room: RoomRef,
    pub user_id: String,
    pub user_sig: String,
    pub private_map_key: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum RoomRef {
    Num(u32),
    Str(String),
}

/// Separates a user from their room in a member id.
const MEMBER_SEP: char = '\u{1}';

impl RoomRef {
    /// A text key of the room (`n:1234`, `s:name`), part of member ids.
    pub fn key(&self) -> String {
        match self {
            RoomRef::Num(n) => format!("n:{n}"),
            RoomRef::Str(s) => format!("s:{s}"),
        }
    }

    pub fn from_key(k: &str) -> Option<RoomRef> {
        match k.split_once(':')? {
            ("n", n) => n.parse().ok().map(RoomRef::Num),
            ("s", s) => Some(RoomRef::Str(s.to_owned())),
            _ => None,
        }
    }
}

/// How a mix names a user of another room than its own (a PK mix): the user id and the room's
/// key, apart by a control character no user id contains. A plain user id is of the task's room.
pub fn member_id(user: &str, room: &RoomRef) -> String {
    format!("{user}{MEMBER_SEP}{}", room.key())
}

/// A member id's user and, for another room, that room's key.
pub fn split_member(id: &str) -> (&str, Option<&str>) {
    match id.split_once(MEMBER_SEP) {
        Some((u, r)) => (u, Some(r)),
        None => (id, None),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskSpec {
    pub task_id: String,
    pub join: Join,
    /// Where the worker writes its files; the supervisor uploads them from here.
    pub work_dir: PathBuf,
    /// A pipeline that makes no progress for this long is ended as frozen.
    pub eos_timeout_secs: u64,
    pub job: Job,
}

/// What the task does.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Job {
    /// CreateCloudRecording: files.
    Record(Recording),
    /// StartPublishCdnStream: a live stream to CDNs and back into rooms.
    Relay(Relay),
    /// StartStreamIngest: a URL published in the room.
    Ingest(Ingest),
    /// StartAITranscription: the room's speech as subtitles (custom messages).
    Transcribe(Transcription),
    /// StartAIConversation: a voice bot that answers one user through an LLM.
    Converse(Conversation),
}

/// RecordMode.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RecordMode {
    /// 1: one file set per user.
    Single,
    /// 2: one mixed picture and mixed audio.
    Mixed,
}

/// StreamType: what is recorded of each user.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StreamType {
    AudioVideo,
    Audio,
    Video,
}

impl StreamType {
    pub fn audio(self) -> bool {
        self != StreamType::Video
    }
    pub fn video(self) -> bool {
        self != StreamType::Audio
    }
}

/// Which video streams of a user: MediaId of RecordParams.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MediaSel {
    Both,
    Main,
    Sub,
}

impl MediaSel {
    pub fn main(self) -> bool {
        self != MediaSel::Sub
    }
    pub fn sub(self) -> bool {
        self != MediaSel::Main
    }
}

/// Which files are written (OutputFormat, or TencentVod.MediaType).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Outputs {
    pub hls: bool,
    pub mp4: bool,
    pub aac: bool,
}

/// When an upstream video stops: FillType.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Fill {
    LastFrame,
    Black,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct VideoEncode {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub bitrate_bps: u32,
    pub gop_secs: u32,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct AudioEncode {
    pub sample_rate: u32,
    pub channels: u32,
    pub bitrate_bps: u32,
}

/// A user filter of SubscribeStreamUserIds: names, or prefixes written `abc.*$`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct UserFilter {
    /// Non-empty: only these users.
    pub allow: Vec<String>,
    pub block: Vec<String>,
}

impl UserFilter {
    pub fn admits(&self, user: &str) -> bool {
        let hit = |list: &[String]| list.iter().any(|p| pattern_matches(p, user));
        (self.allow.is_empty() || hit(&self.allow)) && !hit(&self.block)
    }
}

/// TRTC's rule: a pattern ending in `.*$` names every user with that prefix, unless a user id
/// literally equals the pattern.
pub fn pattern_matches(pattern: &str, user: &str) -> bool {
    if pattern == user {
        return true;
    }
    match pattern.strip_suffix(".*$") {
        Some(prefix) => user.starts_with(prefix),
        None => false,
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Subscriptions {
    pub audio: UserFilter,
    pub video: UserFilter,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Recording {
    pub mode: RecordMode,
    pub stream_type: StreamType,
    pub media: MediaSel,
    pub outputs: Outputs,
    /// Single mode: audio and video in one file set.
    pub av_merge: bool,
    pub max_idle_secs: u64,
    /// MP4/AAC files are split at this length and at `max_file_bytes`.
    pub max_file_secs: u64,
    pub max_file_bytes: u64,
    /// HLS segment length.
    pub segment_secs: u64,
    pub video: VideoEncode,
    pub audio: AudioEncode,
    pub layout: Layout,
    pub subscriptions: Subscriptions,
    pub fill: Fill,
    /// SubscribeAbility 1: also record other bots.
    pub include_bots: bool,
}

/// A mix or relay pushed live (StartPublishCdnStream).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Relay {
    /// Ends when no anchor has been in the room this long.
    pub max_idle_secs: u64,
    pub audio: Option<AudioEncode>,
    pub source: RelaySource,
    /// RTMP(S) URLs, each pushed on its own connection.
    pub cdn: Vec<String>,
    /// Rooms the output is published into, each by its own robot.
    pub feedback: Vec<Join>,
    pub sei: Sei,
}

/// What is pushed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum RelaySource {
    /// WithTranscoding 1: the room mixed into one picture and one sound.
    Mix(Mix),
    /// WithTranscoding 0: one user's stream; H.264 passes through, VP8/VP9 are transcoded to
    /// `video` (FLV carries H.264 only), Opus to AAC.
    Single {
        user: String,
        stream: crate::layout::Stream,
        video: Option<VideoEncode>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Mix {
    /// `None`: audio only.
    pub video: Option<VideoEncode>,
    pub layout: Layout,
    /// SubscribeAudioList / UnSubscribeAudioList.
    pub audio_users: UserFilter,
    /// SoundLevel of users in the allowlist: 0–100 % of their own volume (100 if absent).
    #[serde(default)]
    pub sound_levels: Vec<(String, u32)>,
    pub watermarks: Vec<Watermark>,
}

/// A watermark on the mixed picture (McuWaterMarkParams).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Watermark {
    Image {
        /// A URL as the API took it, a local file once fetched.
        image: String,
        x: u32,
        y: u32,
        width: u32,
        height: u32,
        zorder: u32,
    },
    Text {
        text: String,
        x: u32,
        y: u32,
        width: u32,
        height: u32,
        font_size: u32,
        /// 0xRRGGBB.
        color: u32,
        /// 0xRRGGBB; `None`: transparent.
        background: Option<u32>,
        zorder: u32,
    },
}

/// SEI added to the pushed H.264 (McuSeiParams).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Sei {
    pub layout_volume: Option<LayoutVolume>,
    pub pass_through: Option<PassThrough>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LayoutVolume {
    pub app_data: String,
    pub payload_type: u8,
    pub interval_ms: u64,
    pub follow_idr: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PassThrough {
    pub content: String,
    pub payload_type: u8,
    /// 16 bytes, for payload type 5 (user data unregistered).
    pub uuid: Option<[u8; 16]>,
    pub interval_ms: u64,
    pub follow_idr: bool,
}

/// The audio lists of a mix with the allowlist's sound levels.
pub type AudioUsers = (UserFilter, Vec<(String, u32)>);

/// What UpdatePublishCdnStream changes; each given part replaces the running one.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RelayUpdate {
    pub layout: Option<Layout>,
    /// The audio lists, with the allowlist's sound levels.
    pub audio_users: Option<AudioUsers>,
    pub watermarks: Option<Vec<Watermark>>,
    pub background: Option<(u32, Option<String>)>,
    pub single_user: Option<(String, crate::layout::Stream)>,
    pub cdn: Option<Vec<String>>,
    pub feedback: Option<Vec<Join>>,
    pub sei: Option<Sei>,
}

/// How often a healthy worker says so.
/// Stream ingest (StartStreamIngest): a robot that pulls a URL and publishes it in the room.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ingest {
    /// http(s), rtmp or srt; checked by the supervisor, and every fetch of the worker goes
    /// through the outbound rules again (redirects, HLS segments).
    pub url: String,
    /// Where the first play starts (files only).
    pub seek_secs: u64,
    /// Plays of a file: 1..=1000, or `None` for looping until stopped or `max_secs`.
    pub repeat: Option<u32>,
    /// With endless looping: the task ends after this long.
    pub max_secs: Option<u64>,
    /// 0..=100 (100: the source's level).
    pub volume: u32,
    /// The deprecated VideoEncodeParams: the output's size, rate, bitrate and GOP.
    pub video: Option<VideoEncode>,
    /// The deprecated AudioEncodeParams.
    pub audio: Option<AudioEncode>,
    /// The largest picture published (a bigger source is scaled down, keeping its aspect).
    pub max_width: u32,
    pub max_height: u32,
    /// A live source that drops is reconnected for this long before the task ends.
    pub live_retry_secs: u64,
    /// Baseline H.264 that fits may be published as it came (every viewer must take H.264).
    pub passthrough: bool,
    /// The operator's `outbound.allow` entries.
    pub outbound_allow: Vec<String>,
}

/// Real-time transcription (StartAITranscription): a robot that listens to the room (or one
/// user) and sends each speaker's partial and final text as custom messages with `CmdId` 1.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Transcription {
    /// `None`: every user who publishes audio (bots aside); `Some`: that user only.
    pub target: Option<String>,
    /// The language of the results (the engine's).
    pub language: String,
    /// Silence that ends a sentence, ms.
    pub vad_silence_ms: u32,
    /// Far-field voice suppression, 0–3 (how aggressive the voice detection is).
    pub vad_level: u8,
    /// Phrases recognition is restricted to (any sequence of them), from HotWordList; empty:
    /// open vocabulary.
    pub phrases: Vec<String>,
    /// The task ends after this long with nobody publishing audio.
    pub max_idle_secs: u64,
    /// The Python interpreter (with the engine's package) that runs the speech engine.
    pub stt_python: String,
    /// The speech engine; `None` until the supervisor puts in the server's default.
    pub engine: Option<SttEngine>,
    /// The transcription endpoint (`Openai`).
    pub endpoint: Option<Endpoint>,
    /// The operator's `outbound.allow` entries (the endpoint passes the address rules).
    pub outbound_allow: Vec<String>,
}

/// Which speech-to-text engine recognizes the words (voice detection is PocketSphinx's for all).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SttEngine {
    /// PocketSphinx 5 (its wheel's en-us model): streaming, cheap, English only.
    Pocketsphinx,
    /// faster-whisper with Whisper base: multilingual, more accurate, ~0.7 s of CPU a sentence.
    Whisper,
    /// An OpenAI-compatible `/v1/audio/transcriptions` endpoint, asked once per sentence.
    Openai,
}

impl std::str::FromStr for SttEngine {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        [
            SttEngine::Pocketsphinx,
            SttEngine::Whisper,
            SttEngine::Openai,
        ]
        .into_iter()
        .find(|e| e.name().eq_ignore_ascii_case(s.trim()))
        .ok_or_else(|| format!("{s:?} is not pocketsphinx, whisper or openai"))
    }
}

impl SttEngine {
    /// The engine's code for one of RecognizeConfig's languages, if it recognizes it.
    pub fn language(self, spec: &str) -> Option<&'static str> {
        const WHISPER: [(&str, &str); 19] = [
            ("zh", "zh"),
            ("zh-TW", "zh"),
            ("en", "en"),
            ("vi", "vi"),
            ("ja", "ja"),
            ("ko", "ko"),
            ("id", "id"),
            ("th", "th"),
            ("pt", "pt"),
            ("tr", "tr"),
            ("ar", "ar"),
            ("es", "es"),
            ("hi", "hi"),
            ("fr", "fr"),
            ("ms", "ms"),
            ("fil", "tl"),
            ("de", "de"),
            ("it", "it"),
            ("ru", "ru"),
        ];
        match self {
            SttEngine::Pocketsphinx => (spec == "en").then_some("en"),
            SttEngine::Whisper | SttEngine::Openai => WHISPER
                .iter()
                .find(|(s, _)| *s == spec)
                .map(|(_, code)| *code),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SttEngine::Pocketsphinx => "pocketsphinx",
            SttEngine::Whisper => "whisper",
            SttEngine::Openai => "openai",
        }
    }
}

/// A voice conversation (StartAIConversation): the robot listens to one user, sends each of
/// their sentences to an LLM, speaks the answer as its audio, and may be interrupted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Conversation {
    pub target: String,
    /// Spoken once the robot is in the room.
    pub welcome: Option<String>,
    /// 0: the user's speech stops the robot; 1: only a client's signal does.
    pub interrupt_mode: u8,
    /// How long the user must speak to interrupt (mode 0), ms.
    pub interrupt_speech_ms: u32,
    /// The speech engine's settings, as for transcription.
    pub stt: Transcription,
    pub llm: Llm,
    pub tts: Tts,
}

/// An OpenAI-compatible chat-completions endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Llm {
    pub url: String,
    pub key: String,
    pub model: String,
    pub streaming: bool,
    /// Earlier rounds sent with each request (0–50).
    pub history: u32,
    /// 1: history keeps only what the robot actually said (an interrupted answer is cut).
    pub history_mode: u8,
    /// The operator's `outbound.allow` entries (the URL passes the address rules).
    pub outbound_allow: Vec<String>,
}

/// The robot's voice (TTSConfig).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tts {
    pub engine: TtsEngine,
    /// The engine's voice: an espeak-ng or flite voice, or the endpoint's voice name (piper
    /// speaks with the voice installed on the server).
    pub voice: String,
    /// 0.5–2.0; 1 is the voice's own pace.
    pub speed: f32,
    /// The speech endpoint (`Openai`).
    pub endpoint: Option<Endpoint>,
}

/// Which text-to-speech engine speaks.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TtsEngine {
    /// Debian's espeak-ng.
    Espeak,
    /// Debian's flite.
    Flite,
    /// Piper (PyPI `piper-tts` with a voice package) under the AI engines' Python.
    Piper,
    /// An OpenAI-compatible `/v1/audio/speech` endpoint.
    Openai,
}

/// An OpenAI-compatible HTTP endpoint a task uses; the URL passes the address rules, the key
/// goes in `Authorization` and is never logged.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct Endpoint {
    pub url: String,
    pub key: String,
    pub model: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &self.url)
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

pub const HEARTBEAT_SECS: u64 = 2;

/// Supervisor → worker, after the spec.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// ModifyCloudRecording: each given part replaces the running one in full.
    Update {
        layout: Option<Box<Layout>>,
        subscriptions: Option<Subscriptions>,
    },
    /// UpdatePublishCdnStream.
    UpdateRelay(Box<RelayUpdate>),
    /// UpdateStreamIngest: each given part changes.
    UpdateIngest {
        url: Option<String>,
        volume: Option<u32>,
        pause: Option<bool>,
    },
    /// UpdateAIConversation: each given part changes from the next use.
    UpdateConversation {
        welcome: Option<String>,
        interrupt_mode: Option<u8>,
        interrupt_speech_ms: Option<u32>,
        llm: Option<Llm>,
        tts: Option<Tts>,
    },
    /// ControlAIConversation ServerPushText: the robot says `text`.
    PushText {
        text: String,
        /// Stops what the robot is saying first.
        interrupt: bool,
        /// Ends the task once it has been said.
        stop_after_play: bool,
        /// Becomes part of the LLM's history.
        add_history: bool,
        /// Without `interrupt`: dropped while the robot is busy (DropMode 0) or queued (1).
        queue_if_busy: bool,
        /// Priority 1: the user (speech or the client's signal) cannot interrupt it.
        protected: bool,
        /// Played instead of speaking `text`: mono 16-bit PCM (16 kHz, or a WAV file's rate).
        audio: Option<Vec<u8>>,
        /// MetaInfo: a JSON object sent to the room with the text (type 10002).
        meta: Option<serde_json::Value>,
    },
    /// ControlAIConversation InvokeLLM: a round with this user text (header `X-Invoke-LLM: 1`).
    InvokeLlm { content: String, interrupt: bool },
    /// End the task: close every file, exit the room, exit.
    Stop,
}

/// What a file holds (StorageFile.TrackType).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TrackType {
    Audio,
    Video,
    AudioVideo,
}

impl TrackType {
    pub fn api_name(self) -> &'static str {
        match self {
            TrackType::Audio => "audio",
            TrackType::Video => "video",
            TrackType::AudioVideo => "audio_video",
        }
    }
}

/// Why a task ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// DeleteCloudRecording, StopPublishCdnStream.
    Stopped,
    /// No anchor for MaxIdleTime.
    Idle,
    /// The bot was removed or the room dismissed.
    Removed,
    /// Something broke (the message says what).
    Failed,
    /// An ingest's source played to its end (every repeat).
    SourceEnded,
    /// An ingest's source could not be opened, or a live source stayed away past the retry
    /// time (the message says why).
    SourceFailed,
}

/// Worker → supervisor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The bot is in the room.
    Joined,
    /// A file is being written (`path` relative to the work dir).
    FileOpened {
        path: String,
        user: Option<String>,
        track: TrackType,
        /// Unix ms of its first media.
        begin_ms: u64,
    },
    /// A file is complete and will not change again. `playlist`: the HLS playlist it belongs
    /// to (relative path), with the segment's duration.
    FileClosed {
        path: String,
        bytes: u64,
        duration_ms: u64,
        playlist: Option<String>,
    },
    /// A CDN push changed state: `connected` after its first media went out without error,
    /// else retrying after `message`.
    Push {
        url: String,
        connected: bool,
        message: Option<String>,
    },
    /// Bytes a relay has pushed to CDNs so far (all URLs together).
    Sent { bytes: u64 },
    /// Something went wrong that the task survives.
    Warning { message: String },
    /// Sent every [`HEARTBEAT_SECS`] while every pipeline makes progress; a worker that stops
    /// sending it is frozen and is killed by its supervisor.
    Alive,
    /// The last line a worker writes.
    Ended {
        reason: EndReason,
        message: Option<String>,
    },
}

impl Event {
    pub fn to_line(&self) -> String {
        let mut s = serde_json::to_string(self).expect("events serialize");
        s.push('\n');
        s
    }
}
