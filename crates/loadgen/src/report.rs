//! Turning the drivers' counters into reports: every few seconds (on stderr) and once for the
//! measurement window (stderr, and JSON on stdout with `--json`).

use crate::driver::DriverHandle;
use crate::stats::{self, Histogram, PubCounters, SubCounters};
use crate::{http, Args, Signaling};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Everything the drivers report, merged.
#[derive(Default)]
struct Merged {
    subs: HashMap<usize, SubCounters>,
    pubs: HashMap<usize, PubCounters>,
    lat_window: [Histogram; 2],
    lat_interval: [Histogram; 2],
    send_errors: u64,
    disconnects: u64,
    /// Per driver thread.
    busy_ns: Vec<u64>,
    late_max_window_us: u64,
    late_max_interval_us: u64,
}

fn gather(drivers: &[DriverHandle], take_interval: bool) -> Merged {
    let mut m = Merged::default();
    for d in drivers {
        let mut s = d.shared.lock().unwrap_or_else(|p| p.into_inner());
        m.subs.extend(s.subs.iter().map(|(k, v)| (*k, *v)));
        m.pubs.extend(s.pubs.iter().map(|(k, v)| (*k, *v)));
        for k in 0..2 {
            m.lat_window[k].merge(&s.latency_window[k]);
            m.lat_interval[k].merge(&s.latency_interval[k]);
            if take_interval {
                s.latency_interval[k].clear();
            }
        }
        m.send_errors += s.send_errors;
        m.disconnects += s.disconnects;
        m.busy_ns.push(s.busy_ns);
        m.late_max_window_us = m.late_max_window_us.max(s.late_max_window_us);
        m.late_max_interval_us = m.late_max_interval_us.max(s.late_max_interval_us);
        if take_interval {
            s.late_max_interval_us = 0;
        }
    }
    m
}

/// Counters at the start of a period.
struct Baseline {
    at: Instant,
    subs: HashMap<usize, SubCounters>,
    pubs: HashMap<usize, PubCounters>,
    server_ticks: Option<u64>,
    server_rss_kib: Option<u64>,
    server_threads: HashMap<u32, (String, u64)>,
    server_run_delay: HashMap<u32, u64>,
    self_run_delay: HashMap<u32, u64>,
    self_ticks: u64,
    server_udp: stats::UdpSockets,
    local_udp: stats::UdpSockets,
    busy_ns: Vec<u64>,
    snmp: HashMap<String, u64>,
    send_errors: u64,
    disconnects: u64,
}

/// The server's metrics, with the middle of the time it took to get them.
fn scrape_timed(server: &http::Server) -> Option<(HashMap<String, f64>, Instant)> {
    let asked = Instant::now();
    let m = scrape_metrics(server)?;
    Some((m, asked + asked.elapsed() / 2))
}

/// Sums of the server's Prometheus counters by metric name (`GET /metrics`), if it has them.
fn scrape_metrics(server: &http::Server) -> Option<HashMap<String, f64>> {
    let r = http::request(server, "GET", "/metrics", &[], "").ok()?;
    if r.status != 200 {
        return None;
    }
    let mut out: HashMap<String, f64> = HashMap::new();
    for line in r.body.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = name.split('{').next().unwrap_or(name).trim();
        if let Ok(v) = value.trim().parse::<f64>() {
            *out.entry(name.to_string()).or_default() += v;
        }
    }
    Some(out)
}

/// Per-second rates of the server's media counters between two scrapes.
fn metric_rates(a: &HashMap<String, f64>, b: &HashMap<String, f64>, secs: f64) -> Value {
    let d = |k: &str| match (a.get(k), b.get(k)) {
        (Some(x), Some(y)) => Some(y - x),
        _ => None,
    };
    let rate = |k: &str| d(k).map(|v| v / secs);
    json!({
        "datagrams_out_per_s": rate("hearth_media_datagrams_out_total"),
        "datagrams_in_per_s": rate("hearth_media_datagrams_in_total"),
        "bytes_out_per_s": rate("hearth_media_bytes_out_total"),
        "frames_forwarded_per_s": rate("hearth_media_frames_forwarded_total"),
        "send_drops": d("hearth_media_send_drops_total"),
        "send_calls_per_s": rate("hearth_media_send_calls_total"),
        "gso_datagrams_per_s": rate("hearth_media_gso_datagrams_total"),
        "queue_drops": d("hearth_media_queue_drops_total"),
        "queue_skips": d("hearth_media_queue_skips_total"),
        "refused_full": d("hearth_media_refused_full_total"),
        "telemetry_dropped": d("hearth_telemetry_dropped_total"),
    })
}

