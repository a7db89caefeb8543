//! What the forwarding path reads from an RTP payload without depacketizing it: whether a
//! packet starts a keyframe (VP8, H.264), the VP8 picture ids, and the picture size a VP8
//! keyframe or an H.264 sequence parameter set carries.

use str0m::format::Codec;
use str0m::rtp::Vp8Descriptor;

/// What one packet says about its frame.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketInfo {
    /// The first packet of a keyframe: a subscriber may start or switch here.
    pub keyframe: bool,
    pub picture_id: Option<u16>,
    pub tl0: Option<u8>,
    /// Picture size, read from a VP8 keyframe's first packet or an H.264 SPS.
    pub dims: Option<(u16, u16)>,
}

pub fn inspect(codec: Codec, payload: &[u8]) -> PacketInfo {
    match codec {
        Codec::Vp8 => vp8(payload),
        Codec::H264 => {
            let keyframe = h264_starts_keyframe(payload);
            PacketInfo {
                keyframe,
                dims: keyframe.then(|| h264_sps(payload)).flatten(),
                ..Default::default()
            }
        }
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

/// The picture size of the SPS a packet carries, alone or in a STAP-A.
fn h264_sps(p: &[u8]) -> Option<(u16, u16)> {
    const SPS: u8 = 7;
    match *p.first()? & 0x1f {
        SPS => h264_sps_dims(&p[1..]),
        24 => {
            let mut at = 1;
            while at + 2 < p.len() {
                let len = usize::from(u16::from_be_bytes([p[at], p[at + 1]]));
                let nal = p.get(at + 2..at + 2 + len)?;
                if nal.first().is_some_and(|h| h & 0x1f == SPS) {
                    return h264_sps_dims(&nal[1..]);
                }
                at += 2 + len;
            }
            None
        }
        _ => None,
    }
}

/// Reads an H.264 RBSP bit by bit, skipping emulation prevention bytes (00 00 03).
struct Bits<'a> {
    data: &'a [u8],
    byte: usize,
    bit: u8,
    zeros: u8,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        if self.bit == 0 {
            let b = *self.data.get(self.byte)?;
            if self.zeros >= 2 && b == 3 {
                self.byte += 1;
                self.zeros = 0;
            }
        }
        let b = *self.data.get(self.byte)?;
        let v = (b >> (7 - self.bit)) & 1;
        self.bit += 1;
        if self.bit == 8 {
            self.bit = 0;
            self.byte += 1;
            self.zeros = if b == 0 { self.zeros + 1 } else { 0 };
        }
        Some(u32::from(v))
    }

    fn bits(&mut self, n: u8) -> Option<u32> {
        (0..n).try_fold(0, |acc, _| Some(acc << 1 | self.bit()?))
    }

    /// Exp-Golomb, unsigned.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0u8;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    fn se(&mut self) -> Option<i32> {
        let k = self.ue()?;
        Some(if k % 2 == 1 {
            (k / 2 + 1) as i32
        } else {
            -((k / 2) as i32)
        })
    }
}

/// Width and height of an H.264 sequence parameter set (its body after the NAL header;
/// ITU-T H.264 §7.3.2.1.1), cropping applied.
pub(crate) fn h264_sps_dims(sps: &[u8]) -> Option<(u16, u16)> {
    let mut r = Bits {
        data: sps,
        byte: 0,
        bit: 0,
        zeros: 0,
    };
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format = 1;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format = r.ue()?;
        if chroma_format == 3 {
            r.bit()?; // separate_colour_plane_flag
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i32, 8i32);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + r.se()? + 256) % 256;
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            for _ in 0..r.ue()?.min(255) {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue()? + 1;
    let height_units = r.ue()? + 1;
    let frame_mbs_only = r.bit()?;
    if frame_mbs_only == 0 {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
    if r.bit()? == 1 {
        left = r.ue()?;
        right = r.ue()?;
        top = r.ue()?;
        bottom = r.ue()?;
    }
    let (crop_x, crop_y) = match chroma_format {
        1 => (2, 2 * (2 - frame_mbs_only)),
        2 => (2, 2 - frame_mbs_only),
        _ => (1, 2 - frame_mbs_only),
    };
    let w = (width_mbs * 16).checked_sub((left + right) * crop_x)?;
    let h = (height_units * 16 * (2 - frame_mbs_only)).checked_sub((top + bottom) * crop_y)?;
    let (w, h) = (u16::try_from(w).ok()?, u16::try_from(h).ok()?);
    (w > 0 && h > 0).then_some((w, h))
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
    fn reads_the_size_of_an_h264_sps() {
        // SPSs from x264 (after the NAL header byte), with emulation prevention bytes:
        // baseline 1280x720, high 1920x1080 (cropped from 1088), main 320x240, and 4:4:4
        // 1366x768 (cropped from 1376).
        let baseline_720 = [
            0x42, 0xc0, 0x1f, 0xd9, 0x00, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00,
            0x10, 0x00, 0x00, 0x03, 0x00, 0xa0, 0xf1, 0x83, 0x24, 0x80,
        ];
        assert_eq!(h264_sps_dims(&baseline_720), Some((1280, 720)));
        let high_1080 = [
            0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00, 0x00,
            0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0x28, 0x3c, 0x60, 0xc6, 0x58,
        ];
        assert_eq!(h264_sps_dims(&high_1080), Some((1920, 1080)));
        let main_240 = [
            0x4d, 0x40, 0x0c, 0xec, 0xa0, 0xa0, 0xfd, 0x80, 0x88, 0x00, 0x00, 0x03, 0x00, 0x08,
            0x00, 0x00, 0x03, 0x00, 0x50, 0x78, 0xa1, 0x4c, 0xb0,
        ];
        assert_eq!(h264_sps_dims(&main_240), Some((320, 240)));
        let high444 = [
            0xf4, 0x00, 0x20, 0x91, 0x9b, 0x28, 0x0a, 0xc0, 0xc3, 0xc5, 0xf8, 0x08, 0x80, 0x00,
            0x00, 0x03, 0x00, 0x80, 0x00, 0x00, 0x05, 0x07, 0x8c, 0x18, 0xcb,
        ];
        assert_eq!(h264_sps_dims(&high444), Some((1366, 768)));
        let mut stap = vec![0x78, 0, (baseline_720.len() + 1) as u8, 0x67];
        stap.extend_from_slice(&baseline_720);
        stap.extend_from_slice(&[0, 2, 0x68, 0xce]);
        assert_eq!(inspect(Codec::H264, &stap).dims, Some((1280, 720)));
        assert_eq!(h264_sps_dims(&baseline_720[..4]), None, "cut short");
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
