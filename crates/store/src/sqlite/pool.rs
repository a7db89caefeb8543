//! Connections: one writer behind a mutex and a few read-only connections picked round-robin,
//! so concurrent queries do not queue behind writes (WAL lets readers and the writer overlap).

use crate::StoreResult;
use rusqlite::Connection;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, TryLockError};

pub(super) struct Pool {
    writer: Mutex<Connection>,
    /// Empty for in-memory databases: reads then go through the writer connection.
    readers: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

/// A panic while a connection was borrowed leaves nothing half-done that matters: an open
/// transaction rolls back when dropped during unwinding. So a poisoned lock is still usable.
fn relock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pool {
    pub(super) fn new(writer: Connection, readers: Vec<Connection>) -> Self {
        Pool {
            writer: Mutex::new(writer),
            readers: readers.into_iter().map(Mutex::new).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// Runs `f` on the writer connection, exclusively.
    pub(super) fn write<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        f(&mut relock(&self.writer))
    }

    /// Runs `f` on a reader connection: the first free one from a rotating start, or, when all
    /// are busy, waits for the one at the start.
    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let n = self.readers.len();
        if n == 0 {
            return self.write(f);
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        for i in 0..n {
            match self.readers[(start + i) % n].try_lock() {
                Ok(mut conn) => return f(&mut conn),
                Err(TryLockError::Poisoned(p)) => return f(&mut p.into_inner()),
                Err(TryLockError::WouldBlock) => {}
            }
        }
        f(&mut relock(&self.readers[start]))
    }
}
