//! Quality series in SQLite. One row per user per call in `quality_keys` (with the time of
//! its newest sample, for crash recovery); one compressed block per user-minute in
//! `quality_blocks`, its id packing (key, minute); and the minutes still being written in
//! `quality_recent`, one small plain body per append and user-minute, folded into a block once
//! the minute is over. Readers take both. Also the one-time move of the old row-per-sample
//! table into blocks.

use crate::quality_body::{self, Series};
use crate::{QualityQuery, QualitySample, QualitySeries, StoreResult};
use hearth_types::{UnixSecs, UserId};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use std::collections::{BTreeSet, HashMap};

/// Cached user keys before the cache starts over (it refills from the table).
const KEY_CACHE: usize = 65_536;
/// User-minutes folded into blocks per append at most, so an append stays short.
const FOLD_PER_APPEND: usize = 64;
/// Minutes since 1970 a block id can hold (the low 32 bits): until the year 10,000 and more.
const MINUTES: i64 = 1 << 32;
/// Old-format calls moved per transaction while migrating.
const LEGACY_CALLS_PER_TX: usize = 16;

/// The writer's memory of the quality tables: user keys it has seen, and the user-minutes
/// with rows in `quality_recent` still to fold. Changed only after a commit, so a failed
/// append leaves it true.
#[derive(Default)]
pub(super) struct QualityState {
    keys: HashMap<(u32, String, String), i64>,
    pending: BTreeSet<(i64, i64)>,
    newest: i64,
}

impl QualityState {
    pub(super) fn load(conn: &Connection) -> StoreResult<Self> {
        let mut st = QualityState::default();
        let mut stmt = conn.prepare("SELECT DISTINCT minute, key FROM quality_recent")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        for row in rows {
            let (minute, key): (i64, i64) = row?;
            st.newest = st.newest.max(minute);
            st.pending.insert((minute, key));
        }
        Ok(st)
    }

    /// Forgets cached keys (after a purge deleted some).
    pub(super) fn forget_keys(&mut self) {
        self.keys.clear();
    }
}

fn block_id(key: i64, minute: i64) -> i64 {
    (key << 32) | minute
}

/// The UTC minute of a time, if a block id can hold it.
fn minute_of(t: i64) -> Option<i64> {
    let m = t.div_euclid(60);
    (0..MINUTES).contains(&m).then_some(m)
}

/// One append's samples, by user-minute, with what the writer state must learn on commit.
struct Groups {
    by_minute: HashMap<(i64, i64), Vec<Series>>,
    new_keys: Vec<((u32, String, String), i64)>,
    last_seen: HashMap<i64, i64>,
}

/// Sorts samples into user-minutes, creating user keys as needed.
fn group(tx: &Transaction, st: &QualityState, samples: &[QualitySample]) -> StoreResult<Groups> {
    let mut local: HashMap<(u32, &str, &str), i64> = HashMap::new();
    let mut index: HashMap<(i64, i64, &str, &str), usize> = HashMap::new();
    let mut g = Groups {
        by_minute: HashMap::new(),
        new_keys: Vec::new(),
        last_seen: HashMap::new(),
    };
    for s in samples {
        if s.value.is_nan() {
            // A sample without a value says nothing.
            tracing::debug!(metric = %s.metric, "dropping NaN quality sample");
            continue;
        }
        let Some(minute) = minute_of(s.time.0) else {
            tracing::debug!(time = s.time.0, "dropping quality sample out of range");
            continue;
        };
        let id = (s.sdk_app_id.0, s.comm_id.as_str(), s.user_id.as_str());
        let key = match local.get(&id) {
            Some(&k) => k,
            None => {
                let owned = (id.0, id.1.to_owned(), id.2.to_owned());
                let k = match st.keys.get(&owned) {
                    Some(&k) => k,
                    None => {
                        let k = create_key(tx, &owned, s.time.0)?;
                        g.new_keys.push((owned, k));
                        k
                    }
                };
                local.insert(id, k);
                k
            }
        };
        let seen = g.last_seen.entry(key).or_insert(s.time.0);
        *seen = (*seen).max(s.time.0);
        let series = g.by_minute.entry((minute, key)).or_default();
        let i = *index
            .entry((minute, key, s.peer.as_str(), s.metric.as_str()))
            .or_insert_with(|| {
                series.push(Series {
                    peer: s.peer.clone(),
                    metric: s.metric.clone(),
                    points: Vec::new(),
                });
                series.len() - 1
            });
        series[i].points.push((s.time.0, s.value));
    }
    Ok(g)
}

