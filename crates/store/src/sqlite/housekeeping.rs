//! Reports and upkeep: daily scale (rooms, users, entries per UTC day), scale per bucket of
//! time (the monitoring dashboards), retention purges and WAL checkpoints.

use crate::{PurgeCounts, ScaleBucket, ScaleDay, StoreResult};
use hearth_types::{SdkAppId, UnixSecs};
use rusqlite::{params, Connection, TransactionBehavior};
use std::collections::{BTreeMap, HashMap, HashSet};

const DAY: i64 = 86_400;
/// Upper bound on the days one call or session is counted in; longer lifetimes are bad data
/// and must not turn a report into an endless loop.
const MAX_DAYS_PER_ITEM: i64 = 3_660;

/// Start of the UTC day holding `s`; saturates instead of overflowing at the far past.
fn day_start(s: i64) -> i64 {
    s.div_euclid(DAY).saturating_mul(DAY)
}

#[derive(Default)]
struct DayTally {
    rooms: u64,
    users: HashSet<u32>,
    entries: u64,
}

/// The UTC days (their starts) that `[start, end]` touches, clipped to `[first, last]`.
fn days(start: i64, end: i64, first: i64, last: i64) -> impl Iterator<Item = i64> {
    let from = day_start(start).max(first);
    let to = day_start(end.max(start)).min(last);
    let cap = from.saturating_add(MAX_DAYS_PER_ITEM.saturating_mul(DAY));
    let to = to.min(cap);
    std::iter::successors(Some(from), |d| d.checked_add(DAY)).take_while(move |d| *d <= to)
}

/// Per UTC day in `[from.day_start(), to)` with any data: calls alive that day, distinct users
/// with a session overlapping it, and sessions begun in it; newest day first. Calls and
/// sessions still open count as alive until now (not on days still to come).
pub(super) fn daily_scale(
    conn: &mut Connection,
    app: SdkAppId,
    from: UnixSecs,
    to: UnixSecs,
    now: UnixSecs,
) -> StoreResult<Vec<ScaleDay>> {
    let first = day_start(from.0);
    if to.0 <= first {
        return Ok(Vec::new());
    }
    let last = day_start(to.0 - 1);
    let end = last.saturating_add(DAY);
    let mut tally: BTreeMap<i64, DayTally> = BTreeMap::new();
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "SELECT created_at, destroyed_at FROM calls
             WHERE sdk_app_id = ?1 AND created_at < ?3 AND (destroyed_at IS NULL OR destroyed_at >= ?2)",
        )?;
        let mut rows = stmt.query(params![app.0, first, end])?;
        while let Some(r) = rows.next()? {
            let created: i64 = r.get(0)?;
            let until = r.get::<_, Option<i64>>(1)?.unwrap_or(now.0.max(created));
            for d in days(created, until, first, last) {
                tally.entry(d).or_default().rooms += 1;
            }
        }
    }
    {
        let mut user_ids: HashMap<String, u32> = HashMap::new();
        let mut stmt = tx.prepare_cached(
            "SELECT user_id, joined_at, left_at FROM sessions
             WHERE sdk_app_id = ?1 AND joined_at < ?3 AND (left_at IS NULL OR left_at >= ?2)",
        )?;
        let mut rows = stmt.query(params![app.0, first, end])?;
        while let Some(r) = rows.next()? {
            let user: String = r.get(0)?;
            let joined: i64 = r.get(1)?;
            let until = r.get::<_, Option<i64>>(2)?.unwrap_or(now.0.max(joined));
            let next = u32::try_from(user_ids.len()).unwrap_or(u32::MAX);
            let user = *user_ids.entry(user).or_insert(next);
            for d in days(joined, until, first, last) {
                tally.entry(d).or_default().users.insert(user);
            }
            if joined >= first {
                tally.entry(day_start(joined)).or_default().entries += 1;
            }
        }
    }
    Ok(tally
        .into_iter()
        .rev()
        .map(|(d, t)| ScaleDay {
            day_start: UnixSecs(d),
            rooms: t.rooms,
            users: t.users.len() as u64,
            entries: t.entries,
        })
        .collect())
}

