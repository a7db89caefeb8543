//! Encoders and sinks behind a pipeline's raw video and raw audio: H.264 + AAC-LC into HLS
//! segments (MPEG-TS), fragmented MP4 parts and ADTS AAC parts, split by length and size (every
//! file is complete when its `fragment-closed` is reported); and, for live relays, the encoded
//! H.264 (with its SEI), AAC and Opus handed out through a [`Tap`].

use crate::gst_util::{capsfilter, link_chain, make, x264enc, BusEvent};
use anyhow::{Context, Result};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use hearth_media_proto::{AudioEncode, Outputs, VideoEncode};
use std::io::Write;
use std::path::PathBuf;
use tokio::sync::mpsc;

/// Encoded media handed out of a pipeline, on the shared system clock (so that several
/// pipelines and passed-through frames line up).
pub struct Encoded {
    pub kind: EncKind,
    pub buffer: gst::Buffer,
    pub caps: gst::Caps,
    /// Presentation time as a time of the system clock (running time + base time).
    pub clock_ns: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncKind {
    /// Byte-stream access units, parameter sets before each IDR.
    H264,
    /// Raw AAC with codec data in the caps.
    Aac,
    /// 20 ms Opus packets, for publishing into rooms.
    Opus,
}

/// Where a relay takes its media: encoded buffers out, and the SEI to put into the H.264.
pub struct Tap {
    pub tx: mpsc::UnboundedSender<Encoded>,
    /// Replacements of the SEI messages (each whole), read by the encoder's streaming thread.
    pub sei: Option<std::sync::mpsc::Receiver<SeiMessages>>,
    /// A raw audio point for the Opus encoder (set by the canvas).
    pub opus: Option<gst::Element>,
}

/// One SEI message a relay adds, and when.
#[derive(Clone, PartialEq)]
pub struct SeiMessage {
    pub payload_type: u8,
    pub uuid: Option<[u8; 16]>,
    pub payload: Vec<u8>,
    pub interval_ms: u64,
    pub follow_idr: bool,
}

/// The SEI messages a relay adds (each replacement whole; their cadences carry over).
#[derive(Default)]
pub struct SeiMessages {
    pub messages: Vec<SeiMessage>,
}

/// Where video comes from: raw frames to encode (its src pad is free).
pub enum VideoIn {
    Raw(gst::Element, VideoEncode),
}

pub struct OutputSpec {
    pub dir: PathBuf,
    /// File name without extension or index.
    pub base: String,
    pub outputs: Outputs,
    pub segment_secs: u64,
    pub max_file_secs: u64,
    pub max_file_bytes: u64,
}

/// MP4 fragments are closed this often, so a killed worker leaves a file playable up to here.
const MP4_FRAGMENT_MS: u32 = 1000;

/// Builds encoders and sinks in `pipeline` after `video` and `audio`; returns the video encoder (to force keyframes).
pub fn attach(
    pipeline: &gst::Pipeline,
    id: u64,
    video: Option<VideoIn>,
    audio: Option<(gst::Element, AudioEncode)>,
    spec: &OutputSpec,
    tap: Option<Tap>,
    events: mpsc::UnboundedSender<(u64, BusEvent)>,
) -> Result<Option<gst::Element>> {
    let add = |e: &gst::Element| pipeline.add(e).context("adding an element");
    let mut encoder = None;
    let (tap_tx, tap_sei, opus) = match tap {
        Some(t) => (Some(t.tx), t.sei, t.opus),
        None => (None, None, None),
    };
    let vtee = match video {
        Some(v) => {
            let tee = make("tee")?;
            add(&tee)?;
            match v {
                VideoIn::Raw(src, enc) => {
                    let conv = make("videoconvert")?;
                    let caps = capsfilter(
                        gst::Caps::builder("video/x-raw")
                            .field("format", "I420")
                            .build(),
                    )?;
                    let x264 = x264enc(None, enc.bitrate_bps, enc.gop_secs * enc.fps)?;
                    // Every GOP starts with an IDR (a CDN viewer can join at any of them).
                    x264.set_property("option-string", "repeat-headers=1");
                    for e in [&conv, &caps, &x264] {
                        add(e)?;
                    }
                    link_chain(&[&src, &conv, &caps, &x264, &tee])?;
                    if let Some(rx) = tap_sei {
                        add_sei(&x264, rx);
                    }
                    encoder = Some(x264);
                }
            }
            Some(tee)
        }
        None => None,
    };
    let atee = match audio {
        Some((src, enc)) => {
            let conv = make("audioconvert")?;
            let res = make("audioresample")?;
            let caps = crate::canvas::raw_audio_caps(enc)?;
            let aac = make("avenc_aac")?;
            aac.set_property("bitrate", enc.bitrate_bps as i32);
            let parse = make("aacparse")?;
            let tee = make("tee")?;
            for e in [&conv, &res, &caps, &aac, &parse, &tee] {
                add(e)?;
            }
            link_chain(&[&src, &conv, &res, &caps, &aac, &parse, &tee])?;
            Some((tee, enc))
        }
        None => None,
    };
    let aenc = atee.as_ref().map(|(_, e)| *e);
    let atee = atee.map(|(t, _)| t);
    if let Some(tx) = &tap_tx {
        if let Some(t) = &vtee {
            tap_branch(pipeline, t, EncKind::H264, tx.clone())?;
        }
        if let Some(t) = &atee {
            tap_branch(pipeline, t, EncKind::Aac, tx.clone())?;
        }
        if let (Some(src), Some(enc)) = (opus, aenc) {
            let conv = make("audioconvert")?;
            let res = make("audioresample")?;
            let caps = capsfilter(
                gst::Caps::builder("audio/x-raw")
                    .field("rate", 48_000i32)
                    .field("channels", enc.channels as i32)
                    .build(),
            )?;
            let opusenc = make("opusenc")?;
            opusenc.set_property_from_str("frame-size", "20");
            let tee = make("tee")?;
            for e in [&conv, &res, &caps, &opusenc, &tee] {
                add(e)?;
            }
            link_chain(&[&src, &conv, &res, &caps, &opusenc, &tee])?;
            tap_branch(pipeline, &tee, EncKind::Opus, tx.clone())?;
        }
    }
    let path = |ext: &str, digits: usize| {
        spec.dir
            .join(format!("{}_%0{digits}d.{ext}", spec.base))
            .to_string_lossy()
            .into_owned()
    };
    if spec.outputs.hls {
        let sink = make("splitmuxsink")?;
        sink.set_property("muxer-factory", "mpegtsmux");
        sink.set_property("location", path("ts", 5));
        sink.set_property("max-size-time", spec.segment_secs * 1_000_000_000);
        sink.set_property("send-keyframe-requests", true);
        sink.set_property("async-finalize", false);
        sink.set_property("sink", &unbuffered_file()?);
        add(&sink)?;
        branch(pipeline, vtee.as_ref(), atee.as_ref(), &sink, true)?;
    }
    if spec.outputs.mp4 && (vtee.is_some() || atee.is_some()) {
        let sink = make("splitmuxsink")?;
        let mux = make("mp4mux")?;
        mux.set_property("fragment-duration", MP4_FRAGMENT_MS);
        sink.set_property("muxer", &mux);
        sink.set_property("sink", &unbuffered_file()?);
        sink.set_property("location", path("mp4", 3));
        sink.set_property("max-size-time", spec.max_file_secs * 1_000_000_000);
        sink.set_property("max-size-bytes", spec.max_file_bytes);
        add(&sink)?;
        branch(pipeline, vtee.as_ref(), atee.as_ref(), &sink, false)?;
    }
    if spec.outputs.aac {
        if let Some(atee) = &atee {
            let q = make("queue")?;
            let sink = gst_app::AppSink::builder()
                .caps(
                    &gst::Caps::builder("audio/mpeg")
                        .field("stream-format", "adts")
                        .build(),
                )
                .sync(false)
                .build();
            let adts = make("aacparse")?;
            add(&q)?;
            add(&adts)?;
            add(sink.upcast_ref())?;
            link_chain(&[atee, &q, &adts, sink.upcast_ref()])?;
            let mut w = AacParts::new(
                spec.dir.clone(),
                format!("{}_%03d.aac", spec.base),
                spec.max_file_secs,
                spec.max_file_bytes,
                id,
                events,
            );
            sink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |s| {
                        let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        if let Some(b) = sample.buffer() {
                            w.write(b).map_err(|_| gst::FlowError::Error)?;
                        }
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .eos(move |_| {})
                    .build(),
            );
        }
    }
    Ok(encoder)
}

/// A queue and an appsink on a tee, handing each buffer out with its clock time.
fn tap_branch(
    pipeline: &gst::Pipeline,
    tee: &gst::Element,
    kind: EncKind,
    tx: mpsc::UnboundedSender<Encoded>,
) -> Result<()> {
    let q = make("queue")?;
    let sink = gst_app::AppSink::builder().sync(false).build();
    pipeline.add(&q)?;
    pipeline.add(sink.upcast_ref::<gst::Element>())?;
    link_chain(&[tee, &q, sink.upcast_ref()])?;
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let (Some(buffer), Some(caps)) = (sample.buffer_owned(), sample.caps_owned())
                else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let base = s.base_time().map(|b| b.nseconds()).unwrap_or(0);
                // Through the segment: encoders shift their times (x264enc by 1000 hours).
                let running = buffer.pts().and_then(|pts| {
                    sample
                        .segment()?
                        .downcast_ref::<gst::ClockTime>()?
                        .to_running_time(pts)
                });
                let Some(running) = running else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                let e = Encoded {
                    kind,
                    buffer,
                    caps,
                    clock_ns: running.nseconds() + base,
                };
                // A relay that went away ends the stream.
                tx.send(e).map_err(|_| gst::FlowError::Eos)?;
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    Ok(())
}

/// Puts the relay's SEI messages in front of the access units they are due on (the frame's
/// own memory is kept: the SEI is prepended as another memory).
fn add_sei(encoder: &gst::Element, rx: std::sync::mpsc::Receiver<SeiMessages>) {
    let Some(pad) = encoder.static_pad("src") else {
        return;
    };
    // Only this streaming thread takes it (the probe must be Sync): `try_lock` never waits.
    let state = std::sync::Mutex::new((rx, Vec::<(SeiMessage, crate::sei::Cadence)>::new()));
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Ok(mut guard) = state.try_lock() else {
            return gst::PadProbeReturn::Ok;
        };
        let (rx, current) = &mut *guard;
        // The newest replacement wins; a message sent before keeps its cadence.
        while let Ok(m) = rx.try_recv() {
            let old = std::mem::take(current);
            for msg in m.messages {
                let cadence = old
                    .iter()
                    .find(|(o, _)| {
                        o.payload_type == msg.payload_type
                            && o.interval_ms == msg.interval_ms
                            && o.follow_idr == msg.follow_idr
                    })
                    .map(|(_, c)| c.clone())
                    .unwrap_or_else(|| crate::sei::Cadence::new(msg.interval_ms, msg.follow_idr));
                current.push((msg, cadence));
            }
        }
        if current.is_empty() {
            return gst::PadProbeReturn::Ok;
        }
        let Some(gst::PadProbeData::Buffer(buffer)) = info.data.as_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let pts = buffer.pts().map(|p| p.nseconds()).unwrap_or(0);
        let key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let mut nals = Vec::new();
        for (m, cadence) in current.iter_mut() {
            if cadence.due(pts, key) {
                nals.extend_from_slice(&crate::sei::nal(
                    m.payload_type,
                    m.uuid.as_ref(),
                    &m.payload,
                ));
            }
        }
        if !nals.is_empty() {
            // After the parameter sets, before the first slice (a parser that has not seen an
            // SPS yet drops what comes before it). One copy of the frame, on SEI frames only.
            let joined = match buffer.map_readable() {
                Ok(map) => crate::sei::insert_before_slices(map.as_slice(), &nals),
                Err(_) => return gst::PadProbeReturn::Ok,
            };
            buffer
                .make_mut()
                .replace_all_memory(gst::Memory::from_mut_slice(joined));
        }
        gst::PadProbeReturn::Ok
    });
}

