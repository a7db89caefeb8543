//! `SqliteStore`: the embedded [`Store`] on one SQLite file in WAL mode, with a single writer
//! connection and a small pool of read-only connections. Owns opening and connection setup;
//! the SQL lives in the sibling modules.

mod call_logs;
mod callbacks;
mod calls;
mod codec;
mod housekeeping;
mod pool;
mod quality;
mod rollups;
mod schema;
mod tasks;
mod telemetry;
mod tenants;

use crate::{
    AppRecord, CallLog, CallQuery, CallRecord, CredentialRecord, EntryAttempt, EventQuery,
    EventRecord, LeaveReason, NewCallback, NewSession, Page, PurgeCounts, QualityBucket,
    QualityQuery, QualityRollup, QualitySample, QualitySeries, QueuedCallback, ScaleBucket,
    ScaleDay, SessionId, SessionQuery, SessionRecord, Store, StoreResult, TaskRecord, UsageRecord,
    UsageSum,
};
use hearth_types::{CommId, RoomKey, SdkAppId, UnixSecs};
use pool::Pool;
use quality::QualityState;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Page size of a new database file.
const PAGE_SIZE: i64 = 65_536;
/// Bytes of the file a reader maps (address space, not memory).
const READER_MMAP: i64 = 1 << 34;
/// Page cache of the writer connection, KiB. The default 2 MiB is 32 pages of 64 KiB: once the
/// file is large, every append re-read the recent table's and the keys' pages from the OS.
const WRITER_CACHE_KIB: i64 = 64 * 1024;
/// Read-only connections of a file database.
const READERS: usize = 4;
/// How long a connection waits for a lock held by another connection or process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Cached prepared statements per connection (the store uses a few dozen distinct ones).
const STATEMENT_CACHE: usize = 64;
/// Calls deleted per purge transaction, so a large purge does not hold the writer for long
/// (a 90-minute call of 10 users is about 180 quality blocks and a few thousand events).
const PURGE_CHUNK: usize = 2;
/// Longest pause between two purge transactions (each pause is as long as the transaction
/// before it, so the writer gets the lock at least half the time: the lock is not fair, and
/// without a pause a purge starves the recorder).
const PURGE_PAUSE_MAX: Duration = Duration::from_millis(200);

/// The SQLite store. Cheap to share (`Arc`); every method borrows one connection briefly.
pub struct SqliteStore {
    pool: Pool,
    /// Taken only while holding the writer.
    quality: Mutex<QualityState>,
}

