//! The body format of stored quality series: every series (peer, metric) of one user in one
//! UTC minute, in one byte string. Times are exact seconds (first offset in the minute, then
//! delta-of-delta); integral values are bit-packed over their minimum (raw or as deltas,
//! whichever is narrower); other values are kept bit for bit (byte planes). The whole body may
//! be zstd-compressed. Lossless: decoding gives back every point in the order it was encoded.

use crate::{StoreError, StoreResult};

/// First byte of a body: how the rest is stored.
const PLAIN: u8 = 1;
const ZSTD: u8 = 2;
/// zstd level of folded blocks (written once per user-minute, read many times).
const ZSTD_LEVEL: i32 = 3;
/// No body decodes to more than this (a minute of one user is a few tens of KiB).
const MAX_PLAIN: usize = 16 << 20;

/// Value encodings of a series.
const INTS: u8 = 0;
const INT_DELTAS: u8 = 1;
const FLOATS: u8 = 2;

/// One series of one user: its remote user (empty upstream), its metric, and its points
/// (seconds, value) in the order they were recorded.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Series {
    pub peer: String,
    pub metric: String,
    pub points: Vec<(i64, f64)>,
}

impl Series {
    /// Orders the points by time; points of the same second keep their recorded order.
    pub fn sort(&mut self) {
        self.points.sort_by_key(|p| p.0);
    }
}

/// Appends `from` to `into`, series by series (matched by peer and metric), keeping order.
/// Blocks of one user list their series in much the same order, so the same position is
/// tried first.
pub(crate) fn merge(into: &mut Vec<Series>, from: Vec<Series>) {
    for (i, s) in from.into_iter().enumerate() {
        let same = |t: &Series| t.peer == s.peer && t.metric == s.metric;
        let at = match into.get(i) {
            Some(t) if same(t) => Some(i),
            _ => into.iter().position(same),
        };
        match at {
            Some(at) => into[at].points.extend(s.points),
            None => into.push(s),
        }
    }
}

/// Encodes the series of one minute (`minute` × 60 is the base of the times).
pub(crate) fn encode(minute: i64, series: &[Series], compress: bool) -> Vec<u8> {
    let mut plain =
        Vec::with_capacity(64 + series.iter().map(|s| s.points.len() * 3).sum::<usize>());
    let written = || series.iter().filter(|s| !s.points.is_empty());
    put_varint(&mut plain, written().count() as u64);
    let mut section = Vec::new();
    for s in written() {
        put_str(&mut plain, &s.peer);
        put_str(&mut plain, &s.metric);
        put_varint(&mut plain, s.points.len() as u64);
        section.clear();
        put_times(&mut section, minute.wrapping_mul(60), &s.points);
        put_values(&mut section, &s.points);
        put_varint(&mut plain, section.len() as u64);
        plain.extend_from_slice(&section);
    }
    let mut out = Vec::with_capacity(plain.len() / 2 + 16);
    if compress {
        match zstd::bulk::compress(&plain, ZSTD_LEVEL) {
            Ok(z) if z.len() < plain.len() => {
                out.push(ZSTD);
                out.extend_from_slice(&z);
                return out;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "zstd failed; storing a quality block plain"),
        }
    }
    out.push(PLAIN);
    out.extend_from_slice(&plain);
    out
}

/// Decodes a body, keeping only the series whose metric `want`s (the others are skipped
/// without decoding their points).
pub(crate) fn decode(
    body: &[u8],
    minute: i64,
    want: impl Fn(&str) -> bool,
) -> StoreResult<Vec<Series>> {
    let (&kind, rest) = body.split_first().ok_or_else(|| corrupt("empty body"))?;
    let unpacked;
    let plain = match kind {
        PLAIN => rest,
        ZSTD => {
            unpacked = zstd::bulk::decompress(rest, MAX_PLAIN)
                .map_err(|e| corrupt(&format!("zstd: {e}")))?;
            &unpacked[..]
        }
        k => return Err(corrupt(&format!("unknown body kind {k}"))),
    };
    let mut r = Reader(plain);
    let count = r.varint()?;
    let mut out = Vec::new();
    for _ in 0..count {
        let peer = r.str()?;
        let metric = r.str()?;
        let n = usize::try_from(r.varint()?).map_err(|_| corrupt("series length"))?;
        let len = usize::try_from(r.varint()?).map_err(|_| corrupt("section length"))?;
        let section = r.take(len)?;
        if !want(metric) {
            continue;
        }
        // Every point costs at least one byte of time.
        if n > section.len() {
            return Err(corrupt("series longer than its section"));
        }
        let mut s = Reader(section);
        let times = s.times(minute.wrapping_mul(60), n)?;
        let values = s.values(n)?;
        out.push(Series {
            peer: peer.to_owned(),
            metric: metric.to_owned(),
            points: times.into_iter().zip(values).collect(),
        });
    }
    Ok(out)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("quality block: {what}"))
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// The first time as an offset from `base`, then each change of the step (0 on a steady
/// grid).
fn put_times(out: &mut Vec<u8>, base: i64, points: &[(i64, f64)]) {
    let mut prev = base;
    let mut step = 0i64;
    for (i, &(t, _)) in points.iter().enumerate() {
        let d = t.wrapping_sub(prev);
        if i == 0 {
            put_varint(out, zigzag(d));
        } else {
            put_varint(out, zigzag(d.wrapping_sub(step)));
            step = d;
        }
        prev = t;
    }
}

