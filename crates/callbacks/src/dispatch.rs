//! Delivery of the outbox. One task looks at the next callback of each order key (app, and a
//! room or a task) every 200 ms and sends those that are due, at most `concurrency` at a time and
//! `per_app` per app (a slow receiver holds up only its own app). A callback is delivered when
//! its receiver answers HTTP 200 within the timeout; otherwise it is tried again at once, then
//! after 1, 2, 4, … s (at most `max_backoff`) until `horizon` after its event, then abandoned.
//! Later callbacks of the same key wait for it, so an app sees a room's room and media events
//! in order, across both groups.

use crate::directory::{call_command, Directory, Group};
use crate::sign::sign;
use hearth_outbound::Rules;
use hearth_store::{QueuedCallback, Store};
use hearth_types::{unix_ms, SdkAppId};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// How deliveries go.
#[derive(Debug, Clone)]
pub struct Settings {
    /// A callback not delivered this long after its event is abandoned.
    pub horizon: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
    /// Requests in flight at most, over all apps.
    pub concurrency: usize,
    /// Requests in flight at most for one app.
    pub per_app: usize,
    /// A receiver that has not answered within this has failed the attempt.
    pub timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            horizon: Duration::from_secs(6 * 3600),
            max_backoff: Duration::from_secs(60),
            concurrency: 32,
            per_app: 4,
            timeout: Duration::from_secs(5),
        }
    }
}

/// What the dispatcher did since the server started (for `/metrics`).
#[derive(Debug, Default)]
pub struct Counters {
    pub delivered: AtomicU64,
    /// Failed attempts that will be tried again.
    pub retried: AtomicU64,
    pub abandoned: AtomicU64,
    /// Queued for a group the app stopped listening to before delivery.
    pub dropped: AtomicU64,
}

/// The key whose callbacks go out in order.
type OrderKey = (SdkAppId, String);

enum Outcome {
    Delivered,
    /// The app no longer listens to the group.
    Dropped,
    /// The URL is not allowed (the address rules): no retry can help.
    Refused(String),
    Failed(String),
}

/// Delivers the outbox; see the module's text.
pub struct Dispatcher {
    store: Arc<dyn Store>,
    directory: Directory,
    rules: Rules,
    settings: Settings,
    counters: Arc<Counters>,
}

/// The wait before attempt `attempts + 1`: none after the first failure (as TRTC), then 1, 2,
/// 4, … s up to `max`.
fn backoff(attempts: u32, max: Duration) -> Duration {
    if attempts <= 1 {
        return Duration::ZERO;
    }
    Duration::from_secs(1u64 << (attempts - 2).min(16)).min(max)
}

