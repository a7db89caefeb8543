//! Media tasks (recording, relay, ingest, transcription): admission by CPU cost, one
//! `hearth-media` worker process per task started and supervised here, task state for the
//! API, and the files' way to storage. Knows nothing of GStreamer: a server without it still
//! runs, and media actions say what is missing.

mod ai;
mod callbacks;
mod dest;
mod images;
mod ingest;
mod s3;
mod task;
mod vod;

pub use hearth_media_proto::{Endpoint, SttEngine};
pub use vod::Vod;

use hearth_api::media::{
    AiKind, AiTaskInfo, AiTaskRef, ConversationStart, IngestChange, IngestStart, MediaTasks,
    RecordedFile, RecordingInfo, RecordingStart, RelayChange, RelayStart, TaskError, TaskFuture,
    TranscriptionStart,
};
use hearth_media_proto::layout::Layout;
use hearth_media_proto::{Command, RelayUpdate, Subscriptions};
use hearth_outbound::Rules;
use hearth_store::Store;
use hearth_types::SdkAppId;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How tasks run on this server.
#[derive(Clone, Debug)]
pub struct TasksConfig {
    /// The `hearth-media` executable.
    pub worker_bin: PathBuf,
    /// Where bots enter: `ws://<http address>/ws/v1`.
    pub ws_url: String,
    pub data_dir: PathBuf,
    /// CPU cores media tasks may use together; a task beyond it is refused.
    pub cpu_budget: f64,
    /// A worker that has not finished this long after being told to stop is killed.
    pub eos_timeout_secs: u64,
    /// HLS segment length.
    pub hls_segment_secs: u64,
    /// After a task ends, failed uploads are retried this long; then files stay on local disk.
    pub upload_grace_secs: u64,
    /// The largest picture an ingest publishes (width, height).
    pub ingest_max_size: (u32, u32),
    /// A live ingest source that drops is reconnected this long.
    pub ingest_live_retry_secs: u64,
    /// Baseline H.264 sources are published as they came.
    pub ingest_passthrough: bool,
    /// The operator's `outbound.allow` (ingest workers apply the rules to every fetch).
    pub outbound_allow: Vec<String>,
    /// The Python interpreter with PocketSphinx that runs transcription's speech engine.
    pub stt_python: String,
    /// The speech engine of tasks that name none.
    pub stt_engine: SttEngine,
    /// The transcription endpoint of `stt_engine` openai.
    pub stt_endpoint: Option<hearth_media_proto::Endpoint>,
}

/// A task the API can see.
pub(crate) struct Entry {
    pub status: &'static str,
    pub files: Vec<RecordedFile>,
    pub cmds: mpsc::UnboundedSender<Command>,
    pub expires: Instant,
    pub cost: f64,
    /// `recording` or `relay`: the actions of one kind do not see the other's tasks.
    pub kind: &'static str,
    pub relay: Option<RelayShape>,
    /// A relay's CDN pushes: URL → (connected, last error).
    pub pushes: HashMap<String, (bool, Option<String>)>,
    pub room: hearth_types::RoomKey,
    /// The robot's UserId.
    pub user_id: String,
    /// What de-duplicates AI tasks.
    pub ai: AiTags,
    pub started: hearth_types::UnixSecs,
}

/// An AI task's SessionId and the one user it listens to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AiTags {
    pub session_id: Option<String>,
    pub target: Option<String>,
}

/// What a relay was started as: what its updates may not change.
#[derive(Debug, Clone)]
pub(crate) struct RelayShape {
    pub transcoding: bool,
    pub video: bool,
    pub audio: Option<hearth_media_proto::AudioEncode>,
    pub video_codec_fixed: Option<hearth_media_proto::VideoEncode>,
    /// The last SequenceNumber taken.
    pub sequence: Option<u64>,
}

#[derive(Default)]
pub(crate) struct Table {
    pub tasks: HashMap<(u32, String), Entry>,
    pub used: f64,
}

