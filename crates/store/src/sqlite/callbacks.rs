//! The outbox of event callbacks: queued in one transaction per batch, read in id order,
//! deleted once delivered, rescheduled after a failure, marked once abandoned.

use super::codec::app_from_column;
use crate::{NewCallback, QueuedCallback, StoreResult};
use rusqlite::{params, Connection};

pub(super) fn enqueue(conn: &mut Connection, cbs: &[NewCallback]) -> StoreResult<()> {
    let tx = conn.transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO callback_outbox (sdk_app_id, group_id, event_type, order_key, info_json,
                                          created_ms, next_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        )?;
        for c in cbs {
            stmt.execute(params![
                c.app.0,
                c.group,
                c.event_type,
                c.order_key,
                c.info_json,
                c.created_ms
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The next callback of each order key (app, key) not abandoned: the oldest; at most `limit`
/// of them, oldest first. A backlog behind one key hides nothing of the others.
pub(super) fn heads(conn: &Connection, limit: u64) -> StoreResult<Vec<QueuedCallback>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, sdk_app_id, group_id, event_type, order_key, info_json, created_ms, attempts,
                next_ms
         FROM callback_outbox
         WHERE id IN (SELECT MIN(id) FROM callback_outbox WHERE abandoned_ms IS NULL
                      GROUP BY sdk_app_id, order_key)
         ORDER BY id LIMIT ?1",
    )?;
    let mut rows = stmt.query(params![limit as i64])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(QueuedCallback {
            id: r.get(0)?,
            cb: NewCallback {
                app: app_from_column(r.get(1)?)?,
                group: r.get(2)?,
                event_type: r.get(3)?,
                order_key: r.get(4)?,
                info_json: r.get(5)?,
                created_ms: r.get(6)?,
            },
            attempts: r.get(7)?,
            next_ms: r.get(8)?,
        });
    }
    Ok(out)
}

pub(super) fn delivered(conn: &Connection, id: i64) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM callback_outbox WHERE id = ?1")?
        .execute(params![id])?;
    Ok(())
}

pub(super) fn failed(
    conn: &Connection,
    id: i64,
    attempts: u32,
    next_ms: i64,
    error: &str,
) -> StoreResult<()> {
    conn.prepare_cached(
        "UPDATE callback_outbox SET attempts = ?2, next_ms = ?3, last_error = ?4 WHERE id = ?1",
    )?
    .execute(params![id, attempts, next_ms, error])?;
    Ok(())
}

pub(super) fn abandoned(conn: &Connection, id: i64, at_ms: i64, error: &str) -> StoreResult<()> {
    conn.prepare_cached(
        "UPDATE callback_outbox SET abandoned_ms = ?2, last_error = ?3 WHERE id = ?1",
    )?
    .execute(params![id, at_ms, error])?;
    Ok(())
}

/// Callbacks waiting to be delivered, and abandoned ones still kept.
pub(super) fn counts(conn: &Connection) -> StoreResult<(u64, u64)> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FILTER (WHERE abandoned_ms IS NULL),
                COUNT(*) FILTER (WHERE abandoned_ms IS NOT NULL)
         FROM callback_outbox",
        [],
        |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
    )?)
}

/// Abandoned callbacks older than the retention's cutoff go.
pub(super) fn purge_abandoned(conn: &Connection, cutoff_ms: i64) -> StoreResult<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM callback_outbox WHERE abandoned_ms < ?1")?
        .execute(params![cutoff_ms])?)
}

#[cfg(test)]
mod tests {
    use super::super::SqliteStore;
    use crate::{NewCallback, Store};
    use hearth_types::SdkAppId;

    fn cb(app: u32, key: &str, event_type: u16) -> NewCallback {
        NewCallback {
            app: SdkAppId(app),
            group: 1,
            event_type,
            order_key: key.into(),
            info_json: "{}".into(),
            created_ms: 1_000,
        }
    }

    #[test]
    fn each_key_shows_its_oldest_until_it_is_delivered_or_abandoned() {
        let s = SqliteStore::open_in_memory().unwrap();
        s.enqueue_callbacks(&[
            cb(1, "room:n:1", 101),
            cb(1, "room:n:1", 103),
            cb(1, "room:n:2", 101),
            cb(2, "room:n:1", 101),
        ])
        .unwrap();
        let heads = s.callback_heads(10).unwrap();
        let seen: Vec<_> = heads
            .iter()
            .map(|h| (h.cb.app.0, h.cb.order_key.as_str(), h.cb.event_type))
            .collect();
        assert_eq!(
            seen,
            [
                (1, "room:n:1", 101),
                (1, "room:n:2", 101),
                (2, "room:n:1", 101)
            ]
        );
        // A failure keeps the head (later, with its attempts); delivery shows the next.
        s.callback_failed(heads[0].id, 1, 5_000, "HTTP 500")
            .unwrap();
        let again = s.callback_heads(10).unwrap();
        assert_eq!(
            (again[0].id, again[0].attempts, again[0].next_ms),
            (heads[0].id, 1, 5_000)
        );
        s.callback_delivered(heads[0].id).unwrap();
        assert_eq!(s.callback_heads(10).unwrap()[0].cb.event_type, 103);
        s.callback_abandoned(heads[1].id, 9_000, "gone").unwrap();
        assert_eq!(s.callback_counts().unwrap(), (2, 1));
        assert_eq!(s.callback_heads(1).unwrap().len(), 1);
    }
}
