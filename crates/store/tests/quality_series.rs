//! Quality series round-trips through the store: every value, time and gap comes back exactly,
//! whether the minute is still being written, folded into a block, folded late, or read after
//! a restart; compared with the answer of a plain list of samples.

use hearth_store::{CallRecord, QualityQuery, QualitySample, QualitySeries, SqliteStore, Store};
use hearth_types::{CommId, RoomKey, SdkAppId, UnixSecs, UserId};

const APP: SdkAppId = SdkAppId(1_400_000_001);

/// A small deterministic generator (xorshift64*), so failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn call(store: &SqliteStore, room: u32, created: i64) -> CallRecord {
    let c = CallRecord {
        comm_id: CommId(format!("comm-{room}-{created}")),
        sdk_app_id: APP,
        room: RoomKey::Num(room),
        creator: "u0".into(),
        created_at: UnixSecs(created),
        destroyed_at: None,
    };
    store.start_call(&c).unwrap();
    c
}

const METRICS: &[&str] = &[
    "aBit",
    "aLoss",
    "bigvBit",
    "bigvLoss",
    "bigvEncFps",
    "bigvWidth",
];

fn value(rng: &mut Rng, metric: &str) -> f64 {
    match metric {
        "aBit" => (24_000 + rng.below(40_000)) as f64,
        "bigvBit" => (rng.below(2_500_000)) as f64,
        "aLoss" | "bigvLoss" => match rng.below(10) {
            0 => rng.below(1_000_000) as f64 / 65_536.0,
            1 => -0.0,
            2 => f64::INFINITY,
            _ => 0.0,
        },
        "bigvEncFps" => (12 + rng.below(19)) as f64,
        _ => 1280.0,
    }
}

/// Samples of `users` every ~2 s over `[from, from + secs)`: each user is away for a while
/// (leaves and comes back), some seconds hold two samples, and some samples are NaN.
fn generate(
    rng: &mut Rng,
    call: &CallRecord,
    users: usize,
    from: i64,
    secs: i64,
) -> Vec<QualitySample> {
    let mut out = Vec::new();
    let away: Vec<(i64, i64)> = (0..users)
        .map(|_| {
            let a = from + rng.below(secs as u64) as i64;
            (a, a + 30 + rng.below(200) as i64)
        })
        .collect();
    let mut t = from;
    while t < from + secs {
        for (u, gone) in away.iter().enumerate() {
            if (gone.0..gone.1).contains(&t) {
                continue;
            }
            for p in 0..users {
                let peer = if p == u {
                    String::new()
                } else {
                    format!("u{p}")
                };
                for m in METRICS {
                    let repeat = if rng.below(50) == 0 { 2 } else { 1 };
                    for _ in 0..repeat {
                        let v = if rng.below(200) == 0 {
                            f64::NAN
                        } else {
                            value(rng, m)
                        };
                        out.push(QualitySample {
                            sdk_app_id: APP,
                            comm_id: call.comm_id.clone(),
                            user_id: UserId(format!("u{u}")),
                            peer: peer.clone(),
                            metric: (*m).to_owned(),
                            time: UnixSecs(t + rng.below(2) as i64),
                            value: v,
                        });
                    }
                }
            }
        }
        t += 2;
    }
    out
}

/// What the store must answer, from the plain list of everything appended (in order).
fn expected(all: &[QualitySample], q: &QualityQuery) -> Vec<QualitySeries> {
    let mut users: Vec<UserId> = Vec::new();
    for s in all
        .iter()
        .filter(|s| s.comm_id == q.comm_id && !s.value.is_nan())
    {
        if !users.contains(&s.user_id) {
            users.push(s.user_id.clone());
        }
    }
    let mut out = Vec::new();
    for u in users {
        if !q.user_ids.is_empty() && !q.user_ids.contains(&u) {
            continue;
        }
        let mut series: std::collections::BTreeMap<(String, String), Vec<(UnixSecs, f64)>> =
            Default::default();
        for s in all {
            if s.comm_id != q.comm_id
                || s.user_id != u
                || s.value.is_nan()
                || s.time.0 < q.start.0
                || s.time.0 > q.end.0
                || !(q.metrics.is_empty() || q.metrics.contains(&s.metric))
            {
                continue;
            }
            series
                .entry((s.peer.clone(), s.metric.clone()))
                .or_default()
                .push((s.time, s.value));
        }
        for ((peer, metric), mut points) in series {
            points.sort_by_key(|p| p.0 .0); // stable: same second keeps append order
            out.push(QualitySeries {
                user_id: u.clone(),
                peer,
                metric,
                points,
            });
        }
    }
    out
}

/// Bit-for-bit equality (so -0.0 and 0.0 differ, and infinities compare).
fn same(a: &[QualitySeries], b: &[QualitySeries]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.user_id == y.user_id
                && x.peer == y.peer
                && x.metric == y.metric
                && x.points.len() == y.points.len()
                && x.points
                    .iter()
                    .zip(&y.points)
                    .all(|(p, q)| p.0 == q.0 && p.1.to_bits() == q.1.to_bits())
        })
}

