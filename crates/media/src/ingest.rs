//! Stream ingest: opens the URL first (a source that cannot be opened ends the task before the
//! robot enters), then enters the room as an ordinary anchor and publishes the source's audio
//! and video (two simulcast layers) in real time. Repeats, seeks, pauses, volume and URL
//! switches act on the source pipeline; the robot's session and its RTP timeline go on across
//! them. A live source that drops is reopened for a bounded time.

use crate::gst_util::{watch_bus_through_eos, BusEvent};
use crate::source::{Out, Sample, Shape, SourcePipe};
use anyhow::{Context, Result};
use gstreamer as gst;
use gstreamer::prelude::*;
use hearth_client::{Codec, Event as RoomEvent, Kind, Layer};
use hearth_media_proto::{Command, EndReason, Event, Ingest, TaskSpec};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long a source may take to give its first frame.
const OPEN_TIMEOUT: Duration = Duration::from_secs(8);
/// A playing source that gives nothing for this long has dropped.
const STALL: Duration = Duration::from_secs(5);
/// Between reopenings of a dropped live source.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// How a task ends: the reason and what to say.
type End = (EndReason, Option<String>);

/// Where a pipeline is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting to preroll (a file, seekable) or for its first frame (live).
    Opening,
    /// Prerolled and seeking to SeekSecond.
    Seeking,
    Playing,
}

struct Live {
    pipe: SourcePipe,
    url: String,
    phase: Phase,
    opened_at: Instant,
    /// Has a duration: EOS means the end of a play, not a dropped stream.
    file: bool,
    /// The first play starts at SeekSecond.
    seek_to: u64,
    /// Seeking back to the start for the next play (until its first frame).
    looping: bool,
    last_sample: Instant,
}

/// The task's RTP timeline: each play (pipeline and epoch) is anchored to the wall clock at
/// its first frame, so that the session's timestamps only go forward.
struct Timeline {
    start: Instant,
    anchor: Option<(u64, u64, u64, u64)>, // (pipe, epoch, pts at anchor, task ns at anchor)
}

impl Timeline {
    fn task_ns(&mut self, pipe: u64, epoch: u64, pts: u64) -> u64 {
        match self.anchor {
            Some((p, e, at_pts, at_ns)) if p == pipe && e == epoch => {
                at_ns + pts.saturating_sub(at_pts)
            }
            _ => {
                let now = self.start.elapsed().as_nanos() as u64;
                self.anchor = Some((pipe, epoch, pts, now));
                now
            }
        }
    }

    fn reset(&mut self) {
        self.anchor = None;
    }
}

fn rtp(ns: u64, rate: u64) -> u64 {
    (u128::from(ns) * u128::from(rate) / 1_000_000_000) as u64
}

struct Ingester {
    job: Ingest,
    shape: Shape,
    volume: u32,
    paused: bool,
    plays_left: Option<u32>,
    next_id: u64,
    current: Option<Live>,
    /// A URL being opened to replace the current one.
    next: Option<Live>,
    samples: mpsc::UnboundedSender<Sample>,
    bus: mpsc::UnboundedSender<(u64, BusEvent)>,
    /// A dropped live source: reopen until then.
    retry_until: Option<Instant>,
    retry_at: Option<Instant>,
    last_error: Option<String>,
    /// What a dropped source named that was not fetched.
    refusal: Option<String>,
    proxy: hearth_outbound::Proxy,
    /// The published video codec (the first source's video decides it).
    codec: Arc<OnceLock<Codec>>,
}

