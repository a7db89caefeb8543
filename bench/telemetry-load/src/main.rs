//! Telemetry store benchmark (not a test). Generates call telemetry the way the recorder
//! writes it (call and session lifecycle one call at a time, events and quality samples in
//! batches of at most 512 rows, one transaction each) into a `SqliteStore` on a file, then:
//!
//! 1. writer throughput: rows/s inside `append_quality` / `append_events`, and overall;
//! 2. p50/p99 latency of the store queries behind `DescribeCallDetailInfo`
//!    (`sessions_of_call`, first page of 6, then `quality` for those users × all 13 metrics
//!    over ≤ 1 h) and `DescribeUserEvent` (`user_events` of one user over one call);
//! 3. disk bytes per user-hour (database + WAL after a TRUNCATE checkpoint).
//!
//! Shape: `--users` users in rooms of 4–10, each room holding calls of 30–90 min back to back
//! (all members join at the start and leave at the end). Every `--seconds-between-samples`
//! each user emits 7 upstream metrics (aBit aLoss bigvBit bigvLoss bigvEncFps bigvWidth
//! bigvHeight, as `sfu::worker::quality` does) and 7 downstream metrics (bigvDecFps instead
//! of bigvEncFps) per remote user, up to `--downstream-peers` of them. Samples are written in
//! global time order (all rooms interleaved), as the live recorder sees them.

use anyhow::{Context, Result};
use clap::Parser;
use hearth_store::{
    CallRecord, EventQuery, EventRecord, LeaveReason, NewSession, QualityQuery, QualitySample,
    QualitySeries, SessionId, SessionQuery, SqliteStore, Store,
};
use hearth_types::{CommId, RoomKey, SdkAppId, UnixSecs, UserId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const APP: SdkAppId = SdkAppId(1_400_000_001);
/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600;
/// Rows per store append, as `telemetry::recorder::BATCH`.
const BATCH: usize = 512;
const UP: [&str; 7] = [
    "aBit",
    "aLoss",
    "bigvBit",
    "bigvLoss",
    "bigvEncFps",
    "bigvWidth",
    "bigvHeight",
];
const DOWN: [&str; 7] = [
    "aBit",
    "aLoss",
    "bigvBit",
    "bigvLoss",
    "bigvDecFps",
    "bigvWidth",
    "bigvHeight",
];
/// DescribeCallDetailInfo's DataType list.
use hearth_types::QUALITY_METRICS as METRICS;
/// The SQL of `hearth-store` (crates/store/src/sqlite/{quality,telemetry,calls}.rs), for
/// EXPLAIN only.
const KEYS_SQL: &str =
    "SELECT key, user_id FROM quality_keys WHERE comm_id = ?2 AND sdk_app_id = ?1
             ORDER BY key";
const BLOCKS_SQL: &str = "SELECT body FROM quality_blocks WHERE id = ?1";
const RECENT_SQL: &str =
    "SELECT span, body FROM quality_recent WHERE key = ?1 AND span BETWEEN ?2 AND ?3
         ORDER BY span, id";
const EVENTS_SQL: &str =
    "SELECT sdk_app_id, comm_id, user_id, time_ms, event_id, param_one, param_two FROM events
     WHERE comm_id = ?2 AND user_id = ?3 AND time_ms BETWEEN ?4 AND ?5 AND sdk_app_id = ?1
     ORDER BY time_ms, id";
const SESSIONS_SQL: &str = "SELECT s.id, s.comm_id, s.sdk_app_id, c.room_kind, c.room_string,
        s.user_id, s.joined_at, s.left_at, s.leave_reason, s.device_type, s.sdk_version, s.client_ip
    FROM sessions s JOIN calls c ON c.sdk_app_id = s.sdk_app_id AND c.comm_id = s.comm_id
    WHERE +s.sdk_app_id = ?1 AND s.comm_id = ?2
        AND s.joined_at <= ?4 AND (s.left_at IS NULL OR s.left_at >= ?3)
        AND (?5 OR s.user_id IN (SELECT value FROM json_each(?6)))
    ORDER BY s.joined_at, s.id LIMIT ?7 OFFSET ?8";
/// `finish_open_calls`' session update (crates/store/src/sqlite/calls.rs), run at start-up.
const FINISH_OPEN_SQL: &str =
    "UPDATE sessions SET leave_reason = ?2, left_at = min(?1, max(joined_at,
            coalesce((SELECT max(e.time_ms) / 1000 FROM events e
                      WHERE e.comm_id = sessions.comm_id AND e.user_id = sessions.user_id), 0),
            coalesce((SELECT k.last_seen FROM quality_keys k
                      WHERE k.comm_id = sessions.comm_id AND k.user_id = sessions.user_id
                        AND k.sdk_app_id = sessions.sdk_app_id), 0)))
         WHERE left_at IS NULL";

