//! Calls (room lifetimes) and the sessions of users inside them.

use super::codec::{
    app_from_column, count_from_column, leave_reason_from_column, room_columns, room_from_columns,
    sql_count, to_json,
};
use crate::{
    CallQuery, CallRecord, LeaveReason, NewSession, Page, SessionId, SessionQuery, SessionRecord,
    StoreResult,
};
use hearth_types::{CommId, RoomKey, SdkAppId, UnixSecs, UserId};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, Row};

const CALL_COLUMNS: &str =
    "comm_id, sdk_app_id, room_kind, room_string, creator, created_at, destroyed_at";

fn call_from_row(r: &Row<'_>) -> StoreResult<CallRecord> {
    Ok(CallRecord {
        comm_id: CommId(r.get(0)?),
        sdk_app_id: app_from_column(r.get(1)?)?,
        room: room_from_columns(&r.get::<_, String>(2)?, r.get(3)?)?,
        creator: r.get(4)?,
        created_at: UnixSecs(r.get(5)?),
        destroyed_at: r.get::<_, Option<i64>>(6)?.map(UnixSecs),
    })
}

/// Sessions joined with their call for the room.
const SESSION_SELECT: &str = "SELECT s.id, s.comm_id, s.sdk_app_id, c.room_kind, c.room_string,
        s.user_id, s.joined_at, s.left_at, s.leave_reason, s.device_type, s.sdk_version, s.client_ip
    FROM sessions s JOIN calls c ON c.sdk_app_id = s.sdk_app_id AND c.comm_id = s.comm_id";

fn session_from_row(r: &Row<'_>) -> StoreResult<SessionRecord> {
    Ok(SessionRecord {
        id: SessionId(r.get(0)?),
        comm_id: CommId(r.get(1)?),
        sdk_app_id: app_from_column(r.get(2)?)?,
        room: room_from_columns(&r.get::<_, String>(3)?, r.get(4)?)?,
        user_id: UserId(r.get(5)?),
        joined_at: UnixSecs(r.get(6)?),
        left_at: r.get::<_, Option<i64>>(7)?.map(UnixSecs),
        leave_reason: leave_reason_from_column(r.get(8)?)?,
        device_type: r.get(9)?,
        sdk_version: r.get(10)?,
        client_ip: r.get(11)?,
    })
}

/// Records a call. Starting a call whose CommId is already known (a room recreated within the
/// same second, or a retried start) reopens that call instead of failing.
pub(super) fn start_call(conn: &Connection, call: &CallRecord) -> StoreResult<()> {
    let (kind, room) = room_columns(&call.room);
    conn.prepare_cached(
        "INSERT INTO calls (comm_id, sdk_app_id, room_kind, room_string, creator, created_at, destroyed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (sdk_app_id, comm_id) DO UPDATE SET destroyed_at = excluded.destroyed_at",
    )?
    .execute(params![
        call.comm_id.as_str(),
        call.sdk_app_id.0,
        kind,
        room,
        call.creator,
        call.created_at.0,
        call.destroyed_at.map(|t| t.0),
    ])?;
    Ok(())
}

/// Ends the call and every session of it still open, atomically. Times never go before the
/// start of what they end. Finishing a finished call keeps its first end time.
pub(super) fn finish_call(
    conn: &mut Connection,
    comm_id: &CommId,
    at: UnixSecs,
    reason: LeaveReason,
) -> StoreResult<()> {
    let tx = conn.transaction()?;
    tx.prepare_cached(
        "UPDATE calls SET destroyed_at = max(created_at, ?2)
         WHERE comm_id = ?1 AND destroyed_at IS NULL",
    )?
    .execute(params![comm_id.as_str(), at.0])?;
    tx.prepare_cached(
        "UPDATE sessions SET left_at = max(joined_at, ?2), leave_reason = ?3
         WHERE comm_id = ?1 AND left_at IS NULL",
    )?
    .execute(params![comm_id.as_str(), at.0, reason.as_str()])?;
    tx.commit()?;
    Ok(())
}

/// Closes every open session at its last sign of life (its latest event or quality sample,
/// else its join time; never after `at`), then every open call at its last session's end.
pub(super) fn finish_open_calls(
    conn: &mut Connection,
    at: UnixSecs,
    reason: LeaveReason,
) -> StoreResult<u64> {
    let tx = conn.transaction()?;
    tx.prepare_cached(
        "UPDATE sessions SET leave_reason = ?2, left_at = min(?1, max(joined_at,
            coalesce((SELECT max(e.time_ms) / 1000 FROM events e
                      WHERE e.comm_id = sessions.comm_id AND e.user_id = sessions.user_id), 0),
            coalesce((SELECT k.last_seen FROM quality_keys k
                      WHERE k.comm_id = sessions.comm_id AND k.user_id = sessions.user_id
                        AND k.sdk_app_id = sessions.sdk_app_id), 0)))
         WHERE left_at IS NULL",
    )?
    .execute(params![at.0, reason.as_str()])?;
    let calls = tx
        .prepare_cached(
            "UPDATE calls SET destroyed_at = max(created_at,
                coalesce((SELECT max(s.left_at) FROM sessions s WHERE s.comm_id = calls.comm_id),
                         created_at))
             WHERE destroyed_at IS NULL",
        )?
        .execute([])?;
    tx.commit()?;
    Ok(calls as u64)
}

