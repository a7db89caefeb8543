//! One task's life: admission, storage checks, the worker process (spec in, events out,
//! commands in), uploads as files close, and the end (files finished, leftovers uploaded,
//! playlists closed, the record kept). A worker that crashes, hangs or is killed ends its own
//! task as failed with the files it completed.

use crate::callbacks::TaskCallbacks;
use crate::dest::{Dest, Playlists};
use crate::s3::Bucket;
use crate::{images, Entry, Shared};
use hearth_api::media::{RecordedFile, RecordingStart, RelayStart, Storage, TaskError};
use hearth_media_proto::{
    Command, EndReason, Event, Job, Join, RecordMode, Recording, Relay, RelaySource, RoomRef,
    TaskSpec,
};
use hearth_store::TaskRecord;
use hearth_types::{RoomKey, UnixSecs};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::{mpsc, watch};

/// How long the robot may take to enter the room.
const JOIN_TIMEOUT: Duration = Duration::from_secs(15);

/// The CPU a recording is expected to take (cores): the mix scales with the output's pixel
/// rate; a single-stream task is charged for a few users.
fn cost_of(r: &Recording) -> f64 {
    match r.mode {
        RecordMode::Mixed => {
            let px = f64::from(r.video.width * r.video.height * r.video.fps);
            0.1 + 0.25 * px / (1280.0 * 720.0 * 15.0)
        }
        RecordMode::Single => 0.3,
    }
}

/// A relay: a mix costs as a mixed recording of its picture (plus its outputs); a single
/// stream is passed through or transcoded.
fn relay_cost(r: &Relay) -> f64 {
    let outputs = 0.02 * (r.cdn.len() + r.feedback.len()) as f64;
    outputs
        + match &r.source {
            RelaySource::Mix(m) => match m.video {
                Some(v) => {
                    let px = f64::from(v.width * v.height * v.fps);
                    0.1 + 0.25 * px / (1280.0 * 720.0 * 15.0)
                }
                None => 0.05,
            },
            RelaySource::Single { video, .. } => {
                if video.is_some() {
                    0.2
                } else {
                    0.05
                }
            }
        }
}

/// The join of a robot in a room.
pub(crate) fn join_of(
    shared: &Shared,
    app: hearth_types::SdkAppId,
    room: &RoomKey,
    user_id: &str,
    user_sig: &str,
    private_map_key: Option<String>,
) -> Join {
    Join {
        ws_url: shared.cfg.ws_url.clone(),
        sdk_app_id: app.0,
        room: match room {
            RoomKey::Num(n) => RoomRef::Num(*n),
            RoomKey::Str(s) => RoomRef::Str(s.clone()),
        },
        user_id: user_id.to_owned(),
        user_sig: user_sig.to_owned(),
        private_map_key,
    }
}

/// Gives the reserved budget back unless the task took it over.
pub(crate) struct Reservation {
    shared: Arc<Shared>,
    cost: f64,
    kept: bool,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.kept {
            self.shared.lock_table().used -= self.cost;
        }
    }
}

