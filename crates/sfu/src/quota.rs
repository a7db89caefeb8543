//! Things held per user and per application under a limit on each ([`Quota`]), and its use for
//! media sessions (WHIP and WHEP sessions, protocol clients) across every worker: a join is
//! refused once the user or the application holds its limit.
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
struct AppHeld {
    total: u32,
    per_user: HashMap<UserId, u32>,
}

/// Which limit a new one would pass, and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    User(u32),
    App(u32),
}

/// Things held per user and per application, with a limit on each (0: none). Shared by the
/// media sessions here and the client edge's sockets.
#[derive(Default)]
pub struct Quota {
    per_user: u32,
    per_app: u32,
    held: Mutex<HashMap<SdkAppId, AppHeld>>,
}

impl Quota {
    pub fn new(per_user: u32, per_app: u32) -> Self {
        Quota {
            per_user,
            per_app,
            held: Mutex::default(),
        }
    }

    fn over(
        &self,
        held: &HashMap<SdkAppId, AppHeld>,
        app: SdkAppId,
        user: &UserId,
    ) -> Option<Over> {
        let a = held.get(&app)?;
        if self.per_app > 0 && a.total >= self.per_app {
            return Some(Over::App(self.per_app));
        }
        let mine = a.per_user.get(user).copied().unwrap_or(0);
        (self.per_user > 0 && mine >= self.per_user).then_some(Over::User(self.per_user))
    }

    /// Whether one more of `user`'s would pass a limit.
    pub fn check(&self, app: SdkAppId, user: &UserId) -> Result<(), Over> {
        if self.per_user == 0 && self.per_app == 0 {
            return Ok(());
        }
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        self.over(&held, app, user).map_or(Ok(()), Err)
    }

    /// Checks and holds one more at once.
    pub fn try_hold(&self, app: SdkAppId, user: &UserId) -> Result<(), Over> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(over) = self.over(&held, app, user) {
            return Err(over);
        }
        add(&mut held, app, user);
        Ok(())
    }

    pub fn hold(&self, app: SdkAppId, user: &UserId) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        add(&mut held, app, user);
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

    /// Held now (all applications).
    pub fn held(&self) -> u64 {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.values().map(|a| u64::from(a.total)).sum()
    }
}

fn add(held: &mut HashMap<SdkAppId, AppHeld>, app: SdkAppId, user: &UserId) {
    let a = held.entry(app).or_default();
    a.total += 1;
    *a.per_user.entry(user.clone()).or_default() += 1;
}

/// Media sessions per user and application, and the joins refused for them.
#[derive(Default)]
pub struct SessionQuota {
    pub quota: Quota,
    pub refused_user: AtomicU64,
    pub refused_app: AtomicU64,
}

impl SessionQuota {
    pub fn new(per_user: u32, per_app: u32) -> Self {
        SessionQuota {
            quota: Quota::new(per_user, per_app),
            ..Default::default()
        }
    }

    /// Refuses a new session of `user` when a limit is reached.
    pub fn check(&self, app: SdkAppId, user: &UserId) -> Result<(), SfuError> {
        self.quota.check(app, user).map_err(|over| match over {
            Over::App(n) => {
                self.refused_app.fetch_add(1, Relaxed);
                SfuError::TooManySessions(format!(
                    "application {} holds {n} media sessions, its limit",
                    app.0
                ))
            }
            Over::User(n) => {
                self.refused_user.fetch_add(1, Relaxed);
                SfuError::TooManySessions(format!(
                    "user {} holds {n} media sessions, the limit per user",
                    user.0
                ))
            }
        })
    }

    pub fn hold(&self, app: SdkAppId, user: &UserId) {
        self.quota.hold(app, user);
    }

    pub fn release(&self, app: SdkAppId, user: &UserId) {
        self.quota.release(app, user);
    }

    pub fn held(&self) -> u64 {
        self.quota.held()
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