fn configure(conn: &Connection) -> StoreResult<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, switches it to WAL and applies any
    /// missing migrations.
    pub fn open(path: &Path) -> StoreResult<Self> {
        let existed = path.exists();
        let mut writer = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        if !existed {
            restrict_permissions(path);
        }
        configure(&writer)?;
        if !existed {
            // Quality blocks are a few KiB each: on 4 KiB pages a third of the file would be
            // the rest of half-filled pages. (An existing file keeps its page size.)
            writer.pragma_update(None, "page_size", PAGE_SIZE)?;
        }
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(%mode, "SQLite refused WAL journal mode");
        }
        writer.pragma_update(None, "synchronous", "NORMAL")?;
        writer.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        // Checkpoint every 8 MiB of WAL rather than every 1,000 pages (64 MiB of 64 KiB
        // pages), so no single commit copies a long log.
        writer.pragma_update(None, "wal_autocheckpoint", 8 * 1024 * 1024 / PAGE_SIZE)?;
        schema::migrate(&mut writer)?;
        let mut quality = QualityState::load(&writer)?;
        quality::move_legacy_samples(&mut writer, &mut quality)?;
        let readers = (0..READERS)
            .map(|_| {
                let r = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure(&r)?;
                // Readers map the file: quality blocks are read without a copy per page.
                r.pragma_update(None, "mmap_size", READER_MMAP)?;
                Ok(r)
            })
            .collect::<StoreResult<Vec<_>>>()?;
        tracing::info!(path = %path.display(), "store opened");
        Ok(SqliteStore {
            pool: Pool::new(writer, readers),
            quality: Mutex::new(quality),
        })
    }

    /// A private in-memory database on a single connection (reads share the writer), for
    /// tests and throwaway runs.
    pub fn open_in_memory() -> StoreResult<Self> {
        let mut conn = Connection::open_in_memory()?;
        configure(&conn)?;
        schema::migrate(&mut conn)?;
        let mut quality = QualityState::load(&conn)?;
        quality::move_legacy_samples(&mut conn, &mut quality)?;
        Ok(SqliteStore {
            pool: Pool::new(conn, Vec::new()),
            quality: Mutex::new(quality),
        })
    }

    /// The writer's quality state; a panic while it was held left it as of the last commit.
    fn quality_state(&self) -> MutexGuard<'_, QualityState> {
        self.quality.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The database holds API secrets: a new file is kept to its owner (SQLite gives the WAL and
/// shared-memory files the same mode). An existing file keeps the mode its operator chose.
fn restrict_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            tracing::warn!(path = %path.display(), error = %e, "could not restrict database file mode");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

impl Store for SqliteStore {
    fn upsert_app(&self, app: &AppRecord) -> StoreResult<()> {
        self.pool.write(|c| tenants::upsert_app(c, app))
    }

    fn apps(&self) -> StoreResult<Vec<AppRecord>> {
        self.pool.read(|c| tenants::apps(c))
    }

    fn upsert_credential(&self, cred: &CredentialRecord) -> StoreResult<()> {
        self.pool.write(|c| tenants::upsert_credential(c, cred))
    }

    fn credentials(&self) -> StoreResult<Vec<CredentialRecord>> {
        self.pool.read(|c| tenants::credentials(c))
    }

    fn start_call(&self, call: &CallRecord) -> StoreResult<()> {
        self.pool.write(|c| calls::start_call(c, call))
    }

    fn finish_call(&self, comm_id: &CommId, at: UnixSecs, reason: LeaveReason) -> StoreResult<()> {
        self.pool
            .write(|c| calls::finish_call(c, comm_id, at, reason))
    }

    fn finish_open_calls(&self, at: UnixSecs, reason: LeaveReason) -> StoreResult<u64> {
        self.pool.write(|c| calls::finish_open_calls(c, at, reason))
    }

    fn open_call(&self, app: SdkAppId, room: &RoomKey) -> StoreResult<Option<CallRecord>> {
        self.pool.read(|c| calls::open_call(c, app, room))
    }

    fn call(&self, app: SdkAppId, comm_id: &CommId) -> StoreResult<Option<CallRecord>> {
        self.pool.read(|c| calls::call(c, app, comm_id))
    }

    fn calls_in_window(&self, q: &CallQuery) -> StoreResult<Page<CallRecord>> {
        self.pool.read(|c| calls::calls_in_window(c, q))
    }

    fn open_session(&self, s: &NewSession) -> StoreResult<SessionId> {
        self.pool.write(|c| calls::open_session(c, s))
    }

    fn close_session(&self, id: SessionId, at: UnixSecs, reason: LeaveReason) -> StoreResult<()> {
        self.pool.write(|c| calls::close_session(c, id, at, reason))
    }

    fn sessions_of_call(&self, q: &SessionQuery) -> StoreResult<Page<SessionRecord>> {
        self.pool.read(|c| calls::sessions_of_call(c, q))
    }

    fn active_sessions(&self, comm_id: &CommId) -> StoreResult<Vec<SessionRecord>> {
        self.pool.read(|c| calls::active_sessions(c, comm_id))
    }

    fn put_call_log(&self, call: &CallLog) -> StoreResult<()> {
        self.pool.write(|c| call_logs::put_call_log(c, call))
    }

    fn call_log(&self, app: SdkAppId, call_id: &str) -> StoreResult<Option<CallLog>> {
        self.pool.read(|c| call_logs::call_log(c, app, call_id))
    }

    fn interrupt_open_call_logs(&self, at: UnixSecs) -> StoreResult<u64> {
        self.pool
            .write(|c| call_logs::interrupt_open_call_logs(c, at))
    }

    fn append_events(&self, events: &[EventRecord]) -> StoreResult<()> {
        self.pool.write(|c| telemetry::append_events(c, events))
    }

    fn user_events(&self, q: &EventQuery) -> StoreResult<Vec<EventRecord>> {
        self.pool.read(|c| telemetry::user_events(c, q))
    }

    fn append_quality(&self, samples: &[QualitySample]) -> StoreResult<()> {
        let now = UnixSecs::now();
        self.pool
            .write(|c| quality::append(c, &mut self.quality_state(), samples, now))
    }

    fn quality(&self, q: &QualityQuery) -> StoreResult<Vec<QualitySeries>> {
        self.pool.read(|c| quality::quality(c, q))
    }

    fn enqueue_callbacks(&self, cbs: &[NewCallback]) -> StoreResult<()> {
        if cbs.is_empty() {
            return Ok(());
        }
        self.pool.write(|c| callbacks::enqueue(c, cbs))
    }

    fn callback_heads(&self, limit: u64) -> StoreResult<Vec<QueuedCallback>> {
        self.pool.read(|c| callbacks::heads(c, limit))
    }

    fn callback_delivered(&self, id: i64) -> StoreResult<()> {
        self.pool.write(|c| callbacks::delivered(c, id))
    }

    fn callback_failed(
        &self,
        id: i64,
        attempts: u32,
        next_ms: i64,
        error: &str,
    ) -> StoreResult<()> {
        self.pool
            .write(|c| callbacks::failed(c, id, attempts, next_ms, error))
    }

    fn callback_abandoned(&self, id: i64, at_ms: i64, error: &str) -> StoreResult<()> {
        self.pool
            .write(|c| callbacks::abandoned(c, id, at_ms, error))
    }

    fn callback_counts(&self) -> StoreResult<(u64, u64)> {
        self.pool.read(|c| callbacks::counts(c))
    }

    fn upsert_task(&self, task: &TaskRecord) -> StoreResult<()> {
        self.pool.write(|c| tasks::upsert_task(c, task))
    }

    fn task(&self, app: SdkAppId, task_id: &str) -> StoreResult<Option<TaskRecord>> {
        self.pool.read(|c| tasks::task(c, app, task_id))
    }

    fn tasks_page(&self, app: SdkAppId, offset: u64, limit: u64) -> StoreResult<Page<TaskRecord>> {
        self.pool.read(|c| tasks::tasks_page(c, app, offset, limit))
    }

    fn fail_open_tasks(&self, now: UnixSecs) -> StoreResult<usize> {
        self.pool.write(|c| tasks::fail_open_tasks(c, now))
    }

    fn tasks_ended_between(
        &self,
        app: SdkAppId,
        kind: &str,
        from: UnixSecs,
        to: UnixSecs,
    ) -> StoreResult<Vec<TaskRecord>> {
        self.pool
            .read(|c| tasks::tasks_ended_between(c, app, kind, from, to))
    }

    fn daily_scale(
        &self,
        app: SdkAppId,
        from: UnixSecs,
        to: UnixSecs,
    ) -> StoreResult<Vec<ScaleDay>> {
        let now = UnixSecs::now();
        self.pool
            .read(|c| housekeeping::daily_scale(c, app, from, to, now))
    }

    fn scale_buckets(
        &self,
        app: SdkAppId,
        room: Option<&str>,
        from: UnixSecs,
        to: UnixSecs,
        step: i64,
    ) -> StoreResult<Vec<ScaleBucket>> {
        let now = UnixSecs::now();
        self.pool
            .read(|c| housekeeping::scale_buckets(c, app, room, (from, to), step, now))
    }

    fn add_usage(&self, usage: &[UsageRecord]) -> StoreResult<()> {
        if usage.is_empty() {
            return Ok(());
        }
        self.pool.write(|c| rollups::add_usage(c, usage))
    }

    fn usage(
        &self,
        apps: &[SdkAppId],
        from: UnixSecs,
        to: UnixSecs,
        by_room: bool,
    ) -> StoreResult<Vec<UsageSum>> {
        self.pool
            .read(|c| rollups::usage(c, apps, (from, to), by_room))
    }

    fn record_entry(&self, attempt: &EntryAttempt) -> StoreResult<()> {
        self.pool.write(|c| rollups::record_entry(c, attempt))
    }

    fn add_quality_rollup(&self, rollup: &[QualityRollup]) -> StoreResult<()> {
        if rollup.is_empty() {
            return Ok(());
        }
        self.pool.write(|c| rollups::add_quality_rollup(c, rollup))
    }

    fn quality_buckets(
        &self,
        app: SdkAppId,
        room: Option<&str>,
        from: UnixSecs,
        to: UnixSecs,
        step: i64,
    ) -> StoreResult<Vec<QualityBucket>> {
        self.pool
            .read(|c| rollups::quality_buckets(c, app, room, (from, to), step))
    }

    fn purge_before(&self, cutoff: UnixSecs) -> StoreResult<PurgeCounts> {
        let mut total = PurgeCounts::default();
        loop {
            // Each chunk takes the writer separately so live traffic interleaves.
            let began = std::time::Instant::now();
            let (n, more) = self
                .pool
                .write(|c| housekeeping::purge_calls_chunk(c, cutoff, PURGE_CHUNK))?;
            if more {
                std::thread::sleep(began.elapsed().min(PURGE_PAUSE_MAX));
            }
            total.calls += n.calls;
            total.sessions += n.sessions;
            total.events += n.events;
            total.quality_samples += n.quality_samples;
            if !more {
                break;
            }
        }
        if total.calls > 0 {
            self.pool.write(|_| {
                self.quality_state().forget_keys();
                Ok(())
            })?;
        }
        total.tasks = self.pool.write(|c| housekeeping::purge_tasks(c, cutoff))?;
        total.call_logs = self.pool.write(|c| call_logs::purge_call_logs(c, cutoff))?;
        total.rollups = self.pool.write(|c| rollups::purge(c, cutoff))?;
        total.rollups +=
            self.pool
                .write(|c| callbacks::purge_abandoned(c, cutoff.0 * 1000))? as u64;
        let fine_until = UnixSecs(UnixSecs::now().0 - rollups::FINE_FOR);
        self.pool
            .write(|c| rollups::fold_quality_rollup(c, fine_until))?;
        if total != PurgeCounts::default() {
            tracing::info!(
                calls = total.calls,
                sessions = total.sessions,
                events = total.events,
                quality_samples = total.quality_samples,
                tasks = total.tasks,
                call_logs = total.call_logs,
                rollups = total.rollups,
                "purged old data"
            );
        }
        Ok(total)
    }

    fn flush(&self) -> StoreResult<()> {
        self.pool.write(|c| {
            quality::fold_all(c, &mut self.quality_state())?;
            housekeeping::checkpoint(c)
        })
    }
}
