//! What the forwarding path reads from an RTP payload without depacketizing it: whether a
//! packet starts a keyframe (VP8, H.264), the VP8 picture ids, and a VP8 keyframe's size.

use str0m::format::Codec;
use str0m::rtp::Vp8Descriptor;

/// What one packet says about its frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketInfo {
    /// The first packet of a keyframe: a subscriber may start or switch here.
    pub keyframe: bool,
    pub picture_id: Option<u16>,
    pub tl0: Option<u8>,
    /// Picture size, read from a VP8 keyframe's first packet.
    pub dims: Option<(u16, u16)>,
}

pub fn inspect(codec: Codec, payload: &[u8]) -> PacketInfo {
    match codec {
        Codec::Vp8 => vp8(payload),
        Codec::H264 => PacketInfo {
            keyframe: h264_starts_keyframe(payload),
            ..Default::default()
        },
        _ => PacketInfo::default(),
    }
}

fn vp8(payload: &[u8]) -> PacketInfo {
    let Ok(d) = Vp8Descriptor::parse(payload) else {
        return PacketInfo::default();
    };
    let keyframe = d.starts_keyframe(payload);
    PacketInfo {
        keyframe,
        picture_id: d.picture_id(),
        tl0: d.tl0_pic_idx(),
        dims: keyframe
            .then(|| vp8_descriptor_len(payload))
            .flatten()
            .and_then(|at| vp8_keyframe_dims(&payload[at..])),
    }
}

/// Length of the VP8 payload descriptor (RFC 7741 §4.2).
fn vp8_descriptor_len(p: &[u8]) -> Option<usize> {
    let first = *p.first()?;
    let mut at = 1;
    if first & 0x80 != 0 {
        let ext = *p.get(at)?;
        at += 1;
        if ext & 0x80 != 0 {
            at += if *p.get(at)? & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            at += 1;
        }
        if ext & 0x30 != 0 {
            at += 1;
        }
    }
    (at < p.len()).then_some(at)
}

/// Width and height of a VP8 keyframe (RFC 6386 §9.1: 3-byte frame tag, start code
/// 9d 01 2a, then 14-bit width and height, little-endian).
pub(crate) fn vp8_keyframe_dims(frame: &[u8]) -> Option<(u16, u16)> {
    if frame.len() < 10 || frame[0] & 1 != 0 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let h = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    (w > 0 && h > 0).then_some((w, h))
}

/// An IDR picture begins here: an SPS or IDR NAL unit on its own, in a STAP-A, or the first
/// fragment of an IDR FU-A (RFC 6184 §5.6–5.8).
fn h264_starts_keyframe(p: &[u8]) -> bool {
    const IDR: u8 = 5;
    const SPS: u8 = 7;
    let Some(first) = p.first() else {
        return false;
    };
    match first & 0x1f {
        t @ 1..=23 => t == IDR || t == SPS,
        24 => {
            let mut at = 1;
            while at + 2 < p.len() {
                let len = usize::from(u16::from_be_bytes([p[at], p[at + 1]]));
                let t = p[at + 2] & 0x1f;
                if t == IDR || t == SPS {
                    return true;
                }
                at += 2 + len;
            }
            false
        }
        28 => p.get(1).is_some_and(|h| h & 0x80 != 0 && h & 0x1f == IDR),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_640X360: [u8; 12] = [
        0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x42, 0x68, 0x01, 0, 0,
    ];

    #[test]
    fn reads_the_size_of_a_vp8_keyframe() {
        // The scale bits (top 2) are ignored.
        assert_eq!(vp8_keyframe_dims(&KEY_640X360), Some((640, 360)));
        let mut inter = KEY_640X360;
        inter[0] |= 1;
        assert_eq!(
            vp8_keyframe_dims(&inter),
            None,
            "inter frames carry no size"
        );
        assert_eq!(vp8_keyframe_dims(&KEY_640X360[..8]), None);
    }

    #[test]
    fn a_vp8_keyframe_start_with_picture_ids() {
        // X=1, S=1, PID 0; I=1 L=1 T=1; 15-bit picture id 0x1234; TL0PICIDX 7; TID 0.
        let mut p = vec![0x90, 0xe0, 0x80 | 0x12, 0x34, 7, 0];
        p.extend_from_slice(&KEY_640X360);
        let i = inspect(Codec::Vp8, &p);
        assert!(i.keyframe);
        assert_eq!(i.picture_id, Some(0x1234));
        assert_eq!(i.tl0, Some(7));
        assert_eq!(i.dims, Some((640, 360)));
        // The same frame's next packet (S=0), and an inter frame's first packet.
        p[0] = 0x80;
        assert!(!inspect(Codec::Vp8, &p).keyframe);
        p[0] = 0x90;
        p[6] |= 1;
        let i = inspect(Codec::Vp8, &p);
        assert!(!i.keyframe);
        assert_eq!(i.dims, None);
        assert_eq!(inspect(Codec::Vp8, &[]), PacketInfo::default());
    }

    #[test]
    fn h264_keyframe_starts() {
        assert!(inspect(Codec::H264, &[0x65, 0x88]).keyframe, "IDR slice");
        assert!(inspect(Codec::H264, &[0x67, 0x42]).keyframe, "SPS");
        assert!(
            !inspect(Codec::H264, &[0x41, 0x9a]).keyframe,
            "non-IDR slice"
        );
        // STAP-A holding SPS (2 bytes) and PPS (2 bytes).
        let stap = [0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce];
        assert!(inspect(Codec::H264, &stap).keyframe);
        let stap_p = [0x78, 0, 2, 0x41, 0x9a];
        assert!(!inspect(Codec::H264, &stap_p).keyframe);
        assert!(
            inspect(Codec::H264, &[0x7c, 0x85, 0]).keyframe,
            "FU-A IDR start"
        );
        assert!(
            !inspect(Codec::H264, &[0x7c, 0x45, 0]).keyframe,
            "FU-A IDR end"
        );
        assert!(
            !inspect(Codec::H264, &[0x7c, 0x81, 0]).keyframe,
            "FU-A P start"
        );
        assert!(!inspect(Codec::H264, &[]).keyframe);
    }
}