#[derive(Parser, Debug)]
#[command(about = "Telemetry store benchmark: writer rows/s, query p50/p99, bytes per user-hour")]
struct Args {
    /// Days of history to generate (fractions allowed).
    #[arg(long, default_value_t = 14.0)]
    days: f64,
    /// Concurrent users (all in calls all the time).
    #[arg(long, default_value_t = 1000)]
    users: usize,
    /// Seconds between two quality samples of one user (the server samples every 2 s).
    #[arg(long, default_value_t = 2)]
    seconds_between_samples: i64,
    /// Remote users each user gets downstream samples for (9 = all in rooms of ≤ 10).
    #[arg(long, default_value_t = 9)]
    downstream_peers: usize,
    #[arg(long, default_value_t = 4)]
    room_min: usize,
    #[arg(long, default_value_t = 10)]
    room_max: usize,
    /// Random calls (and users) each query is timed on.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Database file (default: a temporary directory, deleted at exit).
    #[arg(long)]
    db: Option<PathBuf>,
    /// Scale the disk and row figures are extrapolated to (days, users).
    #[arg(long, default_value_t = 14.0)]
    target_days: f64,
    #[arg(long, default_value_t = 1000)]
    target_users: usize,
    /// Days of history written first, at `--history-seconds-between-samples`, so that the
    /// store holds that many days of calls (the same number of blocks per user-hour as full
    /// density, smaller ones) before the measured `--days` at full density.
    #[arg(long, default_value_t = 0.0)]
    history_days: f64,
    #[arg(long, default_value_t = 60)]
    history_seconds_between_samples: i64,
    /// How sample values are drawn.
    #[arg(long, value_enum, default_value_t = Values::Level)]
    values: Values,
    /// Also print one JSON object.
    #[arg(long)]
    json: bool,
}

struct Call {
    comm_id: CommId,
    start: i64,
    end: i64,
    sessions: Vec<SessionId>,
    /// Next time (s) each member toggles its microphone.
    next_toggle: Vec<i64>,
    muted: Vec<bool>,
}

struct Room {
    key: RoomKey,
    users: Vec<UserId>,
    call: Option<Call>,
}

struct Done {
    comm_id: CommId,
    start: i64,
    end: i64,
    users: Vec<UserId>,
}

#[derive(Default)]
struct Writer {
    quality: Vec<QualitySample>,
    events: Vec<EventRecord>,
    quality_rows: u64,
    event_rows: u64,
    quality_batches: u64,
    event_batches: u64,
    quality_time: Duration,
    event_time: Duration,
    lifecycle_ops: u64,
    lifecycle_time: Duration,
    max_batch: Duration,
}

impl Writer {
    fn sample(&mut self, store: &SqliteStore, s: QualitySample) -> Result<()> {
        self.quality.push(s);
        if self.quality.len() >= BATCH {
            self.flush_quality(store)?;
        }
        Ok(())
    }

    fn event(&mut self, store: &SqliteStore, e: EventRecord) -> Result<()> {
        self.events.push(e);
        if self.events.len() >= BATCH {
            self.flush_events(store)?;
        }
        Ok(())
    }

    fn flush_quality(&mut self, store: &SqliteStore) -> Result<()> {
        if self.quality.is_empty() {
            return Ok(());
        }
        let t = Instant::now();
        store.append_quality(&self.quality)?;
        let d = t.elapsed();
        self.quality_time += d;
        self.max_batch = self.max_batch.max(d);
        self.quality_rows += self.quality.len() as u64;
        self.quality_batches += 1;
        self.quality.clear();
        Ok(())
    }

    fn flush_events(&mut self, store: &SqliteStore) -> Result<()> {
        if self.events.is_empty() {
            return Ok(());
        }
        let t = Instant::now();
        store.append_events(&self.events)?;
        let d = t.elapsed();
        self.event_time += d;
        self.max_batch = self.max_batch.max(d);
        self.event_rows += self.events.len() as u64;
        self.event_batches += 1;
        self.events.clear();
        Ok(())
    }

    fn lifecycle<T>(&mut self, f: impl FnOnce() -> hearth_store::StoreResult<T>) -> Result<T> {
        let t = Instant::now();
        let r = f()?;
        self.lifecycle_time += t.elapsed();
        self.lifecycle_ops += 1;
        Ok(r)
    }
}

fn ev(comm_id: &CommId, user: &UserId, time_ms: i64, event_id: u32) -> EventRecord {
    EventRecord {
        sdk_app_id: APP,
        comm_id: comm_id.clone(),
        user_id: user.clone(),
        time_ms,
        event_id,
        param_one: -1,
        param_two: -1,
    }
}

/// How sample values are drawn.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Values {
    /// Each series keeps a level (the stream's bitrate, frame rate) and varies around it by
    /// what a 2 s window of a live stream varies: bitrates ±10–15 %, frame rate ±1; loss is
    /// RTCP's fraction lost (k/256, in percent, as the server computes it), 0 nine times in
    /// ten.
    Level,
    /// Every sample independent and uniform over the whole range (the worst case for
    /// compression).
    Uniform,
}

/// A stable level in `[lo, hi)` for one series (`seed` names it).
fn level(seed: u64, lo: u64, hi: u64) -> u64 {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5851_f42d_4c95_7f2d;
    x ^= x >> 29;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 32;
    lo + x % (hi - lo)
}

fn sample_value(rng: &mut StdRng, values: Values, metric: &str, seed: u64) -> f64 {
    match values {
        Values::Uniform => metric_value(rng, metric),
        Values::Level => match metric {
            "aBit" => {
                let l = level(seed, 24_000, 64_000) as f64;
                (l * rng.gen_range(0.9..1.1)).round()
            }
            "bigvBit" => {
                let l = level(seed, 300_000, 2_500_000) as f64;
                (l * rng.gen_range(0.85..1.15)).round()
            }
            "aLoss" | "bigvLoss" => {
                if rng.gen_bool(0.9) {
                    0.0
                } else {
                    f64::from(rng.gen_range(1u8..40)) / 256.0 * 100.0
                }
            }
            "bigvEncFps" | "bigvDecFps" => {
                (level(seed, 0, 2) as f64 * 6.0 + 24.0 + rng.gen_range(-1.0f64..=1.0)).round()
            }
            _ => metric_value(rng, metric),
        },
    }
}