/// Runs an ingest task to its end.
pub async fn run(
    spec: TaskSpec,
    job: Ingest,
    mut cmds: mpsc::UnboundedReceiver<Command>,
    emit: fn(&Event),
) -> Result<End> {
    crate::source::lock_down_registry();
    let rules = hearth_outbound::Rules::new(&job.outbound_allow).map_err(anyhow::Error::msg)?;
    let proxy = hearth_outbound::Proxy::start(rules)
        .await
        .context("starting the outbound proxy")?;
    let (sample_tx, mut samples) = mpsc::unbounded_channel();
    let (bus_tx, mut bus) = mpsc::unbounded_channel();
    let shape = Shape {
        video: job.video,
        audio: job.audio,
        max_width: job.max_width,
        max_height: job.max_height,
        passthrough: job.passthrough,
        proxy: proxy.url(),
    };
    let mut ing = Ingester {
        volume: job.volume,
        paused: false,
        plays_left: job.repeat,
        next_id: 1,
        current: None,
        next: None,
        samples: sample_tx,
        bus: bus_tx,
        retry_until: None,
        retry_at: None,
        last_error: None,
        refusal: None,
        shape,
        job,
        proxy,
        codec: Arc::new(OnceLock::new()),
    };
    // The source first: a URL that cannot be opened is the caller's error, and no robot
    // enters the room for it.
    let url = ing.job.url.clone();
    let seek = ing.job.seek_secs;
    ing.current = Some(ing.open(&url, seek).map_err(|e| anyhow::anyhow!("{e:#}"))?);
    let deadline = Instant::now() + OPEN_TIMEOUT;
    while !ing
        .current
        .as_ref()
        .is_some_and(|c| c.phase == Phase::Playing)
    {
        tokio::select! {
            Some((id, ev)) = bus.recv() => {
                if let Err(why) = ing.bus_event(id, ev) {
                    return Ok((EndReason::SourceFailed, Some(ing.why(&why))));
                }
            },
            Some(s) = samples.recv() => { ing.on_sample(s); },
            _ = tokio::time::sleep_until(deadline.into()) => {
                return Ok((EndReason::SourceFailed, Some(ing.why("no media came from it in time"))));
            },
        }
        if ing.current.is_none() {
            return Ok((
                EndReason::SourceFailed,
                Some(ing.why("it ended before any media")),
            ));
        }
    }
    // A source whose video pad comes after its first audio gets a moment to show its codec.
    let grace = Instant::now() + Duration::from_secs(1);
    while ing.codec.get().is_none() && Instant::now() < grace {
        tokio::select! {
            Some(s) = samples.recv() => { ing.on_sample(s); },
            _ = tokio::time::sleep(Duration::from_millis(50)) => {},
        }
    }
    let codec = *ing.codec.get_or_init(|| Codec::Vp8);
    let passthrough = ing.current.as_ref().is_some_and(|c| {
        c.pipe
            .passthrough
            .load(std::sync::atomic::Ordering::Relaxed)
    });
    tracing::info!(?codec, passthrough, "publishing the source");
    let mut params = crate::rooms::join_params(&spec.join, &spec.join.room);
    // An ordinary anchor: recordings and relays take its media like anyone's.
    params.bot = false;
    let (client, mut room) = hearth_client::join(params)
        .await
        .context("entering the room")?;
    client.publish(codec, true);
    emit(&Event::Joined);
    let mut timeline = Timeline {
        start: Instant::now(),
        anchor: None,
    };
    let end_at = ing
        .job
        .max_secs
        .filter(|_| ing.job.repeat.is_none())
        .map(|s| Instant::now() + Duration::from_secs(s));
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut last_beat = Instant::now();
    let heartbeat = Duration::from_secs(hearth_media_proto::HEARTBEAT_SECS);
    let end = loop {
        tokio::select! {
            Some(s) = samples.recv() => {
                let Some(s) = ing.on_sample(s) else { continue };
                let ns = timeline.task_ns(s.pipe, s.epoch, s.pts_ns);
                match s.out {
                    Out::Audio => client.send_frame(Kind::Audio, rtp(ns, 48_000), s.data),
                    Out::Full => client.send_frame(Kind::Video, rtp(ns, 90_000), s.data),
                    Out::Small => client.send_small_frame(rtp(ns, 90_000), s.data),
                }
            },
            Some((id, ev)) = bus.recv() => match ing.bus_event(id, ev) {
                Ok(Some(done)) => break done,
                Ok(None) => {}
                Err(why) => break (EndReason::SourceFailed, Some(ing.why(&why))),
            },
            ev = room.recv() => match ev {
                Some(RoomEvent::KeyframeRequested(layer)) => {
                    if let Some(c) = &ing.current {
                        c.pipe.force_keyframe(if layer == Layer::Small { Out::Small } else { Out::Full });
                    }
                }
                Some(RoomEvent::Closed { reason, message }) => {
                    let r = if matches!(reason.as_str(), "kicked" | "room_dismissed") { EndReason::Removed } else { EndReason::Failed };
                    break (r, Some(format!("{reason}: {message}")));
                }
                Some(_) => {}
                None => break (EndReason::Failed, Some("the room session ended".into())),
            },
            c = cmds.recv() => match c {
                Some(Command::Stop) | None => break (EndReason::Stopped, None),
                Some(Command::UpdateIngest { url, volume, pause }) => {
                    if let Some(v) = volume {
                        ing.volume = v;
                        for l in [&ing.current, &ing.next].into_iter().flatten() {
                            l.pipe.set_volume(v);
                        }
                    }
                    if let Some(p) = pause {
                        ing.set_paused(p);
                        timeline.reset();
                    }
                    if let Some(u) = url {
                        match ing.open(&u, 0) {
                            Ok(l) => ing.next = Some(l),
                            Err(e) => emit(&Event::Warning { message: format!("StreamUrl {u}: {e:#}") }),
                        }
                    }
                }
                Some(_) => {}
            },
            _ = tick.tick() => {
                if let Some(done) = ing.tick() {
                    break done;
                }
                if end_at.is_some_and(|t| Instant::now() >= t) {
                    break (EndReason::SourceEnded, Some("MaxDuration reached".into()));
                }
                if last_beat.elapsed() >= heartbeat {
                    emit(&Event::Alive);
                    last_beat = Instant::now();
                }
                if let Some(n) = &ing.next {
                    if n.phase != Phase::Playing && n.opened_at.elapsed() > OPEN_TIMEOUT {
                        let why = ing.why("no media came from it in time");
                        emit(&Event::Warning { message: format!("StreamUrl {}: {why}; the source is unchanged", n.url) });
                        ing.next = None;
                    }
                }
            },
        }
    };
    ing.current = None;
    ing.next = None;
    crate::rooms::leave(&client, &mut room).await;
    Ok(end)
}

