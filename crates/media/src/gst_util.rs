//! Small GStreamer helpers used by every pipeline: making elements, watching a bus from a
//! thread, and the running time of a local instant.

use anyhow::{anyhow, Context, Result};
use gstreamer as gst;
use gstreamer::prelude::*;
use std::time::Instant;
use tokio::sync::mpsc;

pub fn make(factory: &str) -> Result<gst::Element> {
    gst::ElementFactory::make(factory).build().with_context(|| {
        format!("GStreamer element {factory} is missing (install its plugin package)")
    })
}

/// A capsfilter holding `caps`.
pub fn capsfilter(caps: gst::Caps) -> Result<gst::Element> {
    gst::ElementFactory::make("capsfilter")
        .property("caps", caps)
        .build()
        .context("GStreamer element capsfilter is missing")
}

/// What a pipeline's bus said that the task cares about.
#[derive(Debug)]
pub enum BusEvent {
    FragmentOpened {
        location: String,
        running_ns: u64,
    },
    FragmentClosed {
        location: String,
        running_ns: u64,
    },
    /// A `level` element's reading: the loudest channel's RMS in dBFS.
    Level {
        element: String,
        rms_db: f64,
    },
    /// The pipeline reached the state it was asked for (prerolled, or a seek is done).
    AsyncDone,
    Eos,
    Error(String),
}

/// Forwards a pipeline's bus to `tx` as `(pipeline id, event)` from a thread of its own, and
/// recomputes latency when elements join a running pipeline. It stops after EOS or an error.
pub fn watch_bus(id: u64, pipeline: &gst::Pipeline, tx: mpsc::UnboundedSender<(u64, BusEvent)>) {
    watch(id, pipeline, tx, true)
}

/// As [`watch_bus`], for a pipeline that goes on after EOS (a source played again): it stops
/// when the pipeline is gone.
pub fn watch_bus_through_eos(
    id: u64,
    pipeline: &gst::Pipeline,
    tx: mpsc::UnboundedSender<(u64, BusEvent)>,
) {
    watch(id, pipeline, tx, false)
}

fn watch(
    id: u64,
    pipeline: &gst::Pipeline,
    tx: mpsc::UnboundedSender<(u64, BusEvent)>,
    stop_at_end: bool,
) {
    let bus = pipeline.bus().expect("a pipeline has a bus");
    let weak = pipeline.downgrade();
    let wait = if stop_at_end {
        gst::ClockTime::NONE
    } else {
        Some(gst::ClockTime::from_mseconds(250))
    };
    std::thread::Builder::new()
        .name(format!("bus-{id}"))
        .spawn(move || loop {
            let Some(msg) = bus.timed_pop(wait) else {
                if weak.upgrade().is_none() || tx.is_closed() {
                    break;
                }
                continue;
            };
            {
                use gst::MessageView as M;
                let ev = match msg.view() {
                    M::AsyncDone(_) => Some(BusEvent::AsyncDone),
                    M::Eos(_) => Some(BusEvent::Eos),
                    M::Error(e) => Some(BusEvent::Error(format!(
                        "{}: {} ({})",
                        e.src()
                            .map(|s| s.path_string().to_string())
                            .unwrap_or_default(),
                        e.error(),
                        e.debug().unwrap_or_default()
                    ))),
                    M::Latency(_) => {
                        if let Some(p) = weak.upgrade() {
                            let _ = p.recalculate_latency();
                        }
                        None
                    }
                    M::Element(el) if el.structure().is_some_and(|s| s.name() == "level") => {
                        let s = el.structure().expect("checked");
                        let rms = s
                            .get::<gst::glib::ValueArray>("rms")
                            .ok()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|v| v.get::<f64>().ok())
                                    .fold(f64::NEG_INFINITY, f64::max)
                            })
                            .unwrap_or(f64::NEG_INFINITY);
                        Some(BusEvent::Level {
                            element: el.src().map(|s| s.name().to_string()).unwrap_or_default(),
                            rms_db: rms,
                        })
                    }
                    M::Element(el) => el.structure().and_then(|s| {
                        let loc = s.get::<String>("location").ok()?;
                        match s.name().as_str() {
                            "splitmuxsink-fragment-opened" => Some(BusEvent::FragmentOpened {
                                location: loc,
                                running_ns: running_time(s),
                            }),
                            "splitmuxsink-fragment-closed" => Some(BusEvent::FragmentClosed {
                                location: loc,
                                running_ns: running_time(s),
                            }),
                            _ => None,
                        }
                    }),
                    _ => None,
                };
                if let Some(ev) = ev {
                    let end = stop_at_end && matches!(ev, BusEvent::Eos | BusEvent::Error(_));
                    if tx.send((id, ev)).is_err() || end {
                        break;
                    }
                }
            }
        })
        .expect("spawning a bus thread");
}

fn running_time(s: &gst::StructureRef) -> u64 {
    s.get::<u64>("running-time")
        .or_else(|_| {
            s.get::<gst::ClockTime>("running-time")
                .map(|c| c.nseconds())
        })
        .unwrap_or(0)
}

/// Maps local instants onto a playing pipeline's running time.
#[derive(Clone, Copy)]
pub struct RunningClock {
    at: Instant,
    running_ns: u64,
}

impl RunningClock {
    /// Reads the pipeline's clock now (the pipeline must be playing).
    pub fn of(pipeline: &gst::Pipeline) -> Result<Self> {
        let clock = pipeline
            .clock()
            .ok_or_else(|| anyhow!("pipeline has no clock"))?;
        let now = clock.time();
        let base = pipeline.base_time().unwrap_or(gst::ClockTime::ZERO);
        Ok(RunningClock {
            at: Instant::now(),
            running_ns: now.saturating_sub(base).nseconds(),
        })
    }

    pub fn running_ns(&self, t: Instant) -> u64 {
        if t >= self.at {
            self.running_ns + (t - self.at).as_nanos() as u64
        } else {
            self.running_ns
                .saturating_sub((self.at - t).as_nanos() as u64)
        }
    }
}

/// Adds a chain of elements to a running pipeline, links it and brings it to the pipeline's
/// state (the caller links its ends).
pub fn add_chain(p: &gst::Pipeline, chain: &[&gst::Element]) -> Result<()> {
    p.add_many(chain.iter().copied())?;
    link_chain(chain)?;
    for e in chain {
        e.sync_state_with_parent()?;
    }
    Ok(())
}

/// A realtime x264 encoder (`superfast`, `zerolatency`: no lookahead, no B-frames) at
/// `bitrate_bps` with an IDR at least every `gop_frames`.
pub fn x264enc(name: Option<&str>, bitrate_bps: u32, gop_frames: u32) -> Result<gst::Element> {
    let enc = make("x264enc")?;
    if let Some(n) = name {
        enc.set_property("name", n);
    }
    enc.set_property_from_str("tune", "zerolatency");
    enc.set_property_from_str("speed-preset", "superfast");
    enc.set_property("bitrate", (bitrate_bps / 1000).max(1));
    enc.set_property("key-int-max", gop_frames.max(1));
    Ok(enc)
}

/// Links a chain of elements, naming the pair that fails.
pub fn link_chain(elements: &[&gst::Element]) -> Result<()> {
    for w in elements.windows(2) {
        w[0].link(w[1]).with_context(|| {
            format!(
                "linking {} to {}",
                w[0].factory()
                    .map(|f| f.name().to_string())
                    .unwrap_or_default(),
                w[1].factory()
                    .map(|f| f.name().to_string())
                    .unwrap_or_default()
            )
        })?;
    }
    Ok(())
}
