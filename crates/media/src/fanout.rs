//! A relay's outputs, fed the encoded media of its pipelines: one RTMP(S) push per CDN URL,
//! each its own small pipeline (appsrc → parse → flvmux → rtmp2sink) that is rebuilt with
//! backoff when its connection fails or drops while the others carry on; and one robot per
//! feedback room publishing the output there (H.264 + Opus over the room's WebRTC).

use crate::gst_util::{make, watch_bus, BusEvent};
use crate::output::{EncKind, Encoded};
use anyhow::{Context, Result};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use hearth_client::{Client, Codec, Event as RoomEvent, Kind};
use hearth_media_proto::{Event, Join, RoomRef};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A push that stayed up this long after its first media is reported connected.
const CONFIRM_AFTER: Duration = Duration::from_secs(1);
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(16);

pub enum FanCmd {
    Urls(Vec<String>),
    Rooms(Vec<Join>),
}

/// What the relay's outputs are made of.
#[derive(Clone, Copy)]
pub struct Streams {
    pub video: bool,
    pub audio: bool,
}

/// The running fan-out: commands in; it ends when the media channel closes.
pub struct Fanout {
    pub cmds: mpsc::UnboundedSender<FanCmd>,
    pub done: tokio::task::JoinHandle<()>,
}

/// Starts the fan-out; `keyframe` is told whenever an output needs an IDR to start.
pub fn spawn(
    streams: Streams,
    urls: Vec<String>,
    rooms: Vec<Join>,
    media: mpsc::UnboundedReceiver<Encoded>,
    events: mpsc::UnboundedSender<Event>,
    keyframe: mpsc::UnboundedSender<()>,
) -> Fanout {
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let done = tokio::spawn(run(streams, urls, rooms, media, cmd_rx, events, keyframe));
    Fanout { cmds: cmd_tx, done }
}

struct Pipe {
    id: u64,
    pipeline: gst::Pipeline,
    video: Option<gst_app::AppSrc>,
    audio: Option<gst_app::AppSrc>,
    /// Clock time of the first buffer (time 0 of this connection's FLV).
    base: u64,
    /// Whether each source's pad offset is set (video, audio): its buffers keep their own
    /// times, and the offset makes them this connection's.
    offset_set: [bool; 2],
}

struct Pusher {
    url: String,
    pipe: Option<Pipe>,
    /// While failed: when to try again.
    retry_at: Option<Instant>,
    backoff: Duration,
    /// Reported connected once this passes without an error.
    confirm_at: Option<Instant>,
    connected: bool,
}

struct Room {
    join: Join,
    client: Option<Client>,
}

struct State {
    streams: Streams,
    vcaps: Option<gst::Caps>,
    acaps: Option<gst::Caps>,
    pushers: Vec<Pusher>,
    rooms: Vec<Room>,
    next_id: u64,
    bus: mpsc::UnboundedSender<(u64, BusEvent)>,
    events: mpsc::UnboundedSender<Event>,
    keyframe: mpsc::UnboundedSender<()>,
    joined: mpsc::UnboundedSender<(String, Result<Client, String>)>,
    /// Bytes handed to CDN pushes, and what was last reported.
    sent: u64,
    reported: u64,
    last_report: Instant,
}

