//! The body format of stored quality series: every series (peer, metric) of one user in one
//! span of time, in one byte string. Peers are listed once, known metrics are one byte. Times
//! are exact seconds, listed once per distinct timeline (series sampled together share one):
//! a first offset from the span's start and a step when steady, else delta-of-delta; integral
//! values are bit-packed over their minimum (raw or as deltas, whichever is narrower); other
//! values are kept bit for bit (byte planes). The whole body may be zstd-compressed. Lossless:
//! decoding gives back every point in the order it was encoded.

use crate::{StoreError, StoreResult};

/// First byte of a body: how the rest is stored.
const PLAIN: u8 = 1;
const ZSTD: u8 = 2;
/// zstd level of folded blocks: bit-packed values leave it little to find, so the fastest.
const ZSTD_LEVEL: i32 = 1;
/// Timelines: one first time and one step, or every time (first, then delta-of-delta).
const STEADY: u8 = 0;
const LISTED: u8 = 1;
/// Points of one series in one body at most (a span holds a few hundred).
const MAX_TIMELINE: usize = 1 << 20;
/// No body decodes to more than this (a minute of one user is a few tens of KiB).
const MAX_PLAIN: usize = 16 << 20;

/// Metrics spelled as one byte (their index). Append only: stored bodies refer to it.
const KNOWN_METRICS: [&str; 16] = [
    "appCpu",
    "sysCpu",
    "aBit",
    "aBlock",
    "bigvBit",
    "bigvCapFps",
    "bigvEncFps",
    "bigvDecFps",
    "bigvBlock",
    "aLoss",
    "bigvLoss",
    "bigvWidth",
    "bigvHeight",
    "rtt",
    "smallvBit",
    "smallvLoss",
];

/// Value encodings of a series: all integers, or a map of which values are not, the
/// integers, then the others.
const INTEGERS: u8 = 0;
const MIXED: u8 = 1;
/// Encodings of a run of integers: over their minimum, or as deltas over the minimum delta.
const RAW: u8 = 0;
const DELTAS: u8 = 1;

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

/// Points of one series borrowed from where they were grouped (names from the samples,
/// points from one array of the whole append), so that grouping allocates nothing per series.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Part<'a> {
    pub peer: &'a str,
    pub metric: &'a str,
    pub points: &'a [(i64, f64)],
}

/// What encoding and merging read of a series, owned ([`Series`]) or borrowed ([`Part`]).
pub(crate) trait SeriesRef {
    fn peer(&self) -> &str;
    fn metric(&self) -> &str;
    fn points(&self) -> &[(i64, f64)];
    fn into_series(self) -> Series;
}

impl SeriesRef for Series {
    fn peer(&self) -> &str {
        &self.peer
    }
    fn metric(&self) -> &str {
        &self.metric
    }
    fn points(&self) -> &[(i64, f64)] {
        &self.points
    }
    fn into_series(self) -> Series {
        self
    }
}

impl SeriesRef for Part<'_> {
    fn peer(&self) -> &str {
        self.peer
    }
    fn metric(&self) -> &str {
        self.metric
    }
    fn points(&self) -> &[(i64, f64)] {
        self.points
    }
    fn into_series(self) -> Series {
        Series {
            peer: self.peer.to_owned(),
            metric: self.metric.to_owned(),
            points: self.points.to_vec(),
        }
    }
}

/// Appends `from` to `into`, series by series (matched by peer and metric), keeping order.
/// Both list their series in much the same order, so the one after the last match is tried
/// first.
pub(crate) fn merge<S: SeriesRef>(into: &mut Vec<Series>, from: Vec<S>) {
    let mut next = 0;
    for s in from {
        merge_one(into, s, &mut next);
    }
}

/// Appends one series to its match in `into` (or adds it), trying `next` first; `next` then
/// points after it.
pub(crate) fn merge_one<S: SeriesRef>(into: &mut Vec<Series>, s: S, next: &mut usize) {
    let same = |t: &Series| t.metric == s.metric() && t.peer == s.peer();
    let at = match into.get(*next) {
        Some(t) if same(t) => Some(*next),
        _ => into.iter().position(same),
    };
    match at {
        Some(at) => {
            into[at].points.extend_from_slice(s.points());
            *next = at + 1;
        }
        None => {
            into.push(s.into_series());
            *next = into.len();
        }
    }
}

