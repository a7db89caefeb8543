//! One clock for every track: frames get presentation times on the pipeline's running time,
//! derived from RTCP sender reports so that a user's audio and video, and different users,
//! stay in sync; before a track's first report, from its arrival times.

use hearth_client::Frame;
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime};

/// Where a frame's capture instant falls on the local monotonic clock.
#[derive(Default)]
pub struct UserClock {
    /// Smallest (local arrival − sender wallclock) seen: the sender's clock offset plus the
    /// least network delay. Shared by the user's tracks, which is what keeps them in sync.
    offset: Option<i128>,
}

/// Per-track state: the arrival anchor used until sender reports arrive, and the last time
/// handed out (times never go backwards).
#[derive(Default)]
pub struct TrackClock {
    anchor: Option<(u64, Instant)>,
    last: Option<Instant>,
}

/// A sender report older than this is not trusted to extrapolate from.
const SR_HORIZON: Duration = Duration::from_secs(30);
/// A frame that maps further than this from its arrival re-anchors the track (a gap, a clock
/// jump, a publisher that came back).
const MAX_SKEW: Duration = Duration::from_millis(1500);

impl TrackClock {
    /// The local instant at which `f` was captured.
    pub fn capture_instant(&mut self, user: &mut UserClock, f: &Frame) -> Instant {
        let by_sr = f.sender_report.and_then(|(ntp, sr_rtp)| {
            let delta_ns =
                (f.rtp_time as i128 - sr_rtp as i128) * 1_000_000_000 / i128::from(f.clock_rate);
            if delta_ns.unsigned_abs() > SR_HORIZON.as_nanos() {
                return None;
            }
            let sender_ns =
                ntp.duration_since(SystemTime::UNIX_EPOCH).ok()?.as_nanos() as i128 + delta_ns;
            // Local arrival as wallclock ns, through the pair (now, SystemTime::now()).
            let arrival_ns = wall_ns(f.arrival);
            let seen = arrival_ns - sender_ns;
            let off = user.offset.map_or(seen, |o| o.min(seen));
            user.offset = Some(off);
            Some(from_wall_ns(sender_ns + off))
        });
        let t = match by_sr {
            Some(t) if skew(t, f.arrival) < MAX_SKEW => t,
            _ => {
                let (rtp0, at0) = *self.anchor.get_or_insert((f.rtp_time, f.arrival));
                let ns =
                    (f.rtp_time as i128 - rtp0 as i128) * 1_000_000_000 / i128::from(f.clock_rate);
                let t = shift(at0, ns);
                if skew(t, f.arrival) < MAX_SKEW {
                    t
                } else {
                    self.anchor = Some((f.rtp_time, f.arrival));
                    f.arrival
                }
            }
        };
        let t = match self.last {
            Some(last) if t <= last => last + Duration::from_micros(100),
            _ => t,
        };
        self.last = Some(t);
        t
    }
}

fn skew(a: Instant, b: Instant) -> Duration {
    if a > b {
        a - b
    } else {
        b - a
    }
}

fn shift(t: Instant, ns: i128) -> Instant {
    if ns >= 0 {
        t + Duration::from_nanos(ns as u64)
    } else {
        t.checked_sub(Duration::from_nanos((-ns) as u64))
            .unwrap_or(t)
    }
}

/// One fixed pairing of the monotonic and wall clocks for the process.
fn pair() -> (Instant, i128) {
    use std::sync::OnceLock;
    static PAIR: OnceLock<(Instant, i128)> = OnceLock::new();
    *PAIR.get_or_init(|| {
        let wall = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        (Instant::now(), wall)
    })
}

fn wall_ns(t: Instant) -> i128 {
    let (i0, w0) = pair();
    if t >= i0 {
        w0 + (t - i0).as_nanos() as i128
    } else {
        w0 - (i0 - t).as_nanos() as i128
    }
}

fn from_wall_ns(ns: i128) -> Instant {
    let (i0, w0) = pair();
    shift(i0, ns - w0)
}

/// Clocks of every user and track of a task.
#[derive(Default)]
pub struct Clocks {
    users: HashMap<std::sync::Arc<str>, UserClock>,
    tracks: HashMap<hearth_client::TrackKey, TrackClock>,
}

impl Clocks {
    pub fn capture_instant(&mut self, f: &Frame) -> Instant {
        let user = self.users.entry(f.track.user.clone()).or_default();
        self.tracks
            .entry(f.track.clone())
            .or_default()
            .capture_instant(user, f)
    }

    /// Forgets a track (its publisher left): the next frames anchor anew.
    pub fn forget(&mut self, key: &hearth_client::TrackKey) {
        self.tracks.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_client::{Codec, Kind, Stream, TrackKey};
    use std::sync::Arc;

    fn frame(
        kind: Kind,
        rtp: u64,
        rate: u32,
        arrival: Instant,
        sr: Option<(SystemTime, u64)>,
    ) -> Frame {
        Frame {
            track: TrackKey {
                user: Arc::from("u"),
                stream: Stream::Main,
                kind,
            },
            codec: Codec::Opus,
            data: Arc::from(&[0u8][..]),
            rtp_time: rtp,
            clock_rate: rate,
            arrival,
            sender_report: sr,
            keyframe: true,
            contiguous: true,
        }
    }

    #[test]
    fn sender_reports_put_audio_and_video_of_one_user_on_one_clock() {
        let mut c = Clocks::default();
        let t0 = Instant::now();
        let wall0 = SystemTime::now();
        // Audio arrives 10 ms after capture, video 60 ms (a slower path); both captured at wall0.
        let a = frame(
            Kind::Audio,
            48_000,
            48_000,
            t0 + Duration::from_millis(10),
            Some((wall0, 48_000)),
        );
        let v = frame(
            Kind::Video,
            900_000,
            90_000,
            t0 + Duration::from_millis(60),
            Some((wall0, 900_000)),
        );
        let ta = c.capture_instant(&a);
        let tv = c.capture_instant(&v);
        // Same capture instant: the user's offset is the least delay (audio's).
        assert!(
            skew(ta, tv) < Duration::from_millis(1),
            "{:?}",
            skew(ta, tv)
        );
    }

    #[test]
    fn without_reports_times_follow_rtp_from_the_first_arrival_and_never_go_back() {
        let mut c = Clocks::default();
        let t0 = Instant::now();
        let f1 = frame(Kind::Video, 1000, 90_000, t0, None);
        let f2 = frame(
            Kind::Video,
            1000 + 9000,
            90_000,
            t0 + Duration::from_millis(130),
            None,
        );
        let a = c.capture_instant(&f1);
        let b = c.capture_instant(&f2);
        assert_eq!(b - a, Duration::from_millis(100));
        let f3 = frame(
            Kind::Video,
            1000 + 9000,
            90_000,
            t0 + Duration::from_millis(140),
            None,
        );
        assert!(c.capture_instant(&f3) > b);
    }
}