impl Shared {
    pub(crate) fn lock_table(&self) -> std::sync::MutexGuard<'_, crate::Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, f: impl FnOnce(&mut crate::TaskCounts)) {
        f(&mut self.counts.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

pub(crate) async fn create(shared: Arc<Shared>, req: RecordingStart) -> Result<String, TaskError> {
    shared.available.clone().map_err(TaskError::Unavailable)?;
    let reservation = reserve(&shared, cost_of(&req.recording), "recording")?;
    let task_id = uuid::Uuid::new_v4().to_string();
    let work_dir = shared.cfg.data_dir.join("tasks").join(&task_id);
    let dest = prepare_dest(&shared, &req, &task_id).await?;
    let mut recording = req.recording;
    recording.segment_secs = shared.cfg.hls_segment_secs;
    recording.layout =
        images::fetch_layout(&shared.rules, recording.layout, &work_dir.join("images")).await?;
    let usage = UsageRule::of(&recording);
    let params = serde_json::json!({"mode": recording.mode, "user_id": req.user_id});
    let join = join_of(
        &shared,
        req.app,
        &req.room,
        &req.user_id,
        &req.user_sig,
        req.private_map_key,
    );
    launch(
        shared,
        Launch {
            task_id,
            work_dir,
            join,
            job: Job::Record(recording),
            kind: "recording",
            room: req.room,
            params,
            dest,
            usage,
            expire: Duration::from_secs(req.expire_hours * 3600),
            relay: None,
            session: Default::default(),
        },
        reservation,
    )
    .await
}

/// Starts a relay (StartPublishCdnStream).
pub(crate) async fn create_relay(
    shared: Arc<Shared>,
    req: RelayStart,
) -> Result<String, TaskError> {
    shared.available.clone().map_err(TaskError::Unavailable)?;
    let reservation = reserve(&shared, relay_cost(&req.relay), "relay")?;
    let task_id = uuid::Uuid::new_v4().to_string();
    let work_dir = shared.cfg.data_dir.join("tasks").join(&task_id);
    let mut relay = req.relay;
    for j in &mut relay.feedback {
        j.ws_url = shared.cfg.ws_url.clone();
    }
    for url in &relay.cdn {
        check_cdn(&shared, url).await?;
    }
    if let RelaySource::Mix(m) = &mut relay.source {
        let dir = work_dir.join("images");
        m.layout = images::fetch_layout(&shared.rules, std::mem::take(&mut m.layout), &dir).await?;
        m.watermarks =
            images::fetch_watermarks(&shared.rules, std::mem::take(&mut m.watermarks), &dir)
                .await?;
    }
    let (transcoding, video) = match &relay.source {
        RelaySource::Mix(m) => (true, m.video.is_some()),
        RelaySource::Single { video, .. } => (false, video.is_some()),
    };
    let usage = UsageRule::relay(&relay);
    let params =
        serde_json::json!({"user_id": req.user_id, "transcoding": transcoding, "video": video});
    let join = join_of(
        &shared,
        req.app,
        &req.room,
        &req.user_id,
        &req.user_sig,
        None,
    );
    launch(
        shared,
        Launch {
            task_id,
            work_dir,
            join,
            job: Job::Relay(relay),
            kind: "relay",
            room: req.room,
            params,
            dest: Dest::Nowhere,
            usage,
            expire: Duration::from_secs(u64::MAX / 4),
            relay: Some(crate::RelayShape {
                transcoding,
                video,
                audio: req.audio,
                video_codec_fixed: req.video_encode,
                sequence: None,
            }),
            session: Default::default(),
        },
        reservation,
    )
    .await
}

/// A CDN URL must be RTMP(S) to an address the outbound rules allow.
pub(crate) async fn check_cdn(shared: &Shared, url: &str) -> Result<(), TaskError> {
    shared
        .rules
        .check(url, &["rtmp", "rtmps"])
        .await
        .map(|_| ())
        .map_err(|e| TaskError::Invalid(format!("PublishCdnUrl {url}: {e}")))
}

pub(crate) fn reserve(
    shared: &Arc<Shared>,
    cost: f64,
    kind: &'static str,
) -> Result<Reservation, TaskError> {
    let mut t = shared.lock_table();
    if t.used + cost > shared.cfg.cpu_budget + 1e-9 {
        drop(t);
        shared.count(|c| c.by_kind.entry(kind).or_default().refused += 1);
        return Err(TaskError::Concurrency);
    }
    t.used += cost;
    Ok(Reservation {
        shared: shared.clone(),
        cost,
        kept: false,
    })
}

pub(crate) struct Launch {
    pub task_id: String,
    pub work_dir: PathBuf,
    pub join: Join,
    pub job: Job,
    pub kind: &'static str,
    pub room: RoomKey,
    pub params: serde_json::Value,
    pub dest: Dest,
    pub usage: UsageRule,
    pub expire: Duration,
    pub relay: Option<crate::RelayShape>,
    /// An AI task's SessionId and target user (de-duplication).
    pub session: crate::AiTags,
}

/// Runs a worker for a prepared task; answers once its robot is in the room.
pub(crate) async fn launch(
    shared: Arc<Shared>,
    l: Launch,
    mut reservation: Reservation,
) -> Result<String, TaskError> {
    let Launch {
        task_id,
        work_dir,
        join,
        job,
        kind,
        room,
        params,
        dest,
        usage,
        expire,
        relay,
        session,
    } = l;
    let cost = reservation.cost;
    let spec = TaskSpec {
        task_id: task_id.clone(),
        join,
        work_dir: work_dir.clone(),
        eos_timeout_secs: shared.cfg.eos_timeout_secs,
        job,
    };
    let (mut child, mut stdin, mut lines) = spawn(&shared.cfg.worker_bin, &spec).await?;
    // The answer waits for the robot to be in the room: a refused entry is the caller's error.
    let joined = tokio::time::timeout(JOIN_TIMEOUT, async {
        loop {
            match lines.next_line().await {
                Ok(Some(l)) => match serde_json::from_str::<Event>(&l) {
                    Ok(Event::Joined) => return Ok(()),
                    Ok(Event::Ended { reason, message }) => {
                        return Err((
                            Some(reason),
                            message.unwrap_or_else(|| "the worker ended".into()),
                        ))
                    }
                    _ => continue,
                },
                _ => return Err((None, "the worker exited before entering the room".into())),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err((None, "the robot did not enter the room in time".into())));
    if let Err((reason, why)) = joined {
        let _ = child.start_kill();
        let _ = child.wait().await;
        let _ = tokio::fs::remove_dir_all(&work_dir).await;
        return Err(if reason == Some(EndReason::SourceFailed) {
            TaskError::StreamUrl(format!("StreamUrl could not be played: {why}"))
        } else if why.contains("enter refused") {
            TaskError::Invalid(format!("the robot could not enter the room: {why}"))
        } else {
            TaskError::Failed(format!("the {kind} could not start: {why}"))
        });
    }
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let key = (spec.join.sdk_app_id, task_id.clone());
    shared.lock_table().tasks.insert(
        key.clone(),
        Entry {
            status: "InProgress",
            files: Vec::new(),
            cmds: cmd_tx,
            expires: Instant::now() + expire,
            cost,
            kind,
            relay,
            pushes: Default::default(),
            room: room.clone(),
            user_id: spec.join.user_id.clone(),
            ai: session,
            started: hearth_types::UnixSecs::now(),
        },
    );
    reservation.kept = true;
    shared.count(|c| c.by_kind.entry(kind).or_default().running += 1);
    let cb = TaskCallbacks::new(
        &shared,
        kind,
        hearth_types::SdkAppId(key.0),
        &room,
        &spec.join.user_id,
        &task_id,
    );
    let record = TaskRecord {
        task_id: task_id.clone(),
        sdk_app_id: hearth_types::SdkAppId(key.0),
        kind: kind.into(),
        state: "InProgress".into(),
        room: Some(room),
        params_json: params.to_string(),
        created_at: UnixSecs::now(),
        ended_at: None,
    };
    save(&shared, record.clone()).await;
    let _ = stdin.flush().await;
    tokio::spawn(drive(Driver {
        cb,
        shared,
        key,
        child,
        stdin,
        lines,
        cmds: cmd_rx,
        dest: Arc::new(dest),
        work_dir,
        record,
        usage,
        first_file: None,
        opened: std::collections::HashMap::new(),
        intervals: Vec::new(),
        bytes_out: 0,
        durations: std::collections::HashMap::new(),
    }));
    Ok(task_id)
}

async fn prepare_dest(
    shared: &Shared,
    req: &RecordingStart,
    task_id: &str,
) -> Result<Dest, TaskError> {
    match &req.storage {
        Storage::S3 {
            endpoint,
            region,
            bucket,
            access_key,
            secret_key,
            prefix,
        } => {
            let checked = shared
                .rules
                .check(endpoint, &["http", "https"])
                .await
                .map_err(|e| {
                    TaskError::Invalid(format!("CloudStorage endpoint {endpoint}: {e}"))
                })?;
            let b = Bucket::new(
                checked,
                region.clone(),
                bucket.clone(),
                access_key.clone(),
                secret_key.clone(),
            );
            b.probe()
                .await
                .map_err(|e| TaskError::Invalid(format!("CloudStorage: {e}")))?;
            let mut p: String = prefix.iter().map(|s| format!("{s}/")).collect();
            p.push_str(task_id);
            p.push('/');
            Ok(Dest::S3 {
                bucket: b,
                prefix: p,
            })
        }
        Storage::Vod {
            expire_secs,
            user_prefix,
        } => Ok(Dest::Vod {
            user_prefix: user_prefix.clone(),
            vod: shared.vod.clone(),
            app: req.app.0,
            task: task_id.to_owned(),
            url_expires: crate::Vod::url_expiry(UnixSecs::now().0 as u64, *expire_secs),
        }),
    }
}

async fn spawn(
    bin: &Path,
    spec: &TaskSpec,
) -> Result<(Child, ChildStdin, Lines<BufReader<ChildStdout>>), TaskError> {
    let failed = |e: std::io::Error| TaskError::Failed(format!("starting the media worker: {e}"));
    let mut child = tokio::process::Command::new(bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(failed)?;
    let mut stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    let mut line = serde_json::to_string(spec).expect("specs serialize");
    line.push('\n');
    stdin.write_all(line.as_bytes()).await.map_err(failed)?;
    Ok((child, stdin, BufReader::new(stdout).lines()))
}

async fn save(shared: &Shared, record: TaskRecord) {
    let store = shared.store.clone();
    let r = tokio::task::spawn_blocking(move || store.upsert_task(&record)).await;
    if !matches!(r, Ok(Ok(()))) {
        tracing::error!("could not record a task in the store");
    }
}

struct Driver {
    /// The task's event callbacks (a recording's).
    cb: TaskCallbacks,
    shared: Arc<Shared>,
    key: (u32, String),
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    cmds: mpsc::UnboundedReceiver<Command>,
    dest: Arc<Dest>,
    work_dir: PathBuf,
    record: TaskRecord,
    usage: UsageRule,
    /// The first file listed (the recording's URL in GetRoomEvent).
    first_file: Option<String>,
    /// Files being written: path → (begin ms, track).
    opened: std::collections::HashMap<String, (u64, hearth_media_proto::TrackType)>,
    /// Recorded media for usage: (begin ms, seconds, resolution class).
    intervals: Vec<(u64, f64, &'static str)>,
    /// Bytes a relay pushed to CDNs.
    bytes_out: u64,
    /// How long each closed file lasts (path → ms), for the MP4 callback.
    durations: std::collections::HashMap<String, u64>,
}

/// Which files count for usage (one output format, so HLS and MP4 of the same media are not
/// counted twice) and in which resolution class; a relay counts its whole running time.
#[derive(Clone, Copy)]
pub(crate) struct UsageRule {
    ext: &'static str,
    video_class: &'static str,
    /// Audio files count only when the task records no video.
    audio_counts: bool,
    /// A relay: its usage key (`SDH264`…, `Audio` for mixes; `Relay` for single streams).
    whole_task: Option<&'static str>,
}

impl UsageRule {
    /// A task that counts its whole running time as `class` (kept in its record).
    pub(crate) fn whole(class: &'static str) -> Self {
        UsageRule {
            ext: "",
            video_class: class,
            audio_counts: false,
            whole_task: Some(class),
        }
    }

    /// An ingest counts its whole running time (kept in its record; no usage action of the
    /// spec reports ingests).
    pub(crate) fn ingest() -> Self {
        UsageRule {
            ext: "",
            video_class: "Ingest",
            audio_counts: false,
            whole_task: Some("Ingest"),
        }
    }

    fn relay(r: &Relay) -> Self {
        let class = match &r.source {
            RelaySource::Mix(m) => match m.video {
                Some(v) => match hearth_types::resolution_class(v.width, v.height) {
                    "SD" => "SDH264",
                    "HD" => "HDH264",
                    "FullHD" => "FullHDH264",
                    "2K" => "2KH264",
                    _ => "4KH264",
                },
                None => "Audio",
            },
            RelaySource::Single { .. } => "Relay",
        };
        UsageRule {
            ext: "",
            video_class: class,
            audio_counts: false,
            whole_task: Some(class),
        }
    }

    fn of(r: &Recording) -> Self {
        let ext = if r.outputs.hls {
            ".ts"
        } else if r.outputs.mp4 {
            ".mp4"
        } else {
            ".aac"
        };
        UsageRule {
            ext,
            video_class: hearth_types::resolution_class(r.video.width, r.video.height),
            audio_counts: !r.stream_type.video(),
            whole_task: None,
        }
    }

    fn class(&self, track: hearth_media_proto::TrackType) -> Option<&'static str> {
        match track {
            hearth_media_proto::TrackType::Audio => self.audio_counts.then_some("Audio"),
            _ => Some(self.video_class),
        }
    }
}

enum Upload {
    File {
        name: String,
        playlist: Option<String>,
        secs: f64,
    },
    /// The worker is gone: upload what is left, close the playlists.
    Finish,
}

async fn drive(mut d: Driver) {
    let task = d.key.1.clone();
    let stores = matches!(*d.dest, Dest::S3 { .. });
    d.cb.started();
    if stores {
        d.cb.send(303, serde_json::json!({"Status": 0}));
    }
    let (up_tx, up_rx) = mpsc::unbounded_channel();
    let (end_tx, end_rx) = watch::channel(None::<Instant>);
    let uploader = tokio::spawn(upload_loop(
        d.shared.clone(),
        d.dest.clone(),
        d.work_dir.clone(),
        up_rx,
        end_rx,
        d.cb.clone(),
    ));
    let mut ended: Option<(EndReason, Option<String>)> = None;
    let mut kill_at: Option<Instant> = None;
    let mut playlists_listed: HashSet<String> = HashSet::new();
    // A worker that stops reporting (frozen pipeline, hung process) is killed.
    // (Past the worker's own EOS timeout, so that a worker finishing its files is not cut.)
    let frozen_after = Duration::from_secs(d.shared.cfg.eos_timeout_secs + 5);
    let mut last_heard = Instant::now();
    let mut check = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = check.tick() => {
                if last_heard.elapsed() > frozen_after && kill_at.is_none() {
                    tracing::warn!(%task, "the worker stopped reporting: killed");
                    let _ = d.child.start_kill();
                    ended.get_or_insert((EndReason::Failed, Some("the media worker froze".into())));
                    kill_at = Some(Instant::now() + Duration::from_secs(5));
                }
            },
            l = d.lines.next_line() => match l {
                Ok(Some(line)) => match serde_json::from_str::<Event>(&line) {
                    Ok(ev) => {
                        last_heard = Instant::now();
                        on_event(&mut d, ev, &up_tx, &mut ended, &mut playlists_listed)
                    }
                    Err(e) => tracing::warn!(%task, error = %e, "unreadable worker event"),
                },
                _ => break,
            },
            Some(cmd) = d.cmds.recv() => {
                let stop = cmd == Command::Stop;
                let mut line = serde_json::to_string(&cmd).expect("commands serialize");
                line.push('\n');
                let _ = d.stdin.write_all(line.as_bytes()).await;
                let _ = d.stdin.flush().await;
                if stop && kill_at.is_none() {
                    kill_at = Some(Instant::now() + Duration::from_secs(d.shared.cfg.eos_timeout_secs + 5));
                }
            },
            _ = sleep_until(kill_at) => {
                tracing::warn!(%task, "the worker did not stop in time: killed");
                let _ = d.child.start_kill();
                ended.get_or_insert((EndReason::Failed, Some("the worker did not finish its files in time".into())));
                kill_at = None;
            },
        }
    }
    // Its stdout is closed; the process itself gets a bounded time to go.
    let status = match tokio::time::timeout(Duration::from_secs(5), d.child.wait()).await {
        Ok(s) => s,
        Err(_) => {
            let _ = d.child.start_kill();
            d.child.wait().await
        }
    };
    let crashed = !status.as_ref().is_ok_and(|s| s.success());
    let (reason, message) = match ended {
        Some((r, m)) if !crashed || is_failure(r) => (r, m),
        _ => (
            EndReason::Failed,
            Some(format!(
                "the media worker ended abnormally ({})",
                status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|e| e.to_string())
            )),
        ),
    };
    set_status(&d.shared, &d.key, "Exited");
    d.cb.ended(reason, message.as_deref());
    let _ = end_tx.send(Some(
        Instant::now() + Duration::from_secs(d.shared.cfg.upload_grace_secs),
    ));
    let _ = up_tx.send(Upload::Finish);
    drop(up_tx);
    let (uploaded, bytes, local) = uploader.await.unwrap_or_default();
    let failed = is_failure(reason);
    if !local.is_empty() {
        tracing::warn!(%task, files = ?local, dir = %d.work_dir.display(), "files could not be stored: kept on local disk");
    }
    let files = {
        let t = d.shared.lock_table();
        t.tasks
            .get(&d.key)
            .map(|e| e.files.clone())
            .unwrap_or_default()
    };
    if stores {
        // 305: the uploads are done (1: some file stayed on this server's disk); 310: the MP4
        // files, if the task wrote any.
        let kept = u8::from(!local.is_empty());
        d.cb.send(305, serde_json::json!({"LeaveCode": kept}));
        let mp4: Vec<_> = files
            .iter()
            .filter(|f| f.file_name.ends_with(".mp4"))
            .collect();
        if !mp4.is_empty() {
            let message: Vec<_> = mp4
                .iter()
                .map(|f| {
                    let ms = d.durations.get(&f.file_name).copied().unwrap_or(0);
                    serde_json::json!({
                        "FileName": f.file_name, "UserId": f.user_id.clone().unwrap_or_default(),
                        "TrackType": f.track_type,
                        "MediaId": if f.user_id.is_some() { "main" } else { "mix" },
                        "StartTimeStamp": f.begin_ms, "EndTimeStamp": f.begin_ms + ms,
                    })
                })
                .collect();
            let names: Vec<_> = mp4.iter().map(|f| f.file_name.clone()).collect();
            d.cb.send(
                310,
                serde_json::json!({"Status": kept, "FileList": names, "FileMessage": message}),
            );
        }
    }
    if let Some(class) = d.usage.whole_task {
        let begin = d.record.created_at.0 as u64 * 1000;
        let secs = (UnixSecs::now().0 - d.record.created_at.0).max(0) as f64;
        d.intervals.push((begin, secs, class));
    }
    let mut rec = d.record;
    rec.state = if failed { "Failed" } else { "Finished" }.into();
    rec.ended_at = Some(UnixSecs::now());
    let mut params: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&rec.params_json).unwrap_or_default();
    let outcome = serde_json::json!({
        "reason": reason,
        "message": message,
        "files": files.iter().map(|f| serde_json::json!({
            "FileName": f.file_name, "UserId": f.user_id, "TrackType": f.track_type, "BeginTimeStamp": f.begin_ms,
        })).collect::<Vec<_>>(),
        "uploaded": uploaded,
        "bytes": bytes,
        "url": d.first_file.as_deref().map(|f| d.dest.url(f)),
        "usage": d.intervals,
        "bytes_out": d.bytes_out,
        "local_files": local,
        "local_dir": d.work_dir,
    });
    if let serde_json::Value::Object(o) = outcome {
        params.extend(o);
    }
    rec.params_json = serde_json::Value::Object(params).to_string();
    save(&d.shared, rec).await;
    if local.is_empty() {
        let _ = tokio::fs::remove_dir_all(&d.work_dir).await;
    }
    let cost = d
        .shared
        .lock_table()
        .tasks
        .remove(&d.key)
        .map(|e| (e.cost, e.kind))
        .unwrap_or((0.0, "recording"));
    let (cost, kind) = cost;
    d.shared.lock_table().used -= cost;
    d.shared.count(|c| {
        let k = c.by_kind.entry(kind).or_default();
        k.running = k.running.saturating_sub(1);
        if failed {
            k.failed += 1;
        } else {
            k.finished += 1;
        }
        c.files_left_local += local.len() as u64;
    });
    tracing::info!(%task, ?reason, message = message.as_deref().unwrap_or(""), "task ended");
}

/// Ends that count as failed (the worker exits non-zero on them).
fn is_failure(r: EndReason) -> bool {
    matches!(r, EndReason::Failed | EndReason::SourceFailed)
}

fn set_status(shared: &Shared, key: &(u32, String), status: &'static str) {
    if let Some(e) = shared.lock_table().tasks.get_mut(key) {
        e.status = status;
    }
}

fn on_event(
    d: &mut Driver,
    ev: Event,
    up: &mpsc::UnboundedSender<Upload>,
    ended: &mut Option<(EndReason, Option<String>)>,
    listed: &mut HashSet<String>,
) {
    match ev {
        Event::FileOpened {
            path,
            user,
            track,
            begin_ms,
        } => {
            d.opened.insert(path.clone(), (begin_ms, track));
            let name = match path.strip_suffix(".ts").and_then(|s| s.rsplit_once('_')) {
                Some((base, _)) => {
                    let pl = format!("{base}.m3u8");
                    if !listed.insert(pl.clone()) {
                        return;
                    }
                    d.cb.send(
                        307,
                        serde_json::json!({
                            "FileName": d.dest.public_name(&pl),
                            "UserId": user.clone().unwrap_or_default(),
                            "TrackType": track.api_name(),
                            "BeginTimeStamp": begin_ms.to_string(),
                        }),
                    );
                    pl
                }
                None => path,
            };
            d.first_file.get_or_insert_with(|| name.clone());
            let file = RecordedFile {
                file_name: d.dest.public_name(&name),
                user_id: user,
                track_type: track.api_name(),
                begin_ms,
            };
            if let Some(e) = d.shared.lock_table().tasks.get_mut(&d.key) {
                e.files.push(file);
            }
        }
        Event::FileClosed {
            path,
            duration_ms,
            playlist,
            ..
        } => {
            d.durations.insert(d.dest.public_name(&path), duration_ms);
            if let Some((begin, track)) = d.opened.remove(&path) {
                if let Some(class) = d.usage.class(track).filter(|_| path.ends_with(d.usage.ext)) {
                    d.intervals
                        .push((begin, duration_ms as f64 / 1000.0, class));
                }
            }
            let _ = up.send(Upload::File {
                name: path,
                playlist,
                secs: duration_ms as f64 / 1000.0,
            });
        }
        Event::Ended { reason, message } => {
            *ended = Some((reason, message));
            set_status(&d.shared, &d.key, "Exited");
        }
        Event::Warning { message } => tracing::warn!(task = %d.key.1, %message, "worker"),
        Event::Sent { bytes } => d.bytes_out = d.bytes_out.max(bytes),
        Event::Push {
            url,
            connected,
            message,
        } => {
            if !connected {
                d.shared.count(|c| c.push_failures += 1);
            }
            d.cb.push(&url, connected, message.as_deref());
            if let Some(e) = d.shared.lock_table().tasks.get_mut(&d.key) {
                e.pushes.insert(url, (connected, message));
            }
        }
        Event::Joined | Event::Alive => {}
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// Uploads files in the order they closed, retrying while the task runs and for the grace
/// period after; returns how many went up and which stayed on local disk.
async fn upload_loop(
    shared: Arc<Shared>,
    dest: Arc<Dest>,
    dir: PathBuf,
    mut rx: mpsc::UnboundedReceiver<Upload>,
    end: watch::Receiver<Option<Instant>>,
    cb: TaskCallbacks,
) -> (u64, u64, Vec<String>) {
    let mut first_playlist_stored = false;
    let mut playlists = Playlists::default();
    let mut done: HashSet<String> = HashSet::new();
    let mut local = Vec::new();
    let mut uploaded = 0;
    let mut bytes = 0;
    while let Some(job) = rx.recv().await {
        match job {
            Upload::File {
                name,
                playlist,
                secs,
            } => {
                if let Some(n) = put_file(&shared, &dest, &dir, &name, &end).await {
                    uploaded += 1;
                    bytes += n;
                    done.insert(name.clone());
                    if let Some(pl) = playlist {
                        playlists.add(&pl, name, secs);
                        let text = playlists.render(&pl, false, &dest);
                        let stored = put_bytes(&shared, &dest, &pl, text.into(), &end).await;
                        if stored && !first_playlist_stored && matches!(*dest, Dest::S3 { .. }) {
                            first_playlist_stored = true;
                            cb.send(304, serde_json::json!({"FileList": dest.public_name(&pl)}));
                        }
                    }
                } else {
                    local.push(name);
                }
            }
            Upload::Finish => {
                // What the worker did not report closed (it was killed): the partial segment,
                // the MP4 part playable up to its last fragment.
                let mut rest: Vec<String> = std::fs::read_dir(&dir)
                    .map(|it| {
                        it.filter_map(|e| e.ok())
                            .filter(|e| e.path().is_file())
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .filter(|n| !done.contains(n) && !local.contains(n))
                            .collect()
                    })
                    .unwrap_or_default();
                rest.sort();
                for name in rest {
                    if let Some(n) = put_file(&shared, &dest, &dir, &name, &end).await {
                        uploaded += 1;
                        bytes += n;
                        done.insert(name);
                    } else {
                        local.push(name);
                    }
                }
                for pl in playlists.names() {
                    let text = playlists.render(&pl, true, &dest);
                    if !put_bytes(&shared, &dest, &pl, text.clone().into(), &end).await {
                        let _ = std::fs::write(dir.join(&pl), text);
                        local.push(pl);
                    }
                }
                break;
            }
        }
    }
    for name in &done {
        let _ = std::fs::remove_file(dir.join(name));
    }
    (uploaded, bytes, local)
}

async fn put_file(
    shared: &Shared,
    dest: &Dest,
    dir: &Path,
    name: &str,
    end: &watch::Receiver<Option<Instant>>,
) -> Option<u64> {
    match tokio::fs::read(dir.join(name)).await {
        Ok(body) => {
            let n = body.len() as u64;
            put_bytes(shared, dest, name, body.into(), end)
                .await
                .then_some(n)
        }
        Err(e) => {
            tracing::warn!(file = name, error = %e, "a recorded file cannot be read");
            None
        }
    }
}

/// One object, retried with backoff until it is stored, the error is final, or the grace
/// after the task's end runs out.
async fn put_bytes(
    shared: &Shared,
    dest: &Dest,
    name: &str,
    body: bytes::Bytes,
    end: &watch::Receiver<Option<Instant>>,
) -> bool {
    let mut wait = Duration::from_millis(250);
    loop {
        match dest.put(name, body.clone()).await {
            Ok(()) => return true,
            Err(e) => {
                shared.count(|c| c.uploads_failed += 1);
                tracing::warn!(file = name, error = %e, "upload failed");
                let past = end.borrow().is_some_and(|t| Instant::now() >= t);
                if !e.retry || past {
                    return false;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(4));
            }
        }
    }
}