/// zstd contexts, kept to save their set-up per body.
#[derive(Default)]
pub(crate) struct Codec {
    compressor: Option<zstd::bulk::Compressor<'static>>,
    decompressor: Option<zstd::bulk::Decompressor<'static>>,
    /// The last body decompressed (kept for its capacity: without a bound, zstd's `decompress`
    /// would allocate the whole `MAX_PLAIN` for every body).
    unpacked: Vec<u8>,
}

impl Codec {
    /// Encodes the series of one span (`base` is its first second).
    pub fn encode<S: SeriesRef>(&mut self, base: i64, series: &[S], compress: bool) -> Vec<u8> {
        let plain = encode_plain(base, series);
        let mut out = Vec::with_capacity(plain.len() / 2 + 16);
        if compress {
            if self.compressor.is_none() {
                self.compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL).ok();
            }
            if let Some(c) = &mut self.compressor {
                match c.compress(&plain) {
                    Ok(z) if z.len() < plain.len() => {
                        out.push(ZSTD);
                        out.extend_from_slice(&z);
                        return out;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "zstd failed; storing a quality block plain")
                    }
                }
            }
        }
        out.push(PLAIN);
        out.extend_from_slice(&plain);
        out
    }

    /// Decodes a body, handing each series whose metric `want`s to `sink` (peer, metric, times,
    /// values); the others are skipped without decoding their points.
    pub fn decode(
        &mut self,
        body: &[u8],
        base: i64,
        want: impl Fn(&str) -> bool,
        mut sink: impl FnMut(&str, &str, &[i64], &[f64]),
    ) -> StoreResult<()> {
        let (&kind, rest) = body.split_first().ok_or_else(|| corrupt("empty body"))?;
        let plain = match kind {
            PLAIN => rest,
            ZSTD => {
                if self.decompressor.is_none() {
                    self.decompressor = Some(
                        zstd::bulk::Decompressor::new()
                            .map_err(|e| corrupt(&format!("zstd: {e}")))?,
                    );
                }
                let d = self.decompressor.as_mut().expect("set above");
                // Bodies are compressed whole, so their frame says how long they are.
                let size = zstd::zstd_safe::get_frame_content_size(rest)
                    .ok()
                    .flatten()
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|&n| n <= MAX_PLAIN)
                    .ok_or_else(|| corrupt("zstd frame without a valid size"))?;
                self.unpacked.clear();
                self.unpacked.reserve(size);
                d.decompress_to_buffer(rest, &mut self.unpacked)
                    .map_err(|e| corrupt(&format!("zstd: {e}")))?;
                &self.unpacked[..]
            }
            k => return Err(corrupt(&format!("unknown body kind {k}"))),
        };
        let mut r = Reader(plain);
        let peers = (0..r.varint()?)
            .map(|_| r.str())
            .collect::<StoreResult<Vec<&str>>>()?;
        let timelines = (0..r.varint()?)
            .map(|_| r.times(base))
            .collect::<StoreResult<Vec<Vec<i64>>>>()?;
        let count = r.varint()?;
        let mut values = Vec::new();
        for _ in 0..count {
            let peer = usize::try_from(r.varint()?)
                .ok()
                .and_then(|i| peers.get(i).copied())
                .ok_or_else(|| corrupt("peer index"))?;
            let metric = match r.byte()? {
                OTHER_METRIC => r.str()?,
                i => KNOWN_METRICS
                    .get(usize::from(i))
                    .copied()
                    .ok_or_else(|| corrupt("metric index"))?,
            };
            let times = usize::try_from(r.varint()?)
                .ok()
                .and_then(|i| timelines.get(i))
                .ok_or_else(|| corrupt("timeline index"))?;
            let len = usize::try_from(r.varint()?).map_err(|_| corrupt("section length"))?;
            let section = r.take(len)?;
            if !want(metric) {
                continue;
            }
            let n = times.len();
            let mut s = Reader(section);
            s.values(n, &mut values)?;
            sink(peer, metric, times, &values);
        }
        Ok(())
    }

    /// Decodes a whole body into series.
    pub fn decode_all(&mut self, body: &[u8], base: i64) -> StoreResult<Vec<Series>> {
        let mut out = Vec::new();
        self.decode(
            body,
            base,
            |_| true,
            |peer, metric, times, values| {
                out.push(Series {
                    peer: peer.to_owned(),
                    metric: metric.to_owned(),
                    points: times.iter().copied().zip(values.iter().copied()).collect(),
                })
            },
        )?;
        Ok(out)
    }
}

