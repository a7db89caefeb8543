//! `hearth-loadgen`: N WHIP publishers sending synthetic Opus + VP8 and M WHEP subscribers
//! spread over them, against a Hearth server; reports what the subscribers receive (packets,
//! frames, loss, bitrate, one-way latency) every 5 s and for the whole measurement window.

mod client;
mod driver;
mod gro;
mod http;
mod janus;
mod media;
mod report;
mod stats;
mod tcp;

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use client::{Client, Publisher, Role, Subscriber};
use driver::{Cmd, DriverHandle};
use hearth_auth::{make_usersig, UserSigParams};
use hearth_types::{SdkAppId, UnixSecs};
use report::Reporter;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::media::{Direction, MediaKind};
use str0m::net::TcpType;
use str0m::rtp::{Extension, ExtensionMap};
use str0m::{Candidate, Rtc};

#[derive(Parser, Debug, Clone)]
#[command(
    name = "hearth-loadgen",
    version,
    about = "Media-plane load generator for Hearth: WHIP publishers, WHEP subscribers, loss and latency"
)]
pub struct Args {
    /// The server's HTTP base URL (WHIP/WHEP and /healthz).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    #[arg(long)]
    sdkappid: u32,
    /// The application's UserSig key (UserSigs are computed locally).
    #[arg(long)]
    key: String,
    /// Numeric room id.
    #[arg(long, default_value_t = 1234)]
    room: u64,
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// WHEP viewers, spread round-robin over the publishers.
    #[arg(long, default_value_t = 0)]
    subscribers: usize,
    /// Video bitrate of each publisher (30 fps, a keyframe every 2 s and on PLI).
    #[arg(long, default_value_t = 500)]
    video_kbps: u64,
    /// Publishers send no audio frames (video only; the audio m-line stays in the offer).
    #[arg(long)]
    no_audio: bool,
    /// Publishers send the VP8 frames of this IVF file (30 fps, looped) instead of synthetic
    /// ones, so that receivers can decode them (recording benchmarks); latency is not measured.
    #[arg(long)]
    vp8_clip: Option<std::path::PathBuf>,
    /// Seconds of measurement once everyone has connected.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Seconds between connecting and the measurement window (first keyframes arrive).
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Connect clients gradually, this many per second (20 when given without a value);
    /// without it clients connect as fast as signaling answers.
    #[arg(long, num_args = 0..=1, default_missing_value = "20")]
    ramp: Option<f64>,
    /// Driver threads for the clients.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Local address the clients' UDP sockets bind (and announce).
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Receive buffer of each client socket, bytes.
    #[arg(long, default_value_t = 512 * 1024)]
    rcvbuf: usize,
    /// UDP GRO on the client sockets: a server's GSO message arrives as one buffer instead of
    /// being split into datagrams by the kernel (on loopback, on the server's CPU).
    #[arg(long)]
    gro: bool,
    /// Subscribers do not offer transport-wide congestion control, so the server gets no
    /// TWCC feedback for its bandwidth estimate (diagnostic).
    #[arg(long)]
    no_twcc: bool,
    /// Process id of the server, for its CPU usage (from /proc/<pid>/stat).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Signal with Janus's VideoRoom over its HTTP transport instead of WHIP/WHEP: `--url` is
    /// Janus's HTTP server, `--janus-path` its base path, `--room` a VideoRoom room that exists.
    #[arg(long)]
    janus: bool,
    #[arg(long, default_value = "/janus")]
    janus_path: String,
    /// Seconds between progress reports.
    #[arg(long, default_value_t = 5)]
    report_every: u64,
    /// User id prefix; users are <prefix>-p<i> and <prefix>-s<j>.
    #[arg(long, default_value = "lg")]
    user_prefix: String,
    /// Print every frame that arrives at least this many milliseconds after it was sent.
    #[arg(long)]
    trace_slow_ms: Option<f64>,
    /// Print a JSON summary on stdout at the end (progress goes to stderr).
    #[arg(long)]
    json: bool,
    /// Subscribers connect over ICE-TCP (the server's passive TCP candidate, RFC 6544) instead
    /// of UDP; publishers stay on UDP.
    #[arg(long)]
    tcp: bool,
}

