//! Counts of API calls by action and outcome, for the server's `/metrics`.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Outcome label of a successful call.
pub const OK: &str = "OK";

#[derive(Default)]
pub struct ApiMetrics {
    calls: Mutex<BTreeMap<(&'static str, String), u64>>,
}

impl ApiMetrics {
    /// Counts one call. `action` is a catalog name (or "unknown"), so labels stay bounded.
    pub fn record(&self, action: &'static str, code: &str) {
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        *calls.entry((action, code.to_owned())).or_default() += 1;
    }

    /// `(action, code, count)` for every pair seen.
    pub fn snapshot(&self) -> Vec<(&'static str, String, u64)> {
        let calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        calls
            .iter()
            .map(|((a, c), n)| (*a, c.clone(), *n))
            .collect()
    }
}
