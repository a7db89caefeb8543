//! A live canvas: a compositor and an audio mixer over users' decoded tracks, always clocking
//! (a solid background and silence underneath), so that users coming, going, muting or
//! stalling never stop the output. Mixed recording has one for the room; single-stream
//! recording one per user.

use crate::gst_util::{capsfilter, link_chain, make, watch_bus, BusEvent, RunningClock};
use crate::input::{decoder, Feeder, Pushed};
use crate::output::{attach, OutputSpec, Tap, VideoIn};
use crate::overlay::{self, place_pad, Source, Watermarks};
use anyhow::{Context, Result};
use gstreamer as gst;
use gstreamer::prelude::*;
use hearth_client::{Frame, Kind, TrackKey};
use hearth_media_proto::layout::{Fit, Placement};
use hearth_media_proto::{AudioEncode, Fill, VideoEncode};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// How long the mixers wait for late inputs.
const MIX_LATENCY_NS: u64 = 300_000_000;

/// A still image shown in a cell (placeholder or cell background).
struct CellImage {
    path: String,
    source: Source,
}

struct Input {
    feeder: Feeder,
    elements: Vec<gst::Element>,
    /// The mixer's request pad this input feeds.
    pad: gst::Pad,
    /// The `videocrop` of a video input and what it is asked to show (see [`Crop`]).
    crop: Option<(gst::Element, Arc<Crop>)>,
}

/// What a video input's `videocrop` shows, read by its streaming thread when the picture's size
/// changes: the asked part (McuCustomCrop), then trimmed to the cell's aspect ratio when the cell
/// crops to fill.
#[derive(Default)]
struct Crop {
    /// See [`pack`].
    part: AtomicU64,
    /// Cell width << 32 | height; 0 = keep the part's aspect.
    aspect: AtomicU64,
}

/// A part of a picture (x, y, width, height; each < 65536) in one word; 0 = all of it.
fn pack(c: Option<[u32; 4]>) -> u64 {
    c.map_or(0, |[x, y, w, h]| {
        u64::from(x) | u64::from(y) << 16 | u64::from(w) << 32 | u64::from(h) << 48
    })
}

/// The (left, top, right, bottom) margins that show `part` of a `width`×`height` picture,
/// trimmed to `aspect` (centred), as `videocrop` takes them.
fn margins(part: u64, aspect: u64, width: i32, height: i32) -> (i32, i32, i32, i32) {
    let f = |shift: u32| ((part >> shift) & 0xFFFF) as i32;
    let (mut x, mut y, mut w, mut h) = if part == 0 {
        (0, 0, width, height)
    } else {
        let x = f(0).clamp(0, (width - 2).max(0));
        let y = f(16).clamp(0, (height - 2).max(0));
        (
            x,
            y,
            f(32).min(width - x).max(2),
            f(48).min(height - y).max(2),
        )
    };
    let (aw, ah) = ((aspect >> 32) as i64, (aspect & 0xFFFF_FFFF) as i64);
    if aw > 0 && ah > 0 {
        // Wider than the cell: trim the sides; taller: trim top and bottom (even sizes).
        if i64::from(w) * ah > aw * i64::from(h) {
            let nw = ((i64::from(h) * aw / ah) as i32 & !1).max(2);
            x += (w - nw) / 2;
            w = nw;
        } else {
            let nh = ((i64::from(w) * ah / aw) as i32 & !1).max(2);
            y += (h - nh) / 2;
            h = nh;
        }
    }
    (x, y, (width - x - w).max(0), (height - y - h).max(0))
}

fn crop_to(videocrop: &gst::Element, c: &Crop, width: i32, height: i32) {
    let (l, t, r, b) = margins(
        c.part.load(Ordering::Relaxed),
        c.aspect.load(Ordering::Relaxed),
        width,
        height,
    );
    videocrop.set_property("left", l);
    videocrop.set_property("top", t);
    videocrop.set_property("right", r);
    videocrop.set_property("bottom", b);
}