fn create_key(tx: &Transaction, id: &(u32, String, String), time: i64) -> StoreResult<i64> {
    tx.prepare_cached(
        "INSERT INTO quality_keys (sdk_app_id, comm_id, user_id, last_seen) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (comm_id, user_id, sdk_app_id) DO NOTHING",
    )?
    .execute(params![id.0, id.1, id.2, time])?;
    Ok(tx
        .prepare_cached(
            "SELECT key FROM quality_keys WHERE comm_id = ?2 AND user_id = ?3 AND sdk_app_id = ?1",
        )?
        .query_row(params![id.0, id.1, id.2], |r| r.get(0))?)
}

fn note_last_seen(tx: &Transaction, g: &Groups) -> StoreResult<()> {
    let mut stmt =
        tx.prepare_cached("UPDATE quality_keys SET last_seen = max(last_seen, ?2) WHERE key = ?1")?;
    for (key, t) in &g.last_seen {
        stmt.execute(params![key, t])?;
    }
    Ok(())
}

/// Appends samples (one transaction) and folds finished minutes into blocks.
pub(super) fn append(
    conn: &mut Connection,
    st: &mut QualityState,
    samples: &[QualitySample],
    now: UnixSecs,
) -> StoreResult<()> {
    if samples.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction()?;
    let g = group(&tx, st, samples)?;
    note_last_seen(&tx, &g)?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO quality_recent (key, minute, samples, body) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for ((minute, key), series) in &g.by_minute {
            let n: usize = series.iter().map(|s| s.points.len()).sum();
            let body = quality_body::encode(*minute, series, false);
            stmt.execute(params![key, minute, n as i64, body])?;
        }
    }
    let newest = g.by_minute.keys().map(|k| k.0).fold(st.newest, i64::max);
    // A minute is folded once the next one is over too (late samples of a folded minute are
    // folded into its block later).
    let cutoff = newest.max(now.0.div_euclid(60)) - 1;
    let mut folds: Vec<(i64, i64)> = st
        .pending
        .range(..(cutoff, i64::MIN))
        .take(FOLD_PER_APPEND)
        .copied()
        .collect();
    for k in g.by_minute.keys() {
        if k.0 < cutoff && folds.len() < FOLD_PER_APPEND && !folds.contains(k) {
            folds.push(*k);
        }
    }
    for &(minute, key) in &folds {
        fold(&tx, key, minute)?;
    }
    tx.commit()?;
    if st.keys.len() + g.new_keys.len() > KEY_CACHE {
        st.keys.clear();
    }
    st.keys.extend(g.new_keys);
    st.pending.extend(g.by_minute.into_keys());
    for f in &folds {
        st.pending.remove(f);
    }
    st.newest = newest;
    Ok(())
}

/// Folds every pending minute (at shutdown), in transactions of a bounded size.
pub(super) fn fold_all(conn: &mut Connection, st: &mut QualityState) -> StoreResult<()> {
    while !st.pending.is_empty() {
        let batch: Vec<(i64, i64)> = st.pending.iter().take(FOLD_PER_APPEND).copied().collect();
        let tx = conn.transaction()?;
        for &(minute, key) in &batch {
            fold(&tx, key, minute)?;
        }
        tx.commit()?;
        for b in &batch {
            st.pending.remove(b);
        }
    }
    Ok(())
}

