//! Configuration: one serde tree with defaults, read from an optional TOML file, then
//! overridden by `HEARTH_*` environment variables, then validated. See `hearth.sample.toml`.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub media: MediaConfig,
    #[serde(default)]
    pub calls: CallsConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub turn: TurnConfig,
    #[serde(default)]
    pub console: ConsoleConfig,
    #[serde(default)]
    pub ai: AiConfig,
    #[serde(default)]
    pub outbound: OutboundConfig,
    #[serde(default)]
    pub callbacks: CallbacksConfig,
    #[serde(default)]
    pub apps: Vec<AppConfig>,
    #[serde(default)]
    pub credentials: Vec<CredentialConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// API, client signaling and web pages over plain HTTP.
    pub http: SocketAddr,
    /// Optional HTTPS listener (needs `tls_cert` and `tls_key`).
    pub https: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Where the store lives; created on first start.
    pub data_dir: PathBuf,
    /// Per-SecretId API rate limits of the spec; turn off only for benchmarks.
    pub rate_limits: bool,
    /// Calls, events and samples older than this are deleted.
    pub retention_days: u32,
    /// Log format: "text" or "json".
    pub log_format: String,
    /// The demo page and browser SDK (`index.html`, `sdk/`), served as plain files.
    pub web_dir: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            http: "127.0.0.1:8080".parse().expect("valid literal"),
            https: None,
            tls_cert: None,
            tls_key: None,
            data_dir: PathBuf::from("./hearth-data"),
            rate_limits: true,
            retention_days: 14,
            log_format: "text".into(),
            web_dir: PathBuf::from("web"),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Address media binds to (and announces in ICE candidates unless `announce` says).
    pub ip: String,
    /// Addresses announced in ICE candidates instead of `ip`: a public address behind 1:1
    /// NAT (bind the private one), or several (public and private, IPv4 and IPv6).
    pub announce: Vec<String>,
    /// ICE over TCP: each worker also takes TCP at its port (passive candidates, RFC 6544),
    /// for clients whose UDP is blocked.
    pub ice_tcp: bool,
    /// UDP ports media may use, `first-last`; worker `i` uses `first + i`.
    pub ports: String,
    /// Media worker threads (each owns whole rooms); 0 = one per CPU core.
    pub workers: usize,
    /// The `hearth-media` executable of media tasks; default: next to `hearth`.
    pub worker_bin: Option<PathBuf>,
    /// Sessions (WHIP, WHEP, protocol clients) a media worker takes; joins beyond are refused
    /// (503 with Retry-After, protocol error 503). 0: no limit.
    pub capacity_per_worker: usize,
    /// CPU cores media tasks (recordings, …) may use together; 0 = 80 % of the cores.
    pub cpu_budget: f64,
    /// A media task told to stop must finish its files within this many seconds.
    pub eos_timeout_secs: u64,
    /// Length of HLS segments of recordings.
    pub hls_segment_secs: u64,
    /// Failed uploads of an ended task are retried this long, then kept on local disk.
    pub upload_grace_secs: u64,
    /// The largest picture a stream ingest publishes, `WIDTHxHEIGHT` (a bigger source is scaled
    /// down with its aspect kept).
    pub ingest_max_size: String,
    /// A live ingest source that drops is reconnected this long before the task ends.
    pub ingest_live_retry_secs: u64,
    /// Baseline H.264 ingest sources are published as they came (only the small layer is
    /// encoded); off: every source is encoded as VP8 (for rooms with viewers that lack H.264).
    pub ingest_passthrough: bool,
}

/// Where Hearth may fetch from and push to, beyond public addresses.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConfig {
    /// CIDRs or host names that are reachable although loopback, private or link-local.
    pub allow: Vec<String>,
}

impl MediaConfig {
    /// The addresses to announce in ICE candidates (empty: the bound one).
    pub fn announced(&self) -> Result<Vec<std::net::IpAddr>> {
        self.announce
            .iter()
            .map(|a| {
                a.parse::<std::net::IpAddr>()
                    .with_context(|| format!("media.announce {a:?}"))
            })
            .collect()
    }

