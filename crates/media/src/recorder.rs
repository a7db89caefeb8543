//! A recording task: follows the room through the client, decides who is recorded
//! (SubscribeStreamUserIds, StreamType, MediaId, bots), feeds their frames into one canvas
//! (mixed) or one per user (single), lays them out, and reports files as they close.

use crate::canvas::{Canvas, CanvasSpec};
use crate::gst_util::BusEvent;
use crate::output::OutputSpec;
use crate::roster::Roster;
use crate::timing::Clocks;
use crate::Runner;
use anyhow::Result;
use base64::Engine;
use hearth_client::{Client, Frame, Kind, Stream, TrackKey, User};
use hearth_media_proto::layout::{self, Layout, Present};
use hearth_media_proto::{
    Command, Event, Outputs, RecordMode, Recording, Subscriptions, TrackType,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::mpsc;

pub struct Recorder {
    spec: Recording,
    task_id: String,
    work_dir: PathBuf,
    client: Client,
    /// Users in entry order.
    roster: Roster,
    clocks: Clocks,
    /// Mixed: one canvas (id 0). Single: one per (user, stream).
    canvases: HashMap<u64, Canvas>,
    canvas_of: HashMap<(Arc<str>, Stream), u64>,
    next_id: u64,
    bus: mpsc::UnboundedSender<(u64, BusEvent)>,
    /// Open files: location → (relative path, running ns at open).
    open: HashMap<String, (String, u64)>,
    out: mpsc::UnboundedSender<Event>,
}

impl Recorder {
    pub fn new(
        task_id: String,
        work_dir: PathBuf,
        spec: Recording,
        client: Client,
        bus: mpsc::UnboundedSender<(u64, BusEvent)>,
        out: mpsc::UnboundedSender<Event>,
    ) -> Result<Self> {
        let mut r = Recorder {
            spec,
            task_id,
            work_dir,
            client,
            roster: Roster::default(),
            clocks: Clocks::default(),
            canvases: HashMap::new(),
            canvas_of: HashMap::new(),
            next_id: 1,
            bus,
            open: HashMap::new(),
            out,
        };
        if r.spec.mode == RecordMode::Mixed {
            let base = r.task_id.clone();
            let c = r.canvas(
                &base,
                r.spec.stream_type.video(),
                r.spec.stream_type.audio(),
                true,
            )?;
            r.canvases.insert(0, c);
        }
        Ok(r)
    }

    fn wanted(&self, u: &User) -> bool {
        !u.bot || self.spec.include_bots
    }

    /// Subscribes to what is recorded of a user, and drops what is not.
    fn resubscribe(&mut self, u: &User) {
        if !self.wanted(u) {
            return;
        }
        let subs = &self.spec.subscriptions;
        let st = self.spec.stream_type;
        let audio = st.audio() && subs.audio.admits(&u.userid) && u.audio;
        let video_ok = st.video() && subs.video.admits(&u.userid);
        let main = self.spec.media.main() && (audio || (video_ok && u.video));
        let sub = self.spec.media.sub() && video_ok && u.sub;
        tracing::info!(user = %u.userid, main, sub, "subscriptions");
        self.client.subscribe(&u.userid, Stream::Main, main);
        self.client.subscribe(&u.userid, Stream::Sub, sub);
    }

    /// Whether a track is recorded under the current rules.
    fn records(&self, key: &TrackKey) -> bool {
        let Some(u) = self.roster.get(&key.user) else {
            return false;
        };
        if !self.wanted(u) {
            return false;
        }
        let subs = &self.spec.subscriptions;
        match (key.kind, key.stream) {
            (Kind::Audio, Stream::Main) => {
                self.spec.stream_type.audio() && subs.audio.admits(&key.user)
            }
            (Kind::Audio, Stream::Sub) => false,
            (Kind::Video, s) => {
                self.spec.stream_type.video()
                    && subs.video.admits(&key.user)
                    && match s {
                        Stream::Main => self.spec.media.main(),
                        Stream::Sub => self.spec.media.sub(),
                    }
            }
        }
    }

    /// The canvas a track goes to (made on first use in single mode).
    fn canvas_for(&mut self, key: &TrackKey) -> Option<u64> {
        if self.spec.mode == RecordMode::Mixed {
            return Some(0);
        }
        // An Arc clone, not a copy of the name: this runs for every frame.
        let k = (key.user.clone(), key.stream);
        if let Some(id) = self.canvas_of.get(&k) {
            return Some(*id);
        }
        let base = format!(
            "{}__UserId_s_{}__UserId_e_{}",
            self.task_id,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.user.as_bytes()),
            key.stream.name()
        );
        let video = self.spec.stream_type.video();
        let audio = self.spec.stream_type.audio() && key.stream == Stream::Main;
        match self.canvas(&base, video, audio, false) {
            Ok(c) => {
                let id = c.id;
                self.canvases.insert(id, c);
                self.canvas_of.insert(k, id);
                Some(id)
            }
            Err(e) => {
                self.warn(format!("recording {}: {e:#}", key.user));
                None
            }
        }
    }

    fn canvas(&mut self, base: &str, video: bool, audio: bool, mixed: bool) -> Result<Canvas> {
        let id = if mixed { 0 } else { self.next_id };
        self.next_id += 1;
        let out = |suffix: &str, outputs: Outputs| OutputSpec {
            dir: self.work_dir.clone(),
            base: format!("{base}{suffix}"),
            outputs,
            segment_secs: self.spec.segment_secs,
            max_file_secs: self.spec.max_file_secs,
            max_file_bytes: self.spec.max_file_bytes,
        };
        let outputs = if mixed || self.spec.av_merge || !(video && audio) {
            let tag = match (mixed, video, audio) {
                (true, _, _) => "",
                (false, true, true) => "_av",
                (false, true, false) => "_video",
                (false, false, _) => "_audio",
            };
            vec![(out(tag, self.spec.outputs), video, audio)]
        } else {
            vec![
                (out("_video", self.spec.outputs), true, false),
                (out("_audio", self.spec.outputs), false, true),
            ]
        };
        let layout = &self.spec.layout;
        Canvas::new(
            id,
            CanvasSpec {
                video: video.then_some(self.spec.video),
                audio: audio.then_some(self.spec.audio),
                background: layout.background,
                background_image: layout
                    .background_image
                    .as_deref()
                    .map(Path::new)
                    .filter(|_| mixed),
                fill: self.spec.fill,
                outputs,
                tap: None,
                watermarks: false,
                levels: false,
            },
            self.bus.clone(),
        )
    }

    fn end_canvas(&mut self, user: &str, stream: Stream) {
        if let Some(id) = self.canvas_of.remove(&(Arc::from(user), stream)) {
            if let Some(c) = self.canvases.get(&id) {
                // Its files close on EOS; the canvas goes when the bus says so.
                c.send_eos();
            }
        }
    }

    /// Applies the layout to the users present.
    pub fn relayout(&mut self) {
        if self.spec.mode == RecordMode::Single {
            let one = Layout {
                fit: layout::Fit::Pad,
                ..Layout::default()
            };
            let cells: Vec<(u64, Present)> = self
                .canvas_of
                .iter()
                .map(|((user, stream), id)| {
                    let present = Present {
                        user: user.to_string(),
                        stream: proto_stream(*stream),
                        video: self.shows_video(user, *stream),
                    };
                    (*id, present)
                })
                .collect();
            for (id, present) in cells {
                if let Some(c) = self.canvases.get_mut(&id) {
                    let (w, h) = c.size();
                    c.apply(&layout::place(&one, &[present], w, h));
                }
            }
            return;
        }
        let Some((w, h)) = self.canvases.get(&0).map(Canvas::size) else {
            return;
        };
        let mut present = Vec::new();
        for u in &self.roster {
            if !self.wanted(u) || !self.spec.subscriptions.video.admits(&u.userid) {
                continue;
            }
            if self.spec.media.main() {
                present.push(Present {
                    user: u.userid.clone(),
                    stream: layout::Stream::Main,
                    video: self.shows_video(&u.userid, Stream::Main),
                });
            }
            if self.spec.media.sub() && u.sub {
                present.push(Present {
                    user: u.userid.clone(),
                    stream: layout::Stream::Sub,
                    video: self.shows_video(&u.userid, Stream::Sub),
                });
            }
        }
        let placements = layout::place(&self.spec.layout, &present, w, h);
        if let Some(c) = self.canvases.get_mut(&0) {
            c.apply(&placements);
        }
    }

    fn shows_video(&self, user: &str, stream: Stream) -> bool {
        self.roster.iter().any(|u| {
            u.userid == user
                && match stream {
                    Stream::Main => u.video && !u.video_muted,
                    Stream::Sub => u.sub,
                }
        })
    }

    /// ModifyCloudRecording: each given part replaces the running one.
    fn update(&mut self, layout: Option<Layout>, subscriptions: Option<Subscriptions>) {
        if let Some(l) = layout {
            self.spec.layout = l;
        }
        if let Some(s) = subscriptions {
            self.spec.subscriptions = s;
            let users = self.roster.snapshot();
            for u in &users {
                self.resubscribe(u);
            }
            let dropped: Vec<TrackKey> = self
                .canvases
                .values()
                .flat_map(|c| c.input_keys())
                .filter(|k| !self.records(k))
                .collect();
            for k in dropped {
                self.track_removed(&k);
            }
        }
        self.relayout();
    }

    fn warn(&self, message: String) {
        tracing::warn!("{message}");
        let _ = self.out.send(Event::Warning { message });
    }
}

