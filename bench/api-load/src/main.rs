//! `api-load`: a closed-loop load generator for Hearth's operator API. C connections, each an
//! HTTP/1.1 keep-alive connection sending one TC3-signed `DescribeRoomInfo` POST after another for
//! D seconds. Every response must be HTTP 200 with a success envelope (`Response.RequestId`, no
//! `Response.Error`); anything else counts as an error. Prints requests/s, latency percentiles
//! and the error count, and with `--json` one JSON line for scripts.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Parser;
use hearth_api::signature::tc3;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;

#[derive(Parser, Clone)]
#[command(
    name = "api-load",
    about = "Signed DescribeRoomInfo load against a running Hearth"
)]
struct Args {
    /// Server address (host:port) of Hearth's HTTP listener.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Host header, signed; defaults to the address.
    #[arg(long)]
    host: Option<String>,
    #[arg(long)]
    secret_id: String,
    #[arg(long)]
    secret_key: String,
    /// SdkAppId the credential may act on.
    #[arg(long)]
    sdkappid: u32,
    /// Concurrent connections (one request in flight on each).
    #[arg(short, long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds of measured load.
    #[arg(short, long, default_value_t = 20)]
    duration: u64,
    /// Seconds of unmeasured load first.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Tokio worker threads of the load generator.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Also print one JSON line with the results.
    #[arg(long)]
    json: bool,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Builds signed requests; the signature is recomputed once per second (it covers the timestamp).
struct Signer {
    host: String,
    secret_id: String,
    secret_key: String,
    body: Bytes,
    payload_hash: String,
    cached: Option<(i64, String)>,
}

impl Signer {
    fn new(args: &Args) -> Self {
        let host = args.host.clone().unwrap_or_else(|| args.addr.to_string());
        let now = unix_now();
        let body = Bytes::from(
            serde_json::json!({
                "SdkAppId": args.sdkappid,
                "StartTime": now - 3600,
                "EndTime": now,
            })
            .to_string(),
        );
        Signer {
            payload_hash: tc3::sha256_hex(&body),
            host,
            secret_id: args.secret_id.clone(),
            secret_key: args.secret_key.clone(),
            body,
            cached: None,
        }
    }

    fn authorization(&mut self, timestamp: i64) -> &str {
        if self.cached.as_ref().map(|c| c.0) != Some(timestamp) {
            let date = tc3::utc_date(timestamp).expect("the current time has a date");
            let headers = [
                ("content-type".to_owned(), "application/json".to_owned()),
                ("host".to_owned(), self.host.clone()),
            ];
            let canonical = tc3::canonical_request(&tc3::CanonicalInput {
                method: "POST",
                query: "",
                headers: &headers,
                payload_hash: &self.payload_hash,
            });
            let sts = tc3::string_to_sign(&timestamp.to_string(), &date, "trtc", &canonical);
            let signature = tc3::sign(&self.secret_key, &date, "trtc", &sts);
            let auth = format!(
                "TC3-HMAC-SHA256 Credential={}/{date}/trtc/tc3_request, SignedHeaders=content-type;host, Signature={signature}",
                self.secret_id
            );
            self.cached = Some((timestamp, auth));
        }
        &self.cached.as_ref().expect("just set").1
    }

    fn request(&mut self) -> Request<Full<Bytes>> {
        let timestamp = unix_now();
        let auth = self.authorization(timestamp).to_owned();
        Request::builder()
            .method(Method::POST)
            .uri("/")
            .header("host", &self.host)
            .header("content-type", "application/json")
            .header("authorization", auth)
            .header("x-tc-action", "DescribeRoomInfo")
            .header("x-tc-version", "2019-07-22")
            .header("x-tc-timestamp", timestamp.to_string())
            .header("x-tc-region", "ap-guangzhou")
            .body(Full::new(self.body.clone()))
            .expect("a valid request")
    }
}

#[derive(Default)]
struct WorkerResult {
    /// Latencies of the measured requests, in microseconds.
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

/// What is wrong with a response, if anything.
fn check(status: u16, body: &[u8]) -> Option<String> {
    if status != 200 {
        return Some(format!("HTTP {status}: {}", String::from_utf8_lossy(body)));
    }
    let v: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Some(format!("not JSON ({e}): {}", String::from_utf8_lossy(body))),
    };
    let r = &v["Response"];
    if !r["Error"].is_null() || !r["RequestId"].is_string() || !r["Total"].is_u64() {
        return Some(format!("not a DescribeRoomInfo success: {v}"));
    }
    None
}

async fn worker(
    args: Args,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> Result<WorkerResult> {
    let stream = TcpStream::connect(args.addr)
        .await
        .with_context(|| format!("connecting to {}", args.addr))?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    let conn = tokio::spawn(conn);
    let mut signer = Signer::new(&args);
    let mut out = WorkerResult {
        latencies_us: Vec::with_capacity(1 << 16),
        ..Default::default()
    };
    while !stop.load(Ordering::Relaxed) {
        let req = signer.request();
        let started = Instant::now();
        sender.ready().await.context("connection closed")?;
        let resp = sender.send_request(req).await.context("request failed")?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        let elapsed = started.elapsed();
        let problem = check(status, &body);
        if measuring.load(Ordering::Relaxed) {
            out.latencies_us
                .push(elapsed.as_micros().min(u32::MAX as u128) as u32);
            if let Some(p) = problem {
                out.errors += 1;
                out.first_error.get_or_insert(p);
            }
        }
    }
    drop(sender);
    let _ = conn.await;
    Ok(out)
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.concurrency == 0 || args.duration == 0 {
        bail!("--concurrency and --duration must be at least 1");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..args.concurrency)
        .map(|_| tokio::spawn(worker(args.clone(), measuring.clone(), stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(args.duration)).await;
    measuring.store(false, Ordering::Relaxed);
    let measured = started.elapsed();
    stop.store(true, Ordering::Relaxed);

    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for w in workers {
        let r = w.await.context("worker panicked")??;
        latencies.extend(r.latencies_us);
        errors += r.errors;
        if first_error.is_none() {
            first_error = r.first_error;
        }
    }
    latencies.sort_unstable();
    let n = latencies.len();
    let rps = n as f64 / measured.as_secs_f64();
    let (p50, p90, p99) = (
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
    );
    let max = latencies.last().copied().unwrap_or(0);
    println!(
        "concurrency {}: {n} requests in {:.1} s = {rps:.0} req/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms; errors {errors}",
        args.concurrency,
        measured.as_secs_f64(),
        p50 as f64 / 1000.0,
        p90 as f64 / 1000.0,
        p99 as f64 / 1000.0,
        max as f64 / 1000.0,
    );
    if let Some(e) = &first_error {
        println!("first error: {e}");
    }
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "concurrency": args.concurrency,
                "requests": n,
                "seconds": measured.as_secs_f64(),
                "rps": rps,
                "p50_us": p50,
                "p90_us": p90,
                "p99_us": p99,
                "max_us": max,
                "errors": errors,
            })
        );
    }
    if errors > 0 {
        std::process::exit(1);
    }
    Ok(())
}
