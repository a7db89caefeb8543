//! A forward HTTP proxy on loopback for fetchers Hearth does not drive itself (GStreamer's HTTP
//! source, and the HLS demuxer's playlist and segment fetches): every request, every redirect
//! the fetcher follows and every CONNECT tunnel is checked against the [`Rules`] and connects to
//! the checked addresses, so a caller's URL cannot lead the server anywhere the rules forbid.

use crate::{Checked, Rules};
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

type Body = BoxBody<Bytes, hyper::Error>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A running proxy; it stops when dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    refused: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Listens on 127.0.0.1 (an ephemeral port).
    pub async fn start(rules: Rules) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let refused = Arc::new(Mutex::new(None));
        let shared = Arc::new((rules, refused.clone()));
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    continue;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, hyper::Error>(handle(&shared.0, &shared.1, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .preserve_header_case(true)
                        .serve_connection(TokioIo::new(conn), svc)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Ok(Proxy {
            addr,
            refused,
            task,
        })
    }

    /// `http://127.0.0.1:<port>`, for a fetcher's proxy setting.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Why the last refused request was refused (to tell the caller what their URL led to).
    pub fn last_refusal(&self) -> Option<String> {
        self.refused
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

fn full(b: Bytes) -> Body {
    Full::new(b).map_err(|e| match e {}).boxed()
}

fn text(status: StatusCode, msg: String) -> Response<Body> {
    let mut r = Response::new(full(Bytes::from(msg)));
    *r.status_mut() = status;
    r
}

async fn handle(
    rules: &Rules,
    refused: &Mutex<Option<String>>,
    req: Request<Incoming>,
) -> Response<Body> {
    let (target, schemes): (String, &[&str]) = if req.method() == Method::CONNECT {
        match req.uri().authority() {
            Some(a) => (format!("https://{a}/"), &["https"]),
            None => return text(StatusCode::BAD_REQUEST, "CONNECT needs host:port".into()),
        }
    } else {
        (req.uri().to_string(), &["http"])
    };
    let checked = match rules.check(&target, schemes).await {
        Ok(c) => c,
        Err(e) => {
            let why = format!("{target}: {e}");
            tracing::warn!(url = %target, error = %e, "outbound fetch refused");
            *refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.clone());
            return text(StatusCode::FORBIDDEN, why);
        }
    };
    let upstream = match connect(&checked).await {
        Ok(s) => s,
        Err(e) => return text(StatusCode::BAD_GATEWAY, format!("{target}: {e}")),
    };
    if req.method() == Method::CONNECT {
        tokio::spawn(async move {
            if let Ok(up) = hyper::upgrade::on(req).await {
                let mut client = TokioIo::new(up);
                let mut upstream = upstream;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
        });
        return Response::new(full(Bytes::new()));
    }
    forward(upstream, req)
        .await
        .unwrap_or_else(|e| text(StatusCode::BAD_GATEWAY, format!("{target}: {e}")))
}

async fn connect(c: &Checked) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::other("no address");
    for a in &c.addrs {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(a)).await {
            Ok(Ok(s)) => return Ok(s),
            Ok(Err(e)) => last = e,
            Err(_) => last = std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
        }
    }
    Err(last)
}

/// Sends a plain-HTTP request in origin form on its own connection and streams the answer
/// back (redirects go back to the fetcher, whose next request is checked again).
async fn forward(
    upstream: TcpStream,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, hyper::Error> {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(upstream)).await?;
    tokio::spawn(conn);
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    *req.uri_mut() = path.parse().unwrap_or_default();
    for h in ["proxy-connection", "proxy-authorization"] {
        req.headers_mut().remove(h);
    }
    let resp = sender.send_request(req).await?;
    Ok(resp.map(|b| b.boxed()))
}
