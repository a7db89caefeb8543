//! The subscribe connection: a str0m `Rtc` on one UDP socket that answers the server's offers,
//! maps media lines to users' tracks and turns received media into [`Frame`]s.

use crate::proto::OfferTrack;
use crate::{Codec, Frame, Kind, Stream, TrackKey};
use anyhow::{anyhow, Context, Result};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use str0m::change::SdpOffer;
use str0m::media::{KeyframeRequestKind, MediaData, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event as RtcEvent, Input, Output, Rtc};
use tokio::net::UdpSocket;

pub(crate) struct Subscriber {
    pub rtc: Rtc,
    pub socket: UdpSocket,
    local: SocketAddr,
    pub next_timeout: Instant,
    tracks: HashMap<Mid, TrackKey>,
}

/// What driving the connection produced.
pub(crate) enum Produced {
    Frame(Frame),
    Disconnected,
}

impl Subscriber {
    /// Binds a socket on the address that reaches the server's candidate in `offer`.
    pub fn new(offer_sdp: &str) -> Result<Self> {
        let server =
            server_candidate(offer_sdp).ok_or_else(|| anyhow!("offer has no candidate"))?;
        let local_ip = local_ip_towards(server)?;
        let std = bind_udp(SocketAddr::new(local_ip, 0))?;
        let local = std.local_addr()?;
        let socket = UdpSocket::from_std(std)?;
        let mut rtc = Rtc::builder().build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp")?);
        Ok(Subscriber {
            rtc,
            socket,
            local,
            next_timeout: Instant::now(),
            tracks: HashMap::new(),
        })
    }

    /// Accepts an offer; returns the answer and the tracks that came and went.
    pub fn accept(
        &mut self,
        sdp: &str,
        tracks: &[OfferTrack],
    ) -> Result<(String, Vec<TrackKey>, Vec<TrackKey>)> {
        let offer = SdpOffer::from_sdp_string(sdp).context("parsing the server's offer")?;
        let answer = self.rtc.sdp_api().accept_offer(offer)?;
        let mut now: HashMap<Mid, TrackKey> = HashMap::new();
        for t in tracks {
            let stream = if t.stream == "sub" {
                Stream::Sub
            } else {
                Stream::Main
            };
            let kind = if t.kind == "audio" {
                Kind::Audio
            } else {
                Kind::Video
            };
            now.insert(
                Mid::from(t.mid.as_str()),
                TrackKey {
                    user: Arc::from(t.userid.as_str()),
                    stream,
                    kind,
                },
            );
        }
        let added = now
            .iter()
            .filter(|(m, k)| self.tracks.get(m) != Some(k))
            .map(|(_, k)| k.clone())
            .collect();
        let removed = self
            .tracks
            .iter()
            .filter(|(m, k)| now.get(m) != Some(k))
            .map(|(_, k)| k.clone())
            .collect();
        self.tracks = now;
        Ok((answer.to_sdp_string(), added, removed))
    }

    pub fn receive(&mut self, source: SocketAddr, data: &[u8]) {
        let Ok(contents) = data.try_into() else {
            return;
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
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

    /// Polls str0m until it wants a timeout; sends what it transmits.
    pub fn drive(&mut self, out: &mut Vec<Produced>) {
        loop {
            if !self.rtc.is_alive() {
                out.push(Produced::Disconnected);
                return;
            }
            match self.rtc.poll_output() {
                Ok(Output::Transmit(t)) => {
                    // Non-blocking: a full socket buffer drops the datagram, as the network would.
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Ok(Output::Timeout(t)) => {
                    self.next_timeout = t;
                    return;
                }
                Ok(Output::Event(RtcEvent::MediaData(m))) => {
                    if let Some(f) = self.frame(m) {
                        out.push(Produced::Frame(f));
                    }
                }
                Ok(Output::Event(RtcEvent::IceConnectionStateChange(
                    str0m::IceConnectionState::Disconnected,
                ))) => {
                    out.push(Produced::Disconnected);
                    return;
                }
                Ok(Output::Event(_)) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "subscribe connection failed");
                    out.push(Produced::Disconnected);
                    return;
                }
            }
        }
    }

    fn frame(&self, m: MediaData) -> Option<Frame> {
        let track = self.tracks.get(&m.mid)?.clone();
        let codec = match m.params.spec().codec {
            str0m::format::Codec::Opus => Codec::Opus,
            str0m::format::Codec::Vp8 => Codec::Vp8,
            str0m::format::Codec::Vp9 => Codec::Vp9,
            str0m::format::Codec::H264 => Codec::H264,
            _ => return None,
        };
        let keyframe = match codec {
            Codec::Opus => true,
            Codec::Vp8 => m.data.first().is_some_and(|b| b & 1 == 0),
            Codec::Vp9 => m.data.first().is_some_and(|b| b & 0x04 == 0),
            Codec::H264 => h264_has_idr(&m.data),
        };
        Some(Frame {
            track,
            codec,
            rtp_time: m.time.numer(),
            clock_rate: m.time.denom(),
            arrival: m.network_time,
            sender_report: m.last_sender_info.map(|s| (s.ntp_time, s.rtp_time.numer())),
            keyframe,
            contiguous: m.contiguous,
            data: m.data,
        })
    }

    /// Asks the sender of a track for a keyframe (PLI).
    pub fn request_keyframe(&mut self, key: &TrackKey) {
        let Some(mid) = self.tracks.iter().find(|(_, k)| *k == key).map(|(m, _)| *m) else {
            return;
        };
        if let Some(mut w) = self.rtc.writer(mid) {
            let _ = w.request_keyframe(None, KeyframeRequestKind::Pli);
        }
    }
}

/// Whether an Annex-B access unit holds an IDR slice or an SPS.
fn h264_has_idr(data: &[u8]) -> bool {
    let mut i = 0;
    while i + 3 < data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            let t = data[i + 3] & 0x1f;
            if t == 5 || t == 7 {
                return true;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    false
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