/// The newest unfinished call of the room (there should be at most one).
pub(super) fn open_call(
    conn: &Connection,
    app: SdkAppId,
    room: &RoomKey,
) -> StoreResult<Option<CallRecord>> {
    let (kind, room) = room_columns(room);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CALL_COLUMNS} FROM calls INDEXED BY calls_open
         WHERE sdk_app_id = ?1 AND room_string = ?2 AND room_kind = ?3 AND destroyed_at IS NULL
         ORDER BY created_at DESC, comm_id DESC LIMIT 1"
    ))?;
    let mut rows = stmt.query(params![app.0, room, kind])?;
    rows.next()?.map(call_from_row).transpose()
}

pub(super) fn call(
    conn: &Connection,
    app: SdkAppId,
    comm_id: &CommId,
) -> StoreResult<Option<CallRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {CALL_COLUMNS} FROM calls WHERE sdk_app_id = ?1 AND comm_id = ?2"
    ))?;
    let mut rows = stmt.query(params![app.0, comm_id.as_str()])?;
    rows.next()?.map(call_from_row).transpose()
}

/// Calls alive at some point of `[start, end]`; the count and the page come from one snapshot.
pub(super) fn calls_in_window(
    conn: &mut Connection,
    q: &CallQuery,
) -> StoreResult<Page<CallRecord>> {
    let mut args = vec![
        Value::from(q.sdk_app_id.0),
        Value::from(q.start.0),
        Value::from(q.end.0),
    ];
    let mut filter =
        "sdk_app_id = ?1 AND created_at <= ?3 AND (destroyed_at IS NULL OR destroyed_at >= ?2)"
            .to_owned();
    if let Some(room) = &q.room_string {
        filter.push_str(" AND room_string = ?4");
        args.push(Value::from(room.clone()));
    }
    let tx = conn.transaction()?;
    let total: i64 = tx
        .prepare_cached(&format!("SELECT COUNT(*) FROM calls WHERE {filter}"))?
        .query_row(params_from_iter(args.iter()), |r| r.get(0))?;
    let n = args.len();
    args.push(Value::from(sql_count(q.limit)));
    args.push(Value::from(sql_count(q.offset)));
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT {CALL_COLUMNS} FROM calls WHERE {filter}
         ORDER BY created_at, comm_id LIMIT ?{} OFFSET ?{}",
        n + 1,
        n + 2
    ))?;
    let mut rows = stmt.query(params_from_iter(args.iter()))?;
    let mut items = Vec::new();
    while let Some(r) = rows.next()? {
        items.push(call_from_row(r)?);
    }
    Ok(Page {
        items,
        total: count_from_column(total),
    })
}

pub(super) fn open_session(conn: &Connection, s: &NewSession) -> StoreResult<SessionId> {
    conn.prepare_cached(
        "INSERT INTO sessions (comm_id, sdk_app_id, user_id, joined_at, device_type, sdk_version, client_ip)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        s.comm_id.as_str(),
        s.sdk_app_id.0,
        s.user_id.as_str(),
        s.joined_at.0,
        s.device_type,
        s.sdk_version,
        s.client_ip,
    ])?;
    Ok(SessionId(conn.last_insert_rowid()))
}

/// Closes a session; closing a closed or unknown session changes nothing.
pub(super) fn close_session(
    conn: &Connection,
    id: SessionId,
    at: UnixSecs,
    reason: LeaveReason,
) -> StoreResult<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE sessions SET left_at = max(joined_at, ?2), leave_reason = ?3
             WHERE id = ?1 AND left_at IS NULL",
        )?
        .execute(params![id.0, at.0, reason.as_str()])?;
    if changed == 0 {
        tracing::debug!(
            session = id.0,
            "close_session: no open session with this id"
        );
    }
    Ok(())
}

pub(super) fn sessions_of_call(
    conn: &mut Connection,
    q: &SessionQuery,
) -> StoreResult<Page<SessionRecord>> {
    // `+s.sdk_app_id` keeps the planner on the per-call index rather than the per-app one.
    const FILTER: &str = "+s.sdk_app_id = ?1 AND s.comm_id = ?2
        AND s.joined_at <= ?4 AND (s.left_at IS NULL OR s.left_at >= ?3)
        AND (?5 OR s.user_id IN (SELECT value FROM json_each(?6)))";
    let users: Vec<&str> = q.user_ids.iter().map(UserId::as_str).collect();
    let users = to_json(&users);
    let all_users = q.user_ids.is_empty();
    let tx = conn.transaction()?;
    let total: i64 = tx
        .prepare_cached(&format!("SELECT COUNT(*) FROM sessions s WHERE {FILTER}"))?
        .query_row(
            params![
                q.sdk_app_id.0,
                q.comm_id.as_str(),
                q.start.0,
                q.end.0,
                all_users,
                users
            ],
            |r| r.get(0),
        )?;
    let mut stmt = tx.prepare_cached(&format!(
        "{SESSION_SELECT} WHERE {FILTER} ORDER BY s.joined_at, s.id LIMIT ?7 OFFSET ?8"
    ))?;
    let mut rows = stmt.query(params![
        q.sdk_app_id.0,
        q.comm_id.as_str(),
        q.start.0,
        q.end.0,
        all_users,
        users,
        sql_count(q.limit),
        sql_count(q.offset),
    ])?;
    let mut items = Vec::new();
    while let Some(r) = rows.next()? {
        items.push(session_from_row(r)?);
    }
    Ok(Page {
        items,
        total: count_from_column(total),
    })
}

pub(super) fn active_sessions(
    conn: &Connection,
    comm_id: &CommId,
) -> StoreResult<Vec<SessionRecord>> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SESSION_SELECT} WHERE s.comm_id = ?1 AND s.left_at IS NULL ORDER BY s.joined_at, s.id"
    ))?;
    let mut rows = stmt.query(params![comm_id.as_str()])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(session_from_row(r)?);
    }
    Ok(out)
}
