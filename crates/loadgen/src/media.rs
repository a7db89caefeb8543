//! Synthetic media: Opus-sized audio frames and VP8 frames whose first bytes are a valid VP8
//! frame header (RFC 6386 §9.1: a 3-byte frame tag whose low bit is 0 on keyframes, then on
//! keyframes the start code and dimensions). str0m packetizes them with a VP8 payload descriptor
//! (S bit on the first packet), and its depacketizer on the server flags keyframes from that
//! bit, as with a real encoder. After the header every frame carries a stamp: who sent it,
//! its number, and when (nanoseconds since the load generator started).

use std::sync::OnceLock;
use std::time::Instant;

pub const MAGIC: [u8; 4] = *b"HLG1";
/// magic, publisher, frame number, send time, kind.
pub const STAMP_LEN: usize = 4 + 4 + 4 + 8 + 4;
const VP8_KEY_HEADER: usize = 10;
const VP8_DELTA_HEADER: usize = 3;

/// Audio: one frame per 20 ms.
pub const AUDIO_FRAME_MS: u64 = 20;
pub const AUDIO_BYTES: usize = 80; // 32 kbit/s
pub const AUDIO_TICKS: u64 = 960; // 48 kHz
pub const VIDEO_FPS: u64 = 30;
pub const VIDEO_TICKS: u64 = 90_000 / VIDEO_FPS;
/// A keyframe every this many frames (2 s), and on PLI.
pub const GOP: u64 = 2 * VIDEO_FPS;
/// A keyframe is this many times the average frame.
const KEY_RATIO: usize = 3;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The clock stamps are read against; set once at start.
pub fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// Sizes of key and delta frames that average `kbps` at 30 fps with one keyframe per GOP.
pub fn video_sizes(kbps: u64) -> (usize, usize) {
    let avg = (kbps * 1000 / 8 / VIDEO_FPS).max(64) as usize;
    let key = avg * KEY_RATIO;
    let gop = GOP as usize;
    let delta = (avg * gop - key) / (gop - 1);
    (key, delta.max(VP8_KEY_HEADER + STAMP_LEN))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub publisher: u32,
    pub frame: u32,
    pub sent_ns: u64,
    pub video: bool,
    pub key: bool,
}

fn filler() -> &'static [u8] {
    static F: OnceLock<Vec<u8>> = OnceLock::new();
    F.get_or_init(|| {
        // xorshift: incompressible-looking bytes, deterministic.
        let mut x: u32 = 0x9E37_79B9;
        (0..64 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    })
}

fn put_stamp(out: &mut Vec<u8>, s: &Stamp) {
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&s.publisher.to_be_bytes());
    out.extend_from_slice(&s.frame.to_be_bytes());
    out.extend_from_slice(&s.sent_ns.to_be_bytes());
    out.extend_from_slice(&[u8::from(s.video), u8::from(s.key), 0, 0]);
}

fn fill_to(out: &mut Vec<u8>, len: usize) {
    let f = filler();
    while out.len() < len {
        let n = (len - out.len()).min(f.len());
        out.extend_from_slice(&f[..n]);
    }
}

pub fn audio_frame(s: &Stamp) -> Vec<u8> {
    let mut out = Vec::with_capacity(AUDIO_BYTES);
    put_stamp(&mut out, s);
    fill_to(&mut out, AUDIO_BYTES);
    out
}

/// A VP8 frame of `len` bytes: frame tag (+ keyframe start code and 640x360), stamp, filler.
pub fn video_frame(s: &Stamp, len: usize) -> Vec<u8> {
    let len = len.max(VP8_KEY_HEADER + STAMP_LEN);
    let mut out = Vec::with_capacity(len);
    let header = if s.key {
        VP8_KEY_HEADER
    } else {
        VP8_DELTA_HEADER
    };
    // Frame tag, little-endian: bit 0 = 1 for interframes, bits 1-3 version 0, bit 4
    // show_frame, bits 5-23 first partition size.
    let first_part = ((len - header) as u32).min(0x7_FFFF);
    let tag = u32::from(!s.key) | (1 << 4) | (first_part << 5);
    out.extend_from_slice(&tag.to_le_bytes()[..3]);
    if s.key {
        out.extend_from_slice(&[0x9d, 0x01, 0x2a]);
        out.extend_from_slice(&640u16.to_le_bytes());
        out.extend_from_slice(&360u16.to_le_bytes());
    }
    put_stamp(&mut out, s);
    fill_to(&mut out, len);
    out
}

