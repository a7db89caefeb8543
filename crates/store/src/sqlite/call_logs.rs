//! Placed calls (TUICallKit call records), keyed by (SdkAppId, CallId): written when a call is
//! placed and again when it is answered and when it ends.

use super::codec::{app_from_column, from_json, room_columns, room_from_columns, to_json};
use crate::{CallLog, CallMedia, CallResult, StoreError, StoreResult};
use hearth_types::{SdkAppId, UnixSecs};
use rusqlite::{params, Connection};

pub(super) fn put_call_log(conn: &Connection, c: &CallLog) -> StoreResult<()> {
    let (kind, room) = room_columns(&c.room);
    conn.prepare_cached(
        "INSERT INTO call_logs (sdk_app_id, call_id, caller, media, is_group, callees_json,
                                room_kind, room_string, started_at, accepted_at, ended_at, result)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (sdk_app_id, call_id) DO UPDATE SET
             caller = excluded.caller, media = excluded.media, is_group = excluded.is_group,
             callees_json = excluded.callees_json, room_kind = excluded.room_kind,
             room_string = excluded.room_string, started_at = excluded.started_at,
             accepted_at = excluded.accepted_at, ended_at = excluded.ended_at,
             result = excluded.result",
    )?
    .execute(params![
        c.sdk_app_id.0,
        c.call_id,
        c.caller,
        c.media.as_str(),
        c.group,
        to_json(&c.callees),
        kind,
        room,
        c.started_at.0,
        c.accepted_at.map(|t| t.0),
        c.ended_at.map(|t| t.0),
        c.result.map(CallResult::as_str),
    ])?;
    Ok(())
}

pub(super) fn call_log(
    conn: &Connection,
    app: SdkAppId,
    call_id: &str,
) -> StoreResult<Option<CallLog>> {
    let mut stmt = conn.prepare_cached(
        "SELECT sdk_app_id, call_id, caller, media, is_group, callees_json, room_kind,
                room_string, started_at, accepted_at, ended_at, result
         FROM call_logs WHERE sdk_app_id = ?1 AND call_id = ?2",
    )?;
    let mut rows = stmt.query(params![app.0, call_id])?;
    let Some(r) = rows.next()? else {
        return Ok(None);
    };
    let media: String = r.get(3)?;
    let result: Option<String> = r.get(11)?;
    Ok(Some(CallLog {
        sdk_app_id: app_from_column(r.get(0)?)?,
        call_id: r.get(1)?,
        caller: r.get(2)?,
        media: CallMedia::parse(&media)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown call media {media:?}")))?,
        group: r.get(4)?,
        callees: from_json("call_logs.callees_json", &r.get::<_, String>(5)?)?,
        room: room_from_columns(&r.get::<_, String>(6)?, r.get(7)?)?,
        started_at: UnixSecs(r.get(8)?),
        accepted_at: r.get::<_, Option<i64>>(9)?.map(UnixSecs),
        ended_at: r.get::<_, Option<i64>>(10)?.map(UnixSecs),
        result: result
            .map(|s| {
                CallResult::parse(&s)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown call result {s:?}")))
            })
            .transpose()?,
    }))
}

/// Ends every call still going on as `Interrupt` at `at` (calls live in memory: at start-up
/// any open one was cut off by a crash or restart). Returns how many.
pub(super) fn interrupt_open_call_logs(conn: &Connection, at: UnixSecs) -> StoreResult<u64> {
    let n = conn
        .prepare_cached(
            "UPDATE call_logs SET result = 'Interrupt', ended_at = max(started_at, ?1)
             WHERE result IS NULL",
        )?
        .execute(params![at.0])?;
    Ok(n as u64)
}

/// Deletes ended calls that ended before `cutoff`.
pub(super) fn purge_call_logs(conn: &Connection, cutoff: UnixSecs) -> StoreResult<u64> {
    let n = conn
        .prepare_cached("DELETE FROM call_logs WHERE ended_at IS NOT NULL AND ended_at < ?1")?
        .execute(params![cutoff.0])?;
    Ok(n as u64)
}

#[cfg(test)]
mod tests {
    use super::super::SqliteStore;
    use crate::{CallLog, CallMedia, CallResult, Store};
    use hearth_types::{RoomKey, SdkAppId, UnixSecs};

    fn placed(id: &str, room: RoomKey) -> CallLog {
        CallLog {
            call_id: id.into(),
            sdk_app_id: SdkAppId(1400000001),
            caller: "alice".into(),
            media: CallMedia::Video,
            group: true,
            callees: vec!["bob".into(), "carol".into()],
            room,
            started_at: UnixSecs(1_000),
            accepted_at: None,
            ended_at: None,
            result: None,
        }
    }

    #[test]
    fn a_call_is_written_placed_then_updated_and_read_back() {
        let s = SqliteStore::open_in_memory().unwrap();
        let app = SdkAppId(1400000001);
        let mut c = placed("c1", RoomKey::string("call-1").unwrap());
        s.put_call_log(&c).unwrap();
        assert_eq!(s.call_log(app, "c1").unwrap(), Some(c.clone()));
        c.accepted_at = Some(UnixSecs(1_005));
        c.ended_at = Some(UnixSecs(1_060));
        c.result = Some(CallResult::NormalEnd);
        s.put_call_log(&c).unwrap();
        assert_eq!(s.call_log(app, "c1").unwrap(), Some(c));
        assert_eq!(s.call_log(SdkAppId(1400000002), "c1").unwrap(), None);
        assert_eq!(s.call_log(app, "nope").unwrap(), None);
    }

    #[test]
    fn open_calls_are_interrupted_at_start_and_old_ones_purged() {
        let s = SqliteStore::open_in_memory().unwrap();
        let app = SdkAppId(1400000001);
        s.put_call_log(&placed("open", RoomKey::num(7).unwrap()))
            .unwrap();
        let mut done = placed("done", RoomKey::num(8).unwrap());
        done.ended_at = Some(UnixSecs(1_010));
        done.result = Some(CallResult::Reject);
        s.put_call_log(&done).unwrap();
        assert_eq!(s.interrupt_open_call_logs(UnixSecs(2_000)).unwrap(), 1);
        let open = s.call_log(app, "open").unwrap().unwrap();
        assert_eq!(open.result, Some(CallResult::Interrupt));
        assert_eq!(open.ended_at, Some(UnixSecs(2_000)));
        assert_eq!(s.call_log(app, "done").unwrap().unwrap(), done);
        let purged = s.purge_before(UnixSecs(1_500)).unwrap();
        assert_eq!(purged.call_logs, 1);
        assert!(s.call_log(app, "done").unwrap().is_none());
        assert!(s.call_log(app, "open").unwrap().is_some());
    }
}