async fn run(
    streams: Streams,
    urls: Vec<String>,
    rooms: Vec<Join>,
    mut media: mpsc::UnboundedReceiver<Encoded>,
    mut cmds: mpsc::UnboundedReceiver<FanCmd>,
    events: mpsc::UnboundedSender<Event>,
    keyframe: mpsc::UnboundedSender<()>,
) {
    let (bus_tx, mut bus_rx) = mpsc::unbounded_channel();
    let (joined_tx, mut joined_rx) = mpsc::unbounded_channel();
    let mut s = State {
        streams,
        vcaps: None,
        acaps: None,
        pushers: Vec::new(),
        rooms: Vec::new(),
        next_id: 1,
        bus: bus_tx,
        events,
        keyframe,
        joined: joined_tx,
        sent: 0,
        reported: 0,
        last_report: Instant::now(),
    };
    s.set_urls(urls);
    s.set_rooms(rooms);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            m = media.recv() => match m {
                Some(e) => s.media(&e),
                None => break,
            },
            Some(c) = cmds.recv() => match c {
                FanCmd::Urls(u) => s.set_urls(u),
                FanCmd::Rooms(r) => s.set_rooms(r),
            },
            Some((id, ev)) = bus_rx.recv() => s.bus_event(id, ev),
            Some((room, r)) = joined_rx.recv() => s.room_joined(&room, r),
            _ = tick.tick() => s.tick(),
        }
    }
    s.report_sent();
    let closing: Vec<_> = s.pushers.iter_mut().filter_map(|p| p.close(true)).collect();
    for h in closing {
        let _ = h.join();
    }
    for r in &s.rooms {
        if let Some(c) = &r.client {
            c.exit();
        }
    }
}

impl State {
    fn set_urls(&mut self, urls: Vec<String>) {
        // URLs kept keep their connections untouched.
        self.pushers.retain_mut(|p| {
            let keep = urls.contains(&p.url);
            if !keep {
                p.close(true);
            }
            keep
        });
        for u in urls {
            if !self.pushers.iter().any(|p| p.url == u) {
                self.pushers.push(Pusher {
                    url: u,
                    pipe: None,
                    retry_at: None,
                    backoff: FIRST_RETRY,
                    confirm_at: None,
                    connected: false,
                });
                let _ = self.keyframe.send(());
            }
        }
    }

    fn set_rooms(&mut self, rooms: Vec<Join>) {
        self.rooms.retain(|r| {
            let keep = rooms.iter().any(|j| j == &r.join);
            if !keep {
                if let Some(c) = &r.client {
                    c.exit();
                }
            }
            keep
        });
        for j in rooms {
            if self.rooms.iter().any(|r| r.join == j) {
                continue;
            }
            let tx = self.joined.clone();
            let keyframe = self.keyframe.clone();
            let events = self.events.clone();
            let key = room_key(&j);
            let params = crate::rooms::join_params(&j, &j.room);
            tokio::spawn(async move {
                match hearth_client::join(params).await {
                    Ok((client, mut rx)) => {
                        client.publish(Codec::H264, false);
                        let _ = tx.send((key.clone(), Ok(client)));
                        while let Some(ev) = rx.recv().await {
                            match ev {
                                RoomEvent::KeyframeRequested(_) => {
                                    let _ = keyframe.send(());
                                }
                                RoomEvent::Closed { reason, message } => {
                                    let _ = events.send(Event::Warning {
                                        message: format!(
                                            "the robot in room {key} left: {reason} {message}"
                                        ),
                                    });
                                    break;
                                }
                                _ => {}
                            }
                        }
                    }
                    Err(e) => {
                        let _ = tx.send((key, Err(format!("{e:#}"))));
                    }
                }
            });
            self.rooms.push(Room {
                join: j,
                client: None,
            });
        }
    }

    fn room_joined(&mut self, key: &str, r: Result<Client, String>) {
        let Some(room) = self.rooms.iter_mut().find(|r| room_key(&r.join) == key) else {
            if let Ok(c) = r {
                c.exit();
            }
            return;
        };
        match r {
            Ok(c) => {
                room.client = Some(c);
                let _ = self.keyframe.send(());
            }
            Err(e) => {
                let _ = self.events.send(Event::Warning {
                    message: format!("the robot could not enter room {key}: {e}"),
                });
            }
        }
    }

