//! The retention job: every hour, delete what is older than the configured number of days.

use hearth_store::Store;
use hearth_types::UnixSecs;
use std::sync::Arc;
use std::time::Duration;

const EVERY: Duration = Duration::from_secs(3600);

/// Runs until the task is aborted; the first pass happens at once.
pub async fn run(store: Arc<dyn Store>, retention_days: u32) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        let cutoff = UnixSecs(UnixSecs::now().0 - i64::from(retention_days) * 86_400);
        let s = store.clone();
        match tokio::task::spawn_blocking(move || s.purge_before(cutoff)).await {
            Ok(Ok(counts)) => tracing::info!(?counts, cutoff = cutoff.0, "retention pass"),
            Ok(Err(e)) => tracing::error!(error = %e, "retention pass failed"),
            Err(e) => tracing::error!(error = %e, "retention task panicked"),
        }
    }
}