    /// `media.ingest_max_size` as (width, height).
    pub fn ingest_max_size(&self) -> Result<(u32, u32)> {
        let parsed = self
            .ingest_max_size
            .split_once(['x', 'X'])
            .and_then(|(w, h)| Some((w.trim().parse::<u32>().ok()?, h.trim().parse::<u32>().ok()?)))
            .filter(|(w, h)| (16..=3840).contains(w) && (16..=2160).contains(h));
        parsed.ok_or_else(|| {
            anyhow::anyhow!(
                "media.ingest_max_size must be WIDTHxHEIGHT within 16x16 and 3840x2160; got {:?}",
                self.ingest_max_size
            )
        })
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            ip: "127.0.0.1".into(),
            announce: Vec::new(),
            ice_tcp: true,
            ports: "50000-50100".into(),
            workers: 0,
            capacity_per_worker: 0,
            worker_bin: None,
            cpu_budget: 0.0,
            eos_timeout_secs: 30,
            hls_segment_secs: 10,
            upload_grace_secs: 300,
            ingest_max_size: "1280x720".into(),
            ingest_live_retry_secs: 30,
            ingest_passthrough: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppConfig {
    pub sdk_app_id: u32,
    /// The application's UserSig key.
    pub secret_key: String,
    /// Identifiers allowed to call the IM-style REST APIs.
    #[serde(default)]
    pub admins: Vec<String>,
    /// Clients must present a PrivateMapKey granting the room and what they do in it.
    #[serde(default)]
    pub require_private_map_key: bool,
    /// Event callbacks to the app's server (changes apply without a restart).
    #[serde(default)]
    pub callbacks: Option<AppCallbacksConfig>,
}

/// An app's event callbacks: the key of `Sign` and a URL per event group it listens to.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AppCallbacksConfig {
    /// Up to 32 letters and digits, as TRTC's console takes; empty: no `Sign` header.
    #[serde(default)]
    pub key: String,
    /// Rooms created and dismissed, users entering, leaving, switching roles (101–105).
    pub room: Option<String>,
    /// Video, audio and substream starting and stopping (201–206).
    pub media: Option<String>,
    /// Cloud recording (301–…).
    pub recording: Option<String>,
    /// AI transcription (1401, 1402).
    pub transcription: Option<String>,
    /// Relay, ingest and AI conversation tasks' state (Hearth's group 100).
    pub tasks: Option<String>,
    /// TUICallKit's call-status callbacks (a call started, a call ended).
    pub calls: Option<String>,
}

/// How event callbacks are delivered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallbacksConfig {
    /// A callback not delivered this long after its event is abandoned (counted).
    pub retry_horizon_secs: u64,
    /// The longest wait between two attempts.
    pub max_backoff_secs: u64,
    /// Requests in flight at most, over all apps.
    pub concurrency: usize,
    /// Requests in flight at most for one app (a slow receiver holds up only its own app).
    pub per_app_concurrency: usize,
}

impl Default for CallbacksConfig {
    fn default() -> Self {
        CallbacksConfig {
            retry_horizon_secs: 6 * 3600,
            max_backoff_secs: 60,
            concurrency: 32,
            per_app_concurrency: 4,
        }
    }
}

