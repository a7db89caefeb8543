//! Quality samples the server observes itself, every [`SAMPLE_PERIOD`], for each user:
//! upstream (what a publisher sends: bitrate, loss, encode fps, resolution from keyframes) and
//! downstream per remote user (what the server forwards: bitrate, loss from receiver reports,
//! fps, resolution, and for viewers that report nothing themselves the share of the period
//! their picture stood still while the line waited for a keyframe). Emitted as `Quality` domain events named by DescribeCallDetailInfo's
//! `DataType` metrics, so WHIP clients that report nothing still have data; and each user's
//! `Usage` over the period (the class of what it actually received) and its `RoundTrip`.

use super::rooms::RoomSlot;
use super::Worker;
use crate::core::{MediaKind as CoreKind, ParticipantId, StreamKind, SubscriptionId};
use crate::events::EventKind;
use hearth_types::UserId;
use rustc_hash::FxHashMap;
use std::time::{Duration, Instant};
use str0m::media::{MediaKind, Mid};

/// The spec's quality points are 2 s apart.
pub(crate) const SAMPLE_PERIOD: Duration = Duration::from_secs(2);

struct Sample {
    pid: ParticipantId,
    peer: String,
    metric: &'static str,
    value: f64,
}

/// What one user received over a sample period, on all its connections (usage counts by it),
/// and the longest round trip any of them measured.
#[derive(Default)]
struct Received {
    audio: bool,
    /// The pixels of every video stream received, summed.
    pixels: u64,
    rtt: Option<Duration>,
}

/// One media line's flow over the sample period, seen from `pid`.
struct Line<'a> {
    pid: ParticipantId,
    /// Empty upstream; the remote user downstream.
    peer: &'a str,
    audio: bool,
    flow: super::peer::Flow,
    loss: Option<f32>,
    /// `bigvEncFps` upstream, `bigvDecFps` downstream.
    fps_metric: &'static str,
    /// Report `bigvBlock`, the time the viewer's picture stood still (downstream, for clients
    /// that do not report their own freezes).
    block: bool,
}

fn push_media(out: &mut Vec<Sample>, l: Line, secs: f64) {
    let bit = (l.flow.bytes * 8) as f64 / secs;
    let loss = f64::from(l.loss.unwrap_or(0.0)) * 100.0;
    let mut add = |metric, value| {
        out.push(Sample {
            pid: l.pid,
            peer: l.peer.to_owned(),
            metric,
            value,
        })
    };
    if l.audio {
        add("aBit", bit.round());
        add("aLoss", loss);
    } else {
        add("bigvBit", bit.round());
        add("bigvLoss", loss);
        if !l.fps_metric.is_empty() {
            add(l.fps_metric, (l.flow.frames as f64 / secs).round());
        }
        let frames = l.flow.frames + l.flow.skipped_frames;
        if l.block && frames > 0 {
            let frozen = l.flow.skipped_frames as f64 / frames as f64;
            add("bigvBlock", (frozen * secs * 1000.0).round());
        }
        if let Some((w, h)) = l.flow.dims {
            add("bigvWidth", f64::from(w));
            add("bigvHeight", f64::from(h));
        }
    }
}

