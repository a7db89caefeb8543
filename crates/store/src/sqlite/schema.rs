//! The schema as an ordered list of migrations, tracked by `PRAGMA user_version`; opening a
//! database applies, each in its own transaction, only the migrations it has not seen.

use crate::{StoreError, StoreResult};
use rusqlite::{Connection, TransactionBehavior};

/// Migration `i` brings the schema from version `i` to `i + 1`. Append only: never edit or
/// reorder a migration that has shipped.
const MIGRATIONS: &[&str] = &[
    // 1: tenants, calls, sessions, telemetry, tasks.
    r#"
    CREATE TABLE apps (
        sdk_app_id  INTEGER PRIMARY KEY,
        secret_key  TEXT NOT NULL,
        admins_json TEXT NOT NULL DEFAULT '[]',
        created_at  INTEGER NOT NULL
    );

    CREATE TABLE credentials (
        secret_id  TEXT PRIMARY KEY,
        secret_key TEXT NOT NULL,
        apps_json  TEXT NOT NULL DEFAULT '[]',
        created_at INTEGER NOT NULL
    );

    CREATE TABLE calls (
        sdk_app_id   INTEGER NOT NULL,
        comm_id      TEXT NOT NULL,
        room_kind    TEXT NOT NULL CHECK (room_kind IN ('num', 'str')),
        room_string  TEXT NOT NULL,
        creator      TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        destroyed_at INTEGER,
        PRIMARY KEY (sdk_app_id, comm_id)
    );
    CREATE INDEX calls_by_app_created ON calls (sdk_app_id, created_at);
    CREATE INDEX calls_by_room ON calls (sdk_app_id, room_string, created_at);
    CREATE INDEX calls_open ON calls (sdk_app_id, room_string, room_kind) WHERE destroyed_at IS NULL;
    CREATE INDEX calls_by_comm_id ON calls (comm_id);
    CREATE INDEX calls_by_destroyed ON calls (destroyed_at) WHERE destroyed_at IS NOT NULL;

    CREATE TABLE sessions (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        comm_id      TEXT NOT NULL,
        sdk_app_id   INTEGER NOT NULL,
        user_id      TEXT NOT NULL,
        joined_at    INTEGER NOT NULL,
        left_at      INTEGER,
        leave_reason TEXT,
        device_type  TEXT NOT NULL,
        sdk_version  TEXT NOT NULL,
        client_ip    TEXT NOT NULL,
        FOREIGN KEY (sdk_app_id, comm_id) REFERENCES calls (sdk_app_id, comm_id)
            ON DELETE CASCADE
    );
    CREATE INDEX sessions_by_call ON sessions (comm_id, joined_at);
    CREATE INDEX sessions_by_app_joined ON sessions (sdk_app_id, joined_at);

    CREATE TABLE events (
        id         INTEGER PRIMARY KEY,
        sdk_app_id INTEGER NOT NULL,
        comm_id    TEXT NOT NULL,
        user_id    TEXT NOT NULL,
        time_ms    INTEGER NOT NULL,
        event_id   INTEGER NOT NULL,
        param_one  INTEGER NOT NULL,
        param_two  INTEGER NOT NULL
    );
    CREATE INDEX events_by_user ON events (comm_id, user_id, time_ms);

    CREATE TABLE quality_samples (
        id         INTEGER PRIMARY KEY,
        sdk_app_id INTEGER NOT NULL,
        comm_id    TEXT NOT NULL,
        user_id    TEXT NOT NULL,
        peer       TEXT NOT NULL,
        metric     TEXT NOT NULL,
        time       INTEGER NOT NULL,
        value      REAL NOT NULL
    );
    CREATE INDEX quality_by_call ON quality_samples (comm_id, time);

    CREATE TABLE tasks (
        sdk_app_id  INTEGER NOT NULL,
        task_id     TEXT NOT NULL,
        kind        TEXT NOT NULL,
        state       TEXT NOT NULL,
        room_kind   TEXT CHECK (room_kind IN ('num', 'str')),
        room_string TEXT,
        params_json TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        ended_at    INTEGER,
        PRIMARY KEY (sdk_app_id, task_id)
    );
    CREATE INDEX tasks_by_ended ON tasks (ended_at) WHERE ended_at IS NOT NULL;
    "#,
    // 2: a user's latest quality sample in one lookup (closing sessions left open by a crash
    // read it per session; without this index each read scanned the whole call's samples).
    r#"
    CREATE INDEX quality_by_user ON quality_samples (comm_id, user_id, time);
    "#,
    // 3: placed calls (TUICallKit call records), read by CallId.
    r#"
    CREATE TABLE call_logs (
        sdk_app_id   INTEGER NOT NULL,
        call_id      TEXT NOT NULL,
        caller       TEXT NOT NULL,
        media        TEXT NOT NULL CHECK (media IN ('Audio', 'Video')),
        is_group     INTEGER NOT NULL,
        callees_json TEXT NOT NULL,
        room_kind    TEXT NOT NULL CHECK (room_kind IN ('num', 'str')),
        room_string  TEXT NOT NULL,
        started_at   INTEGER NOT NULL,
        accepted_at  INTEGER,
        ended_at     INTEGER,
        result       TEXT,
        PRIMARY KEY (sdk_app_id, call_id)
    );
    CREATE INDEX call_logs_open ON call_logs (sdk_app_id) WHERE result IS NULL;
    CREATE INDEX call_logs_by_ended ON call_logs (ended_at) WHERE ended_at IS NOT NULL;
    "#,
    // 4: quality series as compressed blocks per user and span (`sqlite::quality`). The old
    // `quality_samples` rows are moved into them at start-up, then that table is dropped.
    r#"
    CREATE TABLE quality_keys (
        key        INTEGER PRIMARY KEY,
        sdk_app_id INTEGER NOT NULL,
        comm_id    TEXT NOT NULL,
        user_id    TEXT NOT NULL,
        first_seen INTEGER NOT NULL,
        last_seen  INTEGER NOT NULL,
        UNIQUE (comm_id, user_id, sdk_app_id)
    );
    CREATE TABLE quality_blocks (
        id      INTEGER PRIMARY KEY,
        samples INTEGER NOT NULL,
        body    BLOB NOT NULL
    );
    CREATE TABLE quality_recent (
        id      INTEGER PRIMARY KEY,
        key     INTEGER NOT NULL,
        span    INTEGER NOT NULL,
        samples INTEGER NOT NULL,
        body    BLOB NOT NULL
    );
    CREATE INDEX quality_recent_by_key ON quality_recent (key, span);
    "#,
    // 5: the dashboards' and usage's rollups: seconds of media users received per room,
    // 5-minute bucket and class; entry attempts, refused ones included; and per room and
    // 10-second bucket (older than a day, folded into hours) clients' freeze reports and the
    // users' round-trip samples.
    r#"
    CREATE TABLE usage (
        sdk_app_id  INTEGER NOT NULL,
        bucket      INTEGER NOT NULL,
        room_kind   TEXT NOT NULL CHECK (room_kind IN ('num', 'str')),
        room_string TEXT NOT NULL,
        audio       REAL NOT NULL DEFAULT 0,
        sd          REAL NOT NULL DEFAULT 0,
        hd          REAL NOT NULL DEFAULT 0,
        full_hd     REAL NOT NULL DEFAULT 0,
        qhd         REAL NOT NULL DEFAULT 0,
        uhd         REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (sdk_app_id, bucket, room_kind, room_string)
    ) WITHOUT ROWID;

    CREATE TABLE entry_attempts (
        id          INTEGER PRIMARY KEY,
        sdk_app_id  INTEGER NOT NULL,
        time_ms     INTEGER NOT NULL,
        room_string TEXT NOT NULL,
        user_id     TEXT NOT NULL,
        ok          INTEGER NOT NULL,
        join_ms     INTEGER NOT NULL,
        error       TEXT
    );
    CREATE INDEX entry_attempts_by_app ON entry_attempts (sdk_app_id, time_ms);

    CREATE TABLE quality_rollup (
        sdk_app_id      INTEGER NOT NULL,
        bucket          INTEGER NOT NULL,
        room_kind       TEXT NOT NULL CHECK (room_kind IN ('num', 'str')),
        room_string     TEXT NOT NULL,
        video_ms        REAL NOT NULL DEFAULT 0,
        video_frozen_ms REAL NOT NULL DEFAULT 0,
        audio_ms        REAL NOT NULL DEFAULT 0,
        audio_frozen_ms REAL NOT NULL DEFAULT 0,
        rtt_samples     INTEGER NOT NULL DEFAULT 0,
        rtt_slow        INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (sdk_app_id, bucket, room_kind, room_string)
    ) WITHOUT ROWID;
    "#,
    // 6: the outbox of event callbacks to apps' servers. A row is written before anyone is
    // told of its event and deleted once delivered; `order_key` (a room, a task) orders the
    // deliveries of one app; `abandoned_ms` marks one given up after the horizon.
    r#"
    CREATE TABLE callback_outbox (
        id           INTEGER PRIMARY KEY,
        sdk_app_id   INTEGER NOT NULL,
        group_id     INTEGER NOT NULL,
        event_type   INTEGER NOT NULL,
        order_key    TEXT NOT NULL,
        info_json    TEXT NOT NULL,
        created_ms   INTEGER NOT NULL,
        attempts     INTEGER NOT NULL DEFAULT 0,
        next_ms      INTEGER NOT NULL,
        last_error   TEXT,
        abandoned_ms INTEGER
    );
    CREATE INDEX callback_outbox_heads
        ON callback_outbox (abandoned_ms, sdk_app_id, order_key, id);
    "#,
];

