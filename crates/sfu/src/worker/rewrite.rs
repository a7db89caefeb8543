//! How forwarded RTP is renumbered for one outgoing media line: the publisher's packets keep
//! their payload (shared, never copied) and only the numbers a receiver tracks change. Sequence
//! numbers, timestamps and VP8 picture ids run on without a jump when the line moves to another
//! source (a simulcast layer switch, or a resume after media was dropped), and the first sequence
//! number is below 2^16 so the receiver's SRTP rollover counter starts at 0.

use std::time::Instant;

/// The numbers of one incoming packet that a receiver sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numbers {
    /// Extended sequence number.
    pub seq: u64,
    pub ts: u32,
    /// VP8 PictureID and TL0PICIDX when the payload has them.
    pub picture_id: Option<u16>,
    pub tl0: Option<u8>,
}

/// The renumbering state of one outgoing line.
#[derive(Debug, Default, Clone)]
pub struct Rewrite {
    /// The upstream stream (SSRC) being forwarded; `None` before the first packet.
    source: Option<u32>,
    /// Packets of the current source before this sequence number are from before the switch.
    first_in: u64,
    seq_offset: i64,
    ts_offset: u32,
    picture_offset: u16,
    tl0_offset: u8,
    /// Highest sequence number sent, with that packet's timestamp and send time.
    last_seq: Option<u64>,
    last_ts: u32,
    last_at: Option<Instant>,
    last_picture: Option<u16>,
    last_tl0: Option<u8>,
    /// Asked to start over on the next packet (set after media was dropped).
    restart: bool,
}

/// 15-bit VP8 PictureID arithmetic.
const PICTURE_ID_MASK: u16 = 0x7fff;

impl Rewrite {
    /// The next packet starts a new run (use it only on a keyframe).
    pub fn restart(&mut self) {
        self.restart = true;
    }

    /// Numbers for a packet of `source`; `None` for a packet that belongs before the current
    /// run (a late retransmission from the previous source's time). `clock` is the RTP clock
    /// rate, used to advance the timestamp across a source change by the time that passed.
    pub fn map(
        &mut self,
        source: u32,
        input: Numbers,
        clock: u32,
        now: Instant,
    ) -> Option<Numbers> {
        if self.source != Some(source) || self.restart {
            self.start_run(source, input, clock, now);
        }
        if input.seq < self.first_in {
            return None;
        }
        let seq = (input.seq as i64).wrapping_add(self.seq_offset) as u64;
        let ts = input.ts.wrapping_add(self.ts_offset);
        let picture_id = input
            .picture_id
            .map(|p| p.wrapping_add(self.picture_offset) & PICTURE_ID_MASK);
        let tl0 = input.tl0.map(|t| t.wrapping_add(self.tl0_offset));
        if self.last_seq.is_none_or(|l| seq > l) {
            self.last_seq = Some(seq);
            self.last_ts = ts;
            self.last_at = Some(now);
        }
        if picture_id.is_some() {
            self.last_picture = picture_id;
        }
        if tl0.is_some() {
            self.last_tl0 = tl0;
        }
        Some(Numbers {
            seq,
            ts,
            picture_id,
            tl0,
        })
    }

    /// True when VP8 descriptors must be patched (the ids differ from the publisher's).
    pub fn patches_vp8(&self) -> bool {
        self.picture_offset != 0 || self.tl0_offset != 0
    }

    fn start_run(&mut self, source: u32, input: Numbers, clock: u32, now: Instant) {
        self.source = Some(source);
        self.restart = false;
        self.first_in = input.seq;
        match self.last_seq {
            None => {
                // Keep the wire's 16 bits but drop the publisher's rollovers.
                self.seq_offset = -((input.seq & !0xffff) as i64);
                self.ts_offset = 0;
            }
            Some(last) => {
                self.seq_offset = (last as i64 + 1).wrapping_sub(input.seq as i64);
                let elapsed = self
                    .last_at
                    .map_or(0, |t| now.saturating_duration_since(t).as_micros() as u64);
                let advance = (elapsed * u64::from(clock) / 1_000_000).max(1) as u32;
                self.ts_offset = self.last_ts.wrapping_add(advance).wrapping_sub(input.ts);
            }
        }
        if let (Some(last), Some(p)) = (self.last_picture, input.picture_id) {
            self.picture_offset = last.wrapping_add(1).wrapping_sub(p) & PICTURE_ID_MASK;
        }
        if let (Some(last), Some(t)) = (self.last_tl0, input.tl0) {
            self.tl0_offset = last.wrapping_add(1).wrapping_sub(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn n(seq: u64, ts: u32, pic: u16) -> Numbers {
        Numbers {
            seq,
            ts,
            picture_id: Some(pic),
            tl0: Some(pic as u8),
        }
    }

    #[test]
    fn the_first_run_keeps_the_wire_numbers_with_rollovers_dropped() {
        let t = Instant::now();
        let mut r = Rewrite::default();
        let out = r.map(1, n(3 * 65536 + 500, 9000, 40), 90_000, t).unwrap();
        assert_eq!(out, n(500, 9000, 40));
        assert!(!r.patches_vp8());
        assert_eq!(
            r.map(1, n(3 * 65536 + 501, 9000, 40), 90_000, t)
                .unwrap()
                .seq,
            501
        );
    }

    #[test]
    fn a_switch_continues_every_number_and_drops_what_came_before_it() {
        let t = Instant::now();
        let mut r = Rewrite::default();
        r.map(1, n(100, 1000, 10), 90_000, t);
        r.map(1, n(101, 4000, 11), 90_000, t);
        // Another layer: its own numbers, 100 ms later.
        let later = t + Duration::from_millis(100);
        let out = r.map(2, n(7000, 555_000, 300), 90_000, later).unwrap();
        assert_eq!(out.seq, 102);
        assert_eq!(out.ts, 4000 + 9000);
        assert_eq!(out.picture_id, Some(12));
        assert_eq!(out.tl0, Some(12));
        assert!(r.patches_vp8());
        let next = r.map(2, n(7001, 558_000, 301), 90_000, later).unwrap();
        assert_eq!(
            (next.seq, next.ts, next.picture_id),
            (103, 16_000, Some(13))
        );
        assert_eq!(
            r.map(2, n(6999, 552_000, 299), 90_000, later),
            None,
            "a retransmission from before the switch"
        );
        assert_eq!(r.map(1, n(102, 7000, 12), 90_000, later).unwrap().seq, 104);
    }

    #[test]
    fn a_restart_on_the_same_source_closes_the_gap_of_dropped_packets() {
        let t = Instant::now();
        let mut r = Rewrite::default();
        r.map(1, n(10, 0, 1), 90_000, t);
        r.restart();
        let out = r.map(1, n(50, 90_000, 41), 90_000, t).unwrap();
        assert_eq!(out.seq, 11);
        assert_eq!(out.picture_id, Some(2));
        assert_eq!(out.ts, 1, "no time passed: one tick on");
        // A late packet of the dropped stretch is not sent (its number is taken).
        assert_eq!(r.map(1, n(30, 40_000, 21), 90_000, t), None);
    }

    #[test]
    fn picture_ids_wrap_at_15_bits() {
        let t = Instant::now();
        let mut r = Rewrite::default();
        r.map(1, n(1, 0, 0x7fff), 90_000, t);
        let out = r.map(2, n(9, 0, 5), 90_000, t).unwrap();
        assert_eq!(out.picture_id, Some(0));
    }
}
