//! One simulated participant: a str0m `Rtc` on its own non-blocking UDP socket, publishing
//! (WHIP) synthetic audio and video or playing (WHEP) one publisher and measuring what arrives.

use crate::media::{self, Stamp};
use crate::stats::{Histogram, PubCounters, SubCounters};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use str0m::format::Codec;
use str0m::media::{Frequency, MediaData, MediaTime, Mid, Pt};
use str0m::{Event, IceConnectionState, Rtc};

pub struct Client {
    pub rtc: Rtc,
    pub socket: mio::net::UdpSocket,
    pub local: SocketAddr,
    /// Over ICE-TCP (`--tcp` subscribers): the connection that carries everything.
    pub tcp: Option<crate::tcp::Link>,
    /// The deadline str0m last asked for (heap entries for older ones are stale).
    pub next_timeout: Instant,
    pub role: Role,
}

pub enum Role {
    Publisher(Box<Publisher>),
    Subscriber(Box<Subscriber>),
}

pub struct Publisher {
    pub index: u32,
    pub audio_mid: Mid,
    pub video_mid: Mid,
    audio_pt: Option<Pt>,
    video_pt: Option<Pt>,
    next_audio: Instant,
    next_video: Instant,
    audio_n: u64,
    video_n: u64,
    since_key: u64,
    key_pending: bool,
    key_bytes: usize,
    delta_bytes: usize,
    audio: bool,
    pub counters: PubCounters,
}

/// One received media line.
struct Line {
    mid: Mid,
    video: bool,
    first_seq: Option<u64>,
    last_seq: u64,
    packets: u64,
    first_frame: Option<u32>,
    last_frame: u32,
    nacks: u64,
    plis: u64,
}

pub struct Subscriber {
    pub index: usize,
    lines: Vec<Line>,
    pub counters: SubCounters,
}

/// Frames at least this late (µs) are printed; 0 = off (`--trace-slow-ms`).
pub static TRACE_SLOW_US: AtomicU64 = AtomicU64::new(0);

/// Latency samples (µs) a driver collects between flushes: `[video, audio]`.
pub type Latency = [Histogram; 2];

impl Publisher {
    pub fn new(index: u32, audio_mid: Mid, video_mid: Mid, video_kbps: u64, audio: bool) -> Self {
        let (key_bytes, delta_bytes) = media::video_sizes(video_kbps);
        let now = Instant::now();
        // Spread publishers over the frame interval so they do not send in lockstep.
        let phase = Duration::from_micros(u64::from(index) * 7_919 % 33_333);
        Publisher {
            index,
            audio_mid,
            video_mid,
            audio_pt: None,
            video_pt: None,
            next_audio: now + phase,
            next_video: now + phase,
            audio_n: 0,
            video_n: 0,
            since_key: 0,
            key_pending: true,
            key_bytes,
            delta_bytes,
            audio,
            counters: PubCounters::default(),
        }
    }

    pub fn next_due(&self) -> Option<Instant> {
        self.counters
            .connected
            .then(|| self.next_audio.min(self.next_video))
    }
}

impl Subscriber {
    pub fn new(index: usize, audio_mid: Mid, video_mid: Mid) -> Self {
        let line = |mid, video| Line {
            mid,
            video,
            first_seq: None,
            last_seq: 0,
            packets: 0,
            first_frame: None,
            last_frame: 0,
            nacks: 0,
            plis: 0,
        };
        Subscriber {
            index,
            lines: vec![line(audio_mid, false), line(video_mid, true)],
            counters: SubCounters::default(),
        }
    }

    fn on_media(&mut self, d: &MediaData, lat: &mut Latency) {
        let Some(line) = self.lines.iter_mut().find(|l| l.mid == d.mid) else {
            return;
        };
        let (s, e) = (**d.seq_range.start(), **d.seq_range.end());
        let first = *line.first_seq.get_or_insert(s);
        if e >= first {
            line.last_seq = line.last_seq.max(e);
            line.packets += e.saturating_sub(s.max(first)) + 1;
        }
        let c = &mut self.counters;
        c.bytes += d.data.len() as u64;
        c.frames += 1;
        if line.video {
            c.video_frames += 1;
            if d.is_keyframe() {
                c.keyframes += 1;
            }
        }
        match media::read_stamp(&d.data, line.video) {
            Some(st) => {
                let f0 = *line.first_frame.get_or_insert(st.frame);
                line.last_frame = line.last_frame.max(st.frame).max(f0);
                let us = media::now_ns().saturating_sub(st.sent_ns) / 1000;
                lat[usize::from(!line.video)].record(us);
                let slow = TRACE_SLOW_US.load(Ordering::Relaxed);
                if slow > 0 && us >= slow {
                    eprintln!(
                        "slow frame: subscriber {} {} #{}{} {:.1} ms, rtp seq {}..={}",
                        self.index,
                        if line.video { "video" } else { "audio" },
                        st.frame,
                        if st.key { " (key)" } else { "" },
                        us as f64 / 1000.0,
                        s,
                        e
                    );
                }
            }
            None => c.unstamped += 1,
        }
        self.sum_lines();
    }