/// The schema version this build writes.
pub(super) const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

fn user_version(conn: &Connection) -> StoreResult<i64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Brings the database up to [`CURRENT_VERSION`]. Each migration runs in an immediate
/// transaction together with the version bump, so a crash leaves either the old or the new
/// version, and two processes opening the same file cannot both apply one.
pub(super) fn migrate(conn: &mut Connection) -> StoreResult<()> {
    migrate_to(conn, CURRENT_VERSION)
}

/// Brings the database up to `target` (an older schema, for migration tests).
pub(super) fn migrate_to(conn: &mut Connection, target: i64) -> StoreResult<()> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version = user_version(&tx)?;
        if version > CURRENT_VERSION {
            return Err(StoreError::Corrupt(format!(
                "database schema version {version} is newer than this build ({CURRENT_VERSION})"
            )));
        }
        let Some(sql) = usize::try_from(version)
            .ok()
            .filter(|_| version < target)
            .and_then(|v| MIGRATIONS.get(v))
        else {
            if version < 0 {
                return Err(StoreError::Corrupt(format!(
                    "negative schema version {version}"
                )));
            }
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
        tracing::info!(version = version + 1, "store schema migrated");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrating_twice_is_a_no_op() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        assert_eq!(user_version(&conn).unwrap(), CURRENT_VERSION);
        migrate(&mut conn).unwrap();
        assert_eq!(user_version(&conn).unwrap(), CURRENT_VERSION);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", CURRENT_VERSION + 1)
            .unwrap();
        assert!(matches!(migrate(&mut conn), Err(StoreError::Corrupt(_))));
    }
}