/// A client the server accepted: its connection, socket and media lines.
struct Connected {
    rtc: Rtc,
    socket: mio::net::UdpSocket,
    local: SocketAddr,
    mids: [str0m::media::Mid; 2],
    tcp: Option<tcp::Link>,
}

/// A session the server accepted, to `DELETE` at the end.
struct Session {
    location: String,
}

struct Signaling {
    server: http::Server,
    args: Args,
    server_ports: HashSet<u16>,
    local_ports: HashSet<u16>,
    sessions: Vec<Session>,
    errors: Vec<String>,
    failures: usize,
    publishers_ok: usize,
    subscribers_ok: usize,
    /// Janus: the publishers' feed ids, and every client's session.
    feeds: Vec<u64>,
    janus: Vec<janus::Handle>,
}

impl Signaling {
    fn usersig(&self, user: &str) -> String {
        make_usersig(&UserSigParams {
            sdk_app_id: SdkAppId(self.args.sdkappid),
            key: &self.args.key,
            identifier: user,
            expire_secs: 86_400,
            now: UnixSecs::now(),
            userbuf: None,
        })
    }

    fn socket(&mut self) -> Result<(mio::net::UdpSocket, SocketAddr)> {
        use socket2::{Domain, Protocol, Socket, Type};
        let domain = if self.args.bind.is_ipv4() {
            Domain::IPV4
        } else {
            Domain::IPV6
        };
        let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
        let _ = s.set_recv_buffer_size(self.args.rcvbuf);
        s.set_nonblocking(true)?;
        if self.args.gro {
            use std::os::fd::AsRawFd;
            gro::enable(s.as_raw_fd())?;
        }
        s.bind(&SocketAddr::new(self.args.bind, 0).into())?;
        let std: std::net::UdpSocket = s.into();
        let local = std.local_addr()?;
        self.local_ports.insert(local.port());
        Ok((mio::net::UdpSocket::from_std(std), local))
    }

    /// A client `Rtc` with one local host candidate on its own socket (none over ICE-TCP: its
    /// candidate is the TCP connection's, added once connected).
    fn new_rtc(&mut self, dir: Direction) -> Result<(Rtc, mio::net::UdpSocket, SocketAddr)> {
        let (socket, local) = self.socket()?;
        let mut cfg = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .set_stats_interval(Some(Duration::from_secs(1)));
        if self.args.no_twcc && dir == Direction::RecvOnly {
            let mut exts = ExtensionMap::empty();
            for (id, e) in ExtensionMap::standard().iter() {
                if !matches!(e, Extension::TransportSequenceNumber) {
                    exts.set(id, e.clone());
                }
            }
            cfg = cfg.set_extension_map(exts);
        }
        let mut rtc = cfg.build(Instant::now());
        if !(self.args.tcp && dir == Direction::RecvOnly) {
            rtc.add_local_candidate(Candidate::host(local, "udp")?);
        }
        Ok((rtc, socket, local))
    }

    /// A Janus subscriber of publisher `index`'s feed: Janus offers, we answer.
    fn connect_janus_subscriber(&mut self, index: usize) -> Result<Connected> {
        let feed = *self
            .feeds
            .get(index)
            .ok_or_else(|| anyhow!("publisher {index} has no Janus feed"))?;
        let (mut rtc, socket, local) = self.new_rtc(Direction::RecvOnly)?;
        let h = janus::Handle::attach(&self.server, &self.args.janus_path)?;
        let offer = janus::subscribe(&h, self.args.room, feed)?;
        let [a, v] = janus::mids(&offer)?;
        let offer = SdpOffer::from_sdp_string(&offer).context("parsing Janus's offer")?;
        let answer = rtc.sdp_api().accept_offer(offer)?;
        janus::start(&h, &answer.to_sdp_string())?;
        h.trickle_done()?;
        add_candidates(&mut rtc, &h);
        self.janus.push(h);
        Ok(Connected {
            rtc,
            socket,
            local,
            mids: [a.as_str().into(), v.as_str().into()],
            tcp: None,
        })
    }