/// The body as sent (and signed): TRTC's four fields, `EventInfo` as it was queued.
fn body(q: &QueuedCallback, now_ms: i64) -> String {
    format!(
        r#"{{"EventGroupId":{},"EventType":{},"CallbackTs":{now_ms},"EventInfo":{}}}"#,
        q.cb.group, q.cb.event_type, q.cb.info_json
    )
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        directory: Directory,
        rules: Rules,
        settings: Settings,
    ) -> Self {
        Dispatcher {
            store,
            directory,
            rules,
            settings,
            counters: Arc::default(),
        }
    }

    pub fn counters(&self) -> Arc<Counters> {
        self.counters.clone()
    }

    /// Runs until the runtime stops; what is queued when it stops is delivered by the next run.
    pub async fn run(self) {
        let this = Arc::new(self);
        let mut in_flight: HashSet<OrderKey> = HashSet::new();
        let mut per_app: HashMap<SdkAppId, usize> = HashMap::new();
        let mut running: JoinSet<(QueuedCallback, Outcome)> = JoinSet::new();
        loop {
            let store = this.store.clone();
            let heads = match tokio::task::spawn_blocking(move || store.callback_heads(4096)).await
            {
                Ok(Ok(h)) => h,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "reading the callback outbox failed");
                    Vec::new()
                }
                Err(_) => Vec::new(),
            };
            let now = unix_ms();
            for q in heads {
                let key = (q.cb.app, q.cb.order_key.clone());
                let app_busy = per_app.get(&q.cb.app).copied().unwrap_or(0);
                if q.next_ms > now
                    || in_flight.contains(&key)
                    || running.len() >= this.settings.concurrency
                    || app_busy >= this.settings.per_app
                {
                    continue;
                }
                in_flight.insert(key);
                *per_app.entry(q.cb.app).or_default() += 1;
                let d = this.clone();
                running.spawn(async move {
                    let outcome = d.deliver(&q).await;
                    (q, outcome)
                });
            }
            let tick = tokio::time::sleep(Duration::from_millis(200));
            tokio::pin!(tick);
            loop {
                tokio::select! {
                    Some(done) = running.join_next() => {
                        let Ok((q, outcome)) = done else { continue };
                        in_flight.remove(&(q.cb.app, q.cb.order_key.clone()));
                        if let Some(n) = per_app.get_mut(&q.cb.app) {
                            *n = n.saturating_sub(1);
                        }
                        this.settle(q, outcome).await;
                        // A settled head may free the next of its key: look again at once.
                        break;
                    }
                    _ = &mut tick => break,
                }
            }
        }
    }

    async fn deliver(&self, q: &QueuedCallback) -> Outcome {
        let Some(group) = Group::from_id(q.cb.group) else {
            return Outcome::Dropped;
        };
        let Some((url, key)) = self.directory.target(q.cb.app, group) else {
            return Outcome::Dropped;
        };
        let checked = match self.rules.check(&url, &["http", "https"]).await {
            Ok(c) => c,
            Err(e) => return Outcome::Refused(format!("the {} callback URL: {e}", group.name())),
        };
        // TUICallKit's callbacks are their stored body, with the command in the URL's query.
        let (url, body) = if group == Group::Calls {
            let command = call_command(q.cb.event_type);
            let sep = if url.contains('?') { '&' } else { '?' };
            let url = format!(
                "{url}{sep}SdkAppid={}&CallbackCommand={command}&contenttype=json&ClientIP=&OptPlatform=Hearth",
                q.cb.app.0
            );
            (url, q.cb.info_json.clone())
        } else {
            (url, body(q, unix_ms()))
        };
        let mut req = checked
            .client(self.settings.timeout)
            .post(&url)
            .header("Content-Type", "application/json")
            .header("SdkAppId", q.cb.app.0.to_string());
        if !key.is_empty() {
            req = req.header("Sign", sign(&key, body.as_bytes()));
        }
        match req.body(body).send().await {
            Ok(r) if r.status().as_u16() == 200 => Outcome::Delivered,
            Ok(r) => Outcome::Failed(format!("HTTP {}", r.status().as_u16())),
            Err(e) if e.is_timeout() => Outcome::Failed(format!(
                "no answer within {} s",
                self.settings.timeout.as_secs()
            )),
            Err(e) => Outcome::Failed(e.without_url().to_string()),
        }
    }

    /// Records how an attempt went.
    async fn settle(&self, q: QueuedCallback, outcome: Outcome) {
        let store = self.store.clone();
        let now = unix_ms();
        let c = &self.counters;
        let write = match outcome {
            Outcome::Delivered => {
                c.delivered.fetch_add(1, Ordering::Relaxed);
                tokio::task::spawn_blocking(move || store.callback_delivered(q.id)).await
            }
            Outcome::Dropped => {
                c.dropped.fetch_add(1, Ordering::Relaxed);
                tokio::task::spawn_blocking(move || store.callback_delivered(q.id)).await
            }
            Outcome::Refused(why) => {
                tracing::warn!(app = q.cb.app.0, error = %why, "a callback was abandoned");
                c.abandoned.fetch_add(1, Ordering::Relaxed);
                tokio::task::spawn_blocking(move || store.callback_abandoned(q.id, now, &why)).await
            }
            Outcome::Failed(why) => {
                let attempts = q.attempts + 1;
                let age = Duration::from_millis((now - q.cb.created_ms).max(0) as u64);
                if age >= self.settings.horizon {
                    tracing::warn!(app = q.cb.app.0, attempts, error = %why,
                        "a callback was abandoned after its retry horizon");
                    c.abandoned.fetch_add(1, Ordering::Relaxed);
                    tokio::task::spawn_blocking(move || store.callback_abandoned(q.id, now, &why))
                        .await
                } else {
                    c.retried.fetch_add(1, Ordering::Relaxed);
                    let next =
                        now + backoff(attempts, self.settings.max_backoff).as_millis() as i64;
                    tracing::debug!(app = q.cb.app.0, attempts, error = %why, "a callback failed; it will be retried");
                    tokio::task::spawn_blocking(move || {
                        store.callback_failed(q.id, attempts, next, &why)
                    })
                    .await
                }
            }
        };
        if let Ok(Err(e)) = write {
            tracing::warn!(error = %e, "recording a callback's delivery failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_up_to_the_cap() {
        let max = Duration::from_secs(30);
        let waits: Vec<u64> = (1..=8).map(|a| backoff(a, max).as_secs()).collect();
        assert_eq!(waits, [0, 1, 2, 4, 8, 16, 30, 30]);
    }
}