/// The width and height of a pad's current video caps.
fn size_of(pad: &gst::Pad) -> Option<(i32, i32)> {
    let caps = pad.current_caps()?;
    let s = caps.structure(0)?;
    Some((s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?))
}

/// What a canvas records and how.
pub struct CanvasSpec<'a> {
    pub video: Option<VideoEncode>,
    pub audio: Option<AudioEncode>,
    pub background: u32,
    pub background_image: Option<&'a Path>,
    pub fill: Fill,
    /// One output set, or (AvMerge 0) one for audio and one for video.
    pub outputs: Vec<(OutputSpec, bool, bool)>,
    /// A relay's encoded media (with the first output set).
    pub tap: Option<Tap>,
    /// Watermark slots after the compositor.
    pub watermarks: bool,
    /// Each audio input reports its level ([`BusEvent::Level`]).
    pub levels: bool,
}

pub struct Canvas {
    pub id: u64,
    pipeline: gst::Pipeline,
    compositor: Option<gst::Element>,
    background: Option<gst::Element>,
    background_image: Option<Source>,
    audiomixer: Option<gst::Element>,
    inputs: HashMap<TrackKey, Input>,
    images: HashMap<TrackKey, CellImage>,
    clock: Option<RunningClock>,
    fill: Fill,
    size: (u32, u32),
    encoder: Option<gst::Element>,
    watermarks: Option<Watermarks>,
    levels: bool,
    /// Level element name → the user it measures.
    level_of: HashMap<String, Arc<str>>,
    /// Milliseconds (since the canvas started) of the last buffer the mixers produced.
    progress: std::sync::Arc<std::sync::atomic::AtomicU64>,
    started: std::time::Instant,
}