impl CallbacksConfig {
    pub fn settings(&self) -> hearth_callbacks::Settings {
        hearth_callbacks::Settings {
            horizon: Duration::from_secs(self.retry_horizon_secs),
            max_backoff: Duration::from_secs(self.max_backoff_secs.max(1)),
            concurrency: self.concurrency.max(1),
            per_app: self.per_app_concurrency.max(1),
            timeout: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// Every app's callbacks, as the directory holds them.
    pub fn callback_directory(
        &self,
    ) -> std::collections::HashMap<hearth_types::SdkAppId, hearth_callbacks::AppCallbacks> {
        use hearth_callbacks::Group;
        self.apps
            .iter()
            .filter_map(|a| {
                let c = a.callbacks.as_ref()?;
                let urls = [
                    (Group::Room, &c.room),
                    (Group::Media, &c.media),
                    (Group::Recording, &c.recording),
                    (Group::Transcription, &c.transcription),
                    (Group::Tasks, &c.tasks),
                    (Group::Calls, &c.calls),
                ]
                .into_iter()
                .filter_map(|(g, u)| Some((g, u.clone()?)))
                .collect();
                let cb = hearth_callbacks::AppCallbacks {
                    key: c.key.clone(),
                    urls,
                };
                Some((hearth_types::SdkAppId(a.sdk_app_id), cb))
            })
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallsConfig {
    /// How long an invitation rings when the caller does not say.
    pub ring_timeout_secs: u64,
    /// How long a party whose calling socket dropped may log in again and stay in the call.
    pub reconnect_grace_secs: u64,
    /// How long a party of a connected call may take to enter the call's room before they
    /// leave the call.
    pub enter_timeout_secs: u64,
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig {
            ring_timeout_secs: 30,
            reconnect_grace_secs: 10,
            enter_timeout_secs: 30,
        }
    }
}

/// Limits at the client edge (`docs/protocol.md`, Limits); 0 turns one off. They apply
/// whatever `server.rate_limits` says, which governs the server APIs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Messages one WebSocket may send per second, on average.
    pub ws_messages_per_sec: u32,
    /// Messages one WebSocket may send at once after a quiet time.
    pub ws_message_burst: u32,
    /// Bytes one WebSocket may send per second.
    pub ws_bytes_per_sec: u32,
    /// WebSocket protocol sockets one user may hold open.
    pub ws_sockets_per_user: u32,
    /// WebSocket protocol sockets one application may hold open.
    pub ws_sockets_per_app: u32,
    /// Media sessions (WHIP, WHEP, protocol clients) one user may hold.
    pub sessions_per_user: u32,
    /// Media sessions one application may hold.
    pub sessions_per_app: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let d = hearth_signal::EdgeLimits::default();
        LimitsConfig {
            ws_messages_per_sec: d.messages_per_sec,
            ws_message_burst: d.message_burst,
            ws_bytes_per_sec: d.bytes_per_sec,
            ws_sockets_per_user: d.sockets_per_user,
            ws_sockets_per_app: d.sockets_per_app,
            sessions_per_user: 32,
            sessions_per_app: 20_000,
        }
    }
}

/// TURN servers clients are told of, with short-lived credentials (`docs/sfu.md`, TURN).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TurnConfig {
    /// `turn:`/`turns:` URLs; none: clients are told of no TURN server.
    pub urls: Vec<String>,
    /// The secret shared with the TURN server (coturn's `static-auth-secret`).
    pub secret: String,
    /// How long a handed-out credential is valid.
    pub ttl_secs: u32,
}

impl Default for TurnConfig {
    fn default() -> Self {
        TurnConfig {
            urls: Vec::new(),
            secret: String::new(),
            ttl_secs: 86_400,
        }
    }
}

impl TurnConfig {
    pub fn servers(&self) -> Option<hearth_signal::TurnServers> {
        (!self.urls.is_empty()).then(|| hearth_signal::TurnServers {
            urls: self.urls.clone(),
            secret: self.secret.clone(),
            ttl_secs: self.ttl_secs,
        })
    }

    fn check(&self) -> Result<()> {
        if self.urls.is_empty() {
            return Ok(());
        }
        if self.secret.len() < 16 {
            bail!("turn.secret must be at least 16 characters when turn.urls are set");
        }
        if !(1..=7 * 86_400).contains(&self.ttl_secs) {
            bail!("turn.ttl_secs must be 1 to 604800");
        }
        for u in &self.urls {
            let scheme_ok = u.starts_with("turn:") || u.starts_with("turns:");
            if !scheme_ok || u.contains(['<', '>', '"', ' ']) {
                bail!("turn.urls: {u:?} is not a turn: or turns: URL");
            }
        }
        Ok(())
    }
}