impl Ingester {
    fn open(&mut self, url: &str, seek: u64) -> Result<Live> {
        let id = self.next_id;
        self.next_id += 1;
        let pipe = SourcePipe::new(
            id,
            url,
            &self.shape,
            self.volume,
            self.codec.clone(),
            self.samples.clone(),
        )?;
        watch_bus_through_eos(id, &pipe.pipeline, self.bus.clone());
        match pipe.pipeline.set_state(gst::State::Paused) {
            Ok(gst::StateChangeSuccess::NoPreroll) => {
                pipe.pipeline.set_state(gst::State::Playing)?;
            }
            Ok(_) => {}
            Err(_) => anyhow::bail!("the source could not start"),
        }
        Ok(Live {
            pipe,
            url: url.to_owned(),
            phase: Phase::Opening,
            opened_at: Instant::now(),
            file: false,
            seek_to: seek,
            looping: false,
            last_sample: Instant::now(),
        })
    }

    /// The message for a source that failed: what the proxy refused, if it refused something.
    fn why(&self, what: &str) -> String {
        let inside = [&self.current, &self.next]
            .into_iter()
            .flatten()
            .find_map(|l| {
                l.pipe
                    .refused
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
            });
        match inside
            .or_else(|| self.refusal.clone())
            .or_else(|| self.proxy.last_refusal())
        {
            Some(r) => format!("{what} (refused: {r})"),
            None => what.to_owned(),
        }
    }

    /// Takes a frame: the first frame of an opening source makes it play (a replacement then
    /// takes over); the frame comes back if it is to be sent.
    fn on_sample(&mut self, s: Sample) -> Option<Sample> {
        if let Some(n) = self.next.as_mut().filter(|n| n.pipe.id == s.pipe) {
            n.phase = Phase::Playing;
            n.last_sample = Instant::now();
            // A replacement that plays takes over (the old source stops).
            self.current = self.next.take();
            self.retry_until = None;
            tracing::info!(url = %self.current.as_ref().map(|c| c.url.as_str()).unwrap_or(""), "the source is switched");
        }
        let c = self.current.as_mut().filter(|c| c.pipe.id == s.pipe)?;
        if c.phase == Phase::Opening {
            c.phase = Phase::Playing;
        }
        if c.phase != Phase::Playing {
            return None;
        }
        c.last_sample = Instant::now();
        c.looping = false;
        self.retry_until = None;
        let current_epoch = c.pipe.epoch.load(std::sync::atomic::Ordering::Relaxed);
        (s.epoch == current_epoch && !self.paused).then_some(s)
    }

    fn set_paused(&mut self, p: bool) {
        if self.paused == p {
            return;
        }
        self.paused = p;
        // A file holds its place; a live source goes on arriving (and is not sent).
        if let Some(c) = &self.current {
            if c.file && c.phase == Phase::Playing {
                let _ = c.pipe.pipeline.set_state(if p {
                    gst::State::Paused
                } else {
                    gst::State::Playing
                });
            }
            if !p {
                c.pipe.force_keyframe(Out::Full);
                c.pipe.force_keyframe(Out::Small);
            }
        }
    }