impl Canvas {
    pub fn new(
        id: u64,
        spec: CanvasSpec<'_>,
        events: mpsc::UnboundedSender<(u64, BusEvent)>,
    ) -> Result<Self> {
        let pipeline = gst::Pipeline::with_name(&format!("canvas-{id}"));
        let mut compositor = None;
        let mut background = None;
        let mut background_image = None;
        let mut watermarks = None;
        let mut video_out = None;
        let mut size = (0, 0);
        if let Some(v) = spec.video {
            size = (v.width, v.height);
            let bg = make("videotestsrc")?;
            bg.set_property("is-live", true);
            bg.set_property_from_str("pattern", "solid-color");
            bg.set_property("foreground-color", 0xFF00_0000u32 | spec.background);
            let bgcaps = raw_video_caps(v.width, v.height, v.fps)?;
            let comp = make("compositor")?;
            comp.set_property("latency", MIX_LATENCY_NS);
            comp.set_property_from_str("background", "black");
            let outcaps = raw_video_caps(v.width, v.height, v.fps)?;
            for e in [&bg, &bgcaps, &comp, &outcaps] {
                pipeline.add(e)?;
            }
            link_chain(&[&bg, &bgcaps, &comp, &outcaps])?;
            let mut video_end = outcaps.clone();
            if spec.watermarks {
                let (w, end) = Watermarks::build(&pipeline, &outcaps)?;
                watermarks = Some(w);
                video_end = end;
            }
            if let Some(img) = spec.background_image {
                background_image = Some(background_source(&pipeline, &comp, img, v)?);
            }
            video_out = Some((video_end, v));
            compositor = Some(comp);
            background = Some(bg);
        }
        let mut audiomixer = None;
        let mut audio_out = None;
        if let Some(a) = spec.audio {
            let silence = make("audiotestsrc")?;
            silence.set_property("is-live", true);
            silence.set_property_from_str("wave", "silence");
            let caps = raw_audio_caps(a)?;
            let mixer = make("audiomixer")?;
            mixer.set_property("latency", MIX_LATENCY_NS);
            for e in [&silence, &caps, &mixer] {
                pipeline.add(e)?;
            }
            link_chain(&[&silence, &caps, &mixer])?;
            audio_out = Some((mixer.clone(), a));
            audiomixer = Some(mixer);
        }
        let mut tap = spec.tap;
        let mut encoder = None;
        for (out, with_video, with_audio) in &spec.outputs {
            let video = match (&video_out, with_video) {
                (Some((src, v)), true) => Some(VideoIn::Raw(tee_point(&pipeline, src)?, *v)),
                _ => None,
            };
            let audio = match (&audio_out, with_audio) {
                (Some((src, a)), true) => Some((tee_point(&pipeline, src)?, *a)),
                _ => None,
            };
            let mut this_tap = tap.take();
            if let (Some((src, _)), Some(t)) = (&audio_out, this_tap.as_mut()) {
                t.opus = Some(tee_point(&pipeline, src)?);
            }
            let enc = attach(&pipeline, id, video, audio, out, this_tap, events.clone())?;
            encoder = encoder.or(enc);
        }
        let started = std::time::Instant::now();
        let progress = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        // The mixers produce on the clock whatever the inputs do: their output is the
        // pipeline's heartbeat.
        if let Some(pad) = compositor
            .as_ref()
            .or(audiomixer.as_ref())
            .and_then(|m| m.static_pad("src"))
        {
            let p = progress.clone();
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                p.store(
                    started.elapsed().as_millis() as u64,
                    std::sync::atomic::Ordering::Relaxed,
                );
                gst::PadProbeReturn::Ok
            });
        }
        watch_bus(id, &pipeline, events);
        pipeline
            .set_state(gst::State::Playing)
            .context("starting the pipeline")?;
        Ok(Canvas {
            id,
            pipeline,
            compositor,
            background,
            background_image,
            audiomixer,
            inputs: HashMap::new(),
            images: HashMap::new(),
            clock: None,
            fill: spec.fill,
            size,
            encoder,
            watermarks,
            levels: spec.levels,
            level_of: HashMap::new(),
            progress,
            started,
        })
    }

    /// Adds a track's input (decoder into the mixer); a no-op if present or not mixed here.
    pub fn add_input(&mut self, key: &TrackKey, codec: hearth_client::Codec) -> Result<()> {
        if self.inputs.contains_key(key) {
            return Ok(());
        }
        let mixer = match key.kind {
            Kind::Video => self.compositor.clone(),
            Kind::Audio => self.audiomixer.clone(),
        };
        let Some(mixer) = mixer else {
            return Ok(());
        };
        let feeder = Feeder::new(codec)?;
        let mut elements: Vec<gst::Element> = vec![feeder.src.clone().upcast()];
        let q = make("queue")?;
        q.set_property("max-size-time", 2_000_000_000u64);
        elements.push(q);
        elements.extend(decoder(codec)?);
        let mut crop = None;
        match key.kind {
            Kind::Video => {
                elements.push(make("videoconvert")?);
                let vc = make("videocrop")?;
                let asked = Arc::new(Crop::default());
                // The picture's size is known from its caps: the asked part is applied then.
                let (weak, a) = (vc.downgrade(), asked.clone());
                vc.static_pad("sink")
                    .expect("videocrop has sink")
                    .add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
                        if let Some(gst::PadProbeData::Event(ev)) = &info.data {
                            if let gst::EventView::Caps(c) = ev.view() {
                                let s = c.caps().structure(0);
                                let size = s.and_then(|s| {
                                    Some((
                                        s.get::<i32>("width").ok()?,
                                        s.get::<i32>("height").ok()?,
                                    ))
                                });
                                if let (Some(vc), Some((w, h))) = (weak.upgrade(), size) {
                                    crop_to(&vc, &a, w, h);
                                }
                            }
                        }
                        gst::PadProbeReturn::Ok
                    });
                elements.push(vc.clone());
                crop = Some((vc, asked));
            }
            Kind::Audio => {
                elements.push(make("audioconvert")?);
                elements.push(make("audioresample")?);
                if self.levels {
                    let name = format!("level-{}", self.level_of.len());
                    let level = gst::ElementFactory::make("level")
                        .name(name.as_str())
                        .property("post-messages", true)
                        .property("interval", 250_000_000u64)
                        .build()
                        .context("GStreamer element level is missing")?;
                    self.level_of.insert(name, key.user.clone());
                    elements.push(level);
                }
            }
        }
        for e in &elements {
            self.pipeline.add(e)?;
        }
        let refs: Vec<&gst::Element> = elements.iter().collect();
        link_chain(&refs)?;
        let pad = mixer
            .request_pad_simple("sink_%u")
            .context("mixer request pad")?;
        if key.kind == Kind::Video {
            // Hidden until the layout places it.
            pad.set_property("alpha", 0.0f64);
            pad.set_property("zorder", 1u32);
        }
        let last = elements.last().expect("at least appsrc");
        last.static_pad("src")
            .expect("src pad")
            .link(&pad)
            .context("linking an input to the mixer")?;
        for e in &elements {
            e.sync_state_with_parent()?;
        }
        self.inputs.insert(
            key.clone(),
            Input {
                feeder,
                elements,
                pad,
                crop,
            },
        );
        Ok(())
    }

    pub fn remove_input(&mut self, key: &TrackKey) {
        let Some(input) = self.inputs.remove(key) else {
            return;
        };
        let mixer = match key.kind {
            Kind::Video => self.compositor.as_ref(),
            Kind::Audio => self.audiomixer.as_ref(),
        };
        if let Some(last) = input.elements.last().and_then(|e| e.static_pad("src")) {
            let _ = last.unlink(&input.pad);
        }
        if let Some(m) = mixer {
            m.release_request_pad(&input.pad);
        }
        for e in &input.elements {
            let _ = e.set_state(gst::State::Null);
            let _ = self.pipeline.remove(e);
        }
    }

    pub fn input_keys(&self) -> Vec<TrackKey> {
        self.inputs.keys().cloned().collect()
    }

    pub fn has_input(&self, key: &TrackKey) -> bool {
        self.inputs.contains_key(key)
    }

    /// Pushes a frame at its capture instant; true when the sender should send a keyframe.
    pub fn push(&mut self, f: &Frame, capture: std::time::Instant) -> bool {
        let Some(input) = self.inputs.get_mut(&f.track) else {
            return false;
        };
        if self.clock.is_none() {
            self.clock = RunningClock::of(&self.pipeline).ok();
        }
        let Some(clock) = self.clock else {
            return false;
        };
        matches!(
            input.feeder.push(f, clock.running_ns(capture)),
            Pushed::NeedKeyframe
        )
    }

    /// Places the video inputs; those without a placement, or whose user shows no video
    /// (muted, unpublished) with FillType black, are hidden.
    pub fn apply(&mut self, placements: &[Placement]) {
        let mut shown_images = Vec::new();
        for p in placements {
            let key = TrackKey {
                user: p.user.as_str().into(),
                stream: stream_of(p.stream),
                kind: Kind::Video,
            };
            let has_input = self.inputs.contains_key(&key);
            // A user without video holds the cell with its image (placeholder or the cell's
            // background), if there is one.
            if !(p.has_video && has_input) {
                if let Some(img) = p.image.as_deref() {
                    if let Err(e) = self.show_image(&key, img, p) {
                        tracing::warn!(error = %e, "placeholder image");
                    }
                    shown_images.push(key.clone());
                }
            }
            let Some(input) = self.inputs.get(&key) else {
                continue;
            };
            let visible = p.has_video || (self.fill == Fill::LastFrame && p.image.is_none());
            place_pad(&input.pad, p, if visible { p.alpha } else { 0.0 });
            if let Some((vc, asked)) = &input.crop {
                let part = pack(p.crop);
                let aspect = match p.fit {
                    Fit::Crop | Fit::SmartCrop => {
                        u64::from(p.width) << 32 | u64::from(p.height.max(1))
                    }
                    Fit::Stretch | Fit::Pad => 0,
                };
                let part_changed = asked.part.swap(part, Ordering::Relaxed) != part;
                let aspect_changed = asked.aspect.swap(aspect, Ordering::Relaxed) != aspect;
                let changed = part_changed || aspect_changed;
                if changed {
                    if let Some((w, h)) = vc.static_pad("sink").as_ref().and_then(size_of) {
                        crop_to(vc, asked, w, h);
                    }
                }
            }
        }
        for (key, input) in &self.inputs {
            if key.kind == Kind::Video
                && !placements
                    .iter()
                    .any(|p| *p.user == *key.user && stream_of(p.stream) == key.stream)
            {
                input.pad.set_property("alpha", 0.0f64);
            }
        }
        for (key, img) in &self.images {
            if !shown_images.contains(key) {
                img.source.pad.set_property("alpha", 0.0f64);
            }
        }
    }

    /// Shows `path` in a user's cell (made on first use; replaced if the image changed).
    fn show_image(&mut self, key: &TrackKey, path: &str, p: &Placement) -> Result<()> {
        if self.images.get(key).is_some_and(|i| i.path != path) {
            if let (Some(old), Some(comp)) = (self.images.remove(key), &self.compositor) {
                old.source.remove(&self.pipeline, comp);
            }
        }
        if !self.images.contains_key(key) {
            let Some(comp) = self.compositor.clone() else {
                return Ok(());
            };
            let source = overlay::image(&self.pipeline, &comp, Path::new(path), p)?;
            self.images.insert(
                key.clone(),
                CellImage {
                    path: path.to_owned(),
                    source,
                },
            );
        }
        if let Some(img) = self.images.get(key) {
            place_pad(&img.source.pad, p, p.alpha);
        }
        Ok(())
    }

    /// Replaces the watermarks (a canvas built with slots).
    pub fn set_watermarks(&mut self, list: &[hearth_media_proto::Watermark]) -> Result<()> {
        match (&mut self.watermarks, &self.compositor) {
            (Some(w), Some(comp)) => w.apply(&self.pipeline, comp, list),
            _ => Ok(()),
        }
    }

    /// Sets an audio input's volume (1.0 as received).
    pub fn set_volume(&self, key: &TrackKey, volume: f64) {
        if let Some(i) = self.inputs.get(key) {
            i.pad.set_property("volume", volume);
        }
    }

    /// Changes the background: its colour (0xRRGGBB) and the image over it.
    pub fn set_background(&mut self, rgb: u32, image: Option<&Path>) -> Result<()> {
        if let Some(bg) = &self.background {
            bg.set_property("foreground-color", 0xFF00_0000u32 | rgb);
        }
        let Some(comp) = self.compositor.clone() else {
            return Ok(());
        };
        if let Some(old) = self.background_image.take() {
            old.remove(&self.pipeline, &comp);
        }
        if let Some(img) = image {
            let (w, h) = self.size;
            let v = VideoEncode {
                width: w,
                height: h,
                fps: 0,
                bitrate_bps: 0,
                gop_secs: 0,
            };
            self.background_image = Some(background_source(&self.pipeline, &comp, img, v)?);
        }
        Ok(())
    }

    /// The user a level element measures.
    pub fn level_user(&self, element: &str) -> Option<Arc<str>> {
        self.level_of.get(element).cloned()
    }

    /// Asks the video encoder for a keyframe now (a CDN connection or a room viewer starts).
    pub fn force_keyframe(&self) {
        if let Some(pad) = self.encoder.as_ref().and_then(|e| e.static_pad("src")) {
            let ev = gstreamer_video::UpstreamForceKeyUnitEvent::builder()
                .all_headers(true)
                .build();
            pad.send_event(ev);
        }
    }

    /// The pipeline's clock time of a local instant (relays line passed-through frames up
    /// with encoded ones).
    pub fn clock_ns(&mut self, t: std::time::Instant) -> Option<u64> {
        if self.clock.is_none() {
            self.clock = RunningClock::of(&self.pipeline).ok();
        }
        let base = self.pipeline.base_time()?.nseconds();
        Some(self.clock?.running_ns(t) + base)
    }

    /// How long ago the mixers last produced (the whole age of the canvas if never).
    pub fn stalled_for(&self) -> std::time::Duration {
        let last = self.progress.load(std::sync::atomic::Ordering::Relaxed);
        self.started
            .elapsed()
            .saturating_sub(std::time::Duration::from_millis(last))
    }

    pub fn size(&self) -> (u32, u32) {
        self.size
    }

    /// Ends the output: every file is finished once [`BusEvent::Eos`] arrives.
    pub fn send_eos(&self) {
        self.pipeline.send_event(gst::event::Eos::new());
    }

    pub fn stop(self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// The background image over the whole canvas: above the solid colour, below every cell.
fn background_source(
    pipeline: &gst::Pipeline,
    comp: &gst::Element,
    img: &Path,
    v: VideoEncode,
) -> Result<Source> {
    let whole = Placement {
        user: String::new(),
        stream: hearth_media_proto::layout::Stream::Main,
        x: 0,
        y: 0,
        width: v.width,
        height: v.height,
        zorder: 0,
        alpha: 1.0,
        fit: Fit::Stretch,
        image: None,
        has_video: false,
        crop: None,
    };
    let src = overlay::image(pipeline, comp, img, &whole)?;
    src.pad.set_property("zorder", 1u32);
    Ok(src)
}

fn stream_of(s: hearth_media_proto::layout::Stream) -> hearth_client::Stream {
    match s {
        hearth_media_proto::layout::Stream::Main => hearth_client::Stream::Main,
        hearth_media_proto::layout::Stream::Sub => hearth_client::Stream::Sub,
    }
}

fn raw_video_caps(w: u32, h: u32, fps: u32) -> Result<gst::Element> {
    capsfilter(
        gst::Caps::builder("video/x-raw")
            // Blend in I420, the decoders' and x264's format: no conversion per frame.
            .field("format", "I420")
            .field("width", w as i32)
            .field("height", h as i32)
            .field("framerate", gst::Fraction::new(fps as i32, 1))
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build(),
    )
}

pub(crate) fn raw_audio_caps(a: AudioEncode) -> Result<gst::Element> {
    capsfilter(
        gst::Caps::builder("audio/x-raw")
            .field("rate", a.sample_rate as i32)
            .field("channels", a.channels as i32)
            .build(),
    )
}

/// A tee after `src` (made on first use) and a queue on a new branch of it: several outputs
/// can hang off one source.
fn tee_point(pipeline: &gst::Pipeline, src: &gst::Element) -> Result<gst::Element> {
    let tee = match src
        .static_pad("src")
        .and_then(|p| p.peer())
        .and_then(|p| p.parent_element())
    {
        Some(t) if t.factory().is_some_and(|f| f.name() == "tee") => t,
        _ => {
            let t = make("tee")?;
            pipeline.add(&t)?;
            src.link(&t)?;
            t
        }
    };
    let q = make("queue")?;
    pipeline.add(&q)?;
    tee.link(&q)?;
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_margins_take_the_part_then_the_cells_aspect() {
        // The whole 640×360 picture into a 640×360 cell: nothing cut.
        assert_eq!(margins(0, 640 << 32 | 360, 640, 360), (0, 0, 0, 0));
        // Into a square cell: the sides go.
        assert_eq!(margins(0, 100 << 32 | 100, 640, 360), (140, 0, 140, 0));
        // The right half, kept in its aspect.
        assert_eq!(
            margins(pack(Some([320, 0, 320, 360])), 0, 640, 360),
            (320, 0, 0, 0)
        );
        // The right half into a 16:9 cell: top and bottom of it go.
        assert_eq!(
            margins(pack(Some([320, 0, 320, 360])), 16 << 32 | 9, 640, 360),
            (320, 90, 0, 90)
        );
        // A part past the picture is clipped to it.
        assert_eq!(
            margins(pack(Some([600, 0, 320, 360])), 0, 640, 360),
            (600, 0, 0, 0)
        );
    }
}
