//! A relay task (StartPublishCdnStream): follows the room through the client, decides whose
//! video and audio go into the output (bots only when named), mixes them on a canvas with the
//! layout and watermarks — or, for a single-stream relay, passes the user's H.264 through and
//! transcodes the rest — and hands the encoded output to the fan-out (CDN pushes, feedback
//! rooms), with the layout-and-volume SEI.

use crate::canvas::{Canvas, CanvasSpec};
use crate::fanout::{self, FanCmd, Fanout, Streams};
use crate::gst_util::BusEvent;
use crate::output::{EncKind, Encoded, OutputSpec, SeiMessage, SeiMessages, Tap};
use crate::rooms::Rooms;
use crate::roster::Roster;
use crate::timing::Clocks;
use crate::Runner;
use anyhow::Result;
use gstreamer as gst;
use hearth_client::{Client, Codec, Frame, Kind, Stream, TrackKey, User};
use hearth_media_proto::layout::{self, Layout, Placement, Present};
use hearth_media_proto::split_member;
use hearth_media_proto::{Command, Event, Outputs, Relay, RelaySource, RelayUpdate, VideoEncode};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Canvas ids: the mix (or a single relay's audio), and a single relay's transcoded video.
const MAIN: u64 = 0;
const SINGLE_VIDEO: u64 = 1;
/// A user whose level has not been reported for this long counts as silent.
const LEVEL_STALE: Duration = Duration::from_secs(1);

pub struct Relayer {
    spec: Relay,
    /// The task's room and the others its mix names.
    client: Rooms,
    roster: Roster,
    clocks: Clocks,
    canvases: HashMap<u64, Canvas>,
    work_dir: PathBuf,
    bus: mpsc::UnboundedSender<(u64, BusEvent)>,
    out: mpsc::UnboundedSender<Event>,
    media: Option<mpsc::UnboundedSender<Encoded>>,
    fan: Option<Fanout>,
    keyframes: mpsc::UnboundedReceiver<()>,
    sei: Option<std::sync::mpsc::Sender<SeiMessages>>,
    /// Users' audio levels: (dBFS, when).
    levels: HashMap<Arc<str>, (f64, Instant)>,
    placements: Vec<Placement>,
    /// Single relay of an H.264 publisher: waiting for a keyframe after a start or a loss.
    pass_waiting: bool,
    pass_caps: gst::Caps,
}

impl Relayer {
    pub fn new(
        work_dir: PathBuf,
        spec: Relay,
        client: Rooms,
        bus: mpsc::UnboundedSender<(u64, BusEvent)>,
        out: mpsc::UnboundedSender<Event>,
    ) -> Result<Self> {
        let (media_tx, media_rx) = mpsc::unbounded_channel();
        let (key_tx, key_rx) = mpsc::unbounded_channel();
        let video = match &spec.source {
            RelaySource::Mix(m) => m.video.is_some(),
            RelaySource::Single { video, .. } => video.is_some(),
        };
        let streams = Streams {
            video,
            audio: spec.audio.is_some(),
        };
        let fan = fanout::spawn(
            streams,
            spec.cdn.clone(),
            spec.feedback.clone(),
            media_rx,
            out.clone(),
            key_tx,
        );
        let mut r = Relayer {
            spec,
            client,
            roster: Roster::default(),
            clocks: Clocks::default(),
            canvases: HashMap::new(),
            work_dir,
            bus,
            out,
            media: Some(media_tx),
            fan: Some(fan),
            keyframes: key_rx,
            sei: None,
            levels: HashMap::new(),
            placements: Vec::new(),
            pass_waiting: true,
            pass_caps: gst::Caps::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build(),
        };
        // The first SEI is queued before the pipeline runs: its first IDR carries it too.
        let mut sei_rx = None;
        if matches!(r.spec.source, RelaySource::Mix(_)) {
            let (tx, rx) = std::sync::mpsc::channel();
            r.sei = Some(tx);
            r.send_sei();
            sei_rx = Some(rx);
        }
        let main = match &r.spec.source {
            RelaySource::Mix(m) => {
                let rx = sei_rx.take();
                let mut c = r.canvas(MAIN, m.video, rx, true)?;
                c.set_watermarks(&m.watermarks)?;
                c
            }
            RelaySource::Single { .. } => r.canvas(MAIN, None, None, false)?,
        };
        r.canvases.insert(MAIN, main);
        r.enter_named_rooms();
        r.send_sei();
        Ok(r)
    }

    /// Writes members of the task's own room as plain user ids, and enters the other rooms
    /// the layout and the audio lists name.
    fn enter_named_rooms(&mut self) {
        let RelaySource::Mix(m) = &mut self.spec.source else {
            return;
        };
        let rooms = &mut self.client;
        let ids = m
            .layout
            .cells
            .iter_mut()
            .filter_map(|c| c.user.as_mut())
            .chain(m.audio_users.allow.iter_mut())
            .chain(m.audio_users.block.iter_mut())
            .chain(m.sound_levels.iter_mut().map(|(u, _)| u));
        for id in ids {
            *id = rooms.normalize(id);
            rooms.ensure(id);
        }
    }

    fn canvas(
        &self,
        id: u64,
        video: Option<VideoEncode>,
        sei: Option<std::sync::mpsc::Receiver<SeiMessages>>,
        mix: bool,
    ) -> Result<Canvas> {
        let layout = self.layout();
        let audio = if id == MAIN { self.spec.audio } else { None };
        Canvas::new(
            id,
            CanvasSpec {
                video,
                audio,
                background: layout.map_or(0, |l| l.background),
                background_image: layout
                    .and_then(|l| l.background_image.as_deref())
                    .map(std::path::Path::new),
                fill: hearth_media_proto::Fill::LastFrame,
                outputs: vec![(
                    OutputSpec {
                        dir: self.work_dir.clone(),
                        base: String::new(),
                        outputs: Outputs::default(),
                        segment_secs: 0,
                        max_file_secs: 0,
                        max_file_bytes: 0,
                    },
                    video.is_some(),
                    audio.is_some(),
                )],
                tap: self.media.clone().map(|tx| Tap {
                    tx,
                    sei,
                    opus: None,
                }),
                watermarks: mix && video.is_some(),
                levels: mix,
            },
            self.bus.clone(),
        )
    }

    fn layout(&self) -> Option<&Layout> {
        match &self.spec.source {
            RelaySource::Mix(m) => Some(&m.layout),
            RelaySource::Single { .. } => None,
        }
    }

    /// Bots take part only when named (a custom cell or the audio allowlist): a stream pushed
    /// back into a room is not mixed into itself.
    fn video_named(&self, user: &str) -> bool {
        self.layout().is_some_and(|l| {
            l.cells.iter().any(|c| c.user.as_deref() == Some(user))
                || l.big_user.as_deref() == Some(user)
        })
    }

    fn audio_named(&self, user: &str) -> bool {
        match &self.spec.source {
            RelaySource::Mix(m) => m.audio_users.allow.iter().any(|u| u == user),
            RelaySource::Single { .. } => false,
        }
    }

    fn takes_video(&self, u: &User) -> bool {
        // Users of another room only where a position names them.
        let named_only = u.bot || split_member(&u.userid).1.is_some();
        match &self.spec.source {
            RelaySource::Mix(m) => {
                m.video.is_some() && (!named_only || self.video_named(&u.userid))
            }
            RelaySource::Single { user, video, .. } => video.is_some() && *user == u.userid,
        }
    }

    fn takes_audio(&self, u: &User) -> bool {
        if self.spec.audio.is_none() {
            return false;
        }
        match &self.spec.source {
            RelaySource::Mix(m) => {
                // Another room's users (a PK) only by the allowlist: each room mixes its own.
                let named_only = u.bot || split_member(&u.userid).1.is_some();
                m.audio_users.admits(&u.userid) && (!named_only || self.audio_named(&u.userid))
            }
            RelaySource::Single { user, .. } => *user == u.userid,
        }
    }

    fn single_stream(&self) -> Stream {
        match &self.spec.source {
            RelaySource::Single {
                stream: layout::Stream::Sub,
                ..
            } => Stream::Sub,
            _ => Stream::Main,
        }
    }

    fn resubscribe(&self, u: &User) {
        let video = self.takes_video(u);
        let audio = self.takes_audio(u) && u.audio;
        match &self.spec.source {
            RelaySource::Mix(_) => {
                self.client
                    .subscribe(&u.userid, Stream::Main, audio || (video && u.video));
                self.client
                    .subscribe(&u.userid, Stream::Sub, video && u.sub);
            }
            RelaySource::Single { .. } => {
                let s = self.single_stream();
                let v = video
                    && match s {
                        Stream::Main => u.video,
                        Stream::Sub => u.sub,
                    };
                // The sub stream carries no audio: the user's audio comes with the main one.
                self.client
                    .subscribe(&u.userid, Stream::Main, audio || (v && s == Stream::Main));
                self.client
                    .subscribe(&u.userid, Stream::Sub, v && s == Stream::Sub);
            }
        }
    }

    /// Whether a track goes into the output under the current rules.
    fn takes(&self, key: &TrackKey) -> bool {
        let Some(u) = self.roster.get(&key.user) else {
            return false;
        };
        match key.kind {
            Kind::Audio => key.stream == Stream::Main && self.takes_audio(u),
            Kind::Video => {
                self.takes_video(u)
                    && match &self.spec.source {
                        RelaySource::Mix(_) => true,
                        RelaySource::Single { .. } => key.stream == self.single_stream(),
                    }
            }
        }
    }

    fn relayout(&mut self) {
        match &self.spec.source {
            RelaySource::Mix(m) => {
                let Some(v) = m.video else { return };
                let mut present = Vec::new();
                for u in &self.roster {
                    if !self.takes_video(u) {
                        continue;
                    }
                    present.push(Present {
                        user: u.userid.clone(),
                        stream: layout::Stream::Main,
                        video: u.video && !u.video_muted,
                    });
                    if u.sub {
                        present.push(Present {
                            user: u.userid.clone(),
                            stream: layout::Stream::Sub,
                            video: true,
                        });
                    }
                }
                self.placements = layout::place(&m.layout, &present, v.width, v.height);
                if let Some(c) = self.canvases.get_mut(&MAIN) {
                    c.apply(&self.placements);
                }
            }
            RelaySource::Single { user, stream, .. } => {
                let Some(c) = self.canvases.get_mut(&SINGLE_VIDEO) else {
                    return;
                };
                let (w, h) = c.size();
                let one = Layout {
                    fit: layout::Fit::Pad,
                    ..Layout::default()
                };
                let p = Present {
                    user: user.clone(),
                    stream: *stream,
                    video: true,
                };
                self.placements = layout::place(&one, &[p], w, h);
                c.apply(&self.placements);
            }
        }
    }

    /// The layout-and-volume SEI of the users shown now, and the pass-through SEI.
    fn send_sei(&mut self) {
        let Some(tx) = &self.sei else { return };
        let mut messages = Vec::new();
        if let (Some(lv), RelaySource::Mix(m)) = (&self.spec.sei.layout_volume, &self.spec.source) {
            let (w, h) = m.video.map_or((0, 0), |v| (v.width, v.height));
            let now = Instant::now();
            let regions: Vec<serde_json::Value> = self
                .placements
                .iter()
                .filter(|p| p.has_video)
                .map(|p| {
                    let volume = self
                        .levels
                        .get(p.user.as_str())
                        .filter(|(_, at)| now - *at < LEVEL_STALE)
                        .map_or(0, |(db, _)| volume_of(*db));
                    serde_json::json!({
                        "uid": split_member(&p.user).0, "zorder": p.zorder, "volume": volume,
                        "x": p.x, "y": p.y, "w": p.width, "h": p.height,
                    })
                })
                .collect();
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let json = serde_json::json!({
                "app_data": lv.app_data, "canvas": {"w": w, "h": h},
                "regions": regions, "ver": "1.0", "ts": ts,
            });
            messages.push(SeiMessage {
                payload_type: lv.payload_type,
                uuid: None,
                payload: json.to_string().into_bytes(),
                interval_ms: lv.interval_ms,
                follow_idr: lv.follow_idr,
            });
        }
        if let Some(pt) = &self.spec.sei.pass_through {
            messages.push(SeiMessage {
                payload_type: pt.payload_type,
                uuid: pt.uuid,
                payload: pt.content.clone().into_bytes(),
                interval_ms: pt.interval_ms,
                follow_idr: pt.follow_idr,
            });
        }
        let _ = tx.send(SeiMessages { messages });
    }

    fn update(&mut self, u: RelayUpdate) {
        if let RelaySource::Mix(m) = &mut self.spec.source {
            if let Some(l) = u.layout {
                let (bg, img) = (m.layout.background, m.layout.background_image.clone());
                m.layout = l;
                m.layout.background = bg;
                m.layout.background_image = img;
            }
            if let Some((bg, img)) = u.background {
                m.layout.background = bg;
                m.layout.background_image = img;
                let img = m.layout.background_image.clone();
                if let Some(c) = self.canvases.get_mut(&MAIN) {
                    if let Err(e) = c.set_background(bg, img.as_deref().map(std::path::Path::new)) {
                        tracing::warn!(error = %e, "background image");
                    }
                }
            }
            if let Some((a, levels)) = u.audio_users {
                m.audio_users = a;
                m.sound_levels = levels;
            }
            if let Some(w) = u.watermarks {
                m.watermarks = w;
                let list = m.watermarks.clone();
                if let Some(c) = self.canvases.get_mut(&MAIN) {
                    if let Err(e) = c.set_watermarks(&list) {
                        self.warn(format!("watermarks: {e:#}"));
                    }
                }
            }
        }
        if let (
            Some((user, stream)),
            RelaySource::Single {
                user: u0,
                stream: s0,
                ..
            },
        ) = (u.single_user, &mut self.spec.source)
        {
            *u0 = user;
            *s0 = stream;
            self.pass_waiting = true;
        }
        if let Some(s) = u.sei {
            self.spec.sei = s;
        }
        if let Some(fan) = &self.fan {
            if let Some(c) = u.cdn {
                self.spec.cdn = c.clone();
                let _ = fan.cmds.send(FanCmd::Urls(c));
            }
            if let Some(f) = u.feedback {
                self.spec.feedback = f.clone();
                let _ = fan.cmds.send(FanCmd::Rooms(f));
            }
        }
        self.enter_named_rooms();
        let users = self.roster.snapshot();
        for u in &users {
            self.resubscribe(u);
        }
        let dropped: Vec<TrackKey> = self
            .canvases
            .values()
            .flat_map(|c| c.input_keys())
            .filter(|k| !self.takes(k))
            .collect();
        for k in dropped {
            self.track_removed(&k);
        }
        self.relayout();
        self.apply_sound_levels();
        self.send_sei();
    }

    /// SoundLevel: each mixed user's share of their own volume.
    fn apply_sound_levels(&self) {
        let RelaySource::Mix(m) = &self.spec.source else {
            return;
        };
        let Some(c) = self.canvases.get(&MAIN) else {
            return;
        };
        for key in c.input_keys() {
            if key.kind != Kind::Audio {
                continue;
            }
            let level = m
                .sound_levels
                .iter()
                .find(|(u, _)| *u == *key.user)
                .map_or(100, |(_, l)| *l);
            c.set_volume(&key, f64::from(level) / 100.0);
        }
    }

    /// A single relay's video frame: H.264 as it is, VP8/VP9 through a canvas of its own.
    fn single_video(&mut self, f: &Frame, capture: Instant) {
        if f.codec == Codec::H264 {
            if !f.contiguous && !f.keyframe {
                self.pass_waiting = true;
            }
            if self.pass_waiting {
                if !f.keyframe {
                    self.client.request_keyframe(f.track.clone());
                    return;
                }
                self.pass_waiting = false;
            }
            let Some(clock_ns) = self
                .canvases
                .get_mut(&MAIN)
                .and_then(|c| c.clock_ns(capture))
            else {
                return;
            };
            let mut buffer = gst::Buffer::from_slice(f.data.clone());
            {
                let b = buffer.get_mut().expect("new buffer");
                // Its time is its clock time (as encoded outputs' times map to theirs).
                b.set_pts(gst::ClockTime::from_nseconds(clock_ns));
                b.set_dts(gst::ClockTime::from_nseconds(clock_ns));
                if !f.keyframe {
                    b.set_flags(gst::BufferFlags::DELTA_UNIT);
                }
            }
            if let Some(tx) = &self.media {
                let _ = tx.send(Encoded {
                    kind: EncKind::H264,
                    buffer,
                    caps: self.pass_caps.clone(),
                    clock_ns,
                });
            }
            return;
        }
        if !self.canvases.contains_key(&SINGLE_VIDEO) {
            let RelaySource::Single { video, .. } = &self.spec.source else {
                return;
            };
            match self.canvas(SINGLE_VIDEO, *video, None, false) {
                Ok(c) => {
                    self.canvases.insert(SINGLE_VIDEO, c);
                }
                Err(e) => {
                    self.warn(format!("transcoding {}: {e:#}", f.track.user));
                    return;
                }
            }
        }
        self.push_to(SINGLE_VIDEO, f, capture);
    }

    fn push_to(&mut self, id: u64, f: &Frame, capture: Instant) {
        let Some(c) = self.canvases.get_mut(&id) else {
            return;
        };
        if !c.has_input(&f.track) {
            if let Err(e) = c.add_input(&f.track, f.codec) {
                let m = format!("adding {}'s {:?}: {e:#}", f.track.user, f.track.kind);
                self.warn(m);
                return;
            }
            self.relayout();
            self.apply_sound_levels();
        }
        let c = self.canvases.get_mut(&id).expect("present");
        if c.push(f, capture) {
            self.client.request_keyframe(f.track.clone());
        }
    }

    fn warn(&self, message: String) {
        tracing::warn!("{message}");
        let _ = self.out.send(Event::Warning { message });
    }
}

/// dBFS as TRTC's 0–100 volume: −60 dB and below is 0.
fn volume_of(db: f64) -> u32 {
    if !db.is_finite() {
        return 0;
    }
    ((db + 60.0) / 60.0 * 100.0).clamp(0.0, 100.0).round() as u32
}

impl Runner for Relayer {
    fn anchors(&self) -> usize {
        self.roster
            .iter()
            .filter(|u| self.takes_video(u) || self.takes_audio(u))
            .count()
    }

    fn user_entered(&mut self, u: User) {
        self.roster.entered(&u);
        self.resubscribe(&u);
        self.relayout();
    }

    fn user_updated(&mut self, u: User) {
        self.roster.updated(&u);
        self.resubscribe(&u);
        self.relayout();
    }

    fn user_exited(&mut self, user: &str) {
        self.roster.exited(user);
        self.levels.remove(user);
        self.relayout();
    }

    fn track_removed(&mut self, key: &TrackKey) {
        self.clocks.forget(key);
        for c in self.canvases.values_mut() {
            c.remove_input(key);
        }
        if key.kind == Kind::Video {
            self.pass_waiting = true;
        }
        self.relayout();
    }

    fn frame(&mut self, f: Frame) {
        if !self.takes(&f.track) {
            return;
        }
        let capture = self.clocks.capture_instant(&f);
        match (&self.spec.source, f.track.kind) {
            (RelaySource::Single { .. }, Kind::Video) => self.single_video(&f, capture),
            _ => self.push_to(MAIN, &f, capture),
        }
    }

    fn command(&mut self, c: Command) {
        if let Command::UpdateRelay(u) = c {
            self.update(*u);
        }
    }

    fn tick(&mut self) {
        let mut wanted = false;
        while self.keyframes.try_recv().is_ok() {
            wanted = true;
        }
        if wanted {
            for c in self.canvases.values() {
                c.force_keyframe();
            }
            if let RelaySource::Single { user, .. } = &self.spec.source {
                self.client.request_keyframe(TrackKey {
                    user: user.as_str().into(),
                    stream: self.single_stream(),
                    kind: Kind::Video,
                });
            }
        }
        self.send_sei();
    }

    fn bus_event(&mut self, id: u64, ev: BusEvent) -> Result<bool, String> {
        match ev {
            BusEvent::Level { element, rms_db } => {
                if let Some(user) = self.canvases.get(&id).and_then(|c| c.level_user(&element)) {
                    self.levels.insert(user, (rms_db, Instant::now()));
                }
                Ok(false)
            }
            BusEvent::Eos => {
                if let Some(c) = self.canvases.remove(&id) {
                    c.stop();
                }
                Ok(true)
            }
            BusEvent::Error(e) => Err(e),
            BusEvent::FragmentOpened { .. }
            | BusEvent::FragmentClosed { .. }
            | BusEvent::AsyncDone => Ok(false),
        }
    }

    fn finish(&mut self) {
        for c in self.canvases.values() {
            c.send_eos();
        }
    }

    fn stalled_for(&self) -> Duration {
        self.canvases
            .values()
            .map(Canvas::stalled_for)
            .max()
            .unwrap_or_default()
    }

    fn canvases_left(&self) -> usize {
        self.canvases.len()
    }

    fn room_entered(&mut self, key: String, r: Result<Client, String>) {
        if let Some(m) = self.client.entered(key, r) {
            self.warn(m);
            return;
        }
        let users = self.roster.snapshot();
        for u in &users {
            self.resubscribe(u);
        }
    }

    fn outputs_done(&mut self) -> Option<tokio::task::JoinHandle<()>> {
        self.client.exit();
        self.media = None;
        self.canvases.clear();
        self.fan.take().map(|f| f.done)
    }
}