impl Runner for Recorder {
    /// Anchors (not bots, unless bots are recorded) in the room.
    fn anchors(&self) -> usize {
        self.roster
            .iter()
            .filter(|u| !u.bot || self.spec.include_bots)
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
        if self.spec.mode == RecordMode::Single {
            for s in [Stream::Main, Stream::Sub] {
                self.end_canvas(user, s);
            }
        }
        self.relayout();
    }

    fn track_removed(&mut self, key: &TrackKey) {
        self.clocks.forget(key);
        for c in self.canvases.values_mut() {
            c.remove_input(key);
        }
        self.relayout();
    }

    fn frame(&mut self, f: Frame) {
        if !self.records(&f.track) {
            return;
        }
        let Some(id) = self.canvas_for(&f.track) else {
            return;
        };
        let capture = self.clocks.capture_instant(&f);
        let Some(c) = self.canvases.get_mut(&id) else {
            return;
        };
        if !c.has_input(&f.track) {
            if let Err(e) = c.add_input(&f.track, f.codec) {
                self.warn(format!(
                    "adding {}'s {:?}: {e:#}",
                    f.track.user, f.track.kind
                ));
                return;
            }
            self.relayout();
        }
        let c = self.canvases.get_mut(&id).expect("present");
        if c.push(&f, capture) {
            self.client.request_keyframe(f.track.clone());
        }
    }

