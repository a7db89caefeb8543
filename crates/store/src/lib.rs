//! Persistence of Hearth's durable state behind the [`Store`] trait: applications, API
//! credentials, calls (room lifetimes by CommId), user sessions, events, quality samples,
//! placed calls (call records), tasks, the usage and dashboard rollups and the outbox of event
//! callbacks, with retention. Only this crate writes SQL; callers see records and queries.

mod quality_body;
mod records;
mod sqlite;

pub use records::*;
pub use sqlite::SqliteStore;

use hearth_types::{CommId, RoomKey, SdkAppId, UnixSecs};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything Hearth keeps. Methods block briefly (a local database); async callers run them on
/// a blocking thread. Implementations are shared across threads.
pub trait Store: Send + Sync + 'static {
    // --- tenants -------------------------------------------------------------------------
    /// Inserts or replaces an application (keyed by its SdkAppId).
    fn upsert_app(&self, app: &AppRecord) -> StoreResult<()>;
    fn apps(&self) -> StoreResult<Vec<AppRecord>>;
    /// Inserts or replaces an API credential (keyed by its SecretId).
    fn upsert_credential(&self, cred: &CredentialRecord) -> StoreResult<()>;
    fn credentials(&self) -> StoreResult<Vec<CredentialRecord>>;

    // --- calls and sessions --------------------------------------------------------------
    /// Records a new call (the first entry into an empty room).
    fn start_call(&self, call: &CallRecord) -> StoreResult<()>;
    /// Marks a call finished at `at` and closes every session of it still open (reason given).
    fn finish_call(&self, comm_id: &CommId, at: UnixSecs, reason: LeaveReason) -> StoreResult<()>;
    /// Finishes every call still open, with its sessions: at start-up no room is live, so open
    /// calls are left over from a crash. Sessions close at their last sign of life (latest event
    /// or quality sample, never after `at`), calls at their last session's end. Returns how many
    /// calls were closed.
    fn finish_open_calls(&self, at: UnixSecs, reason: LeaveReason) -> StoreResult<u64>;
    /// The unfinished call of a room, if any.
    fn open_call(&self, app: SdkAppId, room: &RoomKey) -> StoreResult<Option<CallRecord>>;
    /// The call with this CommId in this application.
    fn call(&self, app: SdkAppId, comm_id: &CommId) -> StoreResult<Option<CallRecord>>;
    /// Calls of an application alive at some point of `[start, end]`, oldest first, one page.
    fn calls_in_window(&self, q: &CallQuery) -> StoreResult<Page<CallRecord>>;
    /// Records a user entering a call; returns the session's id.
    fn open_session(&self, s: &NewSession) -> StoreResult<SessionId>;
    /// Records a user leaving.
    fn close_session(&self, id: SessionId, at: UnixSecs, reason: LeaveReason) -> StoreResult<()>;
    /// Sessions of one call overlapping `[start, end]`, by join time, one page.
    fn sessions_of_call(&self, q: &SessionQuery) -> StoreResult<Page<SessionRecord>>;
    /// Sessions of a call that have not left.
    fn active_sessions(&self, comm_id: &CommId) -> StoreResult<Vec<SessionRecord>>;

    // --- placed calls (call records) ---------------------------------------------------
    /// Inserts or replaces a placed call (keyed by SdkAppId and CallId).
    fn put_call_log(&self, call: &CallLog) -> StoreResult<()>;
    /// The placed call with this CallId in this application.
    fn call_log(&self, app: SdkAppId, call_id: &str) -> StoreResult<Option<CallLog>>;
    /// Ends every placed call still going on as `Interrupt` at `at` (start-up after a crash or
    /// restart: calls live in memory). Returns how many.
    fn interrupt_open_call_logs(&self, at: UnixSecs) -> StoreResult<u64>;

    // --- telemetry -----------------------------------------------------------------------
    /// Appends events in one transaction (all or none).
    fn append_events(&self, events: &[EventRecord]) -> StoreResult<()>;
    /// Events of one user in one call within `[start_ms, end_ms]`, by time.
    fn user_events(&self, q: &EventQuery) -> StoreResult<Vec<EventRecord>>;
    /// Appends quality samples in one transaction (all or none); readable as soon as it
    /// returns. Samples without a value (NaN) or outside the years 1970–10,000 are dropped.
    fn append_quality(&self, samples: &[QualitySample]) -> StoreResult<()>;
    /// The series of a call within `[start, end]`, filtered by users and metrics: by user
    /// (in the order they first sent a sample), then peer and metric.
    fn quality(&self, q: &QualityQuery) -> StoreResult<Vec<QualitySeries>>;

    // --- the outbox of event callbacks -----------------------------------------------------
    /// Queues callbacks, in one transaction.
    fn enqueue_callbacks(&self, cbs: &[NewCallback]) -> StoreResult<()>;
    /// The next callback waiting for each order key (app, key): its oldest; at most
    /// `limit`, oldest first.
    fn callback_heads(&self, limit: u64) -> StoreResult<Vec<QueuedCallback>>;
    /// Delivered: the callback leaves the outbox.
    fn callback_delivered(&self, id: i64) -> StoreResult<()>;
    /// A failed attempt: the next one not before `next_ms`.
    fn callback_failed(&self, id: i64, attempts: u32, next_ms: i64, error: &str)
        -> StoreResult<()>;
    /// Given up (kept until the retention's cutoff, for inspection).
    fn callback_abandoned(&self, id: i64, at_ms: i64, error: &str) -> StoreResult<()>;
    /// (waiting, abandoned) callbacks.
    fn callback_counts(&self) -> StoreResult<(u64, u64)>;

    // --- tasks (recording, relay, ingest, AI) -------------------------------------------
    fn upsert_task(&self, task: &TaskRecord) -> StoreResult<()>;
    fn task(&self, app: SdkAppId, task_id: &str) -> StoreResult<Option<TaskRecord>>;
    /// Marks tasks left open by an earlier run as failed at `now`; returns how many.
    fn fail_open_tasks(&self, now: UnixSecs) -> StoreResult<usize>;
    /// One page of an application's tasks, newest first.
    fn tasks_page(&self, app: SdkAppId, offset: u64, limit: u64) -> StoreResult<Page<TaskRecord>>;
    /// Tasks of `kind` that ended at or after `from` and started before `to` (usage).
    fn tasks_ended_between(
        &self,
        app: SdkAppId,
        kind: &str,
        from: UnixSecs,
        to: UnixSecs,
    ) -> StoreResult<Vec<TaskRecord>>;

    // --- reports and housekeeping --------------------------------------------------------
    /// Per UTC day in `[from, to)`: rooms, distinct users and entries, newest day first.
    fn daily_scale(
        &self,
        app: SdkAppId,
        from: UnixSecs,
        to: UnixSecs,
    ) -> StoreResult<Vec<ScaleDay>>;
    /// Per bucket of `step` seconds from `from` up to `to` (exclusive), oldest first: sessions
    /// and calls open at its start, their peaks and distinct users and calls during it; of one
    /// room (its RoomId, numeric or string) when `room` is given. Open calls and sessions count
    /// until now.
    fn scale_buckets(
        &self,
        app: SdkAppId,
        room: Option<&str>,
        from: UnixSecs,
        to: UnixSecs,
        step: i64,
    ) -> StoreResult<Vec<ScaleBucket>>;
    // --- usage and the dashboards' rollups -----------------------------------------------
    /// Adds seconds of received media to their rooms' 5-minute buckets, in one transaction.
    fn add_usage(&self, usage: &[UsageRecord]) -> StoreResult<()>;
    /// Usage of `apps` in the 5-minute buckets starting within `[from, to)`: per bucket, oldest
    /// first; or per room (`by_room`), by room.
    fn usage(
        &self,
        apps: &[SdkAppId],
        from: UnixSecs,
        to: UnixSecs,
        by_room: bool,
    ) -> StoreResult<Vec<UsageSum>>;
    /// Records an attempt to enter a room, refused or not.
    fn record_entry(&self, attempt: &EntryAttempt) -> StoreResult<()>;
    /// Adds clients' freeze reports and users' round-trip samples to their rooms' 10-second
    /// buckets, in one transaction.
    fn add_quality_rollup(&self, rollups: &[QualityRollup]) -> StoreResult<()>;
    /// Per bucket of `step` seconds from `from` up to `to` (exclusive), oldest first: freeze
    /// reports, round-trip samples and entry attempts, of one room (its RoomId, numeric or
    /// string) when given. Rollups older than a day are kept per hour.
    fn quality_buckets(
        &self,
        app: SdkAppId,
        room: Option<&str>,
        from: UnixSecs,
        to: UnixSecs,
        step: i64,
    ) -> StoreResult<Vec<QualityBucket>>;

    /// Deletes finished calls (with their sessions, events, samples), tasks and placed calls that ended
    /// before `cutoff`, and rollups older than it (quality rollups a day old are folded into
    /// hours). Open calls are never purged.
    fn purge_before(&self, cutoff: UnixSecs) -> StoreResult<PurgeCounts>;
    /// Makes everything written so far durable (WAL checkpoint); called at shutdown.
    fn flush(&self) -> StoreResult<()>;
}
