//! Outbound rules: Hearth fetches and pushes to URLs that callers choose (storage endpoints,
//! image URLs, later stream URLs, LLM endpoints, callbacks). A URL is used only if its scheme
//! is one the use allows and every address its host resolves to is public, or allowed by the
//! operator (`outbound.allow`: CIDRs or host names). The HTTP client it hands out connects to
//! the addresses that were checked (no second lookup to rebind) and follows no redirects.

mod proxy;

pub use proxy::Proxy;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use url::Url;

/// Why a URL is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OutboundError {
    #[error("not a valid URL: {0}")]
    Malformed(String),
    #[error("scheme {0} is not allowed here")]
    Scheme(String),
    #[error("host {host} resolves to {addr}, a {class} address Hearth does not reach (allow it with outbound.allow)")]
    Forbidden {
        host: String,
        addr: IpAddr,
        class: &'static str,
    },
    #[error("host {0} could not be resolved")]
    Unresolved(String),
}

/// One allowed destination of the operator's list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allow {
    Net(IpAddr, u8),
    Host(String),
}

/// The operator's exceptions to the address rules.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    allow: Vec<Allow>,
}

/// A URL that passed the rules, with the addresses to connect to.
#[derive(Debug, Clone)]
pub struct Checked {
    pub url: Url,
    pub addrs: Vec<SocketAddr>,
}

impl Rules {
    /// Parses `outbound.allow` entries: `a.b.c.d/n`, `ip`, `[v6]/n` or a host name.
    pub fn new<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let mut allow = Vec::new();
        for e in entries {
            let e = e.as_ref().trim();
            if e.is_empty() {
                continue;
            }
            let (addr, bits) = match e.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (e, None),
            };
            match addr
                .trim_matches(|c| c == '[' || c == ']')
                .parse::<IpAddr>()
            {
                Ok(ip) => {
                    let max = if ip.is_ipv4() { 32 } else { 128 };
                    let bits = match bits {
                        Some(b) => b
                            .parse::<u8>()
                            .ok()
                            .filter(|b| *b <= max)
                            .ok_or_else(|| format!("bad prefix length in {e:?}"))?,
                        None => max,
                    };
                    allow.push(Allow::Net(ip, bits));
                }
                Err(_) if bits.is_none() && is_host_name(e) => {
                    allow.push(Allow::Host(e.to_ascii_lowercase()))
                }
                Err(_) => return Err(format!("{e:?} is neither a CIDR nor a host name")),
            }
        }
        Ok(Rules { allow })
    }

    /// Checks `raw` for a use that allows `schemes`, resolving its host.
    pub async fn check(&self, raw: &str, schemes: &[&str]) -> Result<Checked, OutboundError> {
        let url = Url::parse(raw).map_err(|e| OutboundError::Malformed(e.to_string()))?;
        if !schemes.contains(&url.scheme()) {
            return Err(OutboundError::Scheme(url.scheme().to_owned()));
        }
        let host = url
            .host_str()
            .ok_or_else(|| OutboundError::Malformed("no host".into()))?
            .trim_matches(|c| c == '[' || c == ']')
            .to_ascii_lowercase();
        let port = url
            .port_or_known_default()
            .ok_or_else(|| OutboundError::Malformed("no port".into()))?;
        let host_allowed = self.allow.iter().any(|a| *a == Allow::Host(host.clone()));
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|_| OutboundError::Unresolved(host.clone()))?
                .collect(),
        };
        if addrs.is_empty() {
            return Err(OutboundError::Unresolved(host));
        }
        if !host_allowed {
            for a in &addrs {
                if let Some(class) = restricted(a.ip()) {
                    if !self.allows_ip(a.ip()) {
                        return Err(OutboundError::Forbidden {
                            host,
                            addr: a.ip(),
                            class,
                        });
                    }
                }
            }
        }
        Ok(Checked { url, addrs })
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|a| match a {
            Allow::Net(net, bits) => in_net(ip, *net, *bits),
            Allow::Host(_) => false,
        })
    }
}

