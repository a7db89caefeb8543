//! Whether a packet goes out on one outgoing line: the line's bound on queued media, and the
//! resume at a keyframe after media was skipped (the line went over its bound, or the track was
//! muted or blocked). Sans-IO; the caller reads the queue and counts.

use std::time::{Duration, Instant};
use str0m::rtp::StreamTxQueueInfo;

/// A line is over its bound when str0m's pacer holds media this old or this many packets for
/// it (a downlink slower than the lowest layer, or a worker behind). Media older than a second
/// is of no use to a live picture. The bound is well above what one keyframe takes to drain at
/// a modest estimate (a 100 KB keyframe at 1 Mbit/s: 0.8 s), so a keyframe alone does not put
/// a line over: at 300 ms, a 720p keyframe at the initial estimate could, and the resume's own
/// keyframe again (reasoned, not reproduced).
pub const QUEUE_BOUND_AGE: Duration = Duration::from_secs(1);
pub const QUEUE_BOUND_PACKETS: usize = 400;

/// str0m samples the queue at its pacer updates; a sample older than this says nothing.
const SAMPLE_FRESH: Duration = Duration::from_millis(300);

/// True when a queue sample says the line is over its bound.
pub fn over_bound(q: &dyn StreamTxQueueInfo, now: Instant) -> bool {
    if now.saturating_duration_since(q.created_at()) > SAMPLE_FRESH {
        return false;
    }
    q.packet_count() > QUEUE_BOUND_PACKETS
        || q.first_unsent()
            .is_some_and(|t| now.saturating_duration_since(t) > QUEUE_BOUND_AGE)
}

/// The first wait between keyframe asks of a line that went over its bound; it doubles, up to
/// [`OVERLOAD_ASK_MAX`], each time the line goes over again within [`OVERLOAD_MEMORY`]. A
/// simulcast encoder answers a request for one layer with keyframes on every layer (Chromium's
/// VP8 does), so a subscriber that cannot keep up must not make everyone's stream heavier more
/// often than this.
pub const OVERLOAD_ASK_FIRST: Duration = Duration::from_secs(1);
pub const OVERLOAD_ASK_MAX: Duration = Duration::from_secs(8);
pub const OVERLOAD_MEMORY: Duration = Duration::from_secs(20);

/// The gate's state for one line.
#[derive(Debug, Default, Clone, Copy)]
pub struct Gate {
    /// Waiting for a keyframe before sending again.
    resync: bool,
    /// The line sent the start of a video frame whose last packet has not come yet. A frame is
    /// sent whole: the bound is checked between frames, since a cut frame cannot be decoded and
    /// only makes the receiver ask for a keyframe.
    in_frame: bool,
    /// Went over its bound; stays closed until under it again.
    overloaded: bool,
    /// When the line last went over its bound, and the wait between its keyframe asks.
    last_overload: Option<Instant>,
    backoff: Duration,
    /// No keyframe is asked for this line before then.
    next_ask: Option<Instant>,
}

/// What to do with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it; `restart` asks the renumbering to close the gap of what was skipped.
    Send { restart: bool },
    /// Skip it while waiting for a keyframe; `overload` when the bound is why; `ask` when a
    /// keyframe should be asked for now (the queue is under its bound, so one would be sent,
    /// and the line's backoff allows it).
    Skip { overload: bool, ask: bool },
}

/// What one packet brings to the gate.
#[derive(Debug, Clone, Copy)]
pub struct Packet {
    pub video: bool,
    pub keyframe: bool,
    /// The last packet of its frame (the marker bit of video).
    pub frame_end: bool,
    /// The line's queue is over its bound (video only).
    pub over: bool,
    /// The track was muted or blocked until this packet.
    pub resumed: bool,
    pub now: Instant,
}

impl Gate {
    /// Decides for one packet; `entered_overload` is set when this packet put the line over.
    pub fn check(&mut self, p: Packet) -> (Verdict, bool) {
        let (verdict, entered) = self.decide(Packet {
            over: p.over && !self.in_frame,
            ..p
        });
        self.in_frame = p.video && !p.frame_end && matches!(verdict, Verdict::Send { .. });
        (verdict, entered)
    }