/// Counts for `/metrics`.
#[derive(Default, Debug, Clone)]
pub struct TaskCounts {
    /// By task kind (`recording`, `relay`).
    pub by_kind: std::collections::BTreeMap<&'static str, StateCounts>,
    pub uploads_failed: u64,
    pub files_left_local: u64,
    /// CDN pushes that failed or dropped (each retried).
    pub push_failures: u64,
}

/// Tasks of one kind: running now; ended or refused since start.
#[derive(Default, Debug, Clone, Copy)]
pub struct StateCounts {
    pub running: u64,
    pub finished: u64,
    pub failed: u64,
    pub refused: u64,
}

pub(crate) struct Shared {
    pub cfg: TasksConfig,
    pub table: Mutex<Table>,
    pub store: Arc<dyn Store>,
    pub rules: Rules,
    pub vod: Vod,
    /// Who listens to the task groups' event callbacks.
    pub callbacks: hearth_callbacks::Directory,
    /// `Err`: why media tasks cannot run here.
    pub available: Result<(), String>,
    pub counts: Mutex<TaskCounts>,
}

/// The media tasks of this server.
#[derive(Clone)]
pub struct Tasks {
    shared: Arc<Shared>,
}

impl Tasks {
    /// Checks the worker (`hearth-media --check`) once; without it media actions answer
    /// `FailedOperation` saying what is missing.
    pub async fn new(
        cfg: TasksConfig,
        rules: Rules,
        store: Arc<dyn Store>,
        callbacks: hearth_callbacks::Directory,
    ) -> anyhow::Result<Self> {
        let vod = Vod::open(&cfg.data_dir)?;
        std::fs::create_dir_all(cfg.data_dir.join("tasks"))?;
        let available = check_worker(&cfg.worker_bin).await;
        match &available {
            Ok(()) => {
                tracing::info!(worker = %cfg.worker_bin.display(), budget = cfg.cpu_budget, "media tasks available")
            }
            Err(why) => tracing::warn!(%why, "media tasks unavailable"),
        }
        Ok(Tasks {
            shared: Arc::new(Shared {
                cfg,
                table: Mutex::new(Table::default()),
                store,
                rules,
                vod,
                callbacks,
                available,
                counts: Mutex::new(TaskCounts::default()),
            }),
        })
    }

    pub fn vod(&self) -> &Vod {
        &self.shared.vod
    }

    pub fn counts(&self) -> TaskCounts {
        self.shared
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stops every task and waits (bounded) for their files to be finished.
    pub async fn shutdown(&self, wait: Duration) {
        let cmds: Vec<_> = {
            let t = self.shared.table.lock().unwrap_or_else(|p| p.into_inner());
            t.tasks.values().map(|e| e.cmds.clone()).collect()
        };
        for c in cmds {
            let _ = c.send(Command::Stop);
        }
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if self
                .shared
                .table
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .tasks
                .is_empty()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The live entry of a task of `kind` the caller may act on.
    fn with_entry<T>(
        &self,
        app: SdkAppId,
        id: &str,
        kind: &str,
        f: impl FnOnce(&mut Entry) -> T,
    ) -> Result<T, TaskError> {
        let mut t = self.shared.table.lock().unwrap_or_else(|p| p.into_inner());
        match t.tasks.get_mut(&(app.0, id.to_owned())) {
            Some(e) if e.expires > Instant::now() && e.kind == kind => Ok(f(e)),
            _ => Err(TaskError::NotFound),
        }
    }

    /// CDN pushes of running relays: (connected, retrying).
    pub fn push_counts(&self) -> (u64, u64) {
        let t = self.shared.table.lock().unwrap_or_else(|p| p.into_inner());
        let all = t.tasks.values().flat_map(|e| e.pushes.values());
        all.fold(
            (0, 0),
            |(c, r), (ok, _)| if *ok { (c + 1, r) } else { (c, r + 1) },
        )
    }
}

async fn check_worker(bin: &std::path::Path) -> Result<(), String> {
    if !bin.exists() {
        return Err(format!(
            "the media worker {} is not installed (build it with `cargo build -p hearth-media`, or set media.worker_bin)",
            bin.display()
        ));
    }
    let out = tokio::process::Command::new(bin)
        .arg("--check")
        .output()
        .await
        .map_err(|e| format!("the media worker {} cannot run: {e}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("the media worker cannot record: {text}"))
    }
}

impl MediaTasks for Tasks {
    fn create_recording(&self, req: RecordingStart) -> TaskFuture<'_, String> {
        Box::pin(task::create(self.shared.clone(), req))
    }

    fn describe_recording(&self, app: SdkAppId, task_id: String) -> TaskFuture<'_, RecordingInfo> {
        let r = self.with_entry(app, &task_id, "recording", |e| RecordingInfo {
            status: e.status,
            files: e.files.clone(),
        });
        Box::pin(async move { r })
    }

    fn modify_recording(
        &self,
        app: SdkAppId,
        task_id: String,
        layout: Option<Layout>,
        subscriptions: Option<Subscriptions>,
    ) -> TaskFuture<'_, ()> {
        let shared = self.shared.clone();
        let this = self.clone();
        Box::pin(async move {
            // Nothing is fetched (or written under the task's dir) for a task that is not there.
            this.with_entry(app, &task_id, "recording", |e| {
                if e.status == "Exited" {
                    Err(TaskError::NotFound)
                } else {
                    Ok(())
                }
            })??;
            let layout = match layout {
                Some(l) => {
                    let dir = shared.cfg.data_dir.join("tasks").join(&task_id);
                    Some(Box::new(
                        images::fetch_layout(&shared.rules, l, &dir).await?,
                    ))
                }
                None => None,
            };
            let cmd = Command::Update {
                layout,
                subscriptions,
            };
            this.with_entry(app, &task_id, "recording", |e| {
                if e.status == "Exited" {
                    Err(TaskError::NotFound)
                } else {
                    e.cmds
                        .send(cmd)
                        .map_err(|_| TaskError::Failed("the task is ending".into()))
                }
            })?
        })
    }

