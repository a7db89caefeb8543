//! The TURN servers a client is told of: short-lived credentials for the user (the TURN REST
//! API's shared-secret scheme, `hearth_auth::turn_credential`) with the configured URLs, in
//! the WebSocket protocol's `entered` answer and in WHIP/WHEP `Link` headers (RFC 9725 §4.6).

use axum::http::HeaderValue;
use hearth_auth::turn_credential;
use hearth_types::UnixSecs;
use serde::Serialize;

/// The configured TURN servers and their shared secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TurnServers {
    /// `turn:` and `turns:` URLs (RFC 7065), e.g. `turn:turn.example.com:3478?transport=udp`.
    pub urls: Vec<String>,
    /// The secret the TURN server shares (coturn's `static-auth-secret`).
    pub secret: String,
    /// How long a handed-out credential is valid.
    pub ttl_secs: u32,
}

/// One entry of an `RTCPeerConnection`'s `iceServers`, as the browser takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IceServer {
    pub urls: Vec<String>,
    pub username: String,
    pub credential: String,
}

impl TurnServers {
    /// The servers with a credential for `user` valid from `now`.
    pub fn for_user(&self, user: &str, now: UnixSecs) -> IceServer {
        let c = turn_credential(&self.secret, user, now, self.ttl_secs);
        IceServer {
            urls: self.urls.clone(),
            username: c.username,
            credential: c.password,
        }
    }
}

/// Quotes a `Link` parameter value (RFC 8288 quoted-string).
fn quoted(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// One `Link` header per URL: `<turn:…>; rel="ice-server"; username="…"; credential="…";
/// credential-type="password"`.
pub fn link_headers(s: &IceServer) -> Vec<HeaderValue> {
    s.urls
        .iter()
        .filter_map(|url| {
            let v = format!(
                "<{url}>; rel=\"ice-server\"; username={}; credential={}; credential-type=\"password\"",
                quoted(&s.username),
                quoted(&s.credential)
            );
            HeaderValue::from_str(&v).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_header_per_url_with_the_users_credential() {
        let t = TurnServers {
            urls: vec![
                "turn:turn.example.com:3478?transport=udp".into(),
                "turns:turn.example.com:443?transport=tcp".into(),
            ],
            secret: "north".into(),
            ttl_secs: 3600,
        };
        let s = t.for_user("alice", UnixSecs(1_699_996_400));
        assert_eq!(s.username, "1700000000:alice");
        let links = link_headers(&s);
        assert_eq!(links.len(), 2);
        assert_eq!(
            links[1].to_str().unwrap(),
            "<turns:turn.example.com:443?transport=tcp>; rel=\"ice-server\"; \
             username=\"1700000000:alice\"; credential=\"Cd/49soE35ICqcJF/bCTn8Z4OyE=\"; \
             credential-type=\"password\""
        );
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
