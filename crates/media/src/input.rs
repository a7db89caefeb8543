//! A subscribed track's way into a pipeline: an `appsrc` (live, time format) with the caps of
//! its codec, fed whole frames with presentation times on the running clock; video waits for
//! a keyframe after a start or a gap and asks for one.

use crate::gst_util::make;
use anyhow::Result;
use gstreamer as gst;
use gstreamer_app as gst_app;
use hearth_client::{Codec, Frame};
use std::time::{Duration, Instant};

/// How often a keyframe is asked for while waiting for one.
const PLI_EVERY: Duration = Duration::from_millis(1000);

pub struct Feeder {
    pub src: gst_app::AppSrc,
    codec: Codec,
    waiting_key: bool,
    last_pli: Option<Instant>,
    last_pts: Option<u64>,
    discont: bool,
}

/// What the caller should do after a push.
pub enum Pushed {
    Ok,
    /// Ask the sender for a keyframe.
    NeedKeyframe,
}

impl Feeder {
    pub fn new(codec: Codec) -> Result<Self> {
        let caps = match codec {
            Codec::Opus => gst::Caps::builder("audio/x-opus")
                .field("channel-mapping-family", 0i32)
                .build(),
            Codec::Vp8 => gst::Caps::builder("video/x-vp8").build(),
            Codec::Vp9 => gst::Caps::builder("video/x-vp9").build(),
            Codec::H264 => gst::Caps::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build(),
        };
        let src = gst_app::AppSrc::builder()
            .caps(&caps)
            .is_live(true)
            .format(gst::Format::Time)
            .do_timestamp(false)
            // Bounded: a stalled pipeline drops frames here instead of growing without end.
            .max_bytes(8 << 20)
            .leaky_type(gst_app::AppLeakyType::Downstream)
            .build();
        Ok(Feeder {
            src,
            codec,
            waiting_key: codec != Codec::Opus,
            last_pli: None,
            last_pts: None,
            discont: true,
        })
    }

    /// Pushes a frame at running time `pts_ns`.
    pub fn push(&mut self, f: &Frame, pts_ns: u64) -> Pushed {
        let video = self.codec != Codec::Opus;
        if video && !f.contiguous && !f.keyframe {
            self.waiting_key = true;
        }
        if self.waiting_key {
            if !f.keyframe {
                return self.ask();
            }
            self.waiting_key = false;
            self.discont = true;
        }
        if self.last_pts.is_some_and(|l| pts_ns <= l) {
            return Pushed::Ok;
        }
        self.last_pts = Some(pts_ns);
        let mut buf = gst::Buffer::from_slice(f.data.clone());
        {
            let b = buf.get_mut().expect("new buffer is writable");
            b.set_pts(gst::ClockTime::from_nseconds(pts_ns));
            if video && !f.keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
            if std::mem::take(&mut self.discont) {
                b.set_flags(b.flags() | gst::BufferFlags::DISCONT);
            }
        }
        let _ = self.src.push_buffer(buf);
        Pushed::Ok
    }

    fn ask(&mut self) -> Pushed {
        let now = Instant::now();
        if self.last_pli.is_some_and(|t| now - t < PLI_EVERY) {
            return Pushed::Ok;
        }
        self.last_pli = Some(now);
        Pushed::NeedKeyframe
    }
}

/// The decoder chain for a codec, as elements to add and link after the appsrc.
pub fn decoder(codec: Codec) -> Result<Vec<gst::Element>> {
    Ok(match codec {
        Codec::Opus => vec![make("opusdec")?],
        Codec::Vp8 => vec![make("vp8dec")?],
        Codec::Vp9 => vec![make("vp9dec")?],
        Codec::H264 => vec![make("h264parse")?, make("avdec_h264")?],
    })
}