fn metric_value(rng: &mut StdRng, metric: &str) -> f64 {
    match metric {
        "aBit" => rng.gen_range(24_000..64_000) as f64,
        "bigvBit" => rng.gen_range(300_000..2_500_000) as f64,
        "aLoss" | "bigvLoss" => {
            if rng.gen_bool(0.9) {
                0.0
            } else {
                rng.gen_range(0.0..15.0)
            }
        }
        "bigvEncFps" | "bigvDecFps" => rng.gen_range(12..31) as f64,
        "bigvWidth" => 1280.0,
        "bigvHeight" => 720.0,
        _ => 0.0,
    }
}

fn start_call(
    store: &SqliteStore,
    w: &mut Writer,
    rng: &mut StdRng,
    room: &Room,
    t: i64,
    end_of_run: i64,
) -> Result<Call> {
    let comm_id = CommId::new(APP, &room.key, UnixSecs(t));
    let end = (t + rng.gen_range(30 * 60..=90 * 60)).min(end_of_run);
    w.lifecycle(|| {
        store.start_call(&CallRecord {
            comm_id: comm_id.clone(),
            sdk_app_id: APP,
            room: room.key.clone(),
            creator: room.users[0].0.clone(),
            created_at: UnixSecs(t),
            destroyed_at: None,
        })
    })?;
    let mut sessions = Vec::new();
    for (i, u) in room.users.iter().enumerate() {
        let id = w.lifecycle(|| {
            store.open_session(&NewSession {
                comm_id: comm_id.clone(),
                sdk_app_id: APP,
                user_id: u.clone(),
                joined_at: UnixSecs(t),
                device_type: "WHIP/WHEP".into(),
                sdk_version: "hearth-bench".into(),
                client_ip: format!("10.0.{}.{}", i, rng.gen_range(1..255)),
            })
        })?;
        sessions.push(id);
        let ms = t * 1000 + rng.gen_range(0..1000);
        // Entered, signalling and media up, audio and video on, then subscriptions.
        for (k, id) in [32788, 32791, 32793, 32769, 32768].into_iter().enumerate() {
            w.event(store, ev(&comm_id, u, ms + k as i64 * 50, id))?;
        }
        for k in 0..room.users.len() - 1 {
            w.event(store, ev(&comm_id, u, ms + 400 + k as i64 * 20, 32776))?;
            w.event(store, ev(&comm_id, u, ms + 410 + k as i64 * 20, 32777))?;
        }
    }
    let n = room.users.len();
    Ok(Call {
        comm_id,
        start: t,
        end,
        sessions,
        next_toggle: (0..n).map(|_| t + rng.gen_range(60..600)).collect(),
        muted: vec![false; n],
    })
}

fn end_call(
    store: &SqliteStore,
    w: &mut Writer,
    room: &Room,
    call: Call,
    t: i64,
    done: &mut Vec<Done>,
) -> Result<()> {
    for (u, id) in room.users.iter().zip(&call.sessions) {
        w.event(store, ev(&call.comm_id, u, t * 1000, 32789))?;
        w.lifecycle(|| store.close_session(*id, UnixSecs(t), LeaveReason::Normal))?;
    }
    w.lifecycle(|| store.finish_call(&call.comm_id, UnixSecs(t), LeaveReason::Normal))?;
    done.push(Done {
        comm_id: call.comm_id,
        start: call.start,
        end: t,
        users: room.users.clone(),
    });
    Ok(())
}

struct Generated {
    writer: Writer,
    wall: Duration,
    calls: Vec<Done>,
    /// Calls still going on at the end of the run (cut by the crash).
    open: Vec<Done>,
    history: Option<History>,
    user_hours: f64,
    full_rows_per_user_hour: f64,
    rooms: usize,
}