impl Worker {
    pub(crate) fn sample_quality(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last_quality);
        if elapsed < SAMPLE_PERIOD {
            return;
        }
        self.last_quality = now;
        let secs = elapsed.as_secs_f64();
        let mut samples = Vec::new();
        let mut received: FxHashMap<(RoomSlot, UserId), Received> = FxHashMap::default();
        let pids: Vec<ParticipantId> = self.peers.keys().copied().collect();
        for pid in pids {
            // Downstream: which publisher each outgoing line carries (the lines that carried or
            // skipped something this period).
            let lines: Vec<(SubscriptionId, Mid, super::peer::Flow)> = {
                let p = self.peers.get_mut(&pid).expect("listed above");
                p.out_by_sub
                    .iter_mut()
                    .map(|(sub, line)| (*sub, line.mid, std::mem::take(&mut line.flow)))
                    .filter(|(_, _, f)| f.bytes > 0 || f.skipped_frames > 0)
                    .collect()
            };
            let slot = self.peers[&pid].slot;
            for (sub, mid, flow) in lines {
                let p = &self.peers[&pid];
                let Some(room) = self.rooms.get(&slot) else {
                    continue;
                };
                let Some(track) = room
                    .core
                    .subscribed_track(sub)
                    .and_then(|t| room.core.track(t))
                else {
                    continue;
                };
                if flow.bytes > 0 {
                    let got = received.entry((slot, p.user.clone())).or_default();
                    match (track.kind, flow.dims) {
                        (CoreKind::Audio, _) => got.audio = true,
                        (_, Some((w, h))) => got.pixels += u64::from(w) * u64::from(h),
                        // Video whose size no keyframe told yet: the smallest video class.
                        (_, None) => got.pixels += 1,
                    }
                }
                if track.stream != StreamKind::Main {
                    continue;
                }
                let Some(owner) = self.owner_user(slot, track.owner) else {
                    continue;
                };
                let audio = track.kind == CoreKind::Audio;
                let line = Line {
                    pid,
                    peer: owner.as_str(),
                    audio,
                    flow,
                    loss: p.loss.get(&mid).copied(),
                    // Clients report the fps they render and their freezes; for the others,
                    // what was forwarded, and how much was skipped.
                    fps_metric: if p.client.is_some() { "" } else { "bigvDecFps" },
                    block: p.client.is_none(),
                };
                push_media(&mut samples, line, secs);
            }
            let p = self.peers.get_mut(&pid).expect("listed above");
            if let Some(rtt) = p.rtt.take() {
                let got = received.entry((p.slot, p.user.clone())).or_default();
                got.rtt = got.rtt.max(Some(rtt));
            }
            // Upstream: what this peer publishes on its main stream.
            let slot = p.slot;
            let inbound: Vec<_> = p
                .inbound
                .iter_mut()
                .map(|(m, i)| (*m, i.track, i.kind, std::mem::take(&mut i.flow)))
                .collect();
            for (mid, track, kind, flow) in inbound {
                let main = self
                    .rooms
                    .get(&slot)
                    .and_then(|r| r.core.track(track))
                    .is_some_and(|t| t.stream == StreamKind::Main);
                if !main {
                    continue;
                }
                let loss = self.peers[&pid].loss.get(&mid).copied();
                let line = Line {
                    pid,
                    peer: "",
                    audio: kind == MediaKind::Audio,
                    flow,
                    loss,
                    fps_metric: "bigvEncFps",
                    block: false,
                };
                push_media(&mut samples, line, secs);
            }
        }
        for ((slot, user), got) in received {
            if let Some(rtt) = got.rtt {
                let ms = rtt.as_secs_f64() * 1000.0;
                self.emit_for(slot, &user, EventKind::RoundTrip { ms });
            }
            let class = match got.pixels {
                0 if got.audio => "Audio",
                0 => continue,
                pixels => hearth_types::pixel_class(pixels),
            };
            self.emit_for(slot, &user, EventKind::Usage { class, secs });
        }
        for s in samples {
            let Some(p) = self.peers.get(&s.pid) else {
                continue;
            };
            let (slot, user) = (p.slot, p.user.clone());
            self.emit_for(
                slot,
                &user,
                EventKind::Quality {
                    peer: s.peer,
                    metric: s.metric,
                    value: s.value,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(flow: super::super::peer::Flow, block: bool) -> Line<'static> {
        Line {
            pid: ParticipantId(1),
            peer: "alice",
            audio: false,
            flow,
            loss: None,
            fps_metric: "bigvDecFps",
            block,
        }
    }

    fn value(out: &[Sample], metric: &str) -> Option<f64> {
        out.iter().find(|s| s.metric == metric).map(|s| s.value)
    }

    #[test]
    fn a_viewers_frozen_share_is_reported_as_block_time() {
        let flow = super::super::peer::Flow {
            bytes: 50_000,
            frames: 30,
            skipped_frames: 10,
            dims: Some((640, 360)),
        };
        let mut out = Vec::new();
        push_media(&mut out, line(flow, true), 2.0);
        // A quarter of the frames skipped over 2 s: 500 ms frozen; 15 fps forwarded.
        assert_eq!(value(&out, "bigvBlock"), Some(500.0));
        assert_eq!(value(&out, "bigvDecFps"), Some(15.0));
        assert_eq!(value(&out, "bigvBit"), Some(200_000.0));
        let mut out = Vec::new();
        push_media(&mut out, line(flow, false), 2.0);
        assert_eq!(
            value(&out, "bigvBlock"),
            None,
            "clients report their own freezes"
        );
        let idle = super::super::peer::Flow::default();
        let mut out = Vec::new();
        push_media(&mut out, line(idle, true), 2.0);
        assert_eq!(value(&out, "bigvBlock"), None, "no frames, no claim");
    }
}