impl LimitsConfig {
    pub fn edge(&self) -> hearth_signal::EdgeLimits {
        hearth_signal::EdgeLimits {
            messages_per_sec: self.ws_messages_per_sec,
            message_burst: self.ws_message_burst,
            bytes_per_sec: self.ws_bytes_per_sec,
            sockets_per_user: self.ws_sockets_per_user,
            sockets_per_app: self.ws_sockets_per_app,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AiConfig {
    /// The Python interpreter that runs the AI bots' engines (it needs the `pocketsphinx`
    /// package, and `piper-tts` or `faster-whisper` for those; `scripts/setup.sh` makes a venv).
    pub stt_python: String,
    /// The speech-to-text engine of tasks that name none: `pocketsphinx`, `whisper`, or
    /// `openai` (the endpoint below).
    pub stt_engine: String,
    /// An OpenAI-compatible transcription endpoint (`…/v1/audio/transcriptions`) for
    /// `stt_engine` openai, with its key and model.
    pub stt_url: String,
    pub stt_key: String,
    pub stt_model: String,
}

impl Default for AiConfig {
    fn default() -> Self {
        AiConfig {
            stt_python: "python3".into(),
            stt_engine: "pocketsphinx".into(),
            stt_url: String::new(),
            stt_key: String::new(),
            stt_model: "whisper-1".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// How long a console sign-in lasts (then the operator signs in again).
    pub session_secs: u64,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            session_secs: 8 * 3600,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialConfig {
    pub secret_id: String,
    pub secret_key: String,
    /// SdkAppIds this key may act on.
    pub apps: Vec<u32>,
}

impl Config {
    /// Defaults, then the file (if any), then the environment; validated.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => Config::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// `HEARTH_HTTP`, `HEARTH_HTTPS`, `HEARTH_TLS_CERT`, `HEARTH_TLS_KEY`, `HEARTH_DATA_DIR`,
    /// `HEARTH_RATE_LIMITS`, `HEARTH_RETENTION_DAYS`, `HEARTH_LOG_FORMAT`, `HEARTH_WEB_DIR`, `HEARTH_MEDIA_IP`,
    /// `HEARTH_MEDIA_PORTS`, `HEARTH_MEDIA_WORKERS`, `HEARTH_CALLS_RING_TIMEOUT_SECS`,
    /// `HEARTH_CALLS_RECONNECT_GRACE_SECS`, `HEARTH_CONSOLE_SESSION_SECS`, `HEARTH_AI_STT_PYTHON`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<()> {
        /// A comma-separated list, blanks dropped.
        fn list(v: &str) -> Vec<String> {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        }
        fn parse<T: std::str::FromStr>(key: &str, v: String) -> Result<T>
        where
            T::Err: std::fmt::Display,
        {
            v.parse().map_err(|e| anyhow::anyhow!("{key}={v}: {e}"))
        }
        let s = &mut self.server;
        if let Some(v) = get("HEARTH_HTTP") {
            s.http = parse("HEARTH_HTTP", v)?;
        }
        if let Some(v) = get("HEARTH_HTTPS") {
            s.https = Some(parse("HEARTH_HTTPS", v)?);
        }
        if let Some(v) = get("HEARTH_TLS_CERT") {
            s.tls_cert = Some(v.into());
        }
        if let Some(v) = get("HEARTH_TLS_KEY") {
            s.tls_key = Some(v.into());
        }
        if let Some(v) = get("HEARTH_DATA_DIR") {
            s.data_dir = v.into();
        }
        if let Some(v) = get("HEARTH_RATE_LIMITS") {
            s.rate_limits = parse("HEARTH_RATE_LIMITS", v)?;
        }
        if let Some(v) = get("HEARTH_RETENTION_DAYS") {
            s.retention_days = parse("HEARTH_RETENTION_DAYS", v)?;
        }
        if let Some(v) = get("HEARTH_WEB_DIR") {
            s.web_dir = v.into();
        }
        if let Some(v) = get("HEARTH_LOG_FORMAT") {
            s.log_format = v;
        }
        if let Some(v) = get("HEARTH_MEDIA_IP") {
            self.media.ip = v;
        }
        if let Some(v) = get("HEARTH_MEDIA_ANNOUNCE") {
            self.media.announce = list(&v);
        }
        if let Some(v) = get("HEARTH_MEDIA_ICE_TCP") {
            self.media.ice_tcp = parse("HEARTH_MEDIA_ICE_TCP", v)?;
        }
        if let Some(v) = get("HEARTH_MEDIA_PORTS") {
            self.media.ports = v;
        }
        if let Some(v) = get("HEARTH_MEDIA_WORKERS") {
            self.media.workers = parse("HEARTH_MEDIA_WORKERS", v)?;
        }
        if let Some(v) = get("HEARTH_MEDIA_CAPACITY_PER_WORKER") {
            self.media.capacity_per_worker = parse("HEARTH_MEDIA_CAPACITY_PER_WORKER", v)?;
        }
        if let Some(v) = get("HEARTH_MEDIA_WORKER_BIN") {
            self.media.worker_bin = Some(v.into());
        }
        if let Some(v) = get("HEARTH_MEDIA_CPU_BUDGET") {
            self.media.cpu_budget = parse("HEARTH_MEDIA_CPU_BUDGET", v)?;
        }
        if let Some(v) = get("HEARTH_MEDIA_EOS_TIMEOUT_SECS") {
            self.media.eos_timeout_secs = parse("HEARTH_MEDIA_EOS_TIMEOUT_SECS", v)?;
        }
        if let Some(v) = get("HEARTH_MEDIA_HLS_SEGMENT_SECS") {
            self.media.hls_segment_secs = parse("HEARTH_MEDIA_HLS_SEGMENT_SECS", v)?;
        }
        if let Some(v) = get("HEARTH_MEDIA_UPLOAD_GRACE_SECS") {
            self.media.upload_grace_secs = parse("HEARTH_MEDIA_UPLOAD_GRACE_SECS", v)?;
        }
        if let Some(v) = get("HEARTH_MEDIA_INGEST_MAX_SIZE") {
            self.media.ingest_max_size = v;
        }
        if let Some(v) = get("HEARTH_MEDIA_INGEST_LIVE_RETRY_SECS") {
            self.media.ingest_live_retry_secs = parse("HEARTH_MEDIA_INGEST_LIVE_RETRY_SECS", v)?;
        }
        if let Some(v) = get("HEARTH_MEDIA_INGEST_PASSTHROUGH") {
            self.media.ingest_passthrough = parse("HEARTH_MEDIA_INGEST_PASSTHROUGH", v)?;
        }
        if let Some(v) = get("HEARTH_OUTBOUND_ALLOW") {
            self.outbound.allow = list(&v);
        }
        if let Some(v) = get("HEARTH_CALLS_RING_TIMEOUT_SECS") {
            self.calls.ring_timeout_secs = parse("HEARTH_CALLS_RING_TIMEOUT_SECS", v)?;
        }
        if let Some(v) = get("HEARTH_CALLS_RECONNECT_GRACE_SECS") {
            self.calls.reconnect_grace_secs = parse("HEARTH_CALLS_RECONNECT_GRACE_SECS", v)?;
        }
        if let Some(v) = get("HEARTH_TURN_URLS") {
            self.turn.urls = list(&v);
        }
        if let Some(v) = get("HEARTH_TURN_SECRET") {
            self.turn.secret = v;
        }
        if let Some(v) = get("HEARTH_TURN_TTL_SECS") {
            self.turn.ttl_secs = parse("HEARTH_TURN_TTL_SECS", v)?;
        }
        if let Some(v) = get("HEARTH_CALLS_ENTER_TIMEOUT_SECS") {
            self.calls.enter_timeout_secs = parse("HEARTH_CALLS_ENTER_TIMEOUT_SECS", v)?;
        }
        let l = &mut self.limits;
        for (name, slot) in [
            (
                "HEARTH_LIMITS_WS_MESSAGES_PER_SEC",
                &mut l.ws_messages_per_sec,
            ),
            ("HEARTH_LIMITS_WS_MESSAGE_BURST", &mut l.ws_message_burst),
            ("HEARTH_LIMITS_WS_BYTES_PER_SEC", &mut l.ws_bytes_per_sec),
            (
                "HEARTH_LIMITS_WS_SOCKETS_PER_USER",
                &mut l.ws_sockets_per_user,
            ),
            (
                "HEARTH_LIMITS_WS_SOCKETS_PER_APP",
                &mut l.ws_sockets_per_app,
            ),
            ("HEARTH_LIMITS_SESSIONS_PER_USER", &mut l.sessions_per_user),
            ("HEARTH_LIMITS_SESSIONS_PER_APP", &mut l.sessions_per_app),
        ] {
            if let Some(v) = get(name) {
                *slot = parse(name, v)?;
            }
        }
        if let Some(v) = get("HEARTH_AI_STT_PYTHON") {
            self.ai.stt_python = v;
        }
        if let Some(v) = get("HEARTH_AI_STT_ENGINE") {
            self.ai.stt_engine = v;
        }
        if let Some(v) = get("HEARTH_AI_STT_URL") {
            self.ai.stt_url = v;
        }
        if let Some(v) = get("HEARTH_AI_STT_KEY") {
            self.ai.stt_key = v;
        }
        if let Some(v) = get("HEARTH_AI_STT_MODEL") {
            self.ai.stt_model = v;
        }
        if let Some(v) = get("HEARTH_CONSOLE_SESSION_SECS") {
            self.console.session_secs = parse("HEARTH_CONSOLE_SESSION_SECS", v)?;
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<()> {
        for a in &self.apps {
            let Some(c) = &a.callbacks else { continue };
            if c.key.len() > 32 || !c.key.chars().all(|ch| ch.is_ascii_alphanumeric()) {
                anyhow::bail!(
                    "apps.callbacks.key of {}: up to 32 letters and digits",
                    a.sdk_app_id
                );
            }
            for url in [
                &c.room,
                &c.media,
                &c.recording,
                &c.transcription,
                &c.tasks,
                &c.calls,
            ]
            .into_iter()
            .flatten()
            {
                if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() > 2083
                {
                    anyhow::bail!(
                        "apps.callbacks of {}: {url:?} is not an http(s) URL of at most 2083 characters",
                        a.sdk_app_id
                    );
                }
            }
        }
        match self.ai.stt_engine.parse::<hearth_tasks::SttEngine>() {
            Ok(hearth_tasks::SttEngine::Openai)
                if !(self.ai.stt_url.starts_with("http://")
                    || self.ai.stt_url.starts_with("https://")) =>
            {
                anyhow::bail!("ai.stt_engine openai needs ai.stt_url, an http(s) URL of the transcription endpoint")
            }
            Ok(_) => {}
            Err(e) => anyhow::bail!("ai.stt_engine: {e}"),
        }
        let s = &self.server;
        if s.https.is_some() && (s.tls_cert.is_none() || s.tls_key.is_none()) {
            bail!("server.https needs server.tls_cert and server.tls_key");
        }
        if s.retention_days == 0 {
            bail!("server.retention_days must be at least 1");
        }
        if !matches!(s.log_format.as_str(), "text" | "json") {
            bail!("server.log_format must be \"text\" or \"json\"");
        }
        let (first, last) = self.media.port_range()?;
        if self.media.worker_count() > usize::from(last - first) + 1 {
            bail!(
                "media.ports {:?} has fewer ports than media.workers",
                self.media.ports
            );
        }
        let bound = self
            .media
            .ip
            .parse::<std::net::IpAddr>()
            .with_context(|| format!("media.ip {:?}", self.media.ip))?;
        let announced = self.media.announced()?;
        if announced.is_empty() && bound.is_unspecified() {
            bail!("media.ip {bound} binds every interface: say which addresses clients reach in media.announce");
        }
        if let Some(a) = announced.iter().find(|a| a.is_unspecified()) {
            bail!("media.announce: {a} is not an address clients can reach");
        }
        let m = &self.media;
        if !(m.cpu_budget >= 0.0 && m.cpu_budget.is_finite()) {
            bail!("media.cpu_budget must be a non-negative number of cores");
        }
        if !(5..=600).contains(&m.eos_timeout_secs) {
            bail!("media.eos_timeout_secs must be 5 to 600");
        }
        if !(1..=60).contains(&m.hls_segment_secs) {
            bail!("media.hls_segment_secs must be 1 to 60");
        }
        m.ingest_max_size()?;
        if !(1..=3600).contains(&m.ingest_live_retry_secs) {
            bail!("media.ingest_live_retry_secs must be 1 to 3600");
        }
        if m.upload_grace_secs > 86_400 {
            bail!("media.upload_grace_secs must be at most 86400");
        }
        hearth_outbound::Rules::new(&self.outbound.allow)
            .map_err(|e| anyhow::anyhow!("outbound.allow: {e}"))?;
        if !(1..=300).contains(&self.calls.ring_timeout_secs) {
            bail!("calls.ring_timeout_secs must be 1 to 300");
        }
        if !(1..=300).contains(&self.calls.reconnect_grace_secs) {
            bail!("calls.reconnect_grace_secs must be 1 to 300");
        }
        if !(1..=600).contains(&self.calls.enter_timeout_secs) {
            bail!("calls.enter_timeout_secs must be 1 to 600");
        }
        self.turn.check()?;
        if !(1..=30 * 86_400).contains(&self.console.session_secs) {
            bail!("console.session_secs must be 1 to 2592000 (30 days)");
        }
        let mut seen = std::collections::HashSet::new();
        for app in &self.apps {
            if !seen.insert(app.sdk_app_id) {
                bail!("apps: SdkAppId {} is listed twice", app.sdk_app_id);
            }
            if app.secret_key.len() < 16 {
                bail!(
                    "apps: the secret_key of {} is shorter than 16 characters",
                    app.sdk_app_id
                );
            }
        }
        let mut ids = std::collections::HashSet::new();
        for c in &self.credentials {
            if !ids.insert(&c.secret_id) {
                bail!("credentials: {} is listed twice", c.secret_id);
            }
            if c.secret_id.is_empty() || c.secret_key.is_empty() {
                bail!("credentials: secret_id and secret_key must not be empty");
            }
            if let Some(app) = c.apps.iter().find(|a| !seen.contains(a)) {
                bail!(
                    "credentials: {} names SdkAppId {app}, which is not in [[apps]]",
                    c.secret_id
                );
            }
        }
        if !self.credentials.is_empty() && self.apps.is_empty() {
            bail!("credentials are configured but no [[apps]]");
        }
        Ok(())
    }
}

impl MediaConfig {
    /// Workers to run: the configured number, or one per CPU core.
    /// Cores media tasks may use: the configured budget, or 80 % of the machine.
    pub fn task_budget(&self) -> f64 {
        if self.cpu_budget > 0.0 {
            self.cpu_budget
        } else {
            0.8 * std::thread::available_parallelism().map_or(1, |n| n.get()) as f64
        }
    }

    /// The media task worker: configured, or `hearth-media` next to this executable.
    pub fn worker_bin(&self) -> PathBuf {
        self.worker_bin.clone().unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(|d| d.join("hearth-media")))
                .unwrap_or_else(|| PathBuf::from("hearth-media"))
        })
    }

    pub fn worker_count(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    pub fn port_range(&self) -> Result<(u16, u16)> {
        let (a, b) = self
            .ports
            .split_once('-')
            .with_context(|| format!("media.ports {:?} must be first-last", self.ports))?;
        let (a, b): (u16, u16) = (a.trim().parse()?, b.trim().parse()?);
        if a == 0 || a > b {
            bail!("media.ports {:?}: need 1 <= first <= last", self.ports);
        }
        Ok((a, b))
    }
}

/// Shows a secret as its first four characters and its length.
pub fn mask(secret: &str) -> String {
    let head: String = secret.chars().take(4).collect();
    format!("{head}…({} chars)", secret.chars().count())
}

impl AiConfig {
    /// The server's transcription endpoint, when its engine is `openai`.
    pub fn stt_endpoint(&self) -> Option<hearth_tasks::Endpoint> {
        (self.stt_engine.eq_ignore_ascii_case("openai")).then(|| hearth_tasks::Endpoint {
            url: self.stt_url.clone(),
            key: self.stt_key.clone(),
            model: self.stt_model.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE_FORM: &str = r#"
[server]
http = "127.0.0.1:8080"
https = "127.0.0.1:8443"
tls_cert = "cert.pem"
tls_key = "key.pem"
data_dir = "/var/lib/hearth"

[media]
ip = "127.0.0.1"
ports = "50000-50100"

[[apps]]
sdk_app_id = 1400000001
secret_key = "0123456789abcdef0123456789abcdef"
admins = ["administrator"]

[[credentials]]
secret_id = "AKIDexample"
secret_key = "secret"
apps = [1400000001]
"#;

    #[test]
    fn calls_timeouts_come_from_file_or_env_and_are_bounded() {
        let mut c: Config = toml::from_str("[calls]\nring_timeout_secs = 45\n").unwrap();
        c.validate().unwrap();
        assert_eq!(
            (c.calls.ring_timeout_secs, c.calls.reconnect_grace_secs),
            (45, 10)
        );
        c.apply_env(|k| (k == "HEARTH_CALLS_RECONNECT_GRACE_SECS").then(|| "3".into()))
            .unwrap();
        assert_eq!(c.calls.reconnect_grace_secs, 3);
        c.calls.ring_timeout_secs = 0;
        assert!(c.validate().is_err());
        c.calls.ring_timeout_secs = 30;
        c.calls.reconnect_grace_secs = 301;
        assert!(c.validate().is_err());
    }

    #[test]
    fn accepts_the_documented_form() {
        let c: Config = toml::from_str(ISSUE_FORM).unwrap();
        c.validate().unwrap();
        assert_eq!(c.apps[0].admins, ["administrator"]);
        assert_eq!(c.media.port_range().unwrap(), (50000, 50100));
    }

    #[test]
    fn the_sample_file_is_valid() {
        let text = include_str!("../../../hearth.sample.toml");
        let c: Config = toml::from_str(text).unwrap();
        c.validate().unwrap();
    }

    #[test]
    fn rejects_unknown_keys_and_bad_references() {
        assert!(toml::from_str::<Config>("[server]\nhttp_port = 1").is_err());
        let mut c: Config = toml::from_str(ISSUE_FORM).unwrap();
        c.credentials[0].apps = vec![7];
        assert!(c.validate().is_err());
    }

    #[test]
    fn environment_overrides_the_file() {
        let mut c: Config = toml::from_str(ISSUE_FORM).unwrap();
        c.apply_env(|k| match k {
            "HEARTH_HTTP" => Some("0.0.0.0:9000".into()),
            "HEARTH_RATE_LIMITS" => Some("false".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.server.http.port(), 9000);
        assert!(!c.server.rate_limits);
        assert!(c
            .apply_env(|k| (k == "HEARTH_HTTP").then(|| "nope".into()))
            .is_err());
    }
}