fn generate(store: &SqliteStore, path: &Path, args: &Args, rng: &mut StdRng) -> Result<Generated> {
    let mut rooms = Vec::new();
    let mut left = args.users;
    while left > 0 {
        let n = rng.gen_range(args.room_min..=args.room_max).min(left);
        let base = args.users - left;
        rooms.push(Room {
            key: RoomKey::Num(1000 + rooms.len() as u32),
            users: (base..base + n)
                .map(|i| UserId(format!("user_{i:05}")))
                .collect(),
            call: None,
        });
        left -= n;
    }
    // Rows per user-hour at full density (2 s, every remote user downstream).
    let full_per_tick: usize = rooms
        .iter()
        .map(|r| r.users.len() * 7 * r.users.len())
        .sum();
    let full_rows_per_user_hour = full_per_tick as f64 / args.users as f64 * 1800.0;

    let boundary = T0 + (args.history_days * 86_400.0) as i64;
    let end_of_run = boundary + (args.days * 86_400.0) as i64;
    let step = args.seconds_between_samples.max(1);
    let history_step = args.history_seconds_between_samples.max(1);
    let mut history = None;
    let mut w = Writer::default();
    let mut done = Vec::new();
    let began = Instant::now();
    let mut last_report = Instant::now();
    let mut t = T0;
    while t < end_of_run {
        if t >= boundary && history.is_none() {
            // History written: measure from here.
            w.flush_quality(store)?;
            w.flush_events(store)?;
            store.flush()?;
            history = Some(History {
                samples: w.quality_rows,
                calls: done.len(),
                seconds: began.elapsed().as_secs_f64(),
                bytes: file_len(path),
            });
            w = Writer::default();
            done.clear();
        }
        for room in rooms.iter_mut() {
            if room.call.as_ref().is_some_and(|c| t >= c.end) {
                let call = room.call.take().expect("checked");
                end_call(store, &mut w, room, call, t, &mut done)?;
            }
            if room.call.is_none() {
                // The next call starts within a minute of the last one's end.
                let start = t + rng.gen_range(0..60);
                if start >= end_of_run {
                    continue;
                }
                room.call = Some(start_call(store, &mut w, rng, room, start, end_of_run)?);
            }
            let call = room.call.as_mut().expect("set above");
            if t < call.start {
                continue;
            }
            let n = room.users.len();
            for i in 0..n {
                let u = &room.users[i];
                if t >= call.next_toggle[i] {
                    call.muted[i] = !call.muted[i];
                    let id = if call.muted[i] { 32771 } else { 32769 };
                    w.event(store, ev(&call.comm_id, u, t * 1000 + 500, id))?;
                    call.next_toggle[i] = t + rng.gen_range(60..600);
                }
                for (k, m) in UP.iter().enumerate() {
                    let seed = (call.start as u64) << 20 | (i as u64) << 12 | k as u64;
                    let value = sample_value(rng, args.values, m, seed);
                    w.sample(
                        store,
                        QualitySample {
                            sdk_app_id: APP,
                            comm_id: call.comm_id.clone(),
                            user_id: u.clone(),
                            peer: String::new(),
                            metric: (*m).to_owned(),
                            time: UnixSecs(t),
                            value,
                        },
                    )?;
                }
                for (j, peer) in room
                    .users
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .take(args.downstream_peers)
                {
                    for (k, m) in DOWN.iter().enumerate() {
                        let seed = (call.start as u64) << 20
                            | (i as u64) << 12
                            | (j as u64 + 1) << 4
                            | k as u64;
                        let value = sample_value(rng, args.values, m, seed);
                        w.sample(
                            store,
                            QualitySample {
                                sdk_app_id: APP,
                                comm_id: call.comm_id.clone(),
                                user_id: u.clone(),
                                peer: peer.0.clone(),
                                metric: (*m).to_owned(),
                                time: UnixSecs(t),
                                value,
                            },
                        )?;
                    }
                }
            }
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            last_report = Instant::now();
            eprintln!(
                "  {:.2} of {:.2} days, {} quality rows, {:.0} s",
                (t - T0) as f64 / 86_400.0,
                args.history_days + args.days,
                w.quality_rows,
                began.elapsed().as_secs_f64()
            );
        }
        t += if t < boundary {
            history_step.min(boundary - t)
        } else {
            step
        };
    }
    // The calls going on at the end stay open: the crash start-up below closes them.
    let mut open = Vec::new();
    for room in rooms.iter_mut() {
        if let Some(call) = room.call.take() {
            open.push(Done {
                comm_id: call.comm_id,
                start: call.start,
                end: end_of_run.max(call.start),
                users: room.users.clone(),
            });
        }
    }
    w.flush_quality(store)?;
    w.flush_events(store)?;
    let wall = began.elapsed();
    // Calls begun in the history (and still going at its end) are not queried.
    let measured = |c: &Done| c.start >= boundary;
    let user_hours = done
        .iter()
        .chain(&open)
        .map(|c| (c.end - c.start.max(boundary)).max(0) as f64 * c.users.len() as f64)
        .sum::<f64>()
        / 3600.0;
    done.retain(measured);
    Ok(Generated {
        writer: w,
        wall,
        calls: done,
        open,
        history,
        user_hours,
        full_rows_per_user_hour,
        rooms: rooms.len(),
    })
}

/// What the history phase wrote.
struct History {
    samples: u64,
    calls: usize,
    seconds: f64,
    /// Database bytes after it (checkpointed).
    bytes: u64,
}

struct Lat {
    samples_us: Vec<f64>,
    rows: u64,
}

impl Lat {
    fn new() -> Self {
        Lat {
            samples_us: Vec::new(),
            rows: 0,
        }
    }
    fn add(&mut self, d: Duration, rows: usize) {
        self.samples_us.push(d.as_secs_f64() * 1e6);
        self.rows += rows as u64;
    }
    fn pct(&self, p: f64) -> f64 {
        let mut v = self.samples_us.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return 0.0;
        }
        let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
        v[i]
    }
    fn rows_per_query(&self) -> f64 {
        self.rows as f64 / self.samples_us.len().max(1) as f64
    }
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "n": self.samples_us.len(),
            "p50_ms": self.pct(50.0) / 1000.0,
            "p99_ms": self.pct(99.0) / 1000.0,
            "max_ms": self.pct(100.0) / 1000.0,
            "rows_per_query": self.rows_per_query(),
        })
    }
}

struct Queries {
    sessions: Lat,
    sessions_again: Lat,
    quality: Lat,
    detail: Lat,
    unusual: Lat,
    events: Lat,
}