    fn delete_recording(&self, app: SdkAppId, task_id: String) -> TaskFuture<'_, ()> {
        let r = self.with_entry(app, &task_id, "recording", |e| {
            if e.status != "Exited" {
                e.status = "Exited";
                let _ = e.cmds.send(Command::Stop);
            }
        });
        Box::pin(async move { r })
    }

    fn start_relay(&self, req: RelayStart) -> TaskFuture<'_, String> {
        Box::pin(task::create_relay(self.shared.clone(), req))
    }

    fn update_relay(
        &self,
        app: SdkAppId,
        task_id: String,
        change: RelayChange,
    ) -> TaskFuture<'_, ()> {
        let shared = self.shared.clone();
        let this = self.clone();
        Box::pin(async move {
            // The shape first: nothing is fetched for an update that will be refused.
            this.with_entry(app, &task_id, "relay", |e| check_change(e, &change, true))??;
            let mut u: RelayUpdate = change.update.clone();
            for j in u.feedback.iter_mut().flatten() {
                j.ws_url = shared.cfg.ws_url.clone();
            }
            if let Some(urls) = &u.cdn {
                for url in urls {
                    task::check_cdn(&shared, url).await?;
                }
            }
            let dir = shared
                .cfg
                .data_dir
                .join("tasks")
                .join(&task_id)
                .join("images");
            if let Some(l) = u.layout.take() {
                u.layout = Some(images::fetch_layout(&shared.rules, l, &dir).await?);
            }
            if let Some(w) = u.watermarks.take() {
                u.watermarks = Some(images::fetch_watermarks(&shared.rules, w, &dir).await?);
            }
            if let Some((bg, Some(img))) = u.background.take() {
                let l = Layout {
                    background_image: Some(img),
                    ..Layout::default()
                };
                let l = images::fetch_layout(&shared.rules, l, &dir).await?;
                u.background = Some((bg, l.background_image));
            }
            this.with_entry(app, &task_id, "relay", |e| {
                check_change(e, &change, false)?;
                if let Some(shape) = e.relay.as_mut() {
                    shape.sequence = Some(change.sequence);
                }
                if let Some(urls) = &u.cdn {
                    e.pushes.retain(|k, _| urls.contains(k));
                }
                e.cmds
                    .send(Command::UpdateRelay(Box::new(u)))
                    .map_err(|_| TaskError::Failed("the task is ending".into()))
            })?
        })
    }

    fn start_ingest(&self, req: IngestStart) -> TaskFuture<'_, String> {
        Box::pin(ingest::create(self.shared.clone(), req))
    }

    fn describe_ingest(&self, app: SdkAppId, task_id: String) -> TaskFuture<'_, ()> {
        let this = self.clone();
        Box::pin(async move { this.ingest_entry(app, &task_id, |_| Ok(())).await })
    }

    fn update_ingest(
        &self,
        app: SdkAppId,
        task_id: String,
        change: IngestChange,
    ) -> TaskFuture<'_, ()> {
        let this = self.clone();
        Box::pin(async move { this.update_ingest_task(app, task_id, change).await })
    }

    fn stop_ingest(&self, app: SdkAppId, task_id: String) -> TaskFuture<'_, ()> {
        let this = self.clone();
        Box::pin(async move { this.stop_ingest_task(app, task_id).await })
    }

    fn start_transcription(&self, req: TranscriptionStart) -> TaskFuture<'_, String> {
        Box::pin(ai::start_transcription(self.shared.clone(), req))
    }

    fn start_conversation(&self, req: ConversationStart) -> TaskFuture<'_, String> {
        Box::pin(ai::start_conversation(self.shared.clone(), req))
    }

    fn describe_ai(
        &self,
        kind: AiKind,
        apps: Vec<SdkAppId>,
        task: AiTaskRef,
    ) -> TaskFuture<'_, AiTaskInfo> {
        Box::pin(self.describe_ai_task(kind.name(), apps, task))
    }

    fn stop_ai(&self, kind: AiKind, apps: Vec<SdkAppId>, task_id: String) -> TaskFuture<'_, ()> {
        Box::pin(self.stop_ai_task(kind.name(), apps, task_id))
    }

    fn command_ai(
        &self,
        kind: AiKind,
        apps: Vec<SdkAppId>,
        task_id: String,
        command: Command,
    ) -> TaskFuture<'_, ()> {
        Box::pin(self.command_ai_task(kind.name(), apps, task_id, command))
    }

    fn stop_relay(&self, app: SdkAppId, task_id: String) -> TaskFuture<'_, ()> {
        let r = self.with_entry(app, &task_id, "relay", |e| {
            if e.status == "Exited" {
                return Err(TaskError::NotFound);
            }
            e.status = "Exited";
            let _ = e.cmds.send(Command::Stop);
            Ok(())
        });
        Box::pin(async move { r? })
    }
}