/// The stamp of a received frame, if it is one of ours.
pub fn read_stamp(data: &[u8], video: bool) -> Option<Stamp> {
    let at = if !video {
        0
    } else if data.first()? & 1 == 0 {
        VP8_KEY_HEADER
    } else {
        VP8_DELTA_HEADER
    };
    let s = data.get(at..at + STAMP_LEN)?;
    if s[..4] != MAGIC {
        return None;
    }
    Some(Stamp {
        publisher: u32::from_be_bytes(s[4..8].try_into().ok()?),
        frame: u32::from_be_bytes(s[8..12].try_into().ok()?),
        sent_ns: u64::from_be_bytes(s[12..20].try_into().ok()?),
        video: s[20] == 1,
        key: s[21] == 1,
    })
}

/// Frames of a real VP8 clip (keyframe flag, data), when publishers send one.
static CLIP: OnceLock<Vec<(bool, Vec<u8>)>> = OnceLock::new();

/// Reads an IVF file of VP8 frames (32-byte file header, then per frame a 12-byte header with
/// its size); returns how many frames it holds.
pub fn load_clip(path: &std::path::Path) -> anyhow::Result<usize> {
    let data = std::fs::read(path)?;
    anyhow::ensure!(
        data.len() > 32 && &data[..4] == b"DKIF",
        "{} is not an IVF file",
        path.display()
    );
    anyhow::ensure!(
        &data[8..12] == b"VP80",
        "{} does not hold VP8",
        path.display()
    );
    let mut frames = Vec::new();
    let mut at = 32;
    while at + 12 <= data.len() {
        let len = u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
        at += 12;
        anyhow::ensure!(at + len <= data.len(), "truncated IVF frame");
        let f = data[at..at + len].to_vec();
        frames.push((f.first().is_some_and(|b| b & 1 == 0), f));
        at += len;
    }
    anyhow::ensure!(
        frames.first().is_some_and(|f| f.0),
        "the clip must start with a keyframe"
    );
    let n = frames.len();
    let _ = CLIP.set(frames);
    Ok(n)
}

/// Frame `n` of the clip (looped), if one was loaded.
pub fn clip_frame(n: u64) -> Option<(bool, Vec<u8>)> {
    CLIP.get().map(|c| c[(n % c.len() as u64) as usize].clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip() {
        for key in [true, false] {
            let s = Stamp {
                publisher: 7,
                frame: 42,
                sent_ns: 123_456_789,
                video: true,
                key,
            };
            let f = video_frame(&s, 2000);
            assert_eq!(f.len(), 2000);
            assert_eq!(f[0] & 1 == 0, key, "VP8 P bit");
            assert_eq!(read_stamp(&f, true), Some(s));
        }
        let a = Stamp {
            publisher: 1,
            frame: 9,
            sent_ns: 5,
            video: false,
            key: false,
        };
        let f = audio_frame(&a);
        assert_eq!(f.len(), AUDIO_BYTES);
        assert_eq!(read_stamp(&f, false), Some(a));
        assert_eq!(read_stamp(&[0u8; 40], false), None);
    }

    #[test]
    fn sizes_average_the_bitrate() {
        let (key, delta) = video_sizes(500);
        let per_gop = key + delta * (GOP as usize - 1);
        let kbps = per_gop as f64 * 8.0 / 2.0 / 1000.0;
        assert!((kbps - 500.0).abs() < 5.0, "{kbps}");
    }

    #[test]
    fn str0m_sees_our_keyframes() {
        // The first packet str0m's packetizer makes: the 1-byte descriptor with S=1, PID=0.
        let s = Stamp {
            publisher: 0,
            frame: 0,
            sent_ns: 0,
            video: true,
            key: true,
        };
        let mut pkt = vec![0x10];
        pkt.extend_from_slice(&video_frame(&s, 1000)[..100]);
        assert!(str0m::format::detect_vp8_keyframe(&pkt));
        let mut delta = vec![0x10];
        delta.extend_from_slice(&video_frame(&Stamp { key: false, ..s }, 1000)[..100]);
        assert!(!str0m::format::detect_vp8_keyframe(&delta));
    }
}