fn run_queries(store: &SqliteStore, calls: &[Done], n: usize, rng: &mut StdRng) -> Result<Queries> {
    let mut q = Queries {
        sessions: Lat::new(),
        sessions_again: Lat::new(),
        quality: Lat::new(),
        detail: Lat::new(),
        unusual: Lat::new(),
        events: Lat::new(),
    };
    let metrics: Vec<String> = METRICS.iter().map(|m| m.to_string()).collect();
    for _ in 0..n {
        let c = &calls[rng.gen_range(0..calls.len())];
        // DescribeCallDetailInfo: a window of ≤ 1 h inside the call, first page of 6 users.
        let start = c.start + rng.gen_range(0..=(c.end - c.start - 3600).max(0));
        let end = (start + 3600).min(c.end);
        let t = Instant::now();
        let page = store.sessions_of_call(&SessionQuery {
            sdk_app_id: APP,
            comm_id: c.comm_id.clone(),
            start: UnixSecs(start),
            end: UnixSecs(end),
            user_ids: vec![],
            offset: 0,
            limit: 6,
        })?;
        let t_sessions = t.elapsed();
        // The same query again at once: separates SQL from whatever the first call paid for.
        let t = Instant::now();
        let again = store.sessions_of_call(&SessionQuery {
            sdk_app_id: APP,
            comm_id: c.comm_id.clone(),
            start: UnixSecs(start),
            end: UnixSecs(end),
            user_ids: vec![],
            offset: 0,
            limit: 6,
        })?;
        q.sessions_again.add(t.elapsed(), again.items.len());
        let mut users: Vec<UserId> = Vec::new();
        for s in &page.items {
            if !users.contains(&s.user_id) {
                users.push(s.user_id.clone());
            }
        }
        let t2 = Instant::now();
        let samples = store.quality(&QualityQuery {
            sdk_app_id: APP,
            comm_id: c.comm_id.clone(),
            start: UnixSecs(start),
            end: UnixSecs(end),
            user_ids: users,
            metrics: metrics.clone(),
        })?;
        let t_quality = t2.elapsed();
        let n = points(&samples);
        q.sessions.add(t_sessions, page.items.len());
        q.quality.add(t_quality, n);
        q.detail.add(t_sessions + t_quality, n);

        // DescribeUnusualEvent: the loss series of every user of a random call, all of it.
        let c = &calls[rng.gen_range(0..calls.len())];
        let t = Instant::now();
        let loss = store.quality(&QualityQuery {
            sdk_app_id: APP,
            comm_id: c.comm_id.clone(),
            start: UnixSecs(c.start),
            end: UnixSecs(c.end),
            user_ids: vec![],
            metrics: vec!["aLoss".into(), "bigvLoss".into()],
        })?;
        q.unusual.add(t.elapsed(), points(&loss));

        // DescribeUserEvent: one user of another random call, over the whole call.
        let c = &calls[rng.gen_range(0..calls.len())];
        let user = c.users[rng.gen_range(0..c.users.len())].clone();
        let t = Instant::now();
        let events = store.user_events(&EventQuery {
            sdk_app_id: APP,
            comm_id: c.comm_id.clone(),
            user_id: user,
            start_ms: c.start * 1000,
            end_ms: c.end * 1000 + 999,
        })?;
        q.events.add(t.elapsed(), events.len());
    }
    Ok(q)
}

fn points(series: &[QualitySeries]) -> usize {
    series.iter().map(|s| s.points.len()).sum()
}

fn explain(path: &Path, calls: &[Done]) -> Result<Vec<(String, Vec<String>)>> {
    use rusqlite::{params, Connection, OpenFlags};
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let c = &calls[calls.len() / 2];
    let plan = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<Vec<String>> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        let rows = stmt.query_map(p, |r| r.get::<_, String>(3))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    };
    let (start, end) = (c.start, (c.start + 3600).min(c.end));
    Ok(vec![
        (
            "quality: keys".to_owned(),
            plan(KEYS_SQL, params![APP.0, c.comm_id.0])?,
        ),
        (
            "quality: blocks".to_owned(),
            plan(BLOCKS_SQL, params![(start / 300) << 32 | 1])?,
        ),
        (
            "quality: recent".to_owned(),
            plan(RECENT_SQL, params![1, start / 300, end / 300])?,
        ),
        (
            "user_events".to_owned(),
            plan(
                EVENTS_SQL,
                params![
                    APP.0,
                    c.comm_id.0,
                    c.users[0].0,
                    c.start * 1000,
                    c.end * 1000
                ],
            )?,
        ),
        (
            "sessions_of_call".to_owned(),
            plan(
                SESSIONS_SQL,
                params![APP.0, c.comm_id.0, start, end, true, "[]", 6, 0],
            )?,
        ),
        (
            "finish_open_calls (sessions)".to_owned(),
            plan(FINISH_OPEN_SQL, params![c.end, "server_shutdown"])?,
        ),
    ])
}

/// The recorder's queue (`telemetry::recorder::EVENT_QUEUE`).
const QUEUE: usize = 262_144;

/// What retention cost the live writer.
struct PurgeRun {
    purged: hearth_store::PurgeCounts,
    time: Duration,
    offered: u64,
    dropped: u64,
    max_append: Duration,
    /// Simulated time of the last live sample.
    until: i64,
}