/// Buckets a report may have at most (a day of 10 s buckets is 8,640).
const MAX_BUCKETS: i64 = 20_000;

/// Scale per bucket of `step` seconds in `[from, to)`: see `Store::scale_buckets`. One pass over
/// the calls and sessions overlapping the range; concurrency by a sweep over their starts and
/// ends.
pub(super) fn scale_buckets(
    conn: &mut Connection,
    app: SdkAppId,
    room: Option<&str>,
    (from, to): (UnixSecs, UnixSecs),
    step: i64,
    now: UnixSecs,
) -> StoreResult<Vec<ScaleBucket>> {
    if step <= 0 || to.0 <= from.0 {
        return Ok(Vec::new());
    }
    let count = ((to.0 - from.0 + step - 1) / step).min(MAX_BUCKETS);
    let (first, end) = (from.0, from.0.saturating_add(count.saturating_mul(step)));
    let mut buckets: Vec<ScaleBucket> = (0..count)
        .map(|i| ScaleBucket {
            start: UnixSecs(first + i * step),
            online_users: 0,
            online_rooms: 0,
            peak_users: 0,
            peak_rooms: 0,
            users: 0,
            rooms: 0,
        })
        .collect();
    let tx = conn.transaction()?;
    // (start, end) of each call and (user, start, end) of each session; open ones are open in
    // the current second too (the bucket holding now counts them).
    let mut calls: Vec<(i64, i64)> = Vec::new();
    let mut sessions: Vec<(u32, i64, i64)> = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT created_at, destroyed_at FROM calls
             WHERE sdk_app_id = ?1 AND created_at < ?3 AND (destroyed_at IS NULL OR destroyed_at >= ?2)
               AND (?4 IS NULL OR room_string = ?4)",
        )?;
        let mut rows = stmt.query(params![app.0, first, end, room])?;
        while let Some(r) = rows.next()? {
            let created: i64 = r.get(0)?;
            let until = r
                .get::<_, Option<i64>>(1)?
                .unwrap_or(now.0 + 1)
                .max(created);
            if until.max(created + 1) > first {
                calls.push((created, until));
            }
        }
    }
    {
        let mut user_ids: HashMap<String, u32> = HashMap::new();
        let mut stmt = tx.prepare_cached(
            "SELECT s.user_id, s.joined_at, s.left_at FROM sessions s
             WHERE s.sdk_app_id = ?1 AND s.joined_at < ?3 AND (s.left_at IS NULL OR s.left_at >= ?2)
               AND (?4 IS NULL OR s.comm_id IN (SELECT comm_id FROM calls
                                                WHERE sdk_app_id = ?1 AND room_string = ?4))",
        )?;
        let mut rows = stmt.query(params![app.0, first, end, room])?;
        while let Some(r) = rows.next()? {
            let user: String = r.get(0)?;
            let joined: i64 = r.get(1)?;
            let until = r.get::<_, Option<i64>>(2)?.unwrap_or(now.0 + 1).max(joined);
            if until.max(joined + 1) <= first {
                continue;
            }
            let next = u32::try_from(user_ids.len()).unwrap_or(u32::MAX);
            sessions.push((*user_ids.entry(user).or_insert(next), joined, until));
        }
    }
    drop(tx);
    // The buckets an item open on [start, until) touches (one second at least).
    let touched = |start: i64, until: i64| {
        let at = |t: i64| ((t.clamp(first, end - 1) - first) / step) as usize;
        at(start)..=at(until.max(start + 1) - 1)
    };
    // Distinct users and calls per bucket.
    let mut users: Vec<HashSet<u32>> = vec![HashSet::new(); count as usize];
    for &(user, start, until) in &sessions {
        for b in touched(start, until) {
            users[b].insert(user);
        }
    }
    for &(start, until) in &calls {
        for b in touched(start, until) {
            buckets[b].rooms += 1;
        }
    }
    for (b, u) in buckets.iter_mut().zip(users) {
        b.users = u.len() as u64;
    }
    // Concurrency: open on [start, until); an item that starts and ends in one second is open
    // for that second.
    let mut sweep = |items: &mut dyn Iterator<Item = (i64, i64)>,
                     set: &mut dyn FnMut(&mut ScaleBucket, u64, u64)| {
        let mut changes: Vec<(i64, i64)> = Vec::new();
        for (start, until) in items {
            changes.push((start, 1));
            changes.push((until.max(start + 1), -1));
        }
        changes.sort_unstable();
        let mut level = 0i64;
        let mut i = 0;
        for b in buckets.iter_mut() {
            let (s, e) = (b.start.0, b.start.0 + step);
            while i < changes.len() && changes[i].0 <= s {
                level += changes[i].1;
                i += 1;
            }
            let at_start = level.max(0) as u64;
            let mut peak = at_start;
            while i < changes.len() && changes[i].0 < e {
                level += changes[i].1;
                peak = peak.max(level.max(0) as u64);
                i += 1;
            }
            set(b, at_start, peak);
        }
    };
    sweep(
        &mut calls.iter().copied(),
        &mut |b: &mut ScaleBucket, at, peak| {
            b.online_rooms = at;
            b.peak_rooms = peak;
        },
    );
    sweep(
        &mut sessions.iter().map(|&(_, s, e)| (s, e)),
        &mut |b: &mut ScaleBucket, at, peak| {
            b.online_users = at;
            b.peak_users = peak;
        },
    );
    Ok(buckets)
}

