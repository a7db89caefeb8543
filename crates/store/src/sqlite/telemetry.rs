//! Events and quality samples: batched appends (one transaction, one cached statement) and
//! filtered reads. NaN samples are dropped on append (SQLite cannot store NaN).

use super::codec::{app_from_column, to_json};
use crate::{EventQuery, EventRecord, QualityQuery, QualitySample, StoreResult};
use hearth_types::{CommId, UnixSecs, UserId};
use rusqlite::{params, Connection};

pub(super) fn append_events(conn: &mut Connection, events: &[EventRecord]) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO events (sdk_app_id, comm_id, user_id, time_ms, event_id, param_one, param_two)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for e in events {
            stmt.execute(params![
                e.sdk_app_id.0,
                e.comm_id.as_str(),
                e.user_id.as_str(),
                e.time_ms,
                e.event_id,
                e.param_one,
                e.param_two,
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn user_events(conn: &Connection, q: &EventQuery) -> StoreResult<Vec<EventRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT sdk_app_id, comm_id, user_id, time_ms, event_id, param_one, param_two FROM events
         WHERE comm_id = ?2 AND user_id = ?3 AND time_ms BETWEEN ?4 AND ?5 AND sdk_app_id = ?1
         ORDER BY time_ms, id",
    )?;
    let mut rows = stmt.query(params![
        q.sdk_app_id.0,
        q.comm_id.as_str(),
        q.user_id.as_str(),
        q.start_ms,
        q.end_ms,
    ])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(EventRecord {
            sdk_app_id: app_from_column(r.get(0)?)?,
            comm_id: CommId(r.get(1)?),
            user_id: UserId(r.get(2)?),
            time_ms: r.get(3)?,
            event_id: r.get(4)?,
            param_one: r.get(5)?,
            param_two: r.get(6)?,
        });
    }
    Ok(out)
}

pub(super) fn append_quality(conn: &mut Connection, samples: &[QualitySample]) -> StoreResult<()> {
    if samples.is_empty() {
        return Ok(());
    }
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO quality_samples (sdk_app_id, comm_id, user_id, peer, metric, time, value)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for s in samples {
            if s.value.is_nan() {
                // SQLite stores NaN as NULL; a sample without a value says nothing.
                tracing::debug!(metric = %s.metric, "dropping NaN quality sample");
                continue;
            }
            stmt.execute(params![
                s.sdk_app_id.0,
                s.comm_id.as_str(),
                s.user_id.as_str(),
                s.peer,
                s.metric,
                s.time.0,
                s.value,
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Samples of a call in `[start, end]`, by time (then insertion order); empty filters match all.
pub(super) fn quality(conn: &Connection, q: &QualityQuery) -> StoreResult<Vec<QualitySample>> {
    let users: Vec<&str> = q.user_ids.iter().map(UserId::as_str).collect();
    let mut stmt = conn.prepare_cached(
        "SELECT sdk_app_id, comm_id, user_id, peer, metric, time, value FROM quality_samples
         WHERE comm_id = ?2 AND time BETWEEN ?3 AND ?4 AND sdk_app_id = ?1
           AND (?5 OR user_id IN (SELECT value FROM json_each(?6)))
           AND (?7 OR metric IN (SELECT value FROM json_each(?8)))
         ORDER BY time, id",
    )?;
    let mut rows = stmt.query(params![
        q.sdk_app_id.0,
        q.comm_id.as_str(),
        q.start.0,
        q.end.0,
        q.user_ids.is_empty(),
        to_json(&users),
        q.metrics.is_empty(),
        to_json(&q.metrics),
    ])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(QualitySample {
            sdk_app_id: app_from_column(r.get(0)?)?,
            comm_id: CommId(r.get(1)?),
            user_id: UserId(r.get(2)?),
            peer: r.get(3)?,
            metric: r.get(4)?,
            time: UnixSecs(r.get(5)?),
            value: r.get(6)?,
        });
    }
    Ok(out)
}
