//! Measurements: a log-linear latency histogram, per-client counters shared with the main
//! thread, and readers of `/proc` (process and thread CPU time, UDP socket drops).

use std::collections::{HashMap, HashSet};

/// Sub-buckets per power of two: values are kept to within 1/64 (about 1.6 %).
const SUB: u32 = 64;
const LINEAR: u64 = 2 * SUB as u64;
const BUCKETS: usize = (LINEAR as usize) + (64 - 7) * SUB as usize;

/// Latency histogram in microseconds.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn bucket_of(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let e = 63 - v.leading_zeros(); // >= 7
    let mantissa = (v >> (e - 6)) & u64::from(SUB - 1);
    LINEAR as usize + (e as usize - 7) * SUB as usize + mantissa as usize
}

fn lower_bound(b: usize) -> u64 {
    if (b as u64) < LINEAR {
        return b as u64;
    }
    let i = b - LINEAR as usize;
    let e = (i / SUB as usize) as u32 + 7;
    let mantissa = (i % SUB as usize) as u64;
    (u64::from(SUB) + mantissa) << (e - 6)
}

impl Histogram {
    pub fn record(&mut self, v: u64) {
        self.counts[bucket_of(v)] += 1;
        self.total += 1;
        self.max = self.max.max(v);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += *b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.total = 0;
        self.max = 0;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0..=1), as the lower bound of its bucket.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        if rank == self.total {
            return self.max;
        }
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return lower_bound(b).min(self.max);
            }
        }
        self.max
    }
}

/// What one subscriber received, cumulative since it connected.
#[derive(Clone, Copy, Default, Debug)]
pub struct SubCounters {
    pub connected: bool,
    pub dead: bool,
    pub datagrams: u64,
    /// RTP packets that made up delivered frames (both media lines).
    pub packets: u64,
    /// Highest minus first RTP sequence number plus one, summed over the media lines.
    pub packets_expected: u64,
    pub frames: u64,
    /// Frame numbers the publisher stamped, from the first received to the last.
    pub frames_expected: u64,
    pub video_frames: u64,
    pub keyframes: u64,
    pub bytes: u64,
    pub nacks_sent: u64,
    pub plis_sent: u64,
    /// Frames whose payload lacked our stamp (corrupted or not ours).
    pub unstamped: u64,
}

/// What one publisher sent, cumulative.
#[derive(Clone, Copy, Default, Debug)]
pub struct PubCounters {
    pub connected: bool,
    pub dead: bool,
    pub audio_frames: u64,
    pub video_frames: u64,
    pub keyframes: u64,
    pub plis_received: u64,
    /// NACKs the server sent for the video line (upstream loss), from str0m's egress stats.
    pub nacks_received: u64,
    /// Fraction lost upstream, from the server's last receiver report on the video line.
    pub remote_loss: f32,
    pub bytes: u64,
    pub datagrams_out: u64,
}

/// One driver thread's view, copied out a few times a second.
#[derive(Clone, Default)]
pub struct ThreadSnapshot {
    pub subs: HashMap<usize, SubCounters>,
    pub pubs: HashMap<usize, PubCounters>,
    /// Frame latency `[video, audio]` since the measurement window opened.
    pub latency_window: [Histogram; 2],
    /// Since the last periodic report.
    pub latency_interval: [Histogram; 2],
    pub send_errors: u64,
    pub disconnects: u64,
    /// Time the driver spent working (not waiting in epoll), ns.
    pub busy_ns: u64,
    /// Longest a driver woke up later than it wanted, µs, since the window opened and since
    /// the last report.
    pub late_max_window_us: u64,
    pub late_max_interval_us: u64,
}

/// CPU time (user + system) of a process, in clock ticks.
pub fn process_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    ticks_of_stat(&s).map(|(_, t)| t)
}