fn queries(rng: &mut Rng, call: &CallRecord, from: i64, secs: i64) -> Vec<QualityQuery> {
    let mut out = vec![QualityQuery {
        sdk_app_id: APP,
        comm_id: call.comm_id.clone(),
        start: UnixSecs(from - 100),
        end: UnixSecs(from + secs + 100),
        user_ids: vec![],
        metrics: vec![],
    }];
    for _ in 0..40 {
        let a = from - 10 + rng.below(secs as u64 + 20) as i64;
        let b = a + rng.below(400) as i64;
        let users = (0..rng.below(3))
            .map(|_| UserId(format!("u{}", rng.below(5))))
            .collect();
        let metrics = (0..rng.below(3))
            .map(|_| METRICS[rng.below(METRICS.len() as u64) as usize].to_owned())
            .collect();
        out.push(QualityQuery {
            sdk_app_id: APP,
            comm_id: call.comm_id.clone(),
            start: UnixSecs(a),
            end: UnixSecs(b),
            user_ids: users,
            metrics,
        });
    }
    out
}

fn check(store: &SqliteStore, all: &[QualitySample], qs: &[QualityQuery], when: &str) {
    for q in qs {
        let got = store.quality(q).unwrap();
        let want = expected(all, q);
        assert!(
            same(&got, &want),
            "{when}: query {}..{} users {:?} metrics {:?}: got {} series / {} points, want {} / {}",
            q.start.0,
            q.end.0,
            q.user_ids.iter().map(|u| u.as_str()).collect::<Vec<_>>(),
            q.metrics,
            got.len(),
            got.iter().map(|s| s.points.len()).sum::<usize>(),
            want.len(),
            want.iter().map(|s| s.points.len()).sum::<usize>(),
        );
    }
}

/// Appends in batches of up to 512, as the recorder does.
fn append(store: &SqliteStore, samples: &[QualitySample]) {
    for batch in samples.chunks(512) {
        store.append_quality(batch).unwrap();
    }
}

#[test]
fn old_minutes_come_back_exactly_from_blocks() {
    let store = SqliteStore::open_in_memory().unwrap();
    let mut rng = Rng(0x5eed);
    let from = 1_790_000_017; // past: every finished minute is folded as it is written
    let c = call(&store, 1, from);
    let other = call(&store, 2, from);
    let mut all = generate(&mut rng, &c, 4, from, 900);
    all.extend(generate(&mut rng, &other, 2, from, 120));
    append(&store, &all);
    let qs = queries(&mut rng, &c, from, 900);
    check(&store, &all, &qs, "appended");
    // Late samples of minutes already folded go into their blocks, after what is there.
    let late = generate(&mut rng, &c, 4, from + 60, 120);
    append(&store, &late);
    all.extend(late);
    check(&store, &all, &qs, "late samples");
    store.flush().unwrap();
    check(&store, &all, &qs, "flushed");
}

#[test]
fn the_minutes_being_written_are_read_at_once_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hearth.db");
    let mut rng = Rng(42);
    // Now-ish: the last minutes stay in the recent table until they are over.
    let from = UnixSecs::now().0 - 200;
    let (c, all, qs) = {
        let store = SqliteStore::open(&path).unwrap();
        let c = call(&store, 7, from);
        let all = generate(&mut rng, &c, 3, from, 200);
        let mut written = Vec::new();
        let qs = queries(&mut rng, &c, from, 200);
        // Every batch is readable as soon as it is appended.
        for batch in all.chunks(700) {
            store.append_quality(batch).unwrap();
            written.extend_from_slice(batch);
            check(&store, &written, &qs[..1], "while writing");
        }
        check(&store, &all, &qs, "written");
        (c, all, qs)
        // dropped without flush: as after a crash
    };
    let store = SqliteStore::open(&path).unwrap();
    check(&store, &all, &qs, "reopened");
    let more = generate(&mut rng, &c, 3, from + 200, 10);
    append(&store, &more);
    let mut all = all;
    all.extend(more);
    store.flush().unwrap();
    check(&store, &all, &qs, "flushed");
    drop(store);
    let store = SqliteStore::open(&path).unwrap();
    check(&store, &all, &qs, "reopened after flush");
}

#[test]
fn a_query_of_nothing_is_empty() {
    let store = SqliteStore::open_in_memory().unwrap();
    let c = call(&store, 3, 1_790_000_000);
    let q = QualityQuery {
        sdk_app_id: APP,
        comm_id: c.comm_id.clone(),
        start: UnixSecs(1_790_000_000),
        end: UnixSecs(1_790_000_100),
        user_ids: vec![],
        metrics: vec![],
    };
    assert!(store.quality(&q).unwrap().is_empty());
    store
        .append_quality(&[QualitySample {
            sdk_app_id: APP,
            comm_id: c.comm_id.clone(),
            user_id: UserId("a".into()),
            peer: String::new(),
            metric: "aBit".into(),
            time: UnixSecs(1_790_000_050),
            value: 1.0,
        }])
        .unwrap();
    let reversed = QualityQuery {
        start: UnixSecs(1_790_000_100),
        end: UnixSecs(1_790_000_000),
        ..q.clone()
    };
    assert!(store.quality(&reversed).unwrap().is_empty());
    let other_app = QualityQuery {
        sdk_app_id: SdkAppId(1_400_000_002),
        ..q.clone()
    };
    assert!(store.quality(&other_app).unwrap().is_empty());
    assert_eq!(store.quality(&q).unwrap().len(), 1);
}
