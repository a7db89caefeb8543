//! An ingest's source pipeline: the URL's own source element (souphttpsrc through the outbound
//! proxy, rtmp2src or srtsrc; nothing else may be made from a URI in this process), decodebin,
//! then the audio as Opus with the task's volume and the video in a full and a small layer,
//! each into an appsink that plays in real time and hands encoded frames to the task. Video is
//! VP8, or H.264 when the first source is H.264 without B-frames (baseline) that fits the
//! ceiling: then its full layer is passed through as it came and only the small one encoded.

use crate::gst_util::{add_chain, capsfilter, make, x264enc};
use anyhow::{anyhow, bail, Result};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use hearth_client::Codec;
use hearth_media_proto::{AudioEncode, VideoEncode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;

/// Which output a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    Audio,
    Full,
    Small,
}

/// One encoded frame of a source pipeline.
pub struct Sample {
    pub pipe: u64,
    /// The play of the pipeline it belongs to (bumped by every seek).
    pub epoch: u64,
    pub out: Out,
    pub pts_ns: u64,
    pub data: Vec<u8>,
}

/// How the source is published.
#[derive(Debug, Clone)]
pub struct Shape {
    pub video: Option<VideoEncode>,
    pub audio: Option<AudioEncode>,
    pub max_width: u32,
    pub max_height: u32,
    /// Baseline H.264 may be published as it came.
    pub passthrough: bool,
    /// The HTTP proxy every HTTP fetch goes through.
    pub proxy: String,
}

/// The URI schemes an ingest takes and the one element that may read each.
const SOURCES: &[(&str, &str)] = &[
    ("http", "souphttpsrc"),
    ("https", "souphttpsrc"),
    ("rtmp", "rtmp2src"),
    ("srt", "srtsrc"),
];

/// The name of a pipeline's own source element (any other URI source in it was made by a
/// demuxer from what the source said).
const OWN_SOURCE: &str = "src";

/// Demuxers that fetch with their own HTTP client (not through a source element the proxy is
/// set on): removed, so that decodebin takes the ones that do.
const OWN_FETCHERS: &[&str] = &["hlsdemux2", "dashdemux2", "mssdemux2"];

/// Removes from this process's registry every element that reads a URI other than the ones in
/// [`SOURCES`], and the demuxers of [`OWN_FETCHERS`]: a playlist that names `file:///…` (or any
/// other scheme) then finds nothing to read it with.
pub fn lock_down_registry() {
    let registry = gst::Registry::get();
    let allowed: Vec<&str> = SOURCES.iter().map(|(_, e)| *e).collect();
    for f in registry.features(gst::ElementFactory::static_type()) {
        let Ok(factory) = f.clone().downcast::<gst::ElementFactory>() else {
            continue;
        };
        let name = factory.name();
        let reads_uri = factory.uri_type() == gst::URIType::Src;
        if (reads_uri && !allowed.contains(&name.as_str())) || OWN_FETCHERS.contains(&name.as_str())
        {
            registry.remove_feature(&f);
        }
    }
}

/// The element that reads `url`, if its scheme is one an ingest takes.
pub fn source_element(url: &str) -> Option<&'static str> {
    let scheme = url.split_once("://")?.0.to_ascii_lowercase();
    SOURCES.iter().find(|(s, _)| *s == scheme).map(|(_, e)| *e)
}

/// A built source pipeline.
pub struct SourcePipe {
    pub id: u64,
    pub pipeline: gst::Pipeline,
    pub epoch: Arc<AtomicU64>,
    /// The full layer is the source's own H.264 (no keyframe can be forced on it).
    pub passthrough: Arc<std::sync::atomic::AtomicBool>,
    /// What the source named that was not fetched (a playlist's segment of another scheme).
    pub refused: Arc<std::sync::Mutex<Option<String>>>,
}