/// Moves one user-minute from `quality_recent` into its block.
fn fold(tx: &Transaction, key: i64, minute: i64) -> StoreResult<()> {
    let mut series = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT body FROM quality_recent WHERE key = ?1 AND minute = ?2 ORDER BY id",
        )?;
        let mut rows = stmt.query(params![key, minute])?;
        while let Some(r) = rows.next()? {
            let body: Vec<u8> = r.get(0)?;
            quality_body::merge(&mut series, quality_body::decode(&body, minute, |_| true)?);
        }
    }
    if series.is_empty() {
        return Ok(());
    }
    add_to_block(tx, key, minute, series)?;
    tx.prepare_cached("DELETE FROM quality_recent WHERE key = ?1 AND minute = ?2")?
        .execute(params![key, minute])?;
    Ok(())
}

/// Writes `series` into the block of (key, minute), after what the block already holds.
fn add_to_block(tx: &Transaction, key: i64, minute: i64, series: Vec<Series>) -> StoreResult<()> {
    let id = block_id(key, minute);
    let old: Option<Vec<u8>> = tx
        .prepare_cached("SELECT body FROM quality_blocks WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let mut all = match old {
        Some(body) => quality_body::decode(&body, minute, |_| true)?,
        None => Vec::new(),
    };
    quality_body::merge(&mut all, series);
    let mut n = 0;
    for s in &mut all {
        s.sort();
        n += s.points.len();
    }
    let body = quality_body::encode(minute, &all, true);
    tx.prepare_cached(
        "INSERT OR REPLACE INTO quality_blocks (id, samples, body) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![id, n as i64, body])?;
    Ok(())
}

/// The series of a call in `[start, end]`, by user (key order), then peer and metric.
pub(super) fn quality(conn: &Connection, q: &QualityQuery) -> StoreResult<Vec<QualitySeries>> {
    if q.end.0 < q.start.0 {
        return Ok(Vec::new());
    }
    let keys: Vec<(i64, String)> = {
        let mut stmt = conn.prepare_cached(
            "SELECT key, user_id FROM quality_keys WHERE comm_id = ?2 AND sdk_app_id = ?1
             ORDER BY key",
        )?;
        let rows = stmt.query_map(params![q.sdk_app_id.0, q.comm_id.as_str()], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let first = q.start.0.div_euclid(60).clamp(0, MINUTES - 1);
    let last = q.end.0.div_euclid(60).clamp(0, MINUTES - 1);
    let want = |m: &str| q.metrics.is_empty() || q.metrics.iter().any(|x| x == m);
    let mut out = Vec::new();
    let mut blocks = conn.prepare_cached(
        "SELECT id, body FROM quality_blocks WHERE id BETWEEN ?1 AND ?2 ORDER BY id",
    )?;
    let mut recent = conn.prepare_cached(
        "SELECT minute, body FROM quality_recent WHERE key = ?1 AND minute BETWEEN ?2 AND ?3
         ORDER BY minute, id",
    )?;
    for (key, user) in keys {
        if !q.user_ids.is_empty() && !q.user_ids.iter().any(|u| u.as_str() == user) {
            continue;
        }
        let mut acc: Vec<Series> = Vec::new();
        let mut rows = blocks.query(params![block_id(key, first), block_id(key, last)])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let body = blob(r.get_ref(1)?)?;
            quality_body::merge(
                &mut acc,
                quality_body::decode(body, id & (MINUTES - 1), want)?,
            );
        }
        let mut rows = recent.query(params![key, first, last])?;
        while let Some(r) = rows.next()? {
            let minute: i64 = r.get(0)?;
            let body = blob(r.get_ref(1)?)?;
            quality_body::merge(&mut acc, quality_body::decode(body, minute, want)?);
        }
        acc.sort_by(|a, b| (&a.peer, &a.metric).cmp(&(&b.peer, &b.metric)));
        for mut s in acc {
            s.points.retain(|p| (q.start.0..=q.end.0).contains(&p.0));
            s.sort();
            if s.points.is_empty() {
                continue;
            }
            out.push(QualitySeries {
                user_id: UserId(user.clone()),
                peer: s.peer,
                metric: s.metric,
                points: s
                    .points
                    .into_iter()
                    .map(|(t, v)| (UnixSecs(t), v))
                    .collect(),
            });
        }
    }
    Ok(out)
}

fn blob(v: rusqlite::types::ValueRef<'_>) -> StoreResult<&[u8]> {
    v.as_blob()
        .map_err(|e| crate::StoreError::Corrupt(format!("quality block body: {e}")))
}

/// Deletes the series of one call; returns how many samples went.
pub(super) fn purge_call(tx: &Transaction, app: i64, comm_id: &str) -> StoreResult<u64> {
    let keys: Vec<i64> = {
        let mut stmt = tx.prepare_cached(
            "SELECT key FROM quality_keys WHERE comm_id = ?2 AND sdk_app_id = ?1",
        )?;
        let rows = stmt.query_map(params![app, comm_id], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut samples = 0i64;
    for key in keys {
        let (lo, hi) = (block_id(key, 0), block_id(key, MINUTES - 1));
        samples += tx
            .prepare_cached(
                "SELECT coalesce(sum(samples), 0) FROM quality_blocks WHERE id BETWEEN ?1 AND ?2",
            )?
            .query_row([lo, hi], |r| r.get::<_, i64>(0))?;
        samples += tx
            .prepare_cached("SELECT coalesce(sum(samples), 0) FROM quality_recent WHERE key = ?1")?
            .query_row([key], |r| r.get::<_, i64>(0))?;
        tx.prepare_cached("DELETE FROM quality_blocks WHERE id BETWEEN ?1 AND ?2")?
            .execute([lo, hi])?;
        tx.prepare_cached("DELETE FROM quality_recent WHERE key = ?1")?
            .execute([key])?;
        tx.prepare_cached("DELETE FROM quality_keys WHERE key = ?1")?
            .execute([key])?;
    }
    Ok(samples as u64)
}

/// Moves the samples of the old one-row-per-sample table (schema 3 and before) into blocks,
/// a few calls per transaction, then drops the table. A crash in between resumes where it
/// stopped: a call's rows go in the same transaction that writes its blocks.
pub(super) fn move_legacy_samples(conn: &mut Connection, st: &mut QualityState) -> StoreResult<()> {
    let exists: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'quality_samples'",
        [],
        |r| r.get(0),
    )?;
    if !exists {
        return Ok(());
    }
    let total: i64 = conn.query_row("SELECT count(*) FROM quality_samples", [], |r| r.get(0))?;
    tracing::info!(samples = total, "moving quality samples into blocks");
    let mut moved = 0i64;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let calls: Vec<(i64, String)> = {
            let mut stmt =
                tx.prepare("SELECT DISTINCT sdk_app_id, comm_id FROM quality_samples LIMIT ?1")?;
            let rows =
                stmt.query_map([LEGACY_CALLS_PER_TX as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>()?
        };
        if calls.is_empty() {
            tx.execute_batch("DROP TABLE quality_samples")?;
            tx.commit()?;
            break;
        }
        let mut new_keys = Vec::new();
        for (app, comm_id) in &calls {
            let samples = legacy_rows(&tx, *app, comm_id)?;
            moved += samples.len() as i64;
            let g = group(&tx, st, &samples)?;
            note_last_seen(&tx, &g)?;
            for ((minute, key), series) in g.by_minute {
                add_to_block(&tx, key, minute, series)?;
            }
            new_keys.extend(g.new_keys);
            tx.prepare("DELETE FROM quality_samples WHERE comm_id = ?2 AND sdk_app_id = ?1")?
                .execute(params![app, comm_id])?;
        }
        tx.commit()?;
        st.keys.extend(new_keys);
        if st.keys.len() > KEY_CACHE {
            st.keys.clear();
        }
        tracing::info!(moved, total, "quality samples moved");
    }
    tracing::info!(
        moved,
        "quality samples moved into blocks; old table dropped"
    );
    Ok(())
}

fn legacy_rows(tx: &Transaction, app: i64, comm_id: &str) -> StoreResult<Vec<QualitySample>> {
    let mut stmt = tx.prepare(
        "SELECT sdk_app_id, comm_id, user_id, peer, metric, time, value FROM quality_samples
         WHERE comm_id = ?2 AND sdk_app_id = ?1 ORDER BY id",
    )?;
    let mut rows = stmt.query(params![app, comm_id])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(QualitySample {
            sdk_app_id: super::codec::app_from_column(r.get(0)?)?,
            comm_id: hearth_types::CommId(r.get(1)?),
            user_id: UserId(r.get(2)?),
            peer: r.get(3)?,
            metric: r.get(4)?,
            time: UnixSecs(r.get(5)?),
            value: r.get(6)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::{schema, SqliteStore};
    use crate::{LeaveReason, QualityQuery, SessionQuery, Store};
    use hearth_types::{CommId, SdkAppId, UnixSecs, UserId};
    use rusqlite::{params, Connection};
    use std::collections::BTreeMap;

    type Answer = BTreeMap<(String, String, String), Vec<(i64, u64)>>;

    /// The schema-3 query, verbatim, grouped per series as the API did.
    fn old_answer(conn: &Connection, comm: &str, start: i64, end: i64, metrics: &[&str]) -> Answer {
        let mut stmt = conn
            .prepare(
                "SELECT sdk_app_id, comm_id, user_id, peer, metric, time, value FROM quality_samples
                 WHERE comm_id = ?2 AND time BETWEEN ?3 AND ?4 AND sdk_app_id = ?1
                   AND (?5 OR user_id IN (SELECT value FROM json_each(?6)))
                   AND (?7 OR metric IN (SELECT value FROM json_each(?8)))
                 ORDER BY time, id",
            )
            .unwrap();
        let mut rows = stmt
            .query(params![
                1,
                comm,
                start,
                end,
                true,
                "[]",
                metrics.is_empty(),
                serde_json::to_string(metrics).unwrap()
            ])
            .unwrap();
        let mut out = Answer::new();
        while let Some(r) = rows.next().unwrap() {
            let key = (r.get(2).unwrap(), r.get(3).unwrap(), r.get(4).unwrap());
            let v: f64 = r.get(6).unwrap();
            out.entry(key)
                .or_default()
                .push((r.get(5).unwrap(), v.to_bits()));
        }
        out
    }

    fn new_answer(
        store: &SqliteStore,
        comm: &str,
        start: i64,
        end: i64,
        metrics: &[&str],
    ) -> Answer {
        store
            .quality(&QualityQuery {
                sdk_app_id: SdkAppId(1),
                comm_id: CommId(comm.into()),
                start: UnixSecs(start),
                end: UnixSecs(end),
                user_ids: vec![],
                metrics: metrics.iter().map(|m| m.to_string()).collect(),
            })
            .unwrap()
            .into_iter()
            .map(|s| {
                (
                    (s.user_id.0, s.peer, s.metric),
                    s.points
                        .into_iter()
                        .map(|(t, v)| (t.0, v.to_bits()))
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn a_schema_3_data_dir_is_moved_into_blocks_and_answers_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hearth.db");
        let base = 1_790_000_000i64;
        let windows = [
            (base, base + 4_000, vec![]),
            (base + 61, base + 179, vec!["aBit", "bigvLoss"]),
            (base + 1_000, base + 1_000, vec![]),
            (base + 3_000, base + 9_000, vec!["aLoss"]),
        ];
        let calls = ["c1", "c2", "c3"];
        let mut before = Vec::new();
        {
            let mut conn = Connection::open(&path).unwrap();
            schema::migrate_to(&mut conn, 3).unwrap();
            let tx = conn.transaction().unwrap();
            let mut x = 7u64;
            for (i, comm) in calls.iter().enumerate() {
                let open = i == 2; // cut off by a crash
                tx.execute(
                    "INSERT INTO calls (sdk_app_id, comm_id, room_kind, room_string, creator,
                       created_at, destroyed_at) VALUES (1, ?1, 'num', ?2, 'u0', ?3, ?4)",
                    params![comm, i.to_string(), base, (!open).then_some(base + 3_600)],
                )
                .unwrap();
                for u in 0..4 {
                    tx.execute(
                        "INSERT INTO sessions (comm_id, sdk_app_id, user_id, joined_at, left_at,
                           leave_reason, device_type, sdk_version, client_ip)
                         VALUES (?1, 1, ?2, ?3, ?4, ?5, 'web', '1', '192.0.2.1')",
                        params![
                            comm,
                            format!("u{u}"),
                            base,
                            (!open).then_some(base + 3_600),
                            (!open).then_some("normal")
                        ],
                    )
                    .unwrap();
                }
                // Two hours every 2 s, user 3 away for 10 minutes, some seconds twice.
                for step in 0..1_800i64 {
                    let t = base + 2 * step;
                    for u in 0..4 {
                        if u == 3 && (600..900).contains(&step) {
                            continue;
                        }
                        for (peer, metric) in [("", "aBit"), ("", "aLoss"), ("u9", "bigvLoss")] {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            let v = match metric {
                                "aBit" => (x % 40_000) as f64,
                                _ if x.is_multiple_of(7) => (x % 1_000) as f64 / 3.0,
                                _ => 0.0,
                            };
                            let times = if x.is_multiple_of(97) { 2 } else { 1 };
                            for _ in 0..times {
                                tx.execute(
                                    "INSERT INTO quality_samples
                                       (sdk_app_id, comm_id, user_id, peer, metric, time, value)
                                     VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6)",
                                    params![comm, format!("u{u}"), peer, metric, t, v],
                                )
                                .unwrap();
                            }
                        }
                    }
                }
            }
            tx.commit().unwrap();
            for comm in calls {
                for (a, b, m) in &windows {
                    before.push(old_answer(&conn, comm, *a, *b, m));
                }
            }
            assert!(before
                .iter()
                .any(|a| a.values().map(Vec::len).sum::<usize>() > 20_000));
        }
        let store = SqliteStore::open(&path).unwrap();
        let mut after = Vec::new();
        for comm in calls {
            for (a, b, m) in &windows {
                after.push(new_answer(&store, comm, *a, *b, m));
            }
        }
        assert_eq!(before, after);
        store
            .pool
            .read(|c| {
                let gone: bool = c.query_row(
                    "SELECT count(*) = 0 FROM sqlite_master WHERE name = 'quality_samples'",
                    [],
                    |r| r.get(0),
                )?;
                assert!(gone, "the old table is dropped");
                Ok(())
            })
            .unwrap();
        // The open call's sessions close at their last sample (3,598 s in), not at start-up.
        assert_eq!(
            store
                .finish_open_calls(UnixSecs(base + 10_000), LeaveReason::ServerShutdown)
                .unwrap(),
            1
        );
        let sessions = store
            .sessions_of_call(&SessionQuery {
                sdk_app_id: SdkAppId(1),
                comm_id: CommId("c3".into()),
                start: UnixSecs(0),
                end: UnixSecs(i64::MAX),
                user_ids: vec![UserId("u3".into())],
                offset: 0,
                limit: 10,
            })
            .unwrap();
        assert_eq!(sessions.items[0].left_at, Some(UnixSecs(base + 3_598)));
        // Opening again finds nothing left to move.
        drop(store);
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(new_answer(&store, "c1", base, base + 4_000, &[]), before[0]);
    }
}