/// The value as an integer when it is one exactly (bit for bit, so -0.0 is not).
fn as_int(v: f64) -> Option<i64> {
    let i = v as i64;
    ((i as f64).to_bits() == v.to_bits()).then_some(i)
}

/// Bits needed for `v`.
fn width(v: u64) -> u8 {
    (64 - v.leading_zeros()) as u8
}

fn put_values(out: &mut Vec<u8>, points: &[(i64, f64)]) {
    let ints: Option<Vec<i64>> = points.iter().map(|p| as_int(p.1)).collect();
    let Some(ints) = ints else {
        // Byte planes of the bit patterns, most significant first: repeated signs and
        // exponents, and zeros, become runs the compressor removes.
        out.push(FLOATS);
        for plane in 0..8 {
            for p in points {
                out.push(p.1.to_bits().to_be_bytes()[plane]);
            }
        }
        return;
    };
    let deltas: Vec<i64> = ints.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    let (raw_min, raw_w) = frame(&ints);
    let (delta_min, delta_w) = frame(&deltas);
    if deltas.is_empty() || raw_w <= delta_w {
        out.push(INTS);
        put_varint(out, zigzag(raw_min));
        out.push(raw_w);
        pack(out, &ints, raw_min, raw_w);
    } else {
        out.push(INT_DELTAS);
        put_varint(out, zigzag(ints[0]));
        put_varint(out, zigzag(delta_min));
        out.push(delta_w);
        pack(out, &deltas, delta_min, delta_w);
    }
}

/// The minimum of `v` and the bits needed for every value above it.
fn frame(v: &[i64]) -> (i64, u8) {
    let Some(&min) = v.iter().min() else {
        return (0, 0);
    };
    let max = v.iter().max().copied().unwrap_or(min);
    (min, width(max.wrapping_sub(min) as u64))
}