    /// A bus event of canvas `id`; true when that canvas has finished (EOS).
    fn bus_event(&mut self, id: u64, ev: BusEvent) -> Result<bool, String> {
        match ev {
            BusEvent::FragmentOpened {
                location,
                running_ns,
            } => {
                let rel = relative(&self.work_dir, &location);
                let user = self
                    .canvas_of
                    .iter()
                    .find(|(_, v)| **v == id)
                    .map(|((u, _), _)| u.to_string());
                let track = match self.spec.mode {
                    RecordMode::Mixed => match self.spec.stream_type {
                        hearth_media_proto::StreamType::AudioVideo => TrackType::AudioVideo,
                        hearth_media_proto::StreamType::Audio => TrackType::Audio,
                        hearth_media_proto::StreamType::Video => TrackType::Video,
                    },
                    RecordMode::Single => track_type(&rel),
                };
                let _ = self.out.send(Event::FileOpened {
                    path: rel.clone(),
                    user,
                    track,
                    begin_ms: now_ms(),
                });
                self.open.insert(location, (rel, running_ns));
                Ok(false)
            }
            BusEvent::FragmentClosed {
                location,
                running_ns,
            } => {
                let (rel, start) = self
                    .open
                    .remove(&location)
                    .unwrap_or_else(|| (relative(&self.work_dir, &location), running_ns));
                let bytes = std::fs::metadata(&location).map(|m| m.len()).unwrap_or(0);
                let playlist = rel
                    .strip_suffix(".ts")
                    .and_then(|s| s.rsplit_once('_'))
                    .map(|(base, _)| format!("{base}.m3u8"));
                let _ = self.out.send(Event::FileClosed {
                    path: rel,
                    bytes,
                    duration_ms: running_ns.saturating_sub(start) / 1_000_000,
                    playlist,
                });
                Ok(false)
            }
            BusEvent::Eos => {
                if let Some(c) = self.canvases.remove(&id) {
                    c.stop();
                }
                Ok(true)
            }
            BusEvent::Level { .. } | BusEvent::AsyncDone => Ok(false),
            BusEvent::Error(e) => Err(e),
        }
    }

    /// Sends EOS to every canvas; `bus_event` reports each as it finishes.
    fn finish(&mut self) {
        for c in self.canvases.values() {
            c.send_eos();
        }
    }

    /// The longest any pipeline has gone without producing.
    fn stalled_for(&self) -> std::time::Duration {
        self.canvases
            .values()
            .map(Canvas::stalled_for)
            .max()
            .unwrap_or_default()
    }

    fn canvases_left(&self) -> usize {
        self.canvases.len()
    }

    fn command(&mut self, c: Command) {
        if let Command::Update {
            layout,
            subscriptions,
        } = c
        {
            self.update(layout.map(|l| *l), subscriptions);
        }
    }
}

fn proto_stream(s: Stream) -> layout::Stream {
    match s {
        Stream::Main => layout::Stream::Main,
        Stream::Sub => layout::Stream::Sub,
    }
}

fn relative(dir: &Path, location: &str) -> String {
    Path::new(location)
        .strip_prefix(dir)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| location.to_owned())
}

fn track_type(rel: &str) -> TrackType {
    if rel.contains("_audio_") || rel.ends_with(".aac") {
        TrackType::Audio
    } else if rel.contains("_video_") {
        TrackType::Video
    } else {
        TrackType::AudioVideo
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