impl SourcePipe {
    /// Builds (does not start) the pipeline for `url`; frames go to `tx`.
    /// `codec` is the published video codec: set by the first source's video (or by the task
    /// when that source has none), and followed by every later source.
    pub fn new(
        id: u64,
        url: &str,
        shape: &Shape,
        volume: u32,
        codec: Arc<OnceLock<Codec>>,
        tx: mpsc::UnboundedSender<Sample>,
    ) -> Result<Self> {
        let factory =
            source_element(url).ok_or_else(|| anyhow!("{url}: not an http(s), rtmp or srt URL"))?;
        let pipeline = gst::Pipeline::with_name(&format!("ingest-{id}"));
        let src = gst::ElementFactory::make(factory)
            .name(OWN_SOURCE)
            .build()
            .map_err(|_| {
                anyhow!("GStreamer element {factory} is missing (install its plugin package)")
            })?;
        match factory {
            "souphttpsrc" => {
                src.set_property("location", url);
                set_proxy(&src, &shape.proxy);
            }
            "srtsrc" => src.set_property("uri", url),
            _ => src.set_property("location", url),
        }
        let dec = make("decodebin")?;
        pipeline.add_many([&src, &dec])?;
        src.link(&dec)?;
        // The HLS demuxer makes its own sources for playlists and segments: HTTP ones go
        // through the proxy; one of another scheme (a playlist naming rtmp:// or srt://) is
        // never started, and fails the source.
        let proxy = shape.proxy.clone();
        let refused = Arc::new(std::sync::Mutex::new(None));
        let refusal = refused.clone();
        pipeline.connect_deep_element_added(move |pipe, _, el| {
            let Some(f) = el.factory() else { return };
            if f.uri_type() != gst::URIType::Src || el.name() == OWN_SOURCE {
                return;
            }
            if f.name() == "souphttpsrc" {
                set_proxy(el, &proxy);
            } else {
                el.set_locked_state(true);
                let uri = el
                    .dynamic_cast_ref::<gst::URIHandler>()
                    .and_then(|h| h.uri())
                    .unwrap_or_default();
                let why = format!("the source names {uri}; only HTTP(S) is fetched from inside it");
                *refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.clone());
                // On the pipeline's own bus: the demuxer would take its child's error for a
                // failed download and retry.
                let _ = pipe.post_message(
                    gst::message::Error::builder(gst::ResourceError::NotAuthorized, &why)
                        .src(pipe)
                        .build(),
                );
            }
        });
        // H.264 is taken before decoding when it may be passed through (decided per pad).
        let may_pass = shape.passthrough
            && shape.video.is_none()
            && codec.get().is_none_or(|c| *c == Codec::H264);
        dec.connect("autoplug-continue", false, move |args| {
            let caps = args.get(2).and_then(|v| v.get::<gst::Caps>().ok());
            // Parsed H.264 (its size and profile known) stops here.
            let h264 = caps.as_ref().and_then(|c| c.structure(0)).is_some_and(|s| {
                s.name() == "video/x-h264" && s.get::<bool>("parsed").unwrap_or(false)
            });
            Some((!(may_pass && h264)).to_value())
        });
        let epoch = Arc::new(AtomicU64::new(0));
        let passthrough = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let weak = pipeline.downgrade();
        let (shape, ep, cd, pt) = (
            shape.clone(),
            epoch.clone(),
            codec.clone(),
            passthrough.clone(),
        );
        dec.connect_pad_added(move |_, pad| {
            let Some(p) = weak.upgrade() else { return };
            let caps = pad.current_caps().or_else(|| Some(pad.query_caps(None)));
            let Some(name) = caps
                .as_ref()
                .and_then(|c| c.structure(0))
                .map(|s| s.name().to_string())
            else {
                return;
            };
            let branch = Branch {
                p: &p,
                shape: &shape,
                id,
                epoch: &ep,
                tx: &tx,
                codec: &cd,
            };
            let r = if name.starts_with("audio/") {
                audio_branch(&p, pad, &shape, volume, id, &ep, &tx)
            } else if name == "video/x-h264" {
                h264_branch(&branch, pad, caps.as_ref(), &pt)
            } else if name.starts_with("video/") {
                video_branch(&branch, pad, caps.as_ref())
            } else {
                Ok(())
            };
            if let Err(e) = r {
                tracing::warn!(error = %format!("{e:#}"), "an ingest branch could not be built");
            }
        });
        Ok(SourcePipe {
            id,
            pipeline,
            epoch,
            passthrough,
            refused,
        })
    }

    /// Sets the volume (0–100) live.
    pub fn set_volume(&self, v: u32) {
        if let Some(e) = self.pipeline.by_name("vol") {
            e.set_property("volume", f64::from(v) / 100.0);
        }
    }

    /// Asks a video encoder for a keyframe.
    pub fn force_keyframe(&self, out: Out) {
        let name = if out == Out::Small {
            "enc-small"
        } else {
            "enc-full"
        };
        if let Some(pad) = self
            .pipeline
            .by_name(name)
            .and_then(|e| e.static_pad("src"))
        {
            pad.send_event(
                gstreamer_video::UpstreamForceKeyUnitEvent::builder()
                    .all_headers(true)
                    .build(),
            );
        }
    }

    /// A flushing seek to `secs`; frames of the play before it are told apart by the epoch.
    pub fn seek(&self, secs: u64) -> Result<()> {
        self.epoch.fetch_add(1, Ordering::Relaxed);
        self.pipeline
            .seek_simple(
                gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT,
                gst::ClockTime::from_seconds(secs),
            )
            .map_err(|e| anyhow!("seeking the source to {secs} s: {e}"))
    }

    /// The source's duration, when it has one (a file, or an HLS playlist that ends).
    pub fn duration(&self) -> Option<gst::ClockTime> {
        self.pipeline
            .query_duration::<gst::ClockTime>()
            .filter(|d| !d.is_zero())
    }

    pub fn stop(&self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl Drop for SourcePipe {
    fn drop(&mut self) {
        self.stop();
    }
}

fn set_proxy(el: &gst::Element, proxy: &str) {
    el.set_property("proxy", proxy);
    // Redirects are followed, each through the proxy (and its rules).
    el.set_property("automatic-redirect", true);
}

/// An appsink that plays in real time and sends each encoded frame to `tx`.
fn sink(
    out: Out,
    id: u64,
    epoch: &Arc<AtomicU64>,
    tx: &mpsc::UnboundedSender<Sample>,
) -> gst_app::AppSink {
    let (tx, epoch) = (tx.clone(), epoch.clone());
    let sink = gst_app::AppSink::builder()
        .sync(true)
        .max_buffers(64)
        .drop(false)
        .build();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let Some(buf) = sample.buffer() else {
                    return Ok(gst::FlowSuccess::Ok);
                };
                // The running time, so that audio and video (and each play) share one timeline.
                let pts = buf.pts().unwrap_or(gst::ClockTime::ZERO);
                let running = sample
                    .segment()
                    .and_then(|seg| seg.downcast_ref::<gst::ClockTime>())
                    .and_then(|seg| seg.to_running_time(pts))
                    .unwrap_or(pts);
                let map = buf.map_readable().map_err(|_| gst::FlowError::Error)?;
                let sent = tx.send(Sample {
                    pipe: id,
                    epoch: epoch.load(Ordering::Relaxed),
                    out,
                    pts_ns: running.nseconds(),
                    data: map.as_slice().to_vec(),
                });
                if sent.is_err() {
                    return Err(gst::FlowError::Flushing);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    sink
}

fn add_linked(p: &gst::Pipeline, pad: &gst::Pad, chain: &[&gst::Element]) -> Result<()> {
    add_chain(p, chain)?;
    let sinkpad = chain[0]
        .static_pad("sink")
        .ok_or_else(|| anyhow!("no sink pad"))?;
    pad.link(&sinkpad)
        .map_err(|e| anyhow!("linking the decoder: {e:?}"))?;
    Ok(())
}

/// What a video branch needs to know of its pipeline.
struct Branch<'a> {
    p: &'a gst::Pipeline,
    shape: &'a Shape,
    id: u64,
    epoch: &'a Arc<AtomicU64>,
    tx: &'a mpsc::UnboundedSender<Sample>,
    codec: &'a Arc<OnceLock<Codec>>,
}

/// Demuxed H.264: passed through when it has no B-frames (baseline profiles) and fits the
/// ceiling, with only the small layer encoded from its decoded pictures; else decoded.
fn h264_branch(
    b: &Branch<'_>,
    pad: &gst::Pad,
    caps: Option<&gst::Caps>,
    passthrough: &std::sync::atomic::AtomicBool,
) -> Result<()> {
    if b.p.by_name("enc-small").is_some() {
        return Ok(());
    }
    let s = caps
        .and_then(|c| c.structure(0))
        .ok_or_else(|| anyhow!("video without caps"))?;
    let profile = s.get::<String>("profile").unwrap_or_default();
    let size = (
        s.get::<i32>("width").unwrap_or(0) as u32,
        s.get::<i32>("height").unwrap_or(0) as u32,
    );
    let fits = size.0 > 0 && size.0 <= b.shape.max_width && size.1 <= b.shape.max_height;
    let baseline = matches!(profile.as_str(), "baseline" | "constrained-baseline");
    let want = if fits && baseline {
        Codec::H264
    } else {
        Codec::Vp8
    };
    let codec = *b.codec.get_or_init(|| want);
    let fps = fps_of(s).unwrap_or(30);
    if codec != Codec::H264 || !(fits && baseline) {
        // Decoded, then encoded as the other sources are.
        let dec = make("avdec_h264")?;
        add_linked(b.p, pad, &[&dec])?;
        let out = dec
            .static_pad("src")
            .ok_or_else(|| anyhow!("no decoder pad"))?;
        let raw = gst::Caps::builder("video/x-raw")
            .field("width", size.0.max(2) as i32)
            .field("height", size.1.max(2) as i32)
            .field("framerate", gst::Fraction::new(fps as i32, 1))
            .build();
        return video_branch(b, &out, Some(&raw));
    }
    passthrough.store(true, Ordering::Relaxed);
    // In Annex-B with the parameter sets before every IDR (a viewer may start at any).
    let parse = make("h264parse")?;
    parse.set_property("config-interval", -1i32);
    let bytestream = capsfilter(
        gst::Caps::builder("video/x-h264")
            .field("stream-format", "byte-stream")
            .field("alignment", "au")
            .build(),
    )?;
    let tee = make("tee")?;
    add_linked(b.p, pad, &[&parse, &bytestream, &tee])?;
    let q = make("queue")?;
    let full = sink(Out::Full, b.id, b.epoch, b.tx);
    // The small layer from the decoded pictures.
    let q2 = make("queue")?;
    let dec = make("avdec_h264")?;
    let convert = make("videoconvert")?;
    for chain in [vec![&q, full.upcast_ref()], vec![&q2, &dec, &convert]] {
        add_chain(b.p, &chain)?;
        tee.link(chain[0])?;
    }
    layer(
        b,
        &convert,
        Out::Small,
        "enc-small",
        small_size(size),
        150_000,
        fps * 2,
    )
}

fn audio_branch(
    p: &gst::Pipeline,
    pad: &gst::Pad,
    shape: &Shape,
    volume: u32,
    id: u64,
    epoch: &Arc<AtomicU64>,
    tx: &mpsc::UnboundedSender<Sample>,
) -> Result<()> {
    if p.by_name("vol").is_some() {
        return Ok(()); // a second audio stream of the source is not published
    }
    let a = shape.audio.unwrap_or(AudioEncode {
        sample_rate: 48_000,
        channels: 2,
        bitrate_bps: 64_000,
    });
    let queue = make("queue")?;
    let convert = make("audioconvert")?;
    let resample = make("audioresample")?;
    let vol = gst::ElementFactory::make("volume")
        .name("vol")
        .property("volume", f64::from(volume) / 100.0)
        .build()?;
    let caps = capsfilter(
        gst::Caps::builder("audio/x-raw")
            .field("rate", 48_000i32)
            .field("channels", a.channels.clamp(1, 2) as i32)
            .build(),
    )?;
    let enc = make("opusenc")?;
    enc.set_property_from_str("frame-size", "20");
    enc.set_property("bitrate", a.bitrate_bps.clamp(8_000, 510_000) as i32);
    let sink = sink(Out::Audio, id, epoch, tx);
    add_linked(
        p,
        pad,
        &[
            &queue,
            &convert,
            &resample,
            &vol,
            &caps,
            &enc,
            sink.upcast_ref(),
        ],
    )
}

/// The published size: VideoEncodeParams when given, else the source's, scaled down to fit the
/// ceiling with its aspect kept (even numbers, as encoders want).
pub fn output_size(src: (u32, u32), shape: &Shape) -> (u32, u32) {
    if let Some(v) = shape.video.filter(|v| v.width > 0 && v.height > 0) {
        return (v.width & !1, v.height & !1);
    }
    let (w, h) = (src.0.max(2), src.1.max(2));
    let scale = f64::min(
        1.0,
        f64::min(
            f64::from(shape.max_width) / f64::from(w),
            f64::from(shape.max_height) / f64::from(h),
        ),
    );
    let even = |x: f64| ((x.round() as u32) & !1).max(2);
    (even(f64::from(w) * scale), even(f64::from(h) * scale))
}

/// The small layer: a quarter of each side (as the browser SDK's `q`), at least 16 px high.
pub fn small_size(full: (u32, u32)) -> (u32, u32) {
    let h = (full.1 / 4).max(16);
    let w = (full.0 * h / full.1.max(1)).max(16);
    (w & !1, h & !1)
}

fn vp8enc(name: &str, bitrate: u32, gop_frames: u32) -> Result<gst::Element> {
    let enc = gst::ElementFactory::make("vp8enc").name(name).build()?;
    enc.set_property("deadline", 1i64);
    enc.set_property("cpu-used", 8i32);
    // One thread: with real-time pacing libvpx's worker threads spin while they wait (twice the
    // CPU for the same frames, measured in bench/ingest.sh).
    enc.set_property("threads", 1i32);
    enc.set_property_from_str("end-usage", "cbr");
    enc.set_property("target-bitrate", bitrate as i32);
    enc.set_property("lag-in-frames", 0i32);
    enc.set_property("keyframe-max-dist", gop_frames as i32);
    enc.set_property_from_str("error-resilient", "default");
    Ok(enc)
}

fn video_branch(b: &Branch<'_>, pad: &gst::Pad, caps: Option<&gst::Caps>) -> Result<()> {
    if b.p.by_name("enc-full").is_some() {
        return Ok(());
    }
    let shape = b.shape;
    let s = caps
        .and_then(|c| c.structure(0))
        .ok_or_else(|| anyhow!("video without caps"))?;
    let src = (
        s.get::<i32>("width").unwrap_or(640) as u32,
        s.get::<i32>("height").unwrap_or(360) as u32,
    );
    let src_fps = fps_of(s).unwrap_or(30).clamp(1, 60);
    let (w, h) = output_size(src, shape);
    let fps = shape
        .video
        .map(|v| v.fps)
        .filter(|f| *f > 0)
        .unwrap_or(src_fps);
    let bitrate = shape
        .video
        .map(|v| v.bitrate_bps)
        .filter(|b| *b > 0)
        .unwrap_or_else(|| (f64::from(w * h * fps) * 0.1).clamp(300_000.0, 2_500_000.0) as u32);
    let gop = fps
        * shape
            .video
            .map(|v| v.gop_secs)
            .filter(|g| *g > 0)
            .unwrap_or(2);
    if w == 0 || h == 0 {
        bail!("a video of no size");
    }
    let queue = make("queue")?;
    let convert = make("videoconvert")?;
    let scale = make("videoscale")?;
    let rate = make("videorate")?;
    rate.set_property("drop-only", true);
    let mut full_caps = gst::Caps::builder("video/x-raw")
        .field("format", "I420")
        .field("width", w as i32)
        .field("height", h as i32);
    if shape.video.is_some_and(|v| v.fps > 0) {
        full_caps = full_caps.field("framerate", gst::Fraction::new(fps as i32, 1));
    }
    let caps = capsfilter(
        full_caps
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .build(),
    )?;
    let tee = make("tee")?;
    add_linked(b.p, pad, &[&queue, &convert, &scale, &rate, &caps, &tee])?;
    layer(b, &tee, Out::Full, "enc-full", (w, h), bitrate, gop)?;
    layer(
        b,
        &tee,
        Out::Small,
        "enc-small",
        small_size((w, h)),
        (bitrate / 8).clamp(60_000, 200_000),
        gop,
    )
}

/// One published layer after `from` (a tee or a converter): scaled, encoded in the task's
/// codec, into its appsink.
fn layer(
    b: &Branch<'_>,
    from: &gst::Element,
    out: Out,
    name: &str,
    size: (u32, u32),
    bitrate: u32,
    gop: u32,
) -> Result<()> {
    let codec = *b.codec.get_or_init(|| Codec::Vp8);
    let q = make("queue")?;
    let sc = make("videoscale")?;
    let cf = capsfilter(
        gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            .field("width", size.0 as i32)
            .field("height", size.1 as i32)
            .build(),
    )?;
    let enc = if codec == Codec::H264 {
        x264enc(Some(name), bitrate.max(50_000), gop)?
    } else {
        vp8enc(name, bitrate, gop)?
    };
    let sink = sink(out, b.id, b.epoch, b.tx);
    let mut chain = vec![q, sc, cf, enc];
    if codec == Codec::H264 {
        chain.push(capsfilter(
            gst::Caps::builder("video/x-h264")
                .field("profile", "constrained-baseline")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build(),
        )?);
    }
    chain.push(sink.upcast());
    let refs: Vec<&gst::Element> = chain.iter().collect();
    add_chain(b.p, &refs)?;
    from.link(refs[0])?;
    Ok(())
}

/// A caps structure's frame rate, rounded to whole frames per second.
fn fps_of(s: &gst::StructureRef) -> Option<u32> {
    s.get::<gst::Fraction>("framerate")
        .ok()
        .filter(|f| f.numer() > 0 && f.denom() > 0)
        .map(|f| (f.numer() as f64 / f.denom() as f64).round() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Shape {
        Shape {
            video: None,
            audio: None,
            max_width: 1280,
            max_height: 720,
            passthrough: true,
            proxy: String::new(),
        }
    }

    #[test]
    fn the_source_size_is_kept_under_the_ceiling_and_scaled_with_its_aspect_above() {
        assert_eq!(output_size((640, 360), &shape()), (640, 360));
        assert_eq!(output_size((1920, 1080), &shape()), (1280, 720));
        assert_eq!(output_size((1080, 1920), &shape()), (404, 720));
        assert_eq!(output_size((641, 361), &shape()), (640, 360));
    }

    #[test]
    fn video_encode_params_win_over_the_source() {
        let mut s = shape();
        s.video = Some(VideoEncode {
            width: 320,
            height: 240,
            fps: 15,
            bitrate_bps: 300_000,
            gop_secs: 2,
        });
        assert_eq!(output_size((1920, 1080), &s), (320, 240));
    }

    #[test]
    fn the_small_layer_is_a_quarter() {
        assert_eq!(small_size((640, 360)), (160, 90));
        assert_eq!(small_size((1280, 720)), (320, 180));
        assert_eq!(small_size((64, 36)), (28, 16));
    }

    #[test]
    fn only_the_ingest_schemes_have_a_source() {
        assert_eq!(source_element("http://a/b.mp4"), Some("souphttpsrc"));
        assert_eq!(source_element("HTTPS://a/b.m3u8"), Some("souphttpsrc"));
        assert_eq!(source_element("rtmp://a/live/x"), Some("rtmp2src"));
        assert_eq!(source_element("srt://a:9000"), Some("srtsrc"));
        assert_eq!(source_element("file:///etc/passwd"), None);
        assert_eq!(source_element("rtsp://a/x"), None);
        assert_eq!(source_element("no-scheme"), None);
    }

    #[test]
    fn the_locked_registry_makes_nothing_from_other_schemes() {
        gst::init().unwrap();
        lock_down_registry();
        assert!(
            gst::Element::make_from_uri(gst::URIType::Src, "file:///etc/hostname", None).is_err()
        );
        assert!(gst::Element::make_from_uri(gst::URIType::Src, "http://127.0.0.1/x", None).is_ok());
        assert!(gst::ElementFactory::find("hlsdemux2").is_none());
        assert!(gst::ElementFactory::find("hlsdemux").is_some());
    }
}
