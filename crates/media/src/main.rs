//! `hearth-media`: runs one media task in its own process, so that a GStreamer crash or hang
//! ends that task and nothing else. The task spec is the first line of standard input, then
//! commands; events go to standard output (see `hearth-media-proto`). This is the only part of
//! Hearth that links GStreamer.

mod canvas;
mod conversation;
mod fanout;
mod gst_util;
mod ingest;
mod input;
mod listen;
mod llm;
mod output;
mod overlay;
mod recorder;
mod relay;
mod room_messages;
mod rooms;
mod roster;
mod sei;
mod source;
mod stt;
mod timing;
mod transcriber;
mod tts;

use anyhow::{Context, Result};
use gst_util::BusEvent;
use hearth_client::Event as RoomEvent;
use hearth_client::{Frame, TrackKey, User};
use hearth_media_proto::{Command, EndReason, Event, Job, TaskSpec};
use recorder::Recorder;
use relay::Relayer;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use transcriber::Transcriber;

/// Elements every recording needs; checked at start so that a missing plugin is one clear
/// message.
const NEEDED: &[(&str, &str)] = &[
    ("compositor", "gstreamer1.0-plugins-base"),
    ("audiomixer", "gstreamer1.0-plugins-base"),
    ("opusdec", "gstreamer1.0-plugins-base"),
    ("vp8dec", "gstreamer1.0-plugins-good"),
    ("splitmuxsink", "gstreamer1.0-plugins-good"),
    ("mp4mux", "gstreamer1.0-plugins-good"),
    ("videocrop", "gstreamer1.0-plugins-good"),
    ("mpegtsmux", "gstreamer1.0-plugins-bad"),
    ("h264parse", "gstreamer1.0-plugins-bad"),
    ("x264enc", "gstreamer1.0-plugins-ugly"),
    ("flvmux", "gstreamer1.0-plugins-good"),
    ("rtmp2sink", "gstreamer1.0-plugins-bad"),
    ("opusenc", "gstreamer1.0-plugins-base"),
    ("level", "gstreamer1.0-plugins-good"),
    ("textoverlay", "gstreamer1.0-x"),
    ("gdkpixbufoverlay", "gstreamer1.0-plugins-good"),
    ("avenc_aac", "gstreamer1.0-libav"),
    ("avdec_h264", "gstreamer1.0-libav"),
];

/// What a task does with the room, whatever it makes (files, live pushes).
pub trait Runner {
    /// Users in the room the task takes media from (the idle timer runs while there are none).
    fn anchors(&self) -> usize;
    fn user_entered(&mut self, u: User);
    fn user_updated(&mut self, u: User);
    fn user_exited(&mut self, user: &str);
    fn track_removed(&mut self, key: &TrackKey);
    fn frame(&mut self, f: Frame);
    fn command(&mut self, c: Command);
    /// A custom message of another user of the room.
    fn custom(&mut self, _user: &str, _cmd_id: u8, _data: &[u8]) {}
    /// Every half second.
    fn tick(&mut self) {}
    /// A bus event of pipeline `id`; true when it has finished (EOS).
    fn bus_event(&mut self, id: u64, ev: BusEvent) -> Result<bool, String>;
    /// Sends EOS to every pipeline.
    fn finish(&mut self);
    fn stalled_for(&self) -> Duration;
    fn canvases_left(&self) -> usize;
    /// The robot entered another room of a mix (or could not).
    fn room_entered(&mut self, _key: String, _r: Result<hearth_client::Client, String>) {}
    /// Why the task cannot go on, if something outside its pipelines broke (checked every tick).
    fn failure(&mut self) -> Option<String> {
        None
    }
    /// The task has done what it was asked and ends (checked every tick).
    fn finished(&self) -> bool {
        false
    }
    /// After the pipelines finished: what still has to end (a relay's pushes).
    fn outputs_done(&mut self) -> Option<tokio::task::JoinHandle<()>> {
        None
    }
}

fn main() {
    limit_malloc_arenas();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HEARTH_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    if std::env::args().nth(1).as_deref() == Some("--check") {
        match check() {
            Ok(()) => println!("ok"),
            Err(e) => {
                println!("{e:#}");
                std::process::exit(1);
            }
        }
        return;
    }
    let (reason, message) = match run() {
        Ok(r) => r,
        Err(e) => (EndReason::Failed, Some(format!("{e:#}"))),
    };
    emit(&Event::Ended { reason, message });
    // Leave without unwinding GStreamer's threads.
    let failed = matches!(reason, EndReason::Failed | EndReason::SourceFailed);
    std::process::exit(if failed { 1 } else { 0 });
}