/// `(comm, utime + stime)` from a `/proc/.../stat` line.
fn ticks_of_stat(s: &str) -> Option<(String, u64)> {
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s[open + 1..close].to_string();
    let rest: Vec<&str> = s[close + 2..].split_whitespace().collect();
    // After the comm: state is field 3; utime and stime are fields 14 and 15.
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// CPU ticks per thread of a process, by thread id, with the thread's name.
pub fn thread_ticks(pid: u32) -> HashMap<u32, (String, u64)> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(s) = std::fs::read_to_string(e.path().join("stat")) {
            if let Some(v) = ticks_of_stat(&s) {
                out.insert(tid, v);
            }
        }
    }
    out
}

/// Resident memory of a process, KiB (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Nanoseconds each thread of a process has waited on a run queue (runnable, not running),
/// by thread id, from `/proc/<pid>/task/<tid>/schedstat`.
pub fn thread_run_delay(pid: u32) -> HashMap<u32, u64> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for e in dir.flatten() {
        let Some(tid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let wait = std::fs::read_to_string(e.path().join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().nth(1).and_then(|w| w.parse().ok()));
        if let Some(w) = wait {
            out.insert(tid, w);
        }
    }
    out
}

/// The largest share of `secs` any one thread spent waiting for a CPU between two samples.
pub fn max_wait_pct(before: &HashMap<u32, u64>, after: &HashMap<u32, u64>, secs: f64) -> f64 {
    after
        .iter()
        .map(|(tid, w)| w.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .max()
        .map_or(0.0, |ns| 100.0 * ns as f64 / 1e9 / secs)
}

pub fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

/// Kernel counters of UDP sockets, summed over some local ports.
#[derive(Clone, Copy, Default, Debug)]
pub struct UdpSockets {
    /// Datagrams dropped because the receive buffer was full (cumulative).
    pub drops: u64,
    /// Bytes waiting in receive buffers now.
    pub rx_queue: u64,
}

/// The `drops` and `rx_queue` columns of `/proc/net/udp` and `/proc/net/udp6` for the given
/// local ports, summed.
pub fn udp_sockets(ports: &HashSet<u16>) -> UdpSockets {
    let mut total = UdpSockets::default();
    for f in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let Some(local) = cols.get(1) else { continue };
            let Some(port) = local
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok())
            else {
                continue;
            };
            if ports.contains(&port) {
                total.drops += cols.last().and_then(|d| d.parse::<u64>().ok()).unwrap_or(0);
                total.rx_queue += cols
                    .get(4)
                    .and_then(|q| q.split(':').nth(1))
                    .and_then(|q| u64::from_str_radix(q, 16).ok())
                    .unwrap_or(0);
            }
        }
    }
    total
}

/// `Udp: ... RcvbufErrors SndbufErrors` of `/proc/net/snmp` (whole host).
pub fn udp_snmp() -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let Ok(text) = std::fs::read_to_string("/proc/net/snmp") else {
        return out;
    };
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("Udp:")).collect();
    if lines.len() >= 2 {
        let names = lines[0].split_whitespace().skip(1);
        let values = lines[1].split_whitespace().skip(1);
        for (n, v) in names.zip(values) {
            if let Ok(v) = v.parse() {
                out.insert(n.to_string(), v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_within_two_percent() {
        let mut h = Histogram::default();
        for v in 1..=100_000u64 {
            h.record(v);
        }
        for (q, want) in [(0.5, 50_000.0), (0.99, 99_000.0), (0.001, 100.0)] {
            let got = h.quantile(q) as f64;
            assert!((got - want).abs() / want < 0.02, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.max(), 100_000);
        assert_eq!(h.quantile(1.0), 100_000);
    }

    #[test]
    fn buckets_are_monotonic() {
        let mut last = 0;
        for v in 0..1_000_000u64 {
            let b = bucket_of(v);
            assert!(b >= last);
            assert!(lower_bound(b) <= v);
            last = b;
        }
        assert!(bucket_of(u64::MAX) < BUCKETS);
    }

    #[test]
    fn parses_stat_lines_with_spaces_in_comm() {
        let s = "123 (hearth media 0) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(ticks_of_stat(s), Some(("hearth media 0".into(), 300)));
    }
}
