//! Limits at the client edge: how fast one WebSocket may send (messages and bytes, a token
//! bucket per socket), how many sockets one user and one application may hold open at once,
//! and the counters `/metrics` shows of what they refused.

use crate::proto::ProtoError;
use hearth_sfu::{Over, Quota};
use hearth_types::{SdkAppId, UserId};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

/// The configured limits (`[limits]`); 0 turns one off.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EdgeLimits {
    /// Messages one socket may send per second, on average.
    pub messages_per_sec: u32,
    /// Messages one socket may send at once after being quiet (the bucket's size).
    pub message_burst: u32,
    /// Bytes one socket may send per second, on average (a second's worth may come at once).
    pub bytes_per_sec: u32,
    /// WebSocket protocol sockets (room and calling) one user of an app may hold open.
    pub sockets_per_user: u32,
    /// WebSocket protocol sockets one application may hold open.
    pub sockets_per_app: u32,
}

impl Default for EdgeLimits {
    fn default() -> Self {
        EdgeLimits {
            messages_per_sec: 50,
            message_burst: 100,
            bytes_per_sec: 256 * 1024,
            sockets_per_user: 8,
            sockets_per_app: 10_000,
        }
    }
}

/// What the limits refused since the start.
#[derive(Debug, Default)]
pub struct LimitCounters {
    /// Sockets closed for sending too many messages or bytes.
    pub flooding: AtomicU64,
    /// Sockets refused at entry or login: the user's limit.
    pub user_sockets: AtomicU64,
    /// Sockets refused at entry or login: the application's limit.
    pub app_sockets: AtomicU64,
}

/// One socket's send budget: messages and bytes refill continuously.
pub(crate) struct Flow {
    limits: EdgeLimits,
    counters: Arc<LimitCounters>,
    messages: f64,
    bytes: f64,
    at: Instant,
}

impl Flow {
    pub fn new(sockets: &Sockets, now: Instant) -> Self {
        let limits = sockets.limits;
        Flow {
            limits,
            counters: sockets.counters.clone(),
            messages: f64::from(limits.message_burst.max(limits.messages_per_sec)),
            bytes: f64::from(limits.bytes_per_sec),
            at: now,
        }
    }

    /// Takes one message of `len` bytes; the error closes the socket.
    pub fn take(&mut self, len: usize, now: Instant) -> Result<(), ProtoError> {
        let taken = self.spend(len, now);
        if taken.is_err() {
            self.counters.flooding.fetch_add(1, Relaxed);
        }
        taken
    }

    fn spend(&mut self, len: usize, now: Instant) -> Result<(), ProtoError> {
        let l = self.limits;
        let secs = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        if l.messages_per_sec > 0 {
            let cap = f64::from(l.message_burst.max(l.messages_per_sec));
            self.messages = (self.messages + secs * f64::from(l.messages_per_sec)).min(cap);
            if self.messages < 1.0 {
                return Err(ProtoError::Flooding(format!(
                    "more than {} messages per second (bursts of {}): closing",
                    l.messages_per_sec,
                    l.message_burst.max(l.messages_per_sec)
                )));
            }
            self.messages -= 1.0;
        }
        if l.bytes_per_sec > 0 {
            let cap = f64::from(l.bytes_per_sec);
            self.bytes = (self.bytes + secs * cap).min(cap);
            if self.bytes < len as f64 {
                return Err(ProtoError::Flooding(format!(
                    "more than {} bytes per second: closing",
                    l.bytes_per_sec
                )));
            }
            self.bytes -= len as f64;
        }
        Ok(())
    }
}

/// Open sockets per application and user (signaling, not the media path: one short lock per
/// socket opened or closed).
pub(crate) struct Sockets {
    limits: EdgeLimits,
    open: Quota,
    pub counters: Arc<LimitCounters>,
}

/// A socket counted against its user and application until dropped.
pub(crate) struct SocketHold {
    sockets: Arc<Sockets>,
    app: SdkAppId,
    user: UserId,
}