    fn decide(&mut self, p: Packet) -> (Verdict, bool) {
        let mut entered = false;
        if p.video {
            if p.over && !self.overloaded {
                self.overloaded = true;
                self.resync = true;
                entered = true;
                let again = self
                    .last_overload
                    .is_some_and(|t| p.now.saturating_duration_since(t) < OVERLOAD_MEMORY);
                self.backoff = if again {
                    (self.backoff * 2).clamp(OVERLOAD_ASK_FIRST, OVERLOAD_ASK_MAX)
                } else {
                    OVERLOAD_ASK_FIRST
                };
                self.last_overload = Some(p.now);
            }
            if self.overloaded && !p.over && p.keyframe {
                self.overloaded = false;
            }
        }
        self.resync |= p.resumed;
        if !self.resync {
            return (Verdict::Send { restart: false }, entered);
        }
        if p.video && (self.overloaded || !p.keyframe) {
            let ask = !p.over && self.next_ask.is_none_or(|t| p.now >= t);
            if ask && self.overloaded {
                self.next_ask = Some(p.now + self.backoff);
            }
            return (
                Verdict::Skip {
                    overload: self.overloaded,
                    ask,
                },
                entered,
            );
        }
        self.resync = false;
        (Verdict::Send { restart: true }, entered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(keyframe: bool, over: bool) -> Packet {
        Packet {
            video: true,
            keyframe,
            frame_end: true,
            over,
            resumed: false,
            now: Instant::now(),
        }
    }

    fn at(p: Packet, now: Instant) -> Packet {
        Packet { now, ..p }
    }

    #[test]
    fn over_the_bound_skips_until_under_it_and_a_keyframe() {
        let mut g = Gate::default();
        assert_eq!(
            g.check(video(false, false)).0,
            Verdict::Send { restart: false }
        );
        assert_eq!(
            g.check(video(false, true)),
            (
                Verdict::Skip {
                    overload: true,
                    ask: false
                },
                true
            ),
            "entering the overload: no keyframe is asked while it would be skipped"
        );
        assert_eq!(
            g.check(video(true, true)),
            (
                Verdict::Skip {
                    overload: true,
                    ask: false
                },
                false
            )
        );
        assert_eq!(
            g.check(video(false, false)).0,
            Verdict::Skip {
                overload: true,
                ask: true
            },
            "under the bound but no keyframe yet: ask"
        );
        assert_eq!(
            g.check(video(true, false)).0,
            Verdict::Send { restart: true }
        );
        assert_eq!(
            g.check(video(false, false)).0,
            Verdict::Send { restart: false }
        );
    }

    #[test]
    fn a_frame_being_sent_is_sent_whole() {
        let mut g = Gate::default();
        let part = |keyframe, over, frame_end| Packet {
            frame_end,
            ..video(keyframe, over)
        };
        let send = Verdict::Send { restart: false };
        assert_eq!(g.check(part(true, false, false)), (send, false));
        assert_eq!(
            g.check(part(false, true, false)),
            (send, false),
            "over the bound in the middle of a frame: the frame goes on"
        );
        assert_eq!(g.check(part(false, true, true)), (send, false));
        assert_eq!(
            g.check(part(false, true, false)),
            (
                Verdict::Skip {
                    overload: true,
                    ask: false
                },
                true
            ),
            "the next frame is not sent"
        );
        assert_eq!(
            g.check(part(false, false, true)).0,
            Verdict::Skip {
                overload: true,
                ask: true
            },
            "nor the rest of it"
        );
    }

    #[test]
    fn a_resumed_track_waits_for_a_keyframe_but_audio_goes_at_once() {
        let mut g = Gate::default();
        let resumed = Packet {
            resumed: true,
            ..video(false, false)
        };
        assert_eq!(
            g.check(resumed).0,
            Verdict::Skip {
                overload: false,
                ask: true
            }
        );
        assert_eq!(
            g.check(video(false, false)).0,
            Verdict::Skip {
                overload: false,
                ask: true
            },
            "a mute's resume asks on every packet (the room core throttles)"
        );
        assert_eq!(
            g.check(video(true, false)).0,
            Verdict::Send { restart: true }
        );
        let mut a = Gate::default();
        let audio = Packet {
            video: false,
            keyframe: false,
            frame_end: true,
            over: false,
            resumed: true,
            now: Instant::now(),
        };
        assert_eq!(a.check(audio).0, Verdict::Send { restart: true });
    }

    #[test]
    fn a_line_that_keeps_overflowing_asks_for_keyframes_ever_less_often() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let asks = |v: Verdict| matches!(v, Verdict::Skip { ask: true, .. });
        let mut g = Gate::default();
        g.check(at(video(false, true), ms(0)));
        assert!(asks(g.check(at(video(false, false), ms(100))).0));
        assert!(
            !asks(g.check(at(video(false, false), ms(600))).0),
            "1 s apart"
        );
        assert!(asks(g.check(at(video(false, false), ms(1100))).0));
        // Resumes, and goes over again soon: 2 s between asks now.
        assert_eq!(
            g.check(at(video(true, false), ms(1200))).0,
            Verdict::Send { restart: true }
        );
        g.check(at(video(false, true), ms(3000)));
        assert!(asks(g.check(at(video(false, false), ms(3100))).0));
        assert!(!asks(g.check(at(video(false, false), ms(4200))).0));
        assert!(asks(g.check(at(video(false, false), ms(5100))).0));
        // Up to 8 s at most.
        let mut t = 5200;
        for _ in 0..6 {
            g.check(at(video(true, false), ms(t)));
            g.check(at(video(false, true), ms(t + 100)));
            t += 10_000;
        }
        assert_eq!(g.backoff, OVERLOAD_ASK_MAX);
        // A line that stayed well for a while starts again at 1 s.
        g.check(at(video(true, false), ms(t)));
        g.check(at(video(false, true), ms(t + 60_000)));
        assert_eq!(g.backoff, OVERLOAD_ASK_FIRST);
    }

    struct Sample {
        at: Instant,
        packets: usize,
        first: Option<Instant>,
    }

    impl StreamTxQueueInfo for Sample {
        fn created_at(&self) -> Instant {
            self.at
        }
        fn byte_size(&self) -> usize {
            self.packets * 1000
        }
        fn packet_count(&self) -> usize {
            self.packets
        }
        fn first_unsent(&self) -> Option<Instant> {
            self.first
        }
    }

    #[test]
    fn the_bound_is_age_or_count_of_a_fresh_sample() {
        let t = Instant::now() + Duration::from_secs(10);
        let s = |packets, age_ms: u64, sampled_ms_ago: u64| Sample {
            at: t - Duration::from_millis(sampled_ms_ago),
            packets,
            first: Some(t - Duration::from_millis(age_ms)),
        };
        assert!(!over_bound(&s(10, 100, 0), t));
        assert!(
            !over_bound(&s(80, 800, 0), t),
            "a keyframe still draining 800 ms later"
        );
        assert!(over_bound(&s(10, 1100, 0), t), "oldest queued 1.1 s ago");
        assert!(over_bound(&s(500, 10, 0), t), "500 packets");
        assert!(!over_bound(&s(500, 1500, 400), t), "a sample 400 ms old");
    }
}