pub struct Reporter {
    start: Instant,
    every: Duration,
    next: Instant,
    clk: u64,
    server_pid: Option<u32>,
    last: Option<Baseline>,
    window: Option<Baseline>,
    /// The server's metrics at the window's start, and when they were read.
    window_metrics: Option<(HashMap<String, f64>, Instant)>,
    args: Args,
}

fn pct(lost: u64, expected: u64) -> f64 {
    if expected == 0 {
        0.0
    } else {
        100.0 * lost as f64 / expected as f64
    }
}

impl Reporter {
    pub fn new(args: &Args, start: Instant) -> Self {
        Reporter {
            start,
            every: Duration::from_secs(args.report_every.max(1)),
            next: Instant::now() + Duration::from_secs(args.report_every.max(1)),
            clk: stats::clock_ticks_per_sec(),
            server_pid: args.server_pid,
            last: None,
            window: None,
            window_metrics: None,
            args: args.clone(),
        }
    }

    fn baseline(&self, m: &Merged, sig: &Signaling, threads: bool) -> Baseline {
        Baseline {
            at: Instant::now(),
            subs: m.subs.clone(),
            pubs: m.pubs.clone(),
            server_ticks: self.server_pid.and_then(stats::process_ticks),
            server_rss_kib: self.server_pid.and_then(stats::rss_kib),
            server_threads: match (threads, self.server_pid) {
                (true, Some(pid)) => stats::thread_ticks(pid),
                _ => HashMap::new(),
            },
            server_run_delay: self
                .server_pid
                .map(stats::thread_run_delay)
                .unwrap_or_default(),
            self_run_delay: stats::thread_run_delay(std::process::id()),
            self_ticks: stats::process_ticks(std::process::id()).unwrap_or(0),
            server_udp: stats::udp_sockets(&sig.server_ports),
            local_udp: stats::udp_sockets(&sig.local_ports),
            busy_ns: m.busy_ns.clone(),
            snmp: stats::udp_snmp(),
            send_errors: m.send_errors,
            disconnects: m.disconnects,
        }
    }