/// Runs `purge_before(cutoff)` while the open calls keep sending full-density samples every
/// 2 s (simulated time running from `from` at wall-clock speed) into a bounded queue that a
/// writer thread drains in batches of 512, as the recorder does: counts what the queue drops.
fn purge_under_load(
    store: &SqliteStore,
    cutoff: i64,
    open: &[Done],
    from: i64,
) -> Result<PurgeRun> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc::{sync_channel, TrySendError};
    let stop = &AtomicBool::new(false);
    let (tx, rx) = sync_channel::<QualitySample>(QUEUE);
    std::thread::scope(|scope| -> Result<PurgeRun> {
        let producer = scope.spawn(move || {
            let mut rng = StdRng::seed_from_u64(7);
            let (mut offered, mut dropped) = (0u64, 0u64);
            let began = Instant::now();
            let mut tick = 0i64;
            // At least two ticks, then until the purge is over.
            while tick < 2 || !stop.load(Ordering::Relaxed) {
                let t = from + 2 * tick;
                for c in open {
                    for (i, u) in c.users.iter().enumerate() {
                        for (j, peer) in c.users.iter().enumerate() {
                            let (peer, metrics) = if i == j {
                                ("", UP)
                            } else {
                                (peer.as_str(), DOWN)
                            };
                            for m in metrics {
                                offered += 1;
                                let s = QualitySample {
                                    sdk_app_id: APP,
                                    comm_id: c.comm_id.clone(),
                                    user_id: u.clone(),
                                    peer: peer.to_owned(),
                                    metric: m.to_owned(),
                                    time: UnixSecs(t),
                                    value: metric_value(&mut rng, m),
                                };
                                if let Err(TrySendError::Full(_)) = tx.try_send(s) {
                                    dropped += 1;
                                }
                            }
                        }
                    }
                }
                tick += 1;
                let next = began + Duration::from_secs(2 * tick as u64);
                std::thread::sleep(next.saturating_duration_since(Instant::now()));
            }
            drop(tx);
            (offered, dropped, from + 2 * (tick - 1))
        });
        let writer = scope.spawn(move || -> Result<Duration> {
            let mut max = Duration::ZERO;
            let mut batch = Vec::with_capacity(BATCH);
            while let Ok(first) = rx.recv() {
                batch.push(first);
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(s) => batch.push(s),
                        Err(_) => break,
                    }
                }
                let t = Instant::now();
                store.append_quality(&batch)?;
                max = max.max(t.elapsed());
                batch.clear();
            }
            Ok(max)
        });
        let t = Instant::now();
        let purged = store.purge_before(UnixSecs(cutoff));
        let time = t.elapsed();
        stop.store(true, Ordering::Relaxed);
        let (offered, dropped, until) = producer.join().expect("producer");
        let max_append = writer.join().expect("writer")?;
        Ok(PurgeRun {
            purged: purged?,
            time,
            offered,
            dropped,
            max_append,
            until,
        })
    })
}

/// Where the bytes are: pages of each table (dbstat), free pages, and the quality blocks of
/// the spans written after `from` (the measured part): their bodies and samples.
struct Tables {
    pages: Vec<(String, u64)>,
    free: u64,
    blocks_bytes: u64,
    blocks_payload: u64,
    measured_payload: u64,
    measured_samples: u64,
}