/// `v - min` in `w` bits each, least significant bit first.
fn pack(out: &mut Vec<u8>, v: &[i64], min: i64, w: u8) {
    if w == 0 {
        return;
    }
    let mut acc: u128 = 0;
    let mut bits = 0u32;
    for &x in v {
        acc |= u128::from(x.wrapping_sub(min) as u64) << bits;
        bits += u32::from(w);
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> StoreResult<u8> {
        let (&b, rest) = self.0.split_first().ok_or_else(|| corrupt("truncated"))?;
        self.0 = rest;
        Ok(b)
    }

    fn varint(&mut self) -> StoreResult<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt("varint too long"))
    }

    fn take(&mut self, n: usize) -> StoreResult<&'a [u8]> {
        if n > self.0.len() {
            return Err(corrupt("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn str(&mut self) -> StoreResult<&'a str> {
        let n = usize::try_from(self.varint()?).map_err(|_| corrupt("string length"))?;
        std::str::from_utf8(self.take(n)?).map_err(|_| corrupt("string is not UTF-8"))
    }

    fn times(&mut self, base: i64, n: usize) -> StoreResult<Vec<i64>> {
        let mut out = Vec::with_capacity(n);
        let mut prev = base;
        let mut step = 0i64;
        for i in 0..n {
            let v = unzigzag(self.varint()?);
            let d = if i == 0 {
                v
            } else {
                step = step.wrapping_add(v);
                step
            };
            prev = prev.wrapping_add(d);
            out.push(prev);
        }
        Ok(out)
    }

    fn values(&mut self, n: usize) -> StoreResult<Vec<f64>> {
        match self.byte()? {
            FLOATS => {
                let planes = self.take(n.checked_mul(8).ok_or_else(|| corrupt("size"))?)?;
                Ok((0..n)
                    .map(|i| {
                        let mut b = [0u8; 8];
                        for (plane, byte) in b.iter_mut().enumerate() {
                            *byte = planes[plane * n + i];
                        }
                        f64::from_bits(u64::from_be_bytes(b))
                    })
                    .collect())
            }
            INTS => {
                let min = unzigzag(self.varint()?);
                let w = self.byte()?;
                let v = self.unpack(n, min, w)?;
                Ok(v.into_iter().map(|i| i as f64).collect())
            }
            INT_DELTAS => {
                let first = unzigzag(self.varint()?);
                let min = unzigzag(self.varint()?);
                let w = self.byte()?;
                let deltas = self.unpack(n.saturating_sub(1), min, w)?;
                let mut out = Vec::with_capacity(n);
                let mut v = first;
                out.push(v as f64);
                for d in deltas {
                    v = v.wrapping_add(d);
                    out.push(v as f64);
                }
                out.truncate(n);
                Ok(out)
            }
            k => Err(corrupt(&format!("unknown value encoding {k}"))),
        }
    }

    fn unpack(&mut self, n: usize, min: i64, w: u8) -> StoreResult<Vec<i64>> {
        if w > 64 {
            return Err(corrupt("bit width"));
        }
        let bytes = (n * usize::from(w)).div_ceil(8);
        let data = self.take(bytes)?;
        let mask: u128 = (1u128 << w) - 1;
        let mut out = Vec::with_capacity(n);
        let mut acc: u128 = 0;
        let mut bits = 0u32;
        let mut next = data.iter();
        for _ in 0..n {
            while bits < u32::from(w) {
                acc |= u128::from(*next.next().unwrap_or(&0)) << bits;
                bits += 8;
            }
            out.push(min.wrapping_add((acc & mask) as u64 as i64));
            acc >>= w;
            bits -= u32::from(w);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(peer: &str, metric: &str, points: &[(i64, f64)]) -> Series {
        Series {
            peer: peer.into(),
            metric: metric.into(),
            points: points.to_vec(),
        }
    }

    fn round_trip(minute: i64, s: Vec<Series>) {
        for compress in [false, true] {
            let body = encode(minute, &s, compress);
            let back = decode(&body, minute, |_| true).unwrap();
            assert_eq!(back.len(), s.len());
            for (a, b) in back.iter().zip(&s) {
                assert_eq!(a.peer, b.peer);
                assert_eq!(a.metric, b.metric);
                assert_eq!(a.points.len(), b.points.len());
                for (x, y) in a.points.iter().zip(&b.points) {
                    assert_eq!(x.0, y.0);
                    assert_eq!(x.1.to_bits(), y.1.to_bits(), "{} vs {}", x.1, y.1);
                }
            }
        }
    }

    #[test]
    fn every_kind_of_value_and_time_comes_back_bit_for_bit() {
        let m = 29_000_000;
        let t = m * 60;
        round_trip(
            m,
            vec![
                series(
                    "",
                    "aBit",
                    &[(t + 1, 32_000.0), (t + 3, 31_990.0), (t + 5, 64_000.0)],
                ),
                series(
                    "bob",
                    "bigvWidth",
                    &[(t, 1280.0), (t + 2, 1280.0), (t + 4, 1280.0)],
                ),
                series(
                    "bob",
                    "aLoss",
                    &[
                        (t, 0.0),
                        (t + 2, 3.125),
                        (t + 2, -0.0),
                        (t + 58, f64::INFINITY),
                    ],
                ),
                series("carol", "x", &[(t + 59, i64::MAX as f64), (t + 7, -1e300)]),
                series("dave", "big", &[(t, -9e18), (t + 1, 9e18), (t + 2, 0.0)]),
                series("", "one", &[(t + 30, 7.0)]),
                // times outside the minute (late data or clock steps) still come back
                series(
                    "é",
                    "odd",
                    &[(t - 600, 1.0), (t + 6000, 2.0), (t + 6000, 3.0)],
                ),
            ],
        );
    }

    #[test]
    fn unwanted_metrics_are_skipped() {
        let s = vec![
            series("", "aBit", &[(60, 1.0)]),
            series("", "aLoss", &[(61, 2.0)]),
        ];
        let body = encode(1, &s, true);
        let back = decode(&body, 1, |m| m == "aLoss").unwrap();
        assert_eq!(back, vec![s[1].clone()]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let good = encode(5, &[series("p", "m", &[(300, 1.5), (302, 2.0)])], false);
        for cut in 0..good.len() {
            let _ = decode(&good[..cut], 5, |_| true);
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0xff;
            let _ = decode(&bad, 5, |_| true);
        }
        assert!(decode(&[9, 1, 2], 0, |_| true).is_err());
        assert!(decode(&[ZSTD, 1, 2, 3], 0, |_| true).is_err());
    }

    #[test]
    fn a_steady_minute_is_small() {
        let m = 29_000_000;
        let pts = |f: &dyn Fn(i64) -> f64| -> Vec<(i64, f64)> {
            (0..30).map(|i| (m * 60 + 1 + 2 * i, f(i))).collect()
        };
        let s = vec![
            series("", "bigvWidth", &pts(&|_| 1280.0)),
            series("", "bigvHeight", &pts(&|_| 720.0)),
            series("", "bigvEncFps", &pts(&|i| 24.0 + (i % 3) as f64)),
            series("", "aLoss", &pts(&|_| 0.0)),
        ];
        let body = encode(m, &s, true);
        assert!(body.len() < 120, "{} bytes", body.len());
    }
}
