//! Media sessions (WHIP and WHEP sessions, protocol clients) per user and per application,
//! across every worker: a join is refused once the user or the application holds its limit.
//! Touched when a session is registered or ends, never per packet: one short lock.
//!
//! A session is counted where its presence lives (the room's home worker, which also holds the
//! presence of viewers another worker mirrors), so each counts once. The check before a join
//! and the count at its registration are apart: joins in flight on several workers at once
//! may pass a limit by as many.

use crate::command::SfuError;
use hearth_types::{SdkAppId, UserId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

#[derive(Default)]
struct AppSessions {
    total: u32,
    per_user: HashMap<UserId, u32>,
}

/// The limits (0: none) and what they hold.
#[derive(Default)]
pub struct SessionQuota {
    per_user: u32,
    per_app: u32,
    held: Mutex<HashMap<SdkAppId, AppSessions>>,
    /// Joins refused for the user's limit, and for the application's.
    pub refused_user: AtomicU64,
    pub refused_app: AtomicU64,
}

impl SessionQuota {
    pub fn new(per_user: u32, per_app: u32) -> Self {
        SessionQuota {
            per_user,
            per_app,
            ..Default::default()
        }
    }

    /// Refuses a new session of `user` when a limit is reached.
    pub fn check(&self, app: SdkAppId, user: &UserId) -> Result<(), SfuError> {
        if self.per_user == 0 && self.per_app == 0 {
            return Ok(());
        }
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let Some(a) = held.get(&app) else {
            return Ok(());
        };
        if self.per_app > 0 && a.total >= self.per_app {
            self.refused_app.fetch_add(1, Relaxed);
            return Err(SfuError::TooManySessions(format!(
                "application {} holds {} media sessions, its limit",
                app.0, self.per_app
            )));
        }
        let mine = a.per_user.get(user).copied().unwrap_or(0);
        if self.per_user > 0 && mine >= self.per_user {
            self.refused_user.fetch_add(1, Relaxed);
            return Err(SfuError::TooManySessions(format!(
                "user {} holds {} media sessions, the limit per user",
                user.0, self.per_user
            )));
        }
        Ok(())
    }

    pub fn hold(&self, app: SdkAppId, user: &UserId) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let a = held.entry(app).or_default();
        a.total += 1;
        *a.per_user.entry(user.clone()).or_default() += 1;
    }

    pub fn release(&self, app: SdkAppId, user: &UserId) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let Some(a) = held.get_mut(&app) else {
            return;
        };
        a.total = a.total.saturating_sub(1);
        if let Some(n) = a.per_user.get_mut(user) {
            *n -= 1;
            if *n == 0 {
                a.per_user.remove(user);
            }
        }
        if a.total == 0 {
            held.remove(&app);
        }
    }

    /// Sessions held now (all applications).
    pub fn held(&self) -> u64 {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.values().map(|a| u64::from(a.total)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_and_apps_are_limited_and_released() {
        let q = SessionQuota::new(2, 3);
        let (app, a, b) = (SdkAppId(1), UserId("a".into()), UserId("b".into()));
        q.hold(app, &a);
        q.hold(app, &a);
        assert!(matches!(
            q.check(app, &a),
            Err(SfuError::TooManySessions(_))
        ));
        assert!(q.check(app, &b).is_ok());
        q.hold(app, &b);
        // The app is full for everyone; another app is not.
        assert!(q.check(app, &UserId("c".into())).is_err());
        assert!(q.check(SdkAppId(2), &a).is_ok());
        q.release(app, &a);
        assert!(q.check(app, &a).is_ok());
        assert_eq!(q.held(), 2);
        assert_eq!(q.refused_user.load(Relaxed), 1);
        assert_eq!(q.refused_app.load(Relaxed), 1);
        let off = SessionQuota::new(0, 0);
        (0..100).for_each(|_| off.hold(app, &a));
        assert!(off.check(app, &a).is_ok());
    }
}
