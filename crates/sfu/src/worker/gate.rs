//! Whether a packet goes out on one outgoing line: the line's bound on queued media, and the
//! resume at a keyframe after media was skipped (the line went over its bound, or the track was
//! muted or blocked). Sans-IO; the caller reads the queue and counts.

use std::time::{Duration, Instant};
use str0m::rtp::StreamTxQueueInfo;

/// A line is over its bound when str0m's pacer holds media this old or this many packets for
/// it (a downlink slower than the lowest layer, or a worker behind).
pub const QUEUE_BOUND_AGE: Duration = Duration::from_millis(300);
pub const QUEUE_BOUND_PACKETS: usize = 400;

/// True when a queue sample says the line is over its bound. str0m samples the queue at its
/// pacer updates; a sample older than the bound says nothing.
pub fn over_bound(q: &dyn StreamTxQueueInfo, now: Instant) -> bool {
    if now.saturating_duration_since(q.created_at()) > QUEUE_BOUND_AGE {
        return false;
    }
    q.packet_count() > QUEUE_BOUND_PACKETS
        || q.first_unsent()
            .is_some_and(|t| now.saturating_duration_since(t) > QUEUE_BOUND_AGE)
}

/// The gate's state for one line.
#[derive(Debug, Default, Clone, Copy)]
pub struct Gate {
    /// Waiting for a keyframe before sending again.
    resync: bool,
    /// Went over its bound; stays closed until under it again.
    overloaded: bool,
}

/// What to do with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it; `restart` asks the renumbering to close the gap of what was skipped.
    Send { restart: bool },
    /// Skip it while waiting for a keyframe; `overload` when the bound is why.
    Skip { overload: bool },
}

/// What one packet brings to the gate.
#[derive(Debug, Clone, Copy)]
pub struct Packet {
    pub video: bool,
    pub keyframe: bool,
    /// The line's queue is over its bound (video only).
    pub over: bool,
    /// The track was muted or blocked until this packet.
    pub resumed: bool,
}

impl Gate {
    /// Decides for one packet; `entered_overload` is set when this packet put the line over.
    pub fn check(&mut self, p: Packet) -> (Verdict, bool) {
        let mut entered = false;
        if p.video {
            if p.over && !self.overloaded {
                self.overloaded = true;
                self.resync = true;
                entered = true;
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
            return (
                Verdict::Skip {
                    overload: self.overloaded,
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
            over,
            resumed: false,
        }
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
            (Verdict::Skip { overload: true }, true),
            "entering the overload"
        );
        assert_eq!(
            g.check(video(true, true)),
            (Verdict::Skip { overload: true }, false)
        );
        assert_eq!(
            g.check(video(false, false)).0,
            Verdict::Skip { overload: true },
            "under the bound but no keyframe yet"
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
    fn a_resumed_track_waits_for_a_keyframe_but_audio_goes_at_once() {
        let mut g = Gate::default();
        let resumed = Packet {
            resumed: true,
            ..video(false, false)
        };
        assert_eq!(g.check(resumed).0, Verdict::Skip { overload: false });
        assert_eq!(
            g.check(video(true, false)).0,
            Verdict::Send { restart: true }
        );
        let mut a = Gate::default();
        let audio = Packet {
            video: false,
            keyframe: false,
            over: false,
            resumed: true,
        };
        assert_eq!(a.check(audio).0, Verdict::Send { restart: true });
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
        assert!(over_bound(&s(10, 400, 0), t), "oldest queued 400 ms ago");
        assert!(over_bound(&s(500, 10, 0), t), "500 packets");
        assert!(!over_bound(&s(500, 900, 1000), t), "a sample a second old");
    }
}