impl Sockets {
    pub fn new(limits: EdgeLimits) -> Arc<Self> {
        Arc::new(Sockets {
            limits,
            open: Quota::new(limits.sockets_per_user, limits.sockets_per_app),
            counters: Arc::default(),
        })
    }

    /// Counts a socket of `user`, unless that would pass a limit.
    pub fn hold(self: &Arc<Self>, app: SdkAppId, user: &str) -> Result<SocketHold, ProtoError> {
        let user = UserId(user.to_owned());
        match self.open.try_hold(app, &user) {
            Ok(()) => Ok(SocketHold {
                sockets: self.clone(),
                app,
                user,
            }),
            Err(Over::App(n)) => {
                self.counters.app_sockets.fetch_add(1, Relaxed);
                Err(ProtoError::AtLimit(format!(
                    "application {} has {n} sockets open, its limit",
                    app.0
                )))
            }
            Err(Over::User(n)) => {
                self.counters.user_sockets.fetch_add(1, Relaxed);
                Err(ProtoError::AtLimit(format!(
                    "user {} has {n} sockets open, the limit per user",
                    user.0
                )))
            }
        }
    }

    /// Sockets open now (all applications).
    pub fn open(&self) -> u64 {
        self.open.held()
    }
}

impl Drop for SocketHold {
    fn drop(&mut self) {
        self.sockets.open.release(self.app, &self.user);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits() -> EdgeLimits {
        EdgeLimits {
            messages_per_sec: 10,
            message_burst: 20,
            bytes_per_sec: 1000,
            sockets_per_user: 2,
            sockets_per_app: 3,
        }
    }

    #[test]
    fn a_burst_passes_then_the_rate_is_held() {
        let t = Instant::now();
        let s = Sockets::new(limits());
        let mut f = Flow::new(&s, t);
        assert!((0..20).all(|_| f.take(10, t).is_ok()));
        assert!(matches!(f.take(10, t), Err(ProtoError::Flooding(_))));
        assert_eq!(s.counters.flooding.load(Relaxed), 1);
        // 100 ms later one more message's worth came back.
        let later = t + Duration::from_millis(100);
        let mut f = Flow::new(&s, t);
        (0..20).for_each(|_| f.take(1, t).unwrap());
        assert!(f.take(1, later).is_ok());
        assert!(f.take(1, later).is_err());
    }

    #[test]
    fn bytes_are_limited_apart_from_messages() {
        let t = Instant::now();
        let mut f = Flow::new(&Sockets::new(limits()), t);
        assert!(f.take(900, t).is_ok());
        let e = f.take(200, t).unwrap_err();
        assert!(e.parts().1.contains("1000 bytes per second"), "{e:?}");
        assert!(f.take(200, t + Duration::from_millis(200)).is_ok());
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let t = Instant::now();
        let off = EdgeLimits {
            messages_per_sec: 0,
            bytes_per_sec: 0,
            ..limits()
        };
        let mut f = Flow::new(&Sockets::new(off), t);
        assert!((0..10_000).all(|_| f.take(60_000, t).is_ok()));
    }

    #[test]
    fn sockets_count_per_user_and_app_and_free_on_drop() {
        let s = Sockets::new(limits());
        let app = SdkAppId(1);
        let a1 = s.hold(app, "a").unwrap();
        let _a2 = s.hold(app, "a").unwrap();
        assert!(matches!(s.hold(app, "a"), Err(ProtoError::AtLimit(_))));
        let _b = s.hold(app, "b").unwrap();
        // The app is full: a new user is refused too.
        assert!(s.hold(app, "c").is_err());
        // Another app is not.
        let _other = s.hold(SdkAppId(2), "c").unwrap();
        drop(a1);
        assert!(s.hold(app, "c").is_ok());
        assert_eq!(s.counters.user_sockets.load(Relaxed), 1);
        assert_eq!(s.counters.app_sockets.load(Relaxed), 1);
        assert_eq!(s.open(), 3);
    }
}
