//! Media tasks (recording, relay, ingest, AI bots), keyed by (SdkAppId, TaskId).

use super::codec::{
    app_from_column, count_from_column, room_columns, room_from_columns, sql_count,
};
use crate::{Page, StoreError, StoreResult, TaskRecord};
use hearth_types::{SdkAppId, UnixSecs};
use rusqlite::{params, Connection};

pub(super) fn upsert_task(conn: &Connection, t: &TaskRecord) -> StoreResult<()> {
    let (kind, room) = match &t.room {
        Some(r) => {
            let (k, s) = room_columns(r);
            (Some(k), Some(s))
        }
        None => (None, None),
    };
    conn.prepare_cached(
        "INSERT INTO tasks (sdk_app_id, task_id, kind, state, room_kind, room_string, params_json,
                            created_at, ended_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (sdk_app_id, task_id) DO UPDATE SET
             kind = excluded.kind, state = excluded.state, room_kind = excluded.room_kind,
             room_string = excluded.room_string, params_json = excluded.params_json,
             created_at = excluded.created_at, ended_at = excluded.ended_at",
    )?
    .execute(params![
        t.sdk_app_id.0,
        t.task_id,
        t.kind,
        t.state,
        kind,
        room,
        t.params_json,
        t.created_at.0,
        t.ended_at.map(|e| e.0),
    ])?;
    Ok(())
}

const COLUMNS: &str = "sdk_app_id, task_id, kind, state, room_kind, room_string, params_json, \
                       created_at, ended_at";

pub(super) fn task(
    conn: &Connection,
    app: SdkAppId,
    task_id: &str,
) -> StoreResult<Option<TaskRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM tasks WHERE sdk_app_id = ?1 AND task_id = ?2"
    ))?;
    let mut rows = stmt.query(params![app.0, task_id])?;
    match rows.next()? {
        Some(r) => Ok(Some(from_row(r)?)),
        None => Ok(None),
    }
}

/// Tasks of a kind that ended at or after `from` and started before `to`.
pub(super) fn tasks_ended_between(
    conn: &Connection,
    app: SdkAppId,
    kind: &str,
    from: UnixSecs,
    to: UnixSecs,
) -> StoreResult<Vec<TaskRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM tasks
         WHERE ended_at >= ?3 AND sdk_app_id = ?1 AND kind = ?2 AND created_at < ?4
         ORDER BY created_at"
    ))?;
    let mut rows = stmt.query(params![app.0, kind, from.0, to.0])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(from_row(r)?);
    }
    Ok(out)
}

/// One page of an application's tasks, newest first.
pub(super) fn tasks_page(
    conn: &Connection,
    app: SdkAppId,
    offset: u64,
    limit: u64,
) -> StoreResult<Page<TaskRecord>> {
    let total: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM tasks WHERE sdk_app_id = ?1")?
        .query_row(params![app.0], |r| r.get(0))?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM tasks WHERE sdk_app_id = ?1
         ORDER BY created_at DESC, task_id LIMIT ?2 OFFSET ?3"
    ))?;
    let mut rows = stmt.query(params![app.0, sql_count(limit), sql_count(offset)])?;
    let mut items = Vec::new();
    while let Some(r) = rows.next()? {
        items.push(from_row(r)?);
    }
    Ok(Page {
        items,
        total: count_from_column(total),
    })
}

fn from_row(r: &rusqlite::Row<'_>) -> StoreResult<TaskRecord> {
    let task_id: String = r.get(1)?;
    let room = match (
        r.get::<_, Option<String>>(4)?,
        r.get::<_, Option<String>>(5)?,
    ) {
        (Some(kind), Some(s)) => Some(room_from_columns(&kind, s)?),
        (None, None) => None,
        _ => {
            return Err(StoreError::Corrupt(format!(
                "task {task_id:?} has half a room"
            )))
        }
    };
    Ok(TaskRecord {
        sdk_app_id: app_from_column(r.get(0)?)?,
        task_id,
        kind: r.get(2)?,
        state: r.get(3)?,
        room,
        params_json: r.get(6)?,
        created_at: UnixSecs(r.get(7)?),
        ended_at: r.get::<_, Option<i64>>(8)?.map(UnixSecs),
    })
}

/// Tasks an earlier run left open (its workers died with it): failed at `now`.
pub(super) fn fail_open_tasks(conn: &Connection, now: UnixSecs) -> StoreResult<usize> {
    Ok(conn.execute(
        "UPDATE tasks SET state = 'Failed', ended_at = ?1 WHERE ended_at IS NULL",
        params![now.0],
    )?)
}