/// GStreamer starts and ends streaming threads with each pipeline (an ingest reopening its
/// source, a repeat on a server without byte ranges); glibc would give each new thread an arena
/// of its own and keep what the pipeline freed there, so the worker's memory grew with every
/// reopening (measured in bench/ingest.sh). Two arenas keep it flat.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

fn emit(e: &Event) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(e.to_line().as_bytes());
    let _ = out.flush();
}

/// Initializes GStreamer and looks for every element a recording needs.
fn check() -> Result<()> {
    gstreamer::init().context("initializing GStreamer")?;
    let missing: Vec<String> = NEEDED
        .iter()
        .filter(|(f, _)| gstreamer::ElementFactory::find(f).is_none())
        .map(|(f, p)| format!("{f} ({p})"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("GStreamer elements missing: {}", missing.join(", "))
    }
}

fn run() -> Result<(EndReason, Option<String>)> {
    let mut line = String::new();
    // The lock must go before the command reader takes it.
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the task spec")?;
    let spec: TaskSpec = serde_json::from_str(&line).context("parsing the task spec")?;
    check()?;
    str0m::crypto::from_feature_flags().install_process_default();
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for l in stdin.lock().lines() {
            let Ok(l) = l else { break };
            match serde_json::from_str::<Command>(&l) {
                Ok(c) => {
                    if cmd_tx.send(c).is_err() {
                        break;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "bad command line"),
            }
        }
        // The supervisor went away: stop.
        let _ = cmd_tx.send(Command::Stop);
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(task(spec, cmd_rx))
}

async fn task(
    spec: TaskSpec,
    mut cmds: mpsc::UnboundedReceiver<Command>,
) -> Result<(EndReason, Option<String>)> {
    std::fs::create_dir_all(&spec.work_dir).context("creating the work dir")?;
    if let Job::Ingest(job) = &spec.job {
        let job = job.clone();
        return ingest::run(spec, job, cmds, emit).await;
    }
    let (client, room) = hearth_client::join(rooms::join_params(&spec.join, &spec.join.room))
        .await
        .context("entering the room")?;
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Event>();
    let (bus_tx, mut bus_rx) = mpsc::unbounded_channel();
    // Recording stays in one room; a relay's mix may enter others (their events merged).
    let (_no_rooms, mut entered) = mpsc::unbounded_channel();
    let mut room = room;
    let (mut rec, max_idle): (Box<dyn Runner>, u64) = match &spec.job {
        Job::Record(r) => (
            Box::new(Recorder::new(
                spec.task_id.clone(),
                spec.work_dir.clone(),
                r.clone(),
                client.clone(),
                bus_tx,
                out_tx,
            )?),
            r.max_idle_secs,
        ),
        Job::Ingest(_) => unreachable!("ingest runs on its own"),
        Job::Converse(c) => (
            Box::new(
                conversation::Conversationalist::new(
                    spec.join.user_id.clone(),
                    c.clone(),
                    client.clone(),
                    bus_tx,
                )
                .await?,
            ),
            c.stt.max_idle_secs,
        ),
        Job::Transcribe(t) => (
            Box::new(
                Transcriber::new(spec.task_id.clone(), t.clone(), client.clone(), bus_tx).await?,
            ),
            t.max_idle_secs,
        ),
        Job::Relay(r) => {
            let (rooms, merged, entries) =
                rooms::Rooms::new(client.clone(), room, spec.join.clone());
            room = merged;
            entered = entries;
            (
                Box::new(Relayer::new(
                    spec.work_dir.clone(),
                    r.clone(),
                    rooms,
                    bus_tx,
                    out_tx,
                )?),
                r.max_idle_secs,
            )
        }
    };
    // In the room with everything started: the start request is answered now (a task that
    // could not start fails it with the reason instead).
    emit(&Event::Joined);
    let max_idle = Duration::from_secs(max_idle);
    let mut idle_since = Some(Instant::now());
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last_beat = Instant::now();
    let heartbeat = Duration::from_secs(hearth_media_proto::HEARTBEAT_SECS);
    let (reason, message) = loop {
        tokio::select! {
            ev = room.recv() => match ev {
                Some(RoomEvent::UserEntered(u)) => rec.user_entered(u),
                Some(RoomEvent::UserUpdated(u)) => rec.user_updated(u),
                Some(RoomEvent::UserExited(u)) => rec.user_exited(&u),
                Some(RoomEvent::TrackAdded(k)) => {
                    tracing::info!(user = %k.user, stream = ?k.stream, kind = ?k.kind, "track subscribed");
                }
                Some(RoomEvent::TrackRemoved(k)) => rec.track_removed(&k),
                Some(RoomEvent::Frame(f)) => rec.frame(f),
                Some(RoomEvent::KeyframeRequested(_)) => {}
                Some(RoomEvent::Custom { user, cmd_id, data }) => rec.custom(&user, cmd_id, &data),
                Some(RoomEvent::Error { code, message }) => {
                    tracing::warn!(code, %message, "the server refused a request");
                }
                Some(RoomEvent::Closed { reason, message }) => {
                    let r = if matches!(reason.as_str(), "kicked" | "room_dismissed") {
                        EndReason::Removed
                    } else {
                        EndReason::Failed
                    };
                    break (r, Some(format!("{reason}: {message}")));
                }
                None => break (EndReason::Failed, Some("the room session ended".into())),
            },
            c = cmds.recv() => match c {
                Some(Command::Stop) | None => break (EndReason::Stopped, None),
                Some(c) => rec.command(c),
            },
            b = bus_rx.recv() => {
                if let Some((id, ev)) = b {
                    if let Err(e) = rec.bus_event(id, ev) {
                        break (EndReason::Failed, Some(format!("pipeline error: {e}")));
                    }
                }
            },
            Some(e) = out_rx.recv() => emit(&e),
            Some((key, r)) = entered.recv() => rec.room_entered(key, r),
            _ = tick.tick() => {
                rec.tick();
                if let Some(e) = rec.failure() {
                    break (EndReason::Failed, Some(e));
                }
                if rec.finished() {
                    break (EndReason::Stopped, None);
                }
                // A frozen pipeline stops the heartbeat; the supervisor then ends the task.
                if last_beat.elapsed() >= heartbeat && rec.stalled_for() < 2 * heartbeat {
                    emit(&Event::Alive);
                    last_beat = Instant::now();
                }
                if rec.anchors() > 0 {
                    idle_since = None;
                } else {
                    let since = *idle_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= max_idle {
                        break (EndReason::Idle, None);
                    }
                }
            },
        }
    };
    tracing::info!(reason = ?reason, message = message.as_deref().unwrap_or(""), "finishing the task's files");
    // Close every file: EOS through each pipeline, bounded by the watchdog.
    emit(&Event::Alive);
    rec.finish();
    let deadline = Instant::now() + Duration::from_secs(spec.eos_timeout_secs);
    let mut frozen = false;
    while rec.canvases_left() > 0 {
        tokio::select! {
            b = bus_rx.recv() => match b {
                Some((id, ev)) => { let _ = rec.bus_event(id, ev); }
                None => break,
            },
            Some(e) = out_rx.recv() => emit(&e),
            _ = tokio::time::sleep_until(deadline.into()) => { frozen = true; break; }
        }
    }
    // What the pipelines said while they were torn down (the last AAC part closes then).
    while let Ok((id, ev)) = bus_rx.try_recv() {
        let _ = rec.bus_event(id, ev);
    }
    if let Some(done) = rec.outputs_done() {
        // The pushes end their streams.
        let _ = tokio::time::timeout(Duration::from_secs(3), done).await;
    }
    drop(rec);
    while let Ok(e) = out_rx.try_recv() {
        emit(&e);
    }
    rooms::leave(&client, &mut room).await;
    if frozen {
        // What ended the task comes first: a pipeline error is why its files did not finish.
        let timeout = "the pipeline did not finish within the EOS timeout";
        let message = match (reason, message) {
            (EndReason::Failed, Some(m)) => format!("{m}; {timeout}"),
            _ => timeout.to_owned(),
        };
        return Ok((EndReason::Failed, Some(message)));
    }
    Ok((reason, message))
}
