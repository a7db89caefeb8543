//! Per-SecretId, per-action request limits (spec §2.1): a token bucket per pair that holds
//! `requests` tokens and refills them over `per_secs` seconds.

use crate::catalog::RateLimit;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets not touched for this long are dropped when the map is swept.
const IDLE_SECS: f64 = 60.0;
/// Sweep once the map holds this many buckets.
const SWEEP_AT: usize = 10_000;

#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<(String, &'static str), Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl RateLimiter {
    /// Takes one token for `secret_id` calling `action`; false when the limit is reached.
    pub fn admit(
        &self,
        secret_id: &str,
        action: &'static str,
        limit: RateLimit,
        now: Instant,
    ) -> bool {
        let capacity = f64::from(limit.requests);
        let per_sec = capacity / f64::from(limit.per_secs);
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= SWEEP_AT {
            buckets.retain(|_, b| now.saturating_duration_since(b.at).as_secs_f64() < IDLE_SECS);
        }
        let b = buckets
            .entry((secret_id.to_owned(), action))
            .or_insert(Bucket {
                tokens: capacity,
                at: now,
            });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * per_sec).min(capacity);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const TWENTY: RateLimit = RateLimit {
        requests: 20,
        per_secs: 1,
    };

    #[test]
    fn allows_the_limit_then_refuses_then_refills() {
        let l = RateLimiter::default();
        let t = Instant::now();
        assert!((0..20).all(|_| l.admit("k", "A", TWENTY, t)));
        assert!(!l.admit("k", "A", TWENTY, t));
        assert!(l.admit("k", "A", TWENTY, t + Duration::from_millis(60)));
        assert!(!l.admit("k", "A", TWENTY, t + Duration::from_millis(60)));
    }

    #[test]
    fn keys_and_actions_have_their_own_buckets() {
        let l = RateLimiter::default();
        let t = Instant::now();
        assert!((0..20).all(|_| l.admit("k", "A", TWENTY, t)));
        assert!(l.admit("other", "A", TWENTY, t));
        assert!(l.admit("k", "B", TWENTY, t));
    }

    #[test]
    fn slow_limits_refill_slowly() {
        let l = RateLimiter::default();
        let once = RateLimit {
            requests: 1,
            per_secs: 15,
        };
        let t = Instant::now();
        assert!(l.admit("k", "U", once, t));
        assert!(!l.admit("k", "U", once, t + Duration::from_secs(14)));
        assert!(l.admit("k", "U", once, t + Duration::from_secs(16)));
    }
}