    /// Offers audio + video in `dir`, posts to `path` (or joins Janus as a publisher), applies
    /// the answer.
    fn connect(&mut self, path: &str, user: &str, dir: Direction) -> Result<Connected> {
        let (mut rtc, socket, local) = self.new_rtc(dir)?;
        let mut api = rtc.sdp_api();
        let stream = Some(user.to_string());
        let audio = api.add_media(MediaKind::Audio, dir, stream.clone(), None, None);
        let video = api.add_media(MediaKind::Video, dir, stream, None, None);
        let (offer, pending) = api.apply().ok_or_else(|| anyhow!("no offer"))?;
        if self.args.janus {
            let h = janus::Handle::attach(&self.server, &self.args.janus_path)?;
            let (answer, feed) = janus::publish(&h, self.args.room, user, &offer.to_sdp_string())?;
            let answer = SdpAnswer::from_sdp_string(&answer).context("parsing Janus's answer")?;
            rtc.sdp_api().accept_answer(pending, answer)?;
            h.trickle_done()?;
            add_candidates(&mut rtc, &h);
            self.feeds.push(feed);
            self.janus.push(h);
            return Ok(Connected {
                rtc,
                socket,
                local,
                mids: [audio, video],
                tcp: None,
            });
        }
        let sig = self.usersig(user);
        let auth = format!("Bearer {sig}");
        let mut tries = 0;
        let resp = loop {
            let r = http::request(
                &self.server,
                "POST",
                path,
                &[
                    ("Authorization", &auth),
                    ("Content-Type", "application/sdp"),
                ],
                &offer.to_sdp_string(),
            )?;
            // WHEP before the publisher's tracks exist answers 404: wait for them.
            if r.status == 404 && tries < 20 {
                tries += 1;
                std::thread::sleep(Duration::from_millis(250));
                continue;
            }
            break r;
        };
        if resp.status != 201 {
            bail!("{path}: HTTP {}: {}", resp.status, resp.body.trim());
        }
        for line in resp.body.lines() {
            if let Some(c) = line.trim().strip_prefix("a=candidate:") {
                let f: Vec<&str> = c.split_whitespace().collect();
                if let Some(p) = f.get(5).and_then(|p| p.parse().ok()) {
                    self.server_ports.insert(p);
                }
            }
        }
        let answer = SdpAnswer::from_sdp_string(&resp.body).context("parsing the SDP answer")?;
        rtc.sdp_api().accept_answer(pending, answer)?;
        if let Some(location) = resp.location {
            self.sessions.push(Session { location });
        }
        let tcp = if self.args.tcp && dir == Direction::RecvOnly {
            let link = tcp::Link::connect(&resp.body)?;
            let candidate = Candidate::builder()
                .tcp()
                .host(link.local)
                .tcptype(TcpType::Active)
                .build()?;
            rtc.add_local_candidate(candidate);
            Some(link)
        } else {
            None
        };
        Ok(Connected {
            rtc,
            socket,
            local,
            mids: [audio, video],
            tcp,
        })
    }

    fn fail(&mut self, what: &str, e: anyhow::Error) {
        self.failures += 1;
        let msg = format!("{what}: {e:#}");
        if self.errors.len() < 20 {
            eprintln!("loadgen: {msg}");
            self.errors.push(msg);
        }
    }
}

