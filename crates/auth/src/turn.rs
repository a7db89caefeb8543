//! Short-lived TURN credentials in the TURN REST API's shared-secret scheme (coturn's
//! `use-auth-secret`; draft-uberti-behave-turn-rest): the username is `<expiry>:<user>` (Unix
//! seconds) and the password `base64(HMAC-SHA1(secret, username))`. The TURN server recomputes
//! the password from the username and refuses it once the expiry has passed.

use base64::Engine as _;
use hearth_types::UnixSecs;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// A TURN username and password valid until `expires`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnCredential {
    pub username: String,
    pub password: String,
    pub expires: UnixSecs,
}

/// The credential of `user` for `ttl_secs` from `now`, under the shared `secret`.
pub fn turn_credential(secret: &str, user: &str, now: UnixSecs, ttl_secs: u32) -> TurnCredential {
    let expires = UnixSecs(now.0 + i64::from(ttl_secs));
    let username = format!("{}:{user}", expires.0);
    TurnCredential {
        password: turn_password(secret, &username),
        username,
        expires,
    }
}

/// The password the TURN server expects for `username`.
pub fn turn_password(secret: &str, username: &str) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checked against Python's
    /// `base64.b64encode(hmac.new(b"north", b"1700000000:alice", hashlib.sha1).digest())`.
    #[test]
    fn the_password_is_base64_hmac_sha1_of_the_username() {
        let c = turn_credential("north", "alice", UnixSecs(1_699_996_400), 3600);
        assert_eq!(c.username, "1700000000:alice");
        assert_eq!(c.expires, UnixSecs(1_700_000_000));
        assert_eq!(c.password, "Cd/49soE35ICqcJF/bCTn8Z4OyE=");
    }
}
