//! Console sign-in sessions: a random token (the HttpOnly cookie) per signed-in credential,
//! with its CSRF token and an absolute expiry. Kept in memory: a restart signs everyone out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One signed-in credential.
#[derive(Clone, Debug)]
pub struct Session {
    pub secret_id: String,
    /// Sent back in the `X-Hearth-CSRF` header of every action.
    pub csrf: String,
    pub expires: Instant,
}

/// Sessions by cookie token.
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    ttl: Duration,
}

/// Sessions kept at most; signing in beyond drops the expired ones first, then the oldest.
const MAX_SESSIONS: usize = 10_000;

fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

impl Sessions {
    pub fn new(ttl: Duration) -> Self {
        Sessions {
            map: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session; returns its cookie token and the session.
    pub fn open(&self, secret_id: &str, now: Instant) -> (String, Session) {
        let session = Session {
            secret_id: secret_id.to_owned(),
            csrf: random_token(),
            expires: now + self.ttl,
        };
        let token = random_token();
        let mut map = self.lock();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.expires > now);
            if map.len() >= MAX_SESSIONS {
                if let Some(oldest) = map
                    .iter()
                    .min_by_key(|(_, s)| s.expires)
                    .map(|(k, _)| k.clone())
                {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(token.clone(), session.clone());
        (token, session)
    }

    /// The live session of a cookie token; an expired one is forgotten.
    pub fn get(&self, token: &str, now: Instant) -> Option<Session> {
        let mut map = self.lock();
        match map.get(token) {
            Some(s) if s.expires > now => Some(s.clone()),
            Some(_) => {
                map.remove(token);
                None
            }
            None => None,
        }
    }

    pub fn close(&self, token: &str) {
        self.lock().remove(token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_close() {
        let s = Sessions::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let (token, session) = s.open("AKID1", t0);
        assert_eq!(token.len(), 64);
        assert_ne!(session.csrf, token);
        assert_eq!(
            s.get(&token, t0 + Duration::from_secs(9))
                .unwrap()
                .secret_id,
            "AKID1"
        );
        assert!(s.get(&token, t0 + Duration::from_secs(10)).is_none());
        assert!(
            s.get(&token, t0).is_none(),
            "an expired session is forgotten"
        );
        let (token, _) = s.open("AKID1", t0);
        s.close(&token);
        assert!(s.get(&token, t0).is_none());
        assert!(s.get("", t0).is_none());
    }
}