/// Janus's trickled candidates, added to the connection.
fn add_candidates(rtc: &mut Rtc, h: &janus::Handle) {
    for c in h.candidates.borrow_mut().drain(..) {
        if let Ok(c) = Candidate::from_sdp_string(&c) {
            rtc.add_remote_candidate(c);
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.subscribers > 0 && args.publishers == 0 {
        bail!("--subscribers needs at least one publisher");
    }
    let threads = args.threads.max(1);
    if let Some(ms) = args.trace_slow_ms {
        client::TRACE_SLOW_US.store((ms * 1000.0) as u64, std::sync::atomic::Ordering::Relaxed);
    }
    str0m::crypto::from_feature_flags().install_process_default();
    if let Some(path) = &args.vp8_clip {
        let n = media::load_clip(path)?;
        eprintln!(
            "loadgen: publishing {n} VP8 frames of {} in a loop",
            path.display()
        );
    }
    let start = media::epoch();
    let server = http::Server::parse(&args.url)?;
    let drivers: Vec<DriverHandle> = (0..threads)
        .map(driver::spawn)
        .collect::<std::io::Result<_>>()?;
    let mut sig = Signaling {
        server,
        args: args.clone(),
        server_ports: HashSet::new(),
        local_ports: HashSet::new(),
        sessions: Vec::new(),
        errors: Vec::new(),
        failures: 0,
        publishers_ok: 0,
        subscribers_ok: 0,
        feeds: Vec::new(),
        janus: Vec::new(),
    };
    let mut rep = Reporter::new(&args, start);
    let gap = args
        .ramp
        .map(|r| Duration::from_secs_f64(1.0 / r.max(0.001)));
    let mut next_slot = Instant::now();
    let mut pace = |rep: &mut Reporter, sig: &Signaling, drivers: &[DriverHandle]| {
        if let Some(g) = gap {
            next_slot += g;
            while Instant::now() < next_slot {
                rep.tick(drivers, sig, false);
                std::thread::sleep(
                    next_slot
                        .saturating_duration_since(Instant::now())
                        .min(Duration::from_millis(100)),
                );
            }
        } else {
            rep.tick(drivers, sig, false);
        }
    };

    eprintln!(
        "loadgen: {} publisher(s) at {} kbps video{}, {} subscriber(s), room {}, {} thread(s), server {}",
        args.publishers,
        args.video_kbps,
        if args.no_audio { "" } else { " + 32 kbps audio" },
        args.subscribers,
        args.room,
        threads,
        args.url
    );
    let app = args.sdkappid;
    let room = args.room;
    for i in 0..args.publishers {
        let user = format!("{}-p{i}", args.user_prefix);
        let path = format!("/whip/v1?sdkappid={app}&roomid={room}");
        match sig.connect(&path, &user, Direction::SendOnly) {
            Ok(k) => {
                let [a, v] = k.mids;
                let p = Publisher::new(i as u32, a, v, args.video_kbps, !args.no_audio);
                let c = Client {
                    rtc: k.rtc,
                    socket: k.socket,
                    local: k.local,
                    tcp: k.tcp,
                    next_timeout: Instant::now(),
                    role: Role::Publisher(Box::new(p)),
                };
                drivers[i % threads].send(Cmd::Add(Box::new(c)));
                sig.publishers_ok += 1;
            }
            Err(e) => sig.fail(&format!("WHIP {user}"), e),
        }
        pace(&mut rep, &sig, &drivers);
    }
    rep.wait_connected(&drivers, &sig, true, Duration::from_secs(15));

    for j in 0..args.subscribers {
        let user = format!("{}-s{j}", args.user_prefix);
        let publisher = format!("{}-p{}", args.user_prefix, j % args.publishers);
        let path = format!("/whep/v1?sdkappid={app}&roomid={room}&userid={publisher}");
        let connected = if args.janus {
            sig.connect_janus_subscriber(j % args.publishers)
        } else {
            sig.connect(&path, &user, Direction::RecvOnly)
        };
        match connected {
            Ok(k) => {
                let [a, v] = k.mids;
                let c = Client {
                    rtc: k.rtc,
                    socket: k.socket,
                    local: k.local,
                    tcp: k.tcp,
                    next_timeout: Instant::now(),
                    role: Role::Subscriber(Box::new(Subscriber::new(j, a, v))),
                };
                // Publishers live on driver 0..; spread subscribers over all drivers.
                drivers[(args.publishers + j) % threads].send(Cmd::Add(Box::new(c)));
                sig.subscribers_ok += 1;
            }
            Err(e) => sig.fail(&format!("WHEP {user}"), e),
        }
        pace(&mut rep, &sig, &drivers);
    }
    rep.wait_connected(&drivers, &sig, false, Duration::from_secs(20));
    let settle = Instant::now() + Duration::from_secs(args.warmup);
    while Instant::now() < settle {
        rep.tick(&drivers, &sig, false);
        std::thread::sleep(Duration::from_millis(100));
    }

    rep.open_window(&drivers, &sig);
    let end = Instant::now() + Duration::from_secs(args.duration);
    while Instant::now() < end {
        rep.tick(&drivers, &sig, true);
        std::thread::sleep(
            end.saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100)),
        );
    }
    let summary = rep.close_window(&drivers, &sig);

    // Leave politely, then stop the drivers.
    for s in &sig.sessions {
        let _ = http::request(&sig.server, "DELETE", &s.location, &[], "");
    }
    for h in &sig.janus {
        h.destroy();
    }
    for d in &drivers {
        d.send(Cmd::Stop);
    }
    for d in drivers {
        let _ = d.thread.join();
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    Ok(())
}