/// A file sink that writes every buffer through (no user-space buffer), so that a killed
/// worker leaves all it has muxed on disk.
fn unbuffered_file() -> Result<gst::Element> {
    let f = make("filesink")?;
    f.set_property_from_str("buffer-mode", "unbuffered");
    Ok(f)
}

/// Links the tees to one splitmuxsink through queues (one parser per branch: mp4mux wants
/// avc, mpegtsmux byte-stream with parameter sets before every keyframe).
fn branch(
    pipeline: &gst::Pipeline,
    vtee: Option<&gst::Element>,
    atee: Option<&gst::Element>,
    sink: &gst::Element,
    ts: bool,
) -> Result<()> {
    if let Some(t) = vtee {
        let q = make("queue")?;
        let parse = make("h264parse")?;
        if ts {
            parse.set_property("config-interval", -1i32);
        }
        pipeline.add(&q)?;
        pipeline.add(&parse)?;
        link_chain(&[t, &q, &parse])?;
        let pad = sink
            .request_pad_simple("video")
            .context("splitmuxsink video pad")?;
        let src = parse.static_pad("src").expect("h264parse has src");
        drop_untimed(&src);
        src.link(&pad)?;
    }
    if let Some(t) = atee {
        let q = make("queue")?;
        pipeline.add(&q)?;
        t.link(&q)?;
        let pad = sink
            .request_pad_simple("audio_%u")
            .context("splitmuxsink audio pad")?;
        let src = q.static_pad("src").expect("queue has src");
        drop_untimed(&src);
        src.link(&pad)?;
    }
    Ok(())
}