fn tables(path: &Path, from: i64) -> Result<Tables> {
    use rusqlite::{Connection, OpenFlags};
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt = conn.prepare(
        "SELECT name, sum(pgsize), sum(payload) FROM dbstat GROUP BY name ORDER BY 2 DESC",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    let mut pages = Vec::new();
    let (mut blocks_bytes, mut blocks_payload) = (0, 0);
    for row in rows {
        let (name, size, payload) = row?;
        if name == "quality_blocks" {
            (blocks_bytes, blocks_payload) = (size as u64, payload as u64);
        }
        pages.push((name, size as u64));
    }
    let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let (measured_payload, measured_samples): (i64, i64) = conn.query_row(
        "SELECT coalesce(sum(length(body)), 0), coalesce(sum(samples), 0) FROM quality_blocks
         WHERE id >= ?1",
        [(from / 300) << 32],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(Tables {
        pages,
        free: (free * page) as u64,
        blocks_bytes,
        blocks_payload,
        measured_payload: measured_payload as u64,
        measured_samples: measured_samples as u64,
    })
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn main() -> Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.users > 0 && args.days > 0.0,
        "--users and --days must be > 0"
    );
    anyhow::ensure!(
        args.room_min >= 2 && args.room_min <= args.room_max,
        "need 2 <= --room-min <= --room-max"
    );
    let tmp;
    let path = match &args.db {
        Some(p) => {
            anyhow::ensure!(!p.exists(), "{} exists; give a new file", p.display());
            p.clone()
        }
        None => {
            tmp = tempfile::tempdir_in(std::env::var_os("TMPDIR").unwrap_or("/tmp".into()))?;
            tmp.path().join("hearth.db")
        }
    };
    let mut rng = StdRng::seed_from_u64(args.seed);
    let store = SqliteStore::open(&path).context("opening the store")?;
    eprintln!(
        "generating {} days × {} users, samples every {} s, ≤ {} downstream peers into {}",
        args.days,
        args.users,
        args.seconds_between_samples,
        args.downstream_peers,
        path.display()
    );
    let g = generate(&store, &path, &args, &mut rng)?;
    let t = Instant::now();
    store.flush()?;
    let checkpoint = t.elapsed();
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    let db_bytes = file_len(&path);
    let wal_bytes = file_len(&wal);
    let history_bytes = g.history.as_ref().map_or(0, |h| h.bytes);
    let tables = tables(&path, T0 + (args.history_days * 86_400.0) as i64)?;
    let bytes = (db_bytes + wal_bytes).saturating_sub(history_bytes);
    anyhow::ensure!(!g.calls.is_empty(), "no call generated after the history");

    eprintln!("timing {} query rounds", args.queries);
    // One untimed round first, so statements are prepared and cached.
    run_queries(&store, &g.calls, 5, &mut rng)?;
    let q = run_queries(&store, &g.calls, args.queries, &mut rng)?;
    let plans = explain(&path, &g.calls)?;
    // Retention: purge the calls that ended in the first half of the run (one writer
    // transaction per 256 calls inside the store).
    let cutoff = T0 + ((args.history_days + args.days) * 43_200.0) as i64;
    let end_of_run = T0 + ((args.history_days + args.days) * 86_400.0) as i64;
    eprintln!(
        "purging the first half while {} open calls keep writing",
        g.open.len()
    );
    let run = purge_under_load(&store, cutoff, &g.open, end_of_run)?;
    let (purged, purge_time) = (&run.purged, run.time);
    // A crash: the store goes away without a flush, mid-minute, with every user in a call.
    drop(store);
    let open_sessions: usize = g.open.iter().map(|c| c.users.len()).sum();
    let t = Instant::now();
    let store = SqliteStore::open(&path).context("reopening the store")?;
    let reopen = t.elapsed();
    let closed = store.finish_open_calls(UnixSecs(run.until + 60), LeaveReason::ServerShutdown)?;
    let crash = t.elapsed();
    let left_at_last_sample = g
        .open
        .iter()
        .filter_map(|c| {
            store
                .sessions_of_call(&SessionQuery {
                    sdk_app_id: APP,
                    comm_id: c.comm_id.clone(),
                    start: UnixSecs(0),
                    end: UnixSecs(i64::MAX),
                    user_ids: vec![],
                    offset: 0,
                    limit: 100,
                })
                .ok()
        })
        .flat_map(|p| p.items)
        .filter(|s| s.left_at == Some(UnixSecs(run.until)))
        .count();

    let w = &g.writer;
    let rows = w.quality_rows + w.event_rows;
    let append_time = (w.quality_time + w.event_time).as_secs_f64();
    let quality_rps = w.quality_rows as f64 / w.quality_time.as_secs_f64();
    let event_rps = w.event_rows as f64 / w.event_time.as_secs_f64().max(1e-9);
    let append_rps = rows as f64 / append_time;
    let store_time = append_time + w.lifecycle_time.as_secs_f64();
    let store_rps = rows as f64 / store_time;
    let wall_rps = rows as f64 / g.wall.as_secs_f64();
    let bytes_per_row = bytes as f64 / rows as f64;
    let bytes_per_user_hour = bytes as f64 / g.user_hours;
    let rows_per_user_hour = rows as f64 / g.user_hours;
    // Full density: 2 s, every remote user; events scale with calls, not with samples.
    let events_per_user_hour = w.event_rows as f64 / g.user_hours;
    let full_rows_per_user_hour = g.full_rows_per_user_hour + events_per_user_hour;
    let full_bytes_per_user_hour = full_rows_per_user_hour * bytes_per_row;
    let target_user_hours = args.target_days * 24.0 * args.target_users as f64;
    let target_rows = full_rows_per_user_hour * target_user_hours;
    let target_bytes = full_bytes_per_user_hour * target_user_hours;
    let full_rows_per_sec = full_rows_per_user_hour * args.target_users as f64 / 3600.0;

    let gib = |b: f64| b / (1u64 << 30) as f64;
    println!(
        "Generated: {} days × {} users in {} rooms ({} calls, {:.0} user-hours), samples every {} s, ≤ {} downstream peers, values {:?}",
        args.days, args.users, g.rooms, g.calls.len(), g.user_hours, args.seconds_between_samples, args.downstream_peers, args.values
    );
    if let Some(h) = &g.history {
        println!(
            "History first: {} days × {} users, samples every {} s: {} quality samples, {} calls, {:.0} s, DB {:.2} GiB; the figures below are for what came after it",
            args.history_days, args.users, args.history_seconds_between_samples, h.samples, h.calls, h.seconds, gib(h.bytes as f64)
        );
    }
    println!(
        "Rows: {} quality samples + {} events ({} + {} appends of ≤ {BATCH}), {} lifecycle calls; DB {:.2} GiB + WAL {} B after checkpoint ({:.1} s)",
        w.quality_rows, w.event_rows, w.quality_batches, w.event_batches, w.lifecycle_ops,
        gib(db_bytes as f64), wal_bytes, checkpoint.as_secs_f64()
    );
    println!();
    println!("| writer | value |");
    println!("|---|---:|");
    println!("| quality rows/s inside `append_quality` | {quality_rps:.0} |");
    println!("| event rows/s inside `append_events` | {event_rps:.0} |");
    println!(
        "| rows/s inside all store writes (appends + {} lifecycle calls) | {store_rps:.0} |",
        w.lifecycle_ops
    );
    println!("| rows/s wall (incl. generator) | {wall_rps:.0} |");
    println!(
        "| mean / max append (512 rows) ms | {:.2} / {:.1} |",
        append_time * 1000.0 / (w.quality_batches + w.event_batches) as f64,
        w.max_batch.as_secs_f64() * 1000.0
    );
    println!(
        "| full-density load of {} users (rows/s needed) | {full_rows_per_sec:.0} |",
        args.target_users
    );
    println!();
    println!(
        "| query ({} random calls/users) | p50 ms | p99 ms | max ms | rows/query |",
        args.queries
    );
    println!("|---|---:|---:|---:|---:|");
    for (name, l) in [
        ("`sessions_of_call` (page of 6)", &q.sessions),
        ("`sessions_of_call` repeated at once", &q.sessions_again),
        ("`quality` (6 users × 13 metrics, ≤ 1 h)", &q.quality),
        ("DescribeCallDetailInfo total (both)", &q.detail),
        (
            "`quality` aLoss + bigvLoss, all users, whole call (DescribeUnusualEvent)",
            &q.unusual,
        ),
        ("`user_events` (DescribeUserEvent, whole call)", &q.events),
    ] {
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} | {:.0} |",
            l.pct(50.0) / 1000.0,
            l.pct(99.0) / 1000.0,
            l.pct(100.0) / 1000.0,
            l.rows_per_query()
        );
    }
    println!();
    println!("| disk | value |");
    println!("|---|---:|");
    println!("| bytes per row (DB + WAL / all rows) | {bytes_per_row:.1} |");
    println!("| rows per user-hour generated | {rows_per_user_hour:.0} |");
    println!("| bytes per user-hour generated | {bytes_per_user_hour:.0} |");
    println!(
        "| rows per user-hour at full density (2 s, all peers) | {full_rows_per_user_hour:.0} |"
    );
    println!("| bytes per user-hour at full density | {full_bytes_per_user_hour:.0} |");
    let fill = tables.blocks_bytes as f64 / tables.blocks_payload.max(1) as f64;
    let per_sample = tables.measured_payload as f64 / tables.measured_samples.max(1) as f64;
    println!(
        "| quality blocks of the measured spans: bytes per sample (bodies; × {fill:.3} for pages) | {per_sample:.3} ({:.3}) |",
        per_sample * fill
    );
    println!(
        "| blocks bytes per user-hour at full density (pages included) | **{:.0}** |",
        per_sample * fill * g.full_rows_per_user_hour
    );
    println!(
        "| pages by table (whole file, history included): {}; free {:.1} MiB | |",
        tables
            .pages
            .iter()
            .take(6)
            .map(|(n, b)| format!("{n} {:.1} MiB", *b as f64 / 1048576.0))
            .collect::<Vec<_>>()
            .join(", "),
        tables.free as f64 / 1048576.0
    );
    println!(
        "| extrapolated: {} days × {} users at full density | {:.2e} rows, {:.0} GiB |",
        args.target_days,
        args.target_users,
        target_rows,
        gib(target_bytes)
    );
    println!(
        "| `purge_before` (first half: {} calls, {} samples, {} events) | {:.1} s, {:.0} samples/s |",
        purged.calls,
        purged.quality_samples,
        purged.events,
        purge_time.as_secs_f64(),
        (purged.quality_samples + purged.events) as f64 / purge_time.as_secs_f64()
    );
    println!(
        "| live samples offered to the queue ({QUEUE}) during the purge / dropped / max append | {} / **{}** / {:.1} ms |",
        run.offered,
        run.dropped,
        run.max_append.as_secs_f64() * 1000.0
    );
    println!(
        "| crash start-up: open + `finish_open_calls` ({} calls, {open_sessions} open sessions) | {:.0} ms + {:.0} ms = **{:.0} ms** |",
        closed,
        reopen.as_secs_f64() * 1000.0,
        (crash - reopen).as_secs_f64() * 1000.0,
        crash.as_secs_f64() * 1000.0
    );
    println!("| sessions closed at their last sample | {left_at_last_sample} of {open_sessions} |");
    println!();
    for (name, plan) in &plans {
        println!("Plan of `{name}`: {}", plan.join("; "));
    }
    if args.json {
        let j = serde_json::json!({
            "days": args.days,
            "users": args.users,
            "seconds_between_samples": args.seconds_between_samples,
            "downstream_peers": args.downstream_peers,
            "rooms": g.rooms,
            "calls": g.calls.len(),
            "user_hours": g.user_hours,
            "quality_rows": w.quality_rows,
            "event_rows": w.event_rows,
            "lifecycle_ops": w.lifecycle_ops,
            "wall_s": g.wall.as_secs_f64(),
            "quality_rows_per_s": quality_rps,
            "event_rows_per_s": event_rps,
            "append_rows_per_s": append_rps,
            "store_rows_per_s": store_rps,
            "wall_rows_per_s": wall_rps,
            "max_append_ms": w.max_batch.as_secs_f64() * 1000.0,
            "db_bytes": db_bytes,
            "wal_bytes": wal_bytes,
            "bytes_per_row": bytes_per_row,
            "bytes_per_user_hour": bytes_per_user_hour,
            "full_rows_per_user_hour": full_rows_per_user_hour,
            "full_bytes_per_user_hour": full_bytes_per_user_hour,
            "target_rows": target_rows,
            "target_bytes": target_bytes,
            "full_rows_per_s_needed": full_rows_per_sec,
            "sessions_of_call": q.sessions.json(),
            "sessions_of_call_repeated": q.sessions_again.json(),
            "quality": q.quality.json(),
            "call_detail_total": q.detail.json(),
            "unusual": q.unusual.json(),
            "purge_live": {"offered": run.offered, "dropped": run.dropped,
                           "max_append_ms": run.max_append.as_secs_f64() * 1000.0},
            "crash_startup": {"open_sessions": open_sessions, "calls_closed": closed,
                              "open_ms": reopen.as_secs_f64() * 1000.0,
                              "total_ms": crash.as_secs_f64() * 1000.0,
                              "closed_at_last_sample": left_at_last_sample},
            "user_events": q.events.json(),
            "purge": {"calls": purged.calls, "quality_samples": purged.quality_samples,
                      "events": purged.events, "seconds": purge_time.as_secs_f64()},
            "plans": plans.iter().map(|(n, p)| serde_json::json!({"query": n, "plan": p})).collect::<Vec<_>>(),
        });
        println!("{j}");
    }
    Ok(())
}