    /// A bus event; `Ok(Some(end))` ends the task, `Err` means the source failed for good.
    fn bus_event(&mut self, id: u64, ev: BusEvent) -> Result<Option<End>, String> {
        let is_next = self.next.as_ref().is_some_and(|n| n.pipe.id == id);
        let slot = if is_next {
            &mut self.next
        } else {
            &mut self.current
        };
        let Some(l) = slot.as_mut().filter(|l| l.pipe.id == id) else {
            return Ok(None);
        };
        match ev {
            BusEvent::AsyncDone => match l.phase {
                Phase::Opening => {
                    l.file = l.pipe.duration().is_some();
                    if l.file && l.seek_to > 0 {
                        let to = l.seek_to;
                        l.seek_to = 0;
                        l.phase = Phase::Seeking;
                        if let Err(e) = l.pipe.seek(to) {
                            tracing::warn!(error = %e, "SeekSecond");
                            l.phase = Phase::Opening;
                            let _ = l.pipe.pipeline.set_state(gst::State::Playing);
                            l.phase = Phase::Playing;
                        }
                    } else {
                        l.phase = Phase::Playing;
                        let _ = l.pipe.pipeline.set_state(gst::State::Playing);
                    }
                    l.last_sample = Instant::now();
                }
                Phase::Seeking => {
                    l.phase = Phase::Playing;
                    l.last_sample = Instant::now();
                    let _ = l.pipe.pipeline.set_state(gst::State::Playing);
                }
                Phase::Playing => {}
            },
            BusEvent::Eos if l.phase == Phase::Playing && l.file && !is_next => {
                if let Some(n) = self.plays_left.as_mut() {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        return Ok(Some((EndReason::SourceEnded, None)));
                    }
                }
                // The next play: a seek to the start (a server without byte ranges fails it,
                // and the file is opened again).
                l.looping = true;
                l.last_sample = Instant::now();
                if let Err(e) = l.pipe.seek(0) {
                    return self.dropped(false, format!("{e:#}"));
                }
            }
            BusEvent::Eos => return self.dropped(is_next, "the stream ended".into()),
            BusEvent::Error(e) => return self.dropped(is_next, e),
            _ => {}
        }
        Ok(None)
    }

    /// A source failed or ended where it should not have.
    fn dropped(&mut self, is_next: bool, why: String) -> Result<Option<End>, String> {
        tracing::warn!(error = %why, "the source dropped");
        self.last_error = Some(why.clone());
        if is_next {
            self.next = None;
            return Ok(None);
        }
        let Some(c) = self.current.take() else {
            return Ok(None);
        };
        let was_playing = c.phase == Phase::Playing;
        let (url, looping) = (c.url.clone(), c.looping);
        drop(c);
        if looping {
            // The start could not be sought back to: the next play opens the file again.
            tracing::info!(why = %why, "the next play reopens the source");
            return match self.open(&url, 0) {
                Ok(l) => {
                    self.current = Some(l);
                    Ok(None)
                }
                Err(e) => Err(format!("reopening for the next play: {e:#}")),
            };
        }
        // A source that never played fails, unless it is a reopening.
        if !was_playing && self.retry_until.is_none() {
            return Err(why);
        }
        // Reopened for a bounded time (a live stream's publisher may come back).
        let until = *self
            .retry_until
            .get_or_insert(Instant::now() + Duration::from_secs(self.job.live_retry_secs));
        if Instant::now() >= until {
            return Err(format!(
                "the source stayed away for {} s: {why}",
                self.job.live_retry_secs
            ));
        }
        self.job.url = url;
        self.retry_at = Some(Instant::now() + RETRY_EVERY);
        Ok(None)
    }

    /// The current source stopped giving media: reopened, or the task ends.
    fn current_dropped(&mut self, why: &str) -> Option<End> {
        self.dropped(false, why.into())
            .unwrap_or_else(|why| Some((EndReason::SourceFailed, Some(why))))
    }

    /// Every half second: sources that do not open, stalls, retries.
    fn tick(&mut self) -> Option<End> {
        if let Some(c) = &self.current {
            if c.phase == Phase::Opening && c.opened_at.elapsed() > OPEN_TIMEOUT {
                return self.current_dropped("no media came from it in time");
            }
            let stalled = c.phase == Phase::Playing
                && !(self.paused && c.file)
                && c.last_sample.elapsed() > STALL;
            if stalled {
                return self.current_dropped("no media for 5 s");
            }
        }
        if self.current.is_none() {
            if self.retry_at.is_some_and(|t| Instant::now() >= t) {
                self.retry_at = None;
                let url = self.job.url.clone();
                match self.open(&url, 0) {
                    Ok(l) => self.current = Some(l),
                    Err(e) => self.last_error = Some(format!("{e:#}")),
                }
                if self.current.is_none() {
                    self.retry_at = Some(Instant::now() + RETRY_EVERY);
                }
            }
            if self.retry_until.is_some_and(|u| Instant::now() >= u) {
                let why = self.last_error.clone().unwrap_or_default();
                return Some((
                    EndReason::SourceFailed,
                    Some(format!(
                        "the source stayed away for {} s: {why}",
                        self.job.live_retry_secs
                    )),
                ));
            }
        }
        None
    }
}
