//! Events: batched appends (one transaction, one cached statement) and filtered reads.

use super::codec::app_from_column;
use crate::{EventQuery, EventRecord, StoreResult};
use hearth_types::{CommId, UserId};
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