    fn media(&mut self, e: &Encoded) {
        let held = match e.kind {
            EncKind::H264 => &mut self.vcaps,
            EncKind::Aac => &mut self.acaps,
            EncKind::Opus => &mut None,
        };
        // Most buffers carry the very caps object held (a pointer test, not a comparison).
        if held
            .as_ref()
            .is_none_or(|c| c.as_ptr() != e.caps.as_ptr() && *c != e.caps)
        {
            *held = Some(e.caps.clone());
        }
        let key =
            e.kind == EncKind::H264 && !e.buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let ready = (!self.streams.video || self.vcaps.is_some())
            && (!self.streams.audio || self.acaps.is_some());
        let starts_here = ready
            && if self.streams.video {
                key
            } else {
                e.kind == EncKind::Aac
            };
        for i in 0..self.pushers.len() {
            if self.pushers[i].pipe.is_none() && self.pushers[i].retry_at.is_none() && starts_here {
                let id = self.next_id;
                self.next_id += 1;
                match self.open(id, &self.pushers[i].url, e.clock_ns) {
                    Ok(pipe) => {
                        let p = &mut self.pushers[i];
                        p.pipe = Some(pipe);
                        p.confirm_at = Some(Instant::now() + CONFIRM_AFTER);
                    }
                    Err(err) => {
                        let msg = format!("{err:#}");
                        self.pushers[i].failed(&self.events, msg);
                    }
                }
            }
            if let Some(pipe) = &mut self.pushers[i].pipe {
                if pipe.push(e) {
                    self.sent += e.buffer.size() as u64;
                }
            }
        }
        if !self.rooms.is_empty() {
            let kind = match e.kind {
                EncKind::H264 => Some((Kind::Video, 90_000u128)),
                EncKind::Opus => Some((Kind::Audio, 48_000u128)),
                EncKind::Aac => None,
            };
            if let Some((kind, rate)) = kind {
                let rtp = (u128::from(e.clock_ns) * rate / 1_000_000_000) as u64;
                if let Ok(map) = e.buffer.map_readable() {
                    for r in &self.rooms {
                        if let Some(c) = &r.client {
                            c.send_frame(kind, rtp, map.as_slice().to_vec());
                        }
                    }
                }
            }
        }
    }

    /// One push pipeline for `url`, its FLV starting at clock time `base`.
    fn open(&self, id: u64, url: &str, base: u64) -> Result<Pipe> {
        let pipeline = gst::Pipeline::with_name(&format!("push-{id}"));
        let mux = make("flvmux")?;
        mux.set_property("streamable", true);
        let sink = make("rtmp2sink")?;
        sink.set_property("location", url);
        sink.set_property("sync", false);
        pipeline.add(&mux)?;
        pipeline.add(&sink)?;
        mux.link(&sink)?;
        let src = |caps: &gst::Caps| {
            gst_app::AppSrc::builder()
                .caps(caps)
                .format(gst::Format::Time)
                // A connection that cannot keep up drops, instead of holding the others.
                .max_bytes(4 << 20)
                .leaky_type(gst_app::AppLeakyType::Downstream)
                .build()
        };
        let mut video = None;
        let mut audio = None;
        if self.streams.video {
            let caps = self.vcaps.as_ref().context("no video caps yet")?;
            let v = src(caps);
            let parse = make("h264parse")?;
            pipeline.add(v.upcast_ref::<gst::Element>())?;
            pipeline.add(&parse)?;
            v.link(&parse)?;
            parse
                .link_pads(Some("src"), &mux, Some("video"))
                .context("linking video into flvmux")?;
            video = Some(v);
        }
        if self.streams.audio {
            let caps = self.acaps.as_ref().context("no audio caps yet")?;
            let a = src(caps);
            let parse = make("aacparse")?;
            pipeline.add(a.upcast_ref::<gst::Element>())?;
            pipeline.add(&parse)?;
            a.link(&parse)?;
            parse
                .link_pads(Some("src"), &mux, Some("audio"))
                .context("linking audio into flvmux")?;
            audio = Some(a);
        }
        watch_bus(id, &pipeline, self.bus.clone());
        pipeline
            .set_state(gst::State::Playing)
            .with_context(|| format!("starting the push to {url}"))?;
        tracing::info!(url, "CDN push started");
        Ok(Pipe {
            id,
            pipeline,
            video,
            audio,
            base,
            offset_set: [false; 2],
        })
    }