    fn sum_lines(&mut self) {
        let c = &mut self.counters;
        c.packets = self.lines.iter().map(|l| l.packets).sum();
        c.packets_expected = self
            .lines
            .iter()
            .filter_map(|l| l.first_seq.map(|f| l.last_seq - f + 1))
            .sum();
        c.frames_expected = self
            .lines
            .iter()
            .filter_map(|l| l.first_frame.map(|f| u64::from(l.last_frame - f) + 1))
            .sum();
        c.nacks_sent = self.lines.iter().map(|l| l.nacks).sum();
        c.plis_sent = self.lines.iter().map(|l| l.plis).sum();
    }
}

/// What the driver must do after an event.
pub enum After {
    Nothing,
    Disconnected,
}

impl Client {
    pub fn handle_event(&mut self, e: Event, lat: &mut Latency) -> After {
        match (&mut self.role, e) {
            (_, Event::IceConnectionStateChange(IceConnectionState::Disconnected)) => {
                return After::Disconnected
            }
            (Role::Publisher(p), Event::Connected) => {
                p.counters.connected = true;
                p.audio_pt = pt_of(&mut self.rtc, p.audio_mid, Codec::Opus);
                p.video_pt = pt_of(&mut self.rtc, p.video_mid, Codec::Vp8);
                let now = Instant::now();
                p.next_audio = p.next_audio.max(now);
                p.next_video = p.next_video.max(now);
            }
            (Role::Subscriber(s), Event::Connected) => s.counters.connected = true,
            (Role::Publisher(p), Event::KeyframeRequest(r)) if r.mid == p.video_mid => {
                p.counters.plis_received += 1;
                p.key_pending = true;
            }
            (Role::Subscriber(s), Event::MediaData(d)) => s.on_media(&d, lat),
            (Role::Publisher(p), Event::MediaEgressStats(st)) if st.mid == p.video_mid => {
                p.counters.nacks_received = st.nacks;
                p.counters.remote_loss = st.loss.unwrap_or(0.0);
            }
            (Role::Subscriber(s), Event::MediaIngressStats(st)) => {
                if let Some(l) = s.lines.iter_mut().find(|l| l.mid == st.mid) {
                    l.nacks = st.nacks;
                    l.plis = st.plis + st.firs;
                }
                s.sum_lines();
            }
            _ => {}
        }
        After::Nothing
    }

    /// Writes the audio and video frames that are due; returns false on a write error.
    pub fn send_due(&mut self, now: Instant) -> bool {
        let Role::Publisher(p) = &mut self.role else {
            return true;
        };
        if !p.counters.connected {
            return true;
        }
        let mut ok = true;
        // After a stall, skip ahead rather than burst.
        if now.saturating_duration_since(p.next_audio) > Duration::from_millis(200) {
            p.next_audio = now;
        }
        if now.saturating_duration_since(p.next_video) > Duration::from_millis(200) {
            p.next_video = now;
        }
        if !p.audio {
            p.next_audio = now + Duration::from_secs(3600);
        }
        while p.next_audio <= now {
            let stamp = Stamp {
                publisher: p.index,
                frame: p.audio_n as u32,
                sent_ns: media::now_ns(),
                video: false,
                key: false,
            };
            let data = media::audio_frame(&stamp);
            let time = MediaTime::new(p.audio_n * media::AUDIO_TICKS, Frequency::FORTY_EIGHT_KHZ);
            p.counters.bytes += data.len() as u64;
            ok &= write(&mut self.rtc, p.audio_mid, p.audio_pt, now, time, data);
            p.counters.audio_frames += 1;
            p.audio_n += 1;
            p.next_audio += Duration::from_millis(media::AUDIO_FRAME_MS);
        }
        while p.next_video <= now {
            let key = p.key_pending || p.since_key >= media::GOP;
            let stamp = Stamp {
                publisher: p.index,
                frame: p.video_n as u32,
                sent_ns: media::now_ns(),
                video: true,
                key,
            };
            let len = if key { p.key_bytes } else { p.delta_bytes };
            let (key, data) = match media::clip_frame(p.video_n) {
                Some(f) => f,
                None => (key, media::video_frame(&stamp, len)),
            };
            let time = MediaTime::new(p.video_n * media::VIDEO_TICKS, Frequency::NINETY_KHZ);
            p.counters.bytes += data.len() as u64;
            ok &= write(&mut self.rtc, p.video_mid, p.video_pt, now, time, data);
            if key {
                p.key_pending = false;
                p.since_key = 0;
                p.counters.keyframes += 1;
            }
            p.since_key += 1;
            p.counters.video_frames += 1;
            p.video_n += 1;
            p.next_video += Duration::from_nanos(1_000_000_000 / media::VIDEO_FPS);
        }
        ok
    }

    pub fn next_due(&self) -> Option<Instant> {
        match &self.role {
            Role::Publisher(p) => p.next_due(),
            Role::Subscriber(_) => None,
        }
    }
}

fn pt_of(rtc: &mut Rtc, mid: Mid, codec: Codec) -> Option<Pt> {
    let w = rtc.writer(mid)?;
    let pt = w
        .payload_params()
        .find(|p| p.spec().codec == codec)
        .map(|p| p.pt());
    pt
}

fn write(
    rtc: &mut Rtc,
    mid: Mid,
    pt: Option<Pt>,
    now: Instant,
    time: MediaTime,
    data: Vec<u8>,
) -> bool {
    let (Some(pt), Some(w)) = (pt, rtc.writer(mid)) else {
        return false;
    };
    w.write(pt, now, time, data).is_ok()
}
