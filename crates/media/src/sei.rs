//! H.264 SEI NAL units (McuSeiParams): the bytes of one SEI message in Annex B form, and when a
//! stream's next access unit should carry one (every Interval, or with each IDR).

/// An SEI NAL unit (start code included) carrying one message of `payload_type`; type 5 (user
/// data unregistered) starts with its 16-byte UUID.
pub fn nal(payload_type: u8, uuid: Option<&[u8; 16]>, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(payload.len() + 24);
    body.push(payload_type);
    let mut size = payload.len() + uuid.map_or(0, |u| u.len());
    while size >= 255 {
        body.push(0xFF);
        size -= 255;
    }
    body.push(size as u8);
    if let Some(u) = uuid {
        body.extend_from_slice(u);
    }
    body.extend_from_slice(payload);
    // rbsp_trailing_bits.
    body.push(0x80);
    let mut out = Vec::with_capacity(body.len() + body.len() / 64 + 5);
    out.extend_from_slice(&[0, 0, 0, 1, 0x06]);
    let mut zeros = 0;
    for b in body {
        // Emulation prevention: no 00 00 0x (x ≤ 3) inside a NAL unit.
        if zeros >= 2 && b <= 3 {
            out.push(3);
            zeros = 0;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// An Annex B access unit with `sei` (whole NAL units with start codes) put before its first
/// slice: after the delimiter and parameter sets, where parsers expect SEI.
pub fn insert_before_slices(au: &[u8], sei: &[u8]) -> Vec<u8> {
    let mut at = au.len();
    let mut i = 0;
    while i + 3 < au.len() {
        if au[i] == 0 && au[i + 1] == 0 && au[i + 2] == 1 {
            let nal_type = au[i + 3] & 0x1F;
            if matches!(nal_type, 1 | 5) {
                // The start code may be four bytes.
                at = if i > 0 && au[i - 1] == 0 { i - 1 } else { i };
                break;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(au.len() + sei.len());
    out.extend_from_slice(&au[..at]);
    out.extend_from_slice(sei);
    out.extend_from_slice(&au[at..]);
    out
}

/// Decides which access units carry an SEI: the first, each IDR when `follow_idr`, and one at
/// least every `interval_ns` of presentation time.
#[derive(Debug, Clone)]
pub struct Cadence {
    interval_ns: u64,
    follow_idr: bool,
    last: Option<u64>,
}

impl Cadence {
    pub fn new(interval_ms: u64, follow_idr: bool) -> Self {
        Cadence {
            interval_ns: interval_ms.max(1) * 1_000_000,
            follow_idr,
            last: None,
        }
    }

    /// Whether the access unit at `pts_ns` carries the SEI (and, if so, counts it as sent).
    pub fn due(&mut self, pts_ns: u64, keyframe: bool) -> bool {
        let due = match self.last {
            None => true,
            Some(l) => {
                (keyframe && self.follow_idr) || pts_ns.saturating_sub(l) >= self.interval_ns
            }
        };
        if due {
            self.last = Some(pts_ns);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_sizes_over_254_take_ff_bytes() {
        let n = nal(100, None, &[b'a'; 300]);
        assert_eq!(&n[..7], &[0, 0, 0, 1, 6, 100, 0xFF]);
        assert_eq!(n[7], 45);
        assert_eq!(*n.last().unwrap(), 0x80);
    }

    #[test]
    fn zeros_in_the_payload_are_escaped() {
        let n = nal(5, Some(&[0; 16]), b"x");
        // 16 zero bytes: an emulation-prevention byte after every second zero.
        let body = &n[5..];
        assert!(!body.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 2));
        assert_eq!(body.iter().filter(|b| **b == 3).count(), 7);
    }

    #[test]
    fn sei_goes_after_the_parameter_sets_before_the_first_slice() {
        let au = [
            0, 0, 0, 1, 0x67, 1, 2, // SPS
            0, 0, 0, 1, 0x68, 3, // PPS
            0, 0, 1, 0x65, 9, 9, // IDR slice
        ];
        let out = insert_before_slices(&au, &[0, 0, 0, 1, 6, 7]);
        assert_eq!(&out[..13], &au[..13]);
        assert_eq!(&out[13..19], &[0, 0, 0, 1, 6, 7]);
        assert_eq!(&out[19..], &au[13..]);
        // No slice: at the end.
        assert_eq!(
            insert_before_slices(&[0, 0, 1, 0x67], &[6]),
            vec![0, 0, 1, 0x67, 6]
        );
    }

    #[test]
    fn cadence_follows_interval_and_idr() {
        let mut c = Cadence::new(1000, true);
        assert!(c.due(0, false));
        assert!(!c.due(500_000_000, false));
        assert!(c.due(600_000_000, true));
        assert!(!c.due(1_500_000_000, false));
        assert!(c.due(1_600_000_000, false));
        let mut c = Cadence::new(1000, false);
        assert!(c.due(0, true));
        assert!(!c.due(100_000_000, true));
    }
}
