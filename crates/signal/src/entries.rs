//! Entry attempts for the dashboards' join success rates: every attempt to enter a room of a
//! known application (WebSocket `enter`, WHIP and WHEP), refused ones included, with how long it
//! took from the request to the answer. Written to the store off the request path.

use crate::Edge;
use hearth_store::EntryAttempt;
use hearth_types::SdkAppId;
use std::time::Instant;

impl Edge {
    /// Records an attempt that began at `began`; `refused` says why it failed. Attempts on
    /// unknown applications are not kept (nobody could query them, and anyone could send them).
    pub(crate) fn record_entry(
        &self,
        app: SdkAppId,
        room: String,
        user: String,
        began: Instant,
        refused: Option<String>,
    ) {
        if !self.apps.contains_key(&app) {
            return;
        }
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let attempt = EntryAttempt {
            sdk_app_id: app,
            time_ms: now_ms,
            room,
            user_id: user,
            ok: refused.is_none(),
            join_ms: began.elapsed().as_millis() as i64,
            error: refused.map(|e| e.chars().take(200).collect()),
        };
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = store.record_entry(&attempt) {
                tracing::warn!(error = %e, "recording an entry attempt failed");
            }
        });
    }
}
