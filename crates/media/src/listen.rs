//! A speaker's way into the speech engine: a small pipeline of its own that decodes the
//! speaker's Opus frames to 16 kHz mono PCM and hands each buffer to the engine.

use crate::gst_util::{capsfilter, link_chain, make, watch_bus, BusEvent};
use crate::input::Feeder;
use crate::stt::SttFeeder;
use anyhow::Result;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use hearth_client::{Codec, Frame};
use tokio::sync::mpsc;

/// One speaker's decoding pipeline.
pub struct Listener {
    pipeline: gst::Pipeline,
    feeder: Feeder,
    first_rtp: u64,
}

impl Listener {
    /// Starts decoding into the engine's stream `id`; bus events come as pipeline `bus_id`.
    pub fn start(
        id: String,
        out: SttFeeder,
        first_rtp: u64,
        bus_id: u64,
        bus: mpsc::UnboundedSender<(u64, BusEvent)>,
    ) -> Result<Self> {
        let feeder = Feeder::new(Codec::Opus)?;
        let pipeline = gst::Pipeline::new();
        let dec = make("opusdec")?;
        let conv = make("audioconvert")?;
        let res = make("audioresample")?;
        let caps = capsfilter(
            gst::Caps::builder("audio/x-raw")
                .field("format", "S16LE")
                .field("rate", 16_000i32)
                .field("channels", 1i32)
                .build(),
        )?;
        let sink = gst_app::AppSink::builder().sync(false).build();
        let src: &gst::Element = feeder.src.upcast_ref();
        pipeline.add_many([src, &dec, &conv, &res, &caps, sink.upcast_ref()])?;
        link_chain(&[src, &dec, &conv, &res, &caps, sink.upcast_ref()])?;
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if let Some(b) = sample.buffer() {
                        if let Ok(map) = b.map_readable() {
                            out.pcm(&id, map.as_slice());
                        }
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        watch_bus(bus_id, &pipeline, bus);
        pipeline.set_state(gst::State::Playing)?;
        Ok(Listener {
            pipeline,
            feeder,
            first_rtp,
        })
    }

    /// Decodes one Opus frame.
    pub fn push(&mut self, f: &Frame) {
        let rel = f.rtp_time.saturating_sub(self.first_rtp);
        let pts_ns = rel * 1_000_000_000 / u64::from(f.clock_rate.max(1));
        // Audio never waits for a keyframe.
        let _ = self.feeder.push(f, pts_ns);
    }

    pub fn stop(self) {
        let _ = self.feeder.src.end_of_stream();
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