    fn bus_event(&mut self, id: u64, ev: BusEvent) {
        let Some(p) = self
            .pushers
            .iter_mut()
            .find(|p| p.pipe.as_ref().is_some_and(|x| x.id == id))
        else {
            return;
        };
        match ev {
            BusEvent::Error(e) => p.failed(&self.events, e),
            BusEvent::Eos => p.failed(&self.events, "the connection ended".into()),
            _ => {}
        }
    }

    fn report_sent(&mut self) {
        if self.sent != self.reported {
            self.reported = self.sent;
            let _ = self.events.send(Event::Sent { bytes: self.sent });
        }
        self.last_report = Instant::now();
    }

    fn tick(&mut self) {
        if self.last_report.elapsed() >= Duration::from_secs(5) {
            self.report_sent();
        }
        let now = Instant::now();
        for p in &mut self.pushers {
            // A retried URL starts at the next IDR of the stream (forcing one for each retry
            // of a dead URL would cost every viewer bitrate).
            if p.retry_at.is_some_and(|t| now >= t) {
                p.retry_at = None;
            }
            if p.confirm_at.is_some_and(|t| now >= t) && p.pipe.is_some() {
                p.confirm_at = None;
                p.connected = true;
                p.backoff = FIRST_RETRY;
                let _ = self.events.send(Event::Push {
                    url: p.url.clone(),
                    connected: true,
                    message: None,
                });
            }
        }
    }
}

impl Pipe {
    /// Pushes one buffer into this connection; false when it does not go (not carried, or
    /// before the connection's start).
    fn push(&mut self, e: &Encoded) -> bool {
        let (src, i) = match e.kind {
            EncKind::H264 => (self.video.as_ref(), 0),
            EncKind::Aac => (self.audio.as_ref(), 1),
            EncKind::Opus => (None, 0),
        };
        let Some(src) = src else { return false };
        let Some(pts) = e.buffer.pts() else {
            return false;
        };
        if e.clock_ns < self.base {
            return false;
        }
        if !self.offset_set[i] {
            // Running time here = pts + offset = clock time − base. (A stream's clock time
            // and pts differ by a constant: its segment and the pipeline's base time.)
            let offset = e.clock_ns as i64 - pts.nseconds() as i64 - self.base as i64;
            if let Some(pad) = src.static_pad("src") {
                pad.set_offset(offset);
            }
            self.offset_set[i] = true;
        }
        // The same buffer (a reference, no copy) goes to every connection.
        src.push_buffer(e.buffer.clone()).is_ok()
    }
}

impl Pusher {
    fn failed(&mut self, events: &mpsc::UnboundedSender<Event>, message: String) {
        tracing::warn!(url = %self.url, %message, retry_in = ?self.backoff, "CDN push failed");
        self.close(false);
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_RETRY);
        self.connected = false;
        self.confirm_at = None;
        let _ = events.send(Event::Push {
            url: self.url.clone(),
            connected: false,
            message: Some(message),
        });
    }

    /// Ends the connection (`eos`: finish the FLV first) on a thread of its own, so that the
    /// other outputs go on meanwhile.
    fn close(&mut self, eos: bool) -> Option<std::thread::JoinHandle<()>> {
        let p = self.pipe.take()?;
        std::thread::Builder::new()
            .name(format!("unpush-{}", p.id))
            .spawn(move || {
                if eos {
                    for s in [&p.video, &p.audio].into_iter().flatten() {
                        let _ = s.end_of_stream();
                    }
                    // rtmp2sink sends what it holds and closes the stream on EOS.
                    std::thread::sleep(Duration::from_millis(300));
                }
                let _ = p.pipeline.set_state(gst::State::Null);
                // Ends the bus thread of this pipeline.
                if let Some(bus) = p.pipeline.bus() {
                    let _ = bus.post(gst::message::Eos::new());
                }
            })
            .ok()
    }
}

fn room_key(j: &Join) -> String {
    match &j.room {
        RoomRef::Num(n) => n.to_string(),
        RoomRef::Str(s) => s.clone(),
    }
}