/// The spec's rules for UpdatePublishCdnStream against the running task.
/// (`full` false: only the sequence, again under the lock the command is sent under.)
fn check_change(e: &Entry, c: &RelayChange, full: bool) -> Result<(), TaskError> {
    if e.status == "Exited" {
        return Err(TaskError::NotFound);
    }
    let Some(shape) = &e.relay else {
        return Err(TaskError::NotFound);
    };
    if shape.sequence.is_some_and(|s| c.sequence <= s) {
        return Err(TaskError::Invalid(format!(
            "SequenceNumber must increase with each update: {} is not above {}.",
            c.sequence,
            shape.sequence.unwrap_or(0)
        )));
    }
    if !full {
        return Ok(());
    }
    if c.transcoding != shape.transcoding {
        return Err(TaskError::Invalid(
            "WithTranscoding cannot change during a task.".into(),
        ));
    }
    if c.video_params && !shape.video {
        return Err(TaskError::Invalid(
            "VideoParams: a task started audio-only cannot switch to audio and video.".into(),
        ));
    }
    if let (Some(a), Some(was)) = (c.audio, shape.audio) {
        if a != was {
            return Err(TaskError::Invalid(
                "AudioParams.AudioEncode: the audio codec, sample rate, bitrate and channels cannot change during a task.".into(),
            ));
        }
    }
    if let (Some(v), Some(was)) = (c.video_encode, shape.video_codec_fixed) {
        if v != was {
            return Err(TaskError::Invalid(
                "VideoParams.VideoEncode: the output's size, frame rate, bitrate and GOP are fixed for a task on this server.".into(),
            ));
        }
    }
    Ok(())
}