/// Drops buffers without a PTS before a muxer: an encoder's first output can come without one
/// (seen from the mixed audio's AAC encoder in a start-up race), and mp4mux fails the whole
/// file on it ("Buffer has no PTS"); one lost frame at the start is the lesser harm.
fn drop_untimed(pad: &gst::Pad) {
    pad.add_probe(gst::PadProbeType::BUFFER, |_, info| match info.buffer() {
        Some(b) if b.pts().is_none() => {
            tracing::debug!("a buffer without a timestamp was dropped before the muxer");
            gst::PadProbeReturn::Drop
        }
        _ => gst::PadProbeReturn::Ok,
    });
}

/// ADTS AAC written straight to numbered files (ADTS needs no container), rotated by length
/// and size; each file is complete at every frame.
struct AacParts {
    dir: PathBuf,
    pattern: String,
    max_ns: u64,
    max_bytes: u64,
    id: u64,
    events: mpsc::UnboundedSender<(u64, BusEvent)>,
    index: u32,
    open: Option<(std::fs::File, String, u64, u64)>,
    last_pts: u64,
}

impl AacParts {
    fn new(
        dir: PathBuf,
        pattern: String,
        max_secs: u64,
        max_bytes: u64,
        id: u64,
        events: mpsc::UnboundedSender<(u64, BusEvent)>,
    ) -> Self {
        AacParts {
            dir,
            pattern,
            max_ns: max_secs * 1_000_000_000,
            max_bytes,
            id,
            events,
            index: 0,
            open: None,
            last_pts: 0,
        }
    }

