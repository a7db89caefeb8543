//! Just enough HTTP/1.1 for WHIP/WHEP signaling: one request per connection, plain HTTP.

use anyhow::{anyhow, bail, Context, Result};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// `http://host:port` split into what a request needs.
#[derive(Clone, Debug)]
pub struct Server {
    pub host: String,
    pub addr: SocketAddr,
}

impl Server {
    pub fn parse(url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("--url must start with http:// (got {url})"))?;
        let host = rest.trim_end_matches('/').to_string();
        if host.contains('/') {
            bail!("--url takes no path (got {url})");
        }
        let with_port = if host
            .rsplit(':')
            .next()
            .is_some_and(|p| p.parse::<u16>().is_ok())
            && !host.ends_with(']')
        {
            host.clone()
        } else {
            format!("{host}:80")
        };
        let addr = with_port
            .to_socket_addrs()
            .with_context(|| format!("resolving {with_port}"))?
            .next()
            .ok_or_else(|| anyhow!("{with_port} resolves to nothing"))?;
        Ok(Server { host, addr })
    }
}

pub struct Response {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

/// Sends one request and reads the whole response (`Connection: close`).
pub fn request(
    server: &Server,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<Response> {
    let mut s = TcpStream::connect_timeout(&server.addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {}", server.addr))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_nodelay(true)?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: hearth-loadgen\r\nContent-Length: {}\r\n",
        server.host,
        body.len()
    );
    for (k, v) in headers {
        req.push_str(k);
        req.push_str(": ");
        req.push_str(v);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Result<Response> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("truncated HTTP response"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("bad status line {status_line:?}"))?;
    let mut location = None;
    let mut chunked = false;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let k = k.trim().to_ascii_lowercase();
        if k == "location" {
            location = Some(v.trim().to_string());
        } else if k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        }
    }
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok(Response {
        status,
        location,
        body,
    })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_created_with_location() {
        let r = parse_response(
            b"HTTP/1.1 201 Created\r\ncontent-type: application/sdp\r\nlocation: /whip/v1/session/0/1/x\r\ncontent-length: 3\r\n\r\nv=0",
        )
        .unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.location.as_deref(), Some("/whip/v1/session/0/1/x"));
        assert_eq!(r.body, "v=0");
    }

    #[test]
    fn dechunks() {
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, "abcde");
    }

    #[test]
    fn splits_urls() {
        let s = Server::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(s.host, "127.0.0.1:8080");
        assert_eq!(s.addr.port(), 8080);
        assert!(Server::parse("https://x").is_err());
    }
}