/// A metric not in [`KNOWN_METRICS`] follows as a string.
const OTHER_METRIC: u8 = 0xff;

fn encode_plain<S: SeriesRef>(base: i64, series: &[S]) -> Vec<u8> {
    let mut plain =
        Vec::with_capacity(64 + series.iter().map(|s| s.points().len() * 3).sum::<usize>());
    let written = || series.iter().filter(|s| !s.points().is_empty());
    let mut peers: Vec<&str> = Vec::new();
    let mut timelines: Vec<&[(i64, f64)]> = Vec::new();
    let same_times = |a: &[(i64, f64)], b: &[(i64, f64)]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.0 == y.0)
    };
    let mut series_timeline = Vec::new();
    for s in written() {
        if !peers.contains(&s.peer()) {
            peers.push(s.peer());
        }
        let t = match timelines.iter().rposition(|t| same_times(t, s.points())) {
            Some(t) => t,
            None => {
                timelines.push(s.points());
                timelines.len() - 1
            }
        };
        series_timeline.push(t);
    }
    put_varint(&mut plain, peers.len() as u64);
    for p in &peers {
        put_str(&mut plain, p);
    }
    put_varint(&mut plain, timelines.len() as u64);
    for t in &timelines {
        put_times(&mut plain, base, t);
    }
    put_varint(&mut plain, series_timeline.len() as u64);
    let mut section = Vec::new();
    for (s, timeline) in written().zip(series_timeline) {
        let peer = peers.iter().position(|p| *p == s.peer()).unwrap_or(0);
        put_varint(&mut plain, peer as u64);
        match KNOWN_METRICS.iter().position(|m| *m == s.metric()) {
            Some(i) => plain.push(i as u8),
            None => {
                plain.push(OTHER_METRIC);
                put_str(&mut plain, s.metric());
            }
        }
        put_varint(&mut plain, timeline as u64);
        section.clear();
        put_values(&mut section, s.points());
        put_varint(&mut plain, section.len() as u64);
        plain.extend_from_slice(&section);
    }
    plain
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

/// A timeline: its length, then steady (first offset from `base`, step) or listed (first
/// offset, then each change of the step).
fn put_times(out: &mut Vec<u8>, base: i64, points: &[(i64, f64)]) {
    put_varint(out, points.len() as u64);
    let first = points[0].0;
    let step = points.get(1).map_or(0, |p| p.0.wrapping_sub(first));
    let steady = points
        .windows(2)
        .all(|w| w[1].0.wrapping_sub(w[0].0) == step);
    if steady {
        out.push(STEADY);
        put_varint(out, zigzag(first.wrapping_sub(base)));
        put_varint(out, zigzag(step));
        return;
    }
    out.push(LISTED);
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
    let mut ints = Vec::with_capacity(points.len());
    let mut others = Vec::new();
    for p in points {
        match as_int(p.1) {
            Some(i) => ints.push(i),
            None => others.push(p.1),
        }
    }
    if others.is_empty() {
        out.push(INTEGERS);
        put_ints(out, &ints);
        return;
    }
    out.push(MIXED);
    let mut map = vec![0u8; points.len().div_ceil(8)];
    for (i, p) in points.iter().enumerate() {
        if as_int(p.1).is_none() {
            map[i / 8] |= 1 << (i % 8);
        }
    }
    out.extend_from_slice(&map);
    put_varint(out, ints.len() as u64);
    put_ints(out, &ints);
    // Bit patterns, most significant byte first, without their trailing zero bytes: a count
    // byte, then the bytes kept (short values like 2.5 or -0.0 take two or three bytes).
    for v in others {
        let b = v.to_bits().to_be_bytes();
        let keep = 8 - b.iter().rev().take_while(|x| **x == 0).count();
        out.push(keep as u8);
        out.extend_from_slice(&b[..keep]);
    }
}