    fn write(&mut self, b: &gst::BufferRef) -> std::io::Result<()> {
        let pts = b.pts().map(|p| p.nseconds()).unwrap_or(self.last_pts);
        self.last_pts = pts;
        let map = b
            .map_readable()
            .map_err(|_| std::io::ErrorKind::InvalidData)?;
        let rotate = self.open.as_ref().is_some_and(|(_, _, start, bytes)| {
            pts.saturating_sub(*start) >= self.max_ns || bytes + map.len() as u64 > self.max_bytes
        });
        if rotate {
            self.close(pts);
        }
        if self.open.is_none() {
            let name = self.pattern.replace("%03d", &format!("{:03}", self.index));
            self.index += 1;
            let path = self.dir.join(&name);
            let f = std::fs::File::create(&path)?;
            let location = path.to_string_lossy().into_owned();
            let _ = self.events.send((
                self.id,
                BusEvent::FragmentOpened {
                    location: location.clone(),
                    running_ns: pts,
                },
            ));
            self.open = Some((f, location, pts, 0));
        }
        let (f, _, _, bytes) = self.open.as_mut().expect("opened above");
        f.write_all(&map)?;
        *bytes += map.len() as u64;
        Ok(())
    }

    fn close(&mut self, pts: u64) {
        if let Some((f, location, _, _)) = self.open.take() {
            let _ = f.sync_all();
            let _ = self.events.send((
                self.id,
                BusEvent::FragmentClosed {
                    location,
                    running_ns: pts,
                },
            ));
        }
    }
}

/// The last part closes when the pipeline is torn down (after its EOS).
impl Drop for AacParts {
    fn drop(&mut self) {
        self.close(self.last_pts);
    }
}
