//! How long a subscriber's video line keeps what it sent, to answer the viewer's NACKs with RTX.
//!
//! str0m keeps that history per line (its payloads are the publisher's shared `Arc`s; the
//! header and bookkeeping, ~430 bytes a packet, are per line) for 3 s by default. A NACK that
//! comes later than a few round trips asks for a packet the viewer's jitter buffer has given up
//! on, so the history is kept as long as libwebrtc's own sender keeps its (`RtpPacketHistory`:
//! the longer of 1 s and three round trips): a third of the memory for a viewer on a usual
//! network, the same as before for one 1 s away.

use super::peer::Peer;
use std::time::Duration;
use str0m::media::Mid;
use str0m::rtp::StreamTx;

/// The history every video line starts with, and the least it keeps.
pub(crate) const MIN_HISTORY: Duration = Duration::from_secs(1);
/// The most it keeps (str0m's default).
const MAX_HISTORY: Duration = Duration::from_secs(3);
/// Round trips of history.
const RTTS: u32 = 3;
/// A line's history grows only by more than this, so that a round trip that wobbles does not
/// clear it again and again (str0m starts a resized history empty).
const GROW_STEP: Duration = Duration::from_millis(250);
/// The most packets one line keeps: ~1 s of a 10 Mbit/s stream.
const MAX_PACKETS: usize = 1024;
/// Queued resends are dropped while resends are over this share of what the line sends
/// (str0m's default).
const RTX_RATIO_CAP: f32 = 0.15;

/// The history a line with this round trip should keep.
pub(crate) fn history_for(rtt: Duration) -> Duration {
    (rtt * RTTS).clamp(MIN_HISTORY, MAX_HISTORY)
}

/// Sets a line's history; its packets sent so far are forgotten.
pub(crate) fn set_history(tx: &mut StreamTx, history: Duration) {
    tx.set_rtx_cache(MAX_PACKETS, history, Some(RTX_RATIO_CAP));
}

/// A round trip measured on a peer's line `mid`: a viewer far away keeps three of them.
pub(crate) fn on_rtt(p: &mut Peer, mid: Mid, rtt: Duration) {
    let Some(line) = p.sub_by_mid.get(&mid).and_then(|s| p.out_by_sub.get_mut(s)) else {
        return;
    };
    let Some(h) = line.history.and_then(|h| grown(h, rtt)) else {
        return;
    };
    if let Some(tx) = p.rtc.direct_api().stream_tx_by_mid(mid, None) {
        set_history(tx, h);
        line.history = Some(h);
    }
}

/// The history a line keeping `current` should move to for a measured round trip, if any.
fn grown(current: Duration, rtt: Duration) -> Option<Duration> {
    let want = history_for(rtt);
    (want > current + GROW_STEP).then_some(want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_usual_round_trip_keeps_a_second() {
        assert_eq!(history_for(Duration::from_millis(40)), MIN_HISTORY);
        assert_eq!(grown(MIN_HISTORY, Duration::from_millis(300)), None);
    }

    #[test]
    fn a_long_round_trip_keeps_three_of_them_up_to_three_seconds() {
        assert_eq!(
            grown(MIN_HISTORY, Duration::from_millis(600)),
            Some(Duration::from_millis(1800))
        );
        assert_eq!(history_for(Duration::from_secs(2)), MAX_HISTORY);
        // Small changes do not clear the history again.
        assert_eq!(
            grown(Duration::from_millis(1800), Duration::from_millis(650)),
            None
        );
    }
}