/// Integers bit-packed over their minimum, raw or as deltas, whichever is narrower.
fn put_ints(out: &mut Vec<u8>, ints: &[i64]) {
    if ints.is_empty() {
        return;
    }
    let (raw_min, raw_w) = frame(ints.iter().copied());
    let deltas = || ints.windows(2).map(|w| w[1].wrapping_sub(w[0]));
    let (delta_min, delta_w) = frame(deltas());
    if ints.len() == 1 || raw_w <= delta_w {
        out.push(RAW);
        put_varint(out, zigzag(raw_min));
        out.push(raw_w);
        pack(out, ints.iter().copied(), raw_min, raw_w);
    } else {
        out.push(DELTAS);
        put_varint(out, zigzag(ints[0]));
        put_varint(out, zigzag(delta_min));
        out.push(delta_w);
        pack(out, deltas(), delta_min, delta_w);
    }
}

/// The minimum of `v` and the bits needed for every value above it.
fn frame(v: impl Iterator<Item = i64>) -> (i64, u8) {
    let (min, max) = v.fold((i64::MAX, i64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
    if min > max {
        return (0, 0);
    }
    (min, width(max.wrapping_sub(min) as u64))
}

/// `v - min` in `w` bits each, least significant bit first.
fn pack(out: &mut Vec<u8>, v: impl Iterator<Item = i64>, min: i64, w: u8) {
    if w == 0 {
        return;
    }
    let mut acc: u128 = 0;
    let mut bits = 0u32;
    for x in v {
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

    /// A timeline (see `put_times`).
    fn times(&mut self, base: i64) -> StoreResult<Vec<i64>> {
        let n = usize::try_from(self.varint()?).map_err(|_| corrupt("timeline length"))?;
        match self.byte()? {
            STEADY => {
                // A steady timeline is a few bytes for any length: bound what a corrupt one
                // can make us allocate.
                if n > MAX_TIMELINE {
                    return Err(corrupt("timeline too long"));
                }
                let first = base.wrapping_add(unzigzag(self.varint()?));
                let step = unzigzag(self.varint()?);
                Ok((0..n as i64)
                    .map(|i| first.wrapping_add(step.wrapping_mul(i)))
                    .collect())
            }
            LISTED => {
                // Every listed time takes at least one byte.
                if n > self.0.len() {
                    return Err(corrupt("timeline longer than the body"));
                }
                let mut out = Vec::with_capacity(n);
                self.listed(base, n, &mut out)?;
                Ok(out)
            }
            k => Err(corrupt(&format!("unknown timeline encoding {k}"))),
        }
    }

    fn listed(&mut self, base: i64, n: usize, out: &mut Vec<i64>) -> StoreResult<()> {
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
        Ok(())
    }

    fn values(&mut self, n: usize, out: &mut Vec<f64>) -> StoreResult<()> {
        out.clear();
        out.reserve(n);
        match self.byte()? {
            INTEGERS => self.ints(n, |i| out.push(i as f64)),
            MIXED => {
                let map = self.take(n.div_ceil(8))?;
                let is_other = |i: usize| map[i / 8] & (1 << (i % 8)) != 0;
                let m = usize::try_from(self.varint()?).map_err(|_| corrupt("count"))?;
                if m > n {
                    return Err(corrupt("more integers than values"));
                }
                let mut ints = Vec::with_capacity(m);
                self.ints(m, |i| ints.push(i as f64))?;
                let mut ints = ints.into_iter();
                for i in 0..n {
                    let v = if is_other(i) {
                        let keep = usize::from(self.byte()?);
                        if keep > 8 {
                            return Err(corrupt("float length"));
                        }
                        let mut b = [0u8; 8];
                        b[..keep].copy_from_slice(self.take(keep)?);
                        f64::from_bits(u64::from_be_bytes(b))
                    } else {
                        ints.next().ok_or_else(|| corrupt("too few integers"))?
                    };
                    out.push(v);
                }
                Ok(())
            }
            k => Err(corrupt(&format!("unknown value encoding {k}"))),
        }
    }

    /// A run of `n` integers (nothing when `n` is 0), handed to `f`.
    fn ints(&mut self, n: usize, mut f: impl FnMut(i64)) -> StoreResult<()> {
        if n == 0 {
            return Ok(());
        }
        match self.byte()? {
            RAW => {
                let min = unzigzag(self.varint()?);
                let w = self.byte()?;
                self.unpack(n, w, |x| f(min.wrapping_add(x)))
            }
            DELTAS => {
                let mut v = unzigzag(self.varint()?);
                let min = unzigzag(self.varint()?);
                let w = self.byte()?;
                f(v);
                self.unpack(n - 1, w, |d| {
                    v = v.wrapping_add(min.wrapping_add(d));
                    f(v)
                })
            }
            k => Err(corrupt(&format!("unknown integer encoding {k}"))),
        }
    }

    /// `n` values of `w` bits each, least significant bit first, handed to `f`.
    fn unpack(&mut self, n: usize, w: u8, mut f: impl FnMut(i64)) -> StoreResult<()> {
        if w > 64 {
            return Err(corrupt("bit width"));
        }
        let bytes = (n * usize::from(w)).div_ceil(8);
        let data = self.take(bytes)?;
        if w == 0 {
            (0..n).for_each(|_| f(0));
            return Ok(());
        }
        if w <= 56 {
            // Each value lies within the 8 bytes from its first byte: one load, one shift.
            let w = usize::from(w);
            let mask = (1u64 << w) - 1;
            let word = |at: usize| match data.get(at..at + 8) {
                Some(b) => u64::from_le_bytes(b.try_into().expect("8 bytes")),
                None => {
                    let mut b = [0u8; 8];
                    let tail = &data[at.min(data.len())..];
                    b[..tail.len()].copy_from_slice(tail);
                    u64::from_le_bytes(b)
                }
            };
            for i in 0..n {
                let bit = i * w;
                f(((word(bit / 8) >> (bit % 8)) & mask) as i64);
            }
            return Ok(());
        }
        let mask: u128 = (1u128 << w) - 1;
        let mut acc: u128 = 0;
        let mut bits = 0u32;
        let mut next = data.iter();
        for _ in 0..n {
            while bits < u32::from(w) {
                acc |= u128::from(*next.next().unwrap_or(&0)) << bits;
                bits += 8;
            }
            f((acc & mask) as u64 as i64);
            acc >>= w;
            bits -= u32::from(w);
        }
        Ok(())
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

    fn round_trip(base: i64, s: Vec<Series>) {
        let mut c = Codec::default();
        for compress in [false, true] {
            let body = c.encode(base, &s, compress);
            let back = c.decode_all(&body, base).unwrap();
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
        let t = 29_000_000 * 60;
        round_trip(
            t,
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
                series("carol", "aBit", &[(t + 9, 1.0)]),
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
    fn integers_of_every_width_come_back() {
        // Spreads of 2^w for every w, random inside, lengths around the 8-byte loads' edges.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for w in 0..=62u32 {
            for n in [1usize, 7, 8, 9, 61] {
                let points = (0..n as i64)
                    .map(|i| {
                        let v = if w == 0 {
                            5
                        } else {
                            (next() >> (64 - w)) as i64
                        };
                        (60 + 2 * i, (v - (1i64 << w.saturating_sub(1))) as f64)
                    })
                    .collect::<Vec<_>>();
                if points.iter().all(|p| p.1.abs() < 9.0e15) {
                    round_trip(60, vec![series("", "aBit", &points)]);
                }
            }
        }
    }

    #[test]
    fn unwanted_metrics_are_skipped() {
        let s = vec![
            series("", "aBit", &[(60, 1.0)]),
            series("", "aLoss", &[(61, 2.0)]),
        ];
        let mut c = Codec::default();
        let body = c.encode(60, &s, true);
        let mut back = Vec::new();
        c.decode(
            &body,
            60,
            |m| m == "aLoss",
            |p, m, t, v| {
                let pts: Vec<(i64, f64)> = t.iter().copied().zip(v.iter().copied()).collect();
                back.push(series(p, m, &pts))
            },
        )
        .unwrap();
        assert_eq!(back, vec![s[1].clone()]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut c = Codec::default();
        let good = c.encode(300, &[series("p", "m", &[(300, 1.5), (302, 2.0)])], false);
        for cut in 0..good.len() {
            let _ = c.decode_all(&good[..cut], 300);
        }
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0xff;
            let _ = c.decode_all(&bad, 300);
        }
        assert!(c.decode_all(&[9, 1, 2], 0).is_err());
        assert!(c.decode_all(&[ZSTD, 1, 2, 3], 0).is_err());
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
        let body = Codec::default().encode(m * 60, &s, true);
        assert!(body.len() < 100, "{} bytes", body.len());
    }
}