/// Deletes up to `limit` calls finished before `cutoff`, with their sessions, events and
/// quality samples, in one transaction. Returns what went and whether more may remain.
pub(super) fn purge_calls_chunk(
    conn: &mut Connection,
    cutoff: UnixSecs,
    limit: usize,
) -> StoreResult<(PurgeCounts, bool)> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let doomed: Vec<(i64, String)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT sdk_app_id, comm_id FROM calls
             WHERE destroyed_at IS NOT NULL AND destroyed_at < ?1 LIMIT ?2",
        )?;
        let rows = stmt.query_map(
            params![cutoff.0, i64::try_from(limit).unwrap_or(i64::MAX)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        rows.collect::<Result<_, _>>()?
    };
    let mut counts = PurgeCounts::default();
    for (app, comm_id) in &doomed {
        let p = params![app, comm_id];
        counts.events += tx
            .prepare_cached("DELETE FROM events WHERE comm_id = ?2 AND sdk_app_id = ?1")?
            .execute(p)? as u64;
        counts.quality_samples += super::quality::purge_call(&tx, *app, comm_id)?;
        counts.sessions += tx
            .prepare_cached("DELETE FROM sessions WHERE comm_id = ?2 AND sdk_app_id = ?1")?
            .execute(p)? as u64;
        counts.calls += tx
            .prepare_cached("DELETE FROM calls WHERE sdk_app_id = ?1 AND comm_id = ?2")?
            .execute(p)? as u64;
    }
    tx.commit()?;
    Ok((counts, doomed.len() == limit))
}

pub(super) fn purge_tasks(conn: &Connection, cutoff: UnixSecs) -> StoreResult<u64> {
    let n = conn
        .prepare_cached("DELETE FROM tasks WHERE ended_at IS NOT NULL AND ended_at < ?1")?
        .execute(params![cutoff.0])?;
    Ok(n as u64)
}

/// Copies the WAL into the database file and truncates it.
pub(super) fn checkpoint(conn: &Connection) -> StoreResult<()> {
    let (busy, log, done): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    if busy != 0 {
        tracing::warn!(log, done, "WAL checkpoint incomplete: readers still active");
    }
    Ok(())
}