impl Checked {
    /// An HTTP client that reaches this URL's host only at the checked addresses.
    pub fn client(&self, timeout: Duration) -> reqwest::Client {
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(timeout);
        if let Some(host) = self.url.host_str() {
            if host.parse::<IpAddr>().is_err() {
                b = b.resolve_to_addrs(host, &self.addrs);
            }
        }
        b.build().expect("a client with these options builds")
    }
}

/// A whole answer of a caller's endpoint (`what` names it in the errors): a 2xx status and at
/// most `max` bytes of body, read as it comes.
pub async fn answer_within(
    mut resp: reqwest::Response,
    max: usize,
    what: &str,
) -> Result<Vec<u8>, String> {
    if !resp.status().is_success() {
        return Err(format!("{what} answered HTTP {}", resp.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(c) = resp
        .chunk()
        .await
        .map_err(|e| format!("{what}'s answer broke off: {}", e.without_url()))?
    {
        if body.len() + c.len() > max {
            return Err(format!("{what}'s answer is larger than {} KiB", max >> 10));
        }
        body.extend_from_slice(&c);
    }
    Ok(body)
}

fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// The class of an address Hearth does not reach by default, if it is one.
pub fn restricted(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v) => restricted_v4(v),
        IpAddr::V6(v) => {
            if let Some(v4) = v.to_ipv4_mapped() {
                return restricted_v4(v4);
            }
            let seg = v.segments();
            if v.is_loopback() {
                Some("loopback")
            } else if v.is_unspecified() {
                Some("unspecified")
            } else if seg[0] & 0xfe00 == 0xfc00 {
                Some("private")
            } else if seg[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if v.is_multicast() {
                Some("multicast")
            } else {
                None
            }
        }
    }
}

fn restricted_v4(v: Ipv4Addr) -> Option<&'static str> {
    let o = v.octets();
    if v.is_loopback() {
        Some("loopback")
    } else if v == Ipv4Addr::new(169, 254, 169, 254) || v == Ipv4Addr::new(100, 100, 100, 200) {
        Some("metadata")
    } else if v.is_private() {
        Some("private")
    } else if v.is_link_local() {
        Some("link-local")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("shared (CGNAT)")
    } else if v.is_unspecified() || o[0] == 0 {
        Some("unspecified")
    } else if v.is_multicast() || v.is_broadcast() || o[0] >= 240 {
        Some("reserved")
    } else {
        None
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V4(_)) => a
            .to_ipv4_mapped()
            .is_some_and(|v4| in_net(IpAddr::V4(v4), net, bits)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn private_loopback_link_local_and_metadata_are_refused_by_default() {
        let r = Rules::default();
        rt().block_on(async {
            for url in [
                "http://127.0.0.1:9000/b",
                "http://10.1.2.3/",
                "http://192.168.1.1/",
                "http://172.20.0.1/",
                "http://169.254.169.254/latest/meta-data",
                "http://[::1]:80/",
                "http://[fd00::1]/",
                "http://[::ffff:127.0.0.1]/",
                "http://0.0.0.0/",
                "http://100.64.0.1/",
            ] {
                assert!(
                    matches!(
                        r.check(url, &["http"]).await,
                        Err(OutboundError::Forbidden { .. })
                    ),
                    "{url}"
                );
            }
            assert!(r.check("http://8.8.8.8/x", &["http"]).await.is_ok());
            assert_eq!(
                r.check("file:///etc/passwd", &["http", "https"])
                    .await
                    .unwrap_err(),
                OutboundError::Scheme("file".into())
            );
        });
    }

    #[test]
    fn the_operator_allows_cidrs_and_host_names() {
        let r = Rules::new(&["127.0.0.0/8", "localhost"]).unwrap();
        rt().block_on(async {
            assert!(r.check("http://127.0.0.1:9000/b", &["http"]).await.is_ok());
            assert!(r.check("http://localhost:9000/b", &["http"]).await.is_ok());
            assert!(r.check("http://10.0.0.1/", &["http"]).await.is_err());
        });
        assert!(Rules::new(&["10.0.0.0/33"]).is_err());
        assert!(Rules::new(&["not a host"]).is_err());
    }
}