    /// The period from `b` to now, as JSON.
    fn period(
        &self,
        b: &Baseline,
        now: &Baseline,
        m: &Merged,
        lat: &[Histogram; 2],
        late_max_us: u64,
    ) -> Value {
        let secs = now
            .at
            .saturating_duration_since(b.at)
            .as_secs_f64()
            .max(1e-3);
        let zero = SubCounters::default();
        let (mut pkts, mut exp, mut frames, mut fexp, mut dgrams, mut vframes) = (0, 0, 0, 0, 0, 0);
        let (mut nacks, mut plis, mut unstamped) = (0, 0, 0);
        let mut kbps: Vec<f64> = Vec::new();
        let (mut connected, mut receiving, mut dead) = (0, 0, 0);
        for (id, c) in &m.subs {
            let p = b.subs.get(id).unwrap_or(&zero);
            pkts += c.packets - p.packets;
            exp += c.packets_expected - p.packets_expected;
            frames += c.frames - p.frames;
            fexp += c.frames_expected - p.frames_expected;
            dgrams += c.datagrams - p.datagrams;
            vframes += c.video_frames - p.video_frames;
            nacks += c.nacks_sent.saturating_sub(p.nacks_sent);
            plis += c.plis_sent.saturating_sub(p.plis_sent);
            unstamped += c.unstamped - p.unstamped;
            connected += usize::from(c.connected && !c.dead);
            dead += usize::from(c.dead);
            receiving += usize::from(c.frames > p.frames);
            if c.connected && !c.dead {
                kbps.push((c.bytes - p.bytes) as f64 * 8.0 / secs / 1000.0);
            }
        }
        let zp = PubCounters::default();
        let (mut sent_v, mut sent_a, mut keys, mut pub_plis, mut pub_bytes) = (0, 0, 0, 0, 0);
        let mut pub_nacks = 0;
        let mut pubs_connected = 0;
        for (id, c) in &m.pubs {
            let p = b.pubs.get(id).unwrap_or(&zp);
            sent_v += c.video_frames - p.video_frames;
            sent_a += c.audio_frames - p.audio_frames;
            keys += c.keyframes - p.keyframes;
            pub_plis += c.plis_received - p.plis_received;
            pub_nacks += c.nacks_received.saturating_sub(p.nacks_received);
            pub_bytes += c.bytes - p.bytes;
            pubs_connected += usize::from(c.connected && !c.dead);
        }
        let kbps_mean = if kbps.is_empty() {
            0.0
        } else {
            kbps.iter().sum::<f64>() / kbps.len() as f64
        };
        let kbps_min = kbps.iter().copied().fold(f64::INFINITY, f64::min);
        let ms = |us: u64| us as f64 / 1000.0;
        let cpu = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => {
                Some(100.0 * (b.saturating_sub(a)) as f64 / self.clk as f64 / secs)
            }
            _ => None,
        };
        let snmp_delta = |k: &str| {
            now.snmp
                .get(k)
                .copied()
                .unwrap_or(0)
                .saturating_sub(b.snmp.get(k).copied().unwrap_or(0))
        };
        json!({
            "seconds": secs,
            "publishers_connected": pubs_connected,
            "subscribers_connected": connected,
            "subscribers_receiving": receiving,
            "subscribers_dead": dead,
            "sent_video_fps": sent_v as f64 / secs,
            "sent_audio_fps": sent_a as f64 / secs,
            "sent_kbps": pub_bytes as f64 * 8.0 / secs / 1000.0,
            "keyframes_sent": keys,
            "plis_received_by_publishers": pub_plis,
            "nacks_received_by_publishers": pub_nacks,
            "rx_rtp_packets_per_s": pkts as f64 / secs,
            "rx_datagrams_per_s": dgrams as f64 / secs,
            "rx_frames_per_s": frames as f64 / secs,
            "rx_video_frames_per_s": vframes as f64 / secs,
            "rx_rtp_packets": pkts,
            "rx_rtp_packets_expected": exp,
            "packet_loss_pct": pct(exp.saturating_sub(pkts), exp),
            "frame_loss_pct": pct(fexp.saturating_sub(frames), fexp),
            "nacks_sent": nacks,
            "plis_sent": plis,
            "unstamped_frames": unstamped,
            "kbps_per_subscriber_mean": kbps_mean,
            "kbps_per_subscriber_min": if kbps.is_empty() { 0.0 } else { kbps_min },
            "latency_video_ms": {
                "p50": ms(lat[0].quantile(0.5)),
                "p99": ms(lat[0].quantile(0.99)),
                "max": ms(lat[0].max()),
                "samples": lat[0].count(),
            },
            "latency_audio_ms": {
                "p50": ms(lat[1].quantile(0.5)),
                "p99": ms(lat[1].quantile(0.99)),
                "max": ms(lat[1].max()),
                "samples": lat[1].count(),
            },
            "server_cpu_pct": cpu(b.server_ticks, now.server_ticks),
            "server_rss_mib": now.server_rss_kib.map(|k| k as f64 / 1024.0),
            "server_runqueue_wait_pct": self
                .server_pid
                .map(|_| stats::max_wait_pct(&b.server_run_delay, &now.server_run_delay, secs)),
            "loadgen_runqueue_wait_pct": stats::max_wait_pct(&b.self_run_delay, &now.self_run_delay, secs),
            "loadgen_late_wakeup_max_ms": late_max_us as f64 / 1000.0,
            "loadgen_cpu_pct": cpu(Some(b.self_ticks), Some(now.self_ticks)),
            "server_udp_drops": now.server_udp.drops.saturating_sub(b.server_udp.drops),
            "server_udp_rx_queue_bytes": now.server_udp.rx_queue,
            "loadgen_udp_drops": now.local_udp.drops.saturating_sub(b.local_udp.drops),
            "loadgen_udp_rx_queue_bytes": now.local_udp.rx_queue,
            "loadgen_driver_busy_pct": now
                .busy_ns
                .iter()
                .zip(b.busy_ns.iter().chain(std::iter::repeat(&0)))
                .map(|(n, o)| 100.0 * n.saturating_sub(*o) as f64 / 1e9 / secs)
                .collect::<Vec<f64>>(),
            "host_udp_rcvbuf_errors": snmp_delta("RcvbufErrors"),
            "host_udp_sndbuf_errors": snmp_delta("SndbufErrors"),
            "send_errors": now.send_errors.saturating_sub(b.send_errors),
            "disconnects": now.disconnects.saturating_sub(b.disconnects),
        })
    }

    fn print(&self, label: &str, p: &Value, sig: &Signaling) {
        let f = |k: &str| p[k].as_f64().unwrap_or(0.0);
        let u = |k: &str| p[k].as_u64().unwrap_or(0);
        let busy: Vec<String> = p["loadgen_driver_busy_pct"]
            .as_array()
            .map(|v| {
                v.iter()
                    .map(|x| format!("{:.0}%", x.as_f64().unwrap_or(0.0)))
                    .collect()
            })
            .unwrap_or_default();
        let busy = busy.join("/");
        let cpu = match p["server_cpu_pct"].as_f64() {
            Some(c) => format!("{c:.0}%"),
            None => "-".into(),
        };
        eprintln!(
            "[{label} {:>5.1}s] pubs {}/{} subs {}/{} (recv {}, dead {}, failed {}) | rx {:.0} pkt/s {:.0} fr/s | loss pkt {:.2}% fr {:.2}% nack {} (upstream {}) | {:.0} kbps/sub (min {:.0}) | video lat p50 {:.1} p99 {:.1} max {:.1} ms | cpu server {} loadgen {:.0}% (busy {}) | udp drops srv {} lg {} | runq wait srv {} lg {:.0}% | lg late wakeup {:.0} ms | server rss {:.0} MiB",
            self.start.elapsed().as_secs_f64(),
            u("publishers_connected"),
            self.args.publishers,
            u("subscribers_connected"),
            self.args.subscribers,
            u("subscribers_receiving"),
            u("subscribers_dead"),
            sig.failures,
            f("rx_rtp_packets_per_s"),
            f("rx_frames_per_s"),
            f("packet_loss_pct"),
            f("frame_loss_pct"),
            u("nacks_sent"),
            u("nacks_received_by_publishers"),
            f("kbps_per_subscriber_mean"),
            f("kbps_per_subscriber_min"),
            p["latency_video_ms"]["p50"].as_f64().unwrap_or(0.0),
            p["latency_video_ms"]["p99"].as_f64().unwrap_or(0.0),
            p["latency_video_ms"]["max"].as_f64().unwrap_or(0.0),
            cpu,
            f("loadgen_cpu_pct"),
            busy,
            u("server_udp_drops"),
            u("loadgen_udp_drops"),
            match p["server_runqueue_wait_pct"].as_f64() {
                Some(w) => format!("{w:.0}%"),
                None => "-".into(),
            },
            f("loadgen_runqueue_wait_pct"),
            f("loadgen_late_wakeup_max_ms"),
            f("server_rss_mib"),
        );
    }

    /// A progress report when one is due.
    pub fn tick(&mut self, drivers: &[DriverHandle], sig: &Signaling, in_window: bool) {
        let now = Instant::now();
        if now < self.next {
            return;
        }
        self.next = now + self.every;
        let m = gather(drivers, true);
        let cur = self.baseline(&m, sig, false);
        if let Some(last) = &self.last {
            let p = self.period(last, &cur, &m, &m.lat_interval, m.late_max_interval_us);
            self.print(if in_window { "run" } else { "setup" }, &p, sig);
        }
        self.last = Some(cur);
    }

    /// Waits until every signaled publisher (or subscriber) is connected, or `limit`.
    pub fn wait_connected(
        &mut self,
        drivers: &[DriverHandle],
        sig: &Signaling,
        publishers: bool,
        limit: Duration,
    ) {
        let until = Instant::now() + limit;
        let want = if publishers {
            sig.publishers_ok
        } else {
            sig.subscribers_ok
        };
        loop {
            let m = gather(drivers, false);
            let have = if publishers {
                m.pubs.values().filter(|c| c.connected).count()
            } else {
                m.subs.values().filter(|c| c.connected).count()
            };
            if have >= want {
                return;
            }
            if Instant::now() >= until {
                eprintln!(
                    "loadgen: only {have} of {want} {} connected after {limit:?}",
                    if publishers {
                        "publishers"
                    } else {
                        "subscribers"
                    }
                );
                return;
            }
            self.tick(drivers, sig, false);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn open_window(&mut self, drivers: &[DriverHandle], sig: &Signaling) {
        for d in drivers {
            let mut s = d.shared.lock().unwrap_or_else(|p| p.into_inner());
            for h in &mut s.latency_window {
                h.clear();
            }
            s.late_max_window_us = 0;
        }
        // The server's metrics first: their request may take a while on a busy server, and the
        // counters and the time they are taken at must go together (rates were overstated by
        // the time of that request before).
        self.window_metrics = scrape_timed(&sig.server);
        let m = gather(drivers, false);
        self.window = Some(self.baseline(&m, sig, true));
        eprintln!("loadgen: measuring for {} s", self.args.duration);
    }

    pub fn close_window(&mut self, drivers: &[DriverHandle], sig: &Signaling) -> Value {
        let m = gather(drivers, false);
        let cur = self.baseline(&m, sig, true);
        let metrics = scrape_timed(&sig.server);
        let Some(b) = self.window.take() else {
            return Value::Null;
        };
        let p = self.period(&b, &cur, &m, &m.lat_window, m.late_max_window_us);
        self.print("total", &p, sig);
        let secs = cur
            .at
            .saturating_duration_since(b.at)
            .as_secs_f64()
            .max(1e-3);
        // Server CPU by thread name (threads sharing a name, like tokio's workers, are summed).
        let mut by_name: HashMap<String, f64> = HashMap::new();
        for (tid, (name, t1)) in &cur.server_threads {
            let t0 = b.server_threads.get(tid).map_or(0, |x| x.1);
            *by_name.entry(name.clone()).or_default() +=
                100.0 * t1.saturating_sub(t0) as f64 / self.clk as f64 / secs;
        }
        let mut threads: Vec<(String, f64)> =
            by_name.into_iter().filter(|(_, c)| *c >= 0.5).collect();
        threads.sort_by(|a, b| b.1.total_cmp(&a.1));
        if !threads.is_empty() {
            let list: Vec<String> = threads
                .iter()
                .map(|(n, c)| format!("{n} {c:.0}%"))
                .collect();
            eprintln!("loadgen: server threads: {}", list.join(", "));
        }
        let server_metrics = match (&self.window_metrics, &metrics) {
            (Some((a, ta)), Some((z, tz))) => {
                let secs = tz.saturating_duration_since(*ta).as_secs_f64().max(1e-3);
                metric_rates(a, z, secs)
            }
            _ => Value::Null,
        };
        if let Some(out) = server_metrics["datagrams_out_per_s"].as_f64() {
            eprintln!(
                "loadgen: server says: {out:.0} datagrams/s out, {:.0} in, {:.0} frames forwarded/s, {} send drops",
                server_metrics["datagrams_in_per_s"].as_f64().unwrap_or(0.0),
                server_metrics["frames_forwarded_per_s"].as_f64().unwrap_or(0.0),
                server_metrics["send_drops"].as_f64().unwrap_or(0.0),
            );
        }
        let health = http::request(&sig.server, "GET", "/healthz", &[], "")
            .ok()
            .and_then(|r| serde_json::from_str::<Value>(&r.body).ok())
            .unwrap_or(Value::Null);
        json!({
            "config": {
                "url": self.args.url,
                "room": self.args.room,
                "publishers": self.args.publishers,
                "subscribers": self.args.subscribers,
                "video_kbps": self.args.video_kbps,
                "audio": !self.args.no_audio,
                "duration_s": self.args.duration,
                "threads": self.args.threads,
                "ramp_per_s": self.args.ramp,
            },
            "signaling_failures": sig.failures,
            "signaling_errors": sig.errors,
            "window": p,
            "server_metrics": server_metrics,
            "server_threads_cpu_pct": threads.iter().map(|(n, c)| json!({"thread": n, "cpu_pct": c})).collect::<Vec<_>>(),
            "server_health": health,
        })
    }
}
