//! One str0m `Rtc` on one UDP socket: binding toward the server's candidate, input, timeouts,
//! and polling until str0m wants a timeout. The subscribe and publish connections are each one.

use anyhow::{anyhow, Result};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event as RtcEvent, Input, Output, Rtc};
use tokio::net::UdpSocket;

pub(crate) struct Peer {
    pub rtc: Rtc,
    pub socket: Option<UdpSocket>,
    local: Option<SocketAddr>,
    pub next_timeout: Instant,
}

impl Peer {
    pub fn new() -> Self {
        Peer {
            rtc: Rtc::builder().build(Instant::now()),
            socket: None,
            local: None,
            next_timeout: Instant::now(),
        }
    }

    /// Binds a socket on the address that reaches the server's candidate in `sdp` and adds
    /// it as our host candidate (once).
    pub fn bind_towards(&mut self, sdp: &str) -> Result<()> {
        if self.socket.is_some() {
            return Ok(());
        }
        let server = server_candidate(sdp).ok_or_else(|| anyhow!("the SDP has no candidate"))?;
        let std = bind_udp(SocketAddr::new(local_ip_towards(server)?, 0))?;
        let local = std.local_addr()?;
        self.socket = Some(UdpSocket::from_std(std)?);
        self.local = Some(local);
        self.rtc.add_local_candidate(Candidate::host(local, "udp")?);
        Ok(())
    }

    pub fn receive(&mut self, source: SocketAddr, data: &[u8]) {
        let (Some(local), Ok(contents)) = (self.local, data.try_into()) else {
            return;
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination: local,
                contents,
            },
        );
        if self.rtc.handle_input(input).is_err() {
            self.rtc.disconnect();
        }
    }

    pub fn timeout(&mut self) {
        if self
            .rtc
            .handle_input(Input::Timeout(Instant::now()))
            .is_err()
        {
            self.rtc.disconnect();
        }
    }

    /// Polls str0m until it wants a timeout, sending what it transmits and handing events to
    /// `on_event`; false when the connection is gone.
    pub fn drive(&mut self, mut on_event: impl FnMut(&mut Rtc, RtcEvent)) -> bool {
        loop {
            if !self.rtc.is_alive() {
                return false;
            }
            match self.rtc.poll_output() {
                Ok(Output::Transmit(t)) => {
                    // Non-blocking: a full socket buffer drops the datagram, as a network would.
                    if let Some(s) = &self.socket {
                        let _ = s.try_send_to(&t.contents, t.destination);
                    }
                }
                Ok(Output::Timeout(t)) => {
                    self.next_timeout = t;
                    return true;
                }
                Ok(Output::Event(RtcEvent::IceConnectionStateChange(
                    str0m::IceConnectionState::Disconnected,
                ))) => return false,
                Ok(Output::Event(e)) => on_event(&mut self.rtc, e),
                Err(e) => {
                    tracing::warn!(error = %e, "media connection failed");
                    return false;
                }
            }
        }
    }
}

/// The first UDP host candidate of an SDP.
fn server_candidate(sdp: &str) -> Option<SocketAddr> {
    sdp.lines().find_map(|l| {
        let c = l.trim().strip_prefix("a=candidate:")?;
        let f: Vec<&str> = c.split_whitespace().collect();
        if !f.get(2)?.eq_ignore_ascii_case("udp") {
            return None;
        }
        let ip: IpAddr = f.get(4)?.parse().ok()?;
        let port: u16 = f.get(5)?.parse().ok()?;
        Some(SocketAddr::new(ip, port))
    })
}

/// The local address the kernel would send from to reach `server`.
fn local_ip_towards(server: SocketAddr) -> Result<IpAddr> {
    let any: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse()?
    } else {
        "[::]:0".parse()?
    };
    let probe = std::net::UdpSocket::bind(any)?;
    probe.connect(server)?;
    Ok(probe.local_addr()?.ip())
}

/// A non-blocking UDP socket with big receive buffers: a burst of keyframes from several users
/// must not be dropped.
fn bind_udp(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol as SockProto, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(SockProto::UDP))?;
    let _ = s.set_recv_buffer_size(4 << 20);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}
