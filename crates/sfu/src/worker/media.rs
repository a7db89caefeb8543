//! str0m events of a peer: connection state, media lines appearing, packets to forward,
//! keyframe requests from receivers, and downlink estimates.

use super::nack;
use super::peer::{order_rids, Inbound, SessionKey};
use super::{TrackSource, Worker};
use crate::core::{ParticipantId, StreamKind, TrackId};
use crate::events::EventKind;
use std::time::Instant;
use str0m::bwe::BweKind;
use str0m::media::{Direction, MediaAdded, MediaKind};
use str0m::{Event, IceConnectionState};

fn core_kind(k: MediaKind) -> crate::core::MediaKind {
    match k {
        MediaKind::Audio => crate::core::MediaKind::Audio,
        MediaKind::Video => crate::core::MediaKind::Video,
    }
}

impl Worker {
    pub(crate) fn handle_event(&mut self, pid: ParticipantId, event: Event) {
        match event {
            Event::RtpPacket(packet) => self.forward(pid, packet),
            Event::Connected => {
                let Some(p) = self.peers.get_mut(&pid) else {
                    return;
                };
                p.connected = true;
                let (slot, user) = (p.slot, p.user.clone());
                if let Some(r) = self.rooms.get(&slot) {
                    let (app, room, comm_id) = (r.app, r.room.clone(), r.comm_id.clone());
                    self.emit(app, &room, &comm_id, &user, EventKind::MediaConnected);
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                if let Some(p) = self.peers.get_mut(&pid) {
                    p.rtc.disconnect();
                }
            }
            Event::MediaIngressStats(s) => {
                let Some(p) = self.peers.get_mut(&pid) else {
                    return;
                };
                if let Some(loss) = s.loss {
                    let e = p.loss.entry(s.mid).or_insert(0.0);
                    *e = if s.rid.is_some() { e.max(loss) } else { loss };
                }
                p.rtt = p.rtt.max(s.rtt);
            }
            Event::MediaEgressStats(s) => {
                let Some(p) = self.peers.get_mut(&pid) else {
                    return;
                };
                if let Some(loss) = s.loss {
                    p.loss.insert(s.mid, loss);
                }
                p.rtt = p.rtt.max(s.rtt);
                if let Some(rtt) = s.rtt {
                    nack::on_rtt(p, s.mid, rtt);
                }
            }
            Event::Closed => {
                if let Some(p) = self.peers.get_mut(&pid) {
                    p.remote_closed = true;
                }
            }
            Event::MediaAdded(m) => self.media_added(pid, m),
            Event::MediaChanged(m) => {
                // A publisher stopped sending on a line (renegotiated to inactive/recvonly).
                let stopped = matches!(m.direction, Direction::Inactive | Direction::SendOnly);
                let is_inbound = self
                    .peers
                    .get(&pid)
                    .is_some_and(|p| p.inbound.contains_key(&m.mid));
                if stopped && is_inbound {
                    let Some(p) = self.peers.get(&pid) else {
                        return;
                    };
                    let (slot, user) = (p.slot, p.user.clone());
                    self.remove_inbound(pid, m.mid);
                    self.broadcast_user(slot, &user);
                    self.renegotiate_room(slot);
                }
            }
            Event::KeyframeRequest(r) => {
                let Some(p) = self.peers.get(&pid) else {
                    return;
                };
                let Some(sub) = p.sub_by_mid.get(&r.mid).copied() else {
                    return;
                };
                let slot = p.slot;
                let ask = self
                    .rooms
                    .get_mut(&slot)
                    .and_then(|r| r.core.on_keyframe_request(Instant::now(), sub));
                if let Some(ask) = ask {
                    self.ask_keyframe(ask);
                }
            }
            Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
                tracing::trace!(peer = pid.0, bps = estimate.as_u64(), "downlink estimate");
                let Some(slot) = self.peers.get(&pid).map(|p| p.slot) else {
                    return;
                };
                let mut asks = Vec::new();
                if let Some(r) = self.rooms.get_mut(&slot) {
                    r.core
                        .on_estimate(Instant::now(), pid, estimate.as_u64(), &mut asks);
                }
                for a in asks {
                    self.ask_keyframe(a);
                }
            }
            _ => {}
        }
    }

    fn media_added(&mut self, pid: ParticipantId, m: MediaAdded) {
        let Some(p) = self.peers.get_mut(&pid) else {
            return;
        };
        let publishing = p.key == SessionKey::Publish;
        match (publishing, m.direction) {
            (true, Direction::RecvOnly | Direction::SendRecv) => {
                let client = p.client;
                let has_video = p.inbound.values().any(|i| i.kind == MediaKind::Video);
                let (stream, muted) = match client {
                    Some(cid) => {
                        let source = self.client_source(cid, m.mid, m.kind);
                        (source.stream(), self.client_muted(cid, source))
                    }
                    None if m.kind == MediaKind::Video && has_video => (StreamKind::Sub, false),
                    None => (StreamKind::Main, false),
                };
                let rids = order_rids(
                    m.simulcast
                        .map(|s| s.recv.into_iter().map(|l| l.rid).collect())
                        .unwrap_or_default(),
                );
                let track = TrackId(self.next_participant().0);
                let p = self.peers.get(&pid).expect("checked above");
                let blocked = self.blocked(p.slot, &p.user).covers(m.kind);
                let p = self.peers.get_mut(&pid).expect("checked above");
                p.inbound.insert(
                    m.mid,
                    Inbound {
                        track,
                        kind: m.kind,
                        rids,
                        muted,
                        blocked,
                        flow: Default::default(),
                        dims: [None; 4],
                        format: None,
                        held: 0,
                    },
                );
                let (slot, user) = (p.slot, p.user.clone());
                self.tracks.insert(
                    track,
                    TrackSource {
                        peer: pid,
                        mid: m.mid,
                    },
                );
                let Some(r) = self.rooms.get_mut(&slot) else {
                    return;
                };
                r.core.add_track(track, pid, core_kind(m.kind), stream);
                let event = match (m.kind, stream) {
                    (MediaKind::Audio, _) => EventKind::AudioOn,
                    (MediaKind::Video, StreamKind::Main) => EventKind::VideoOn,
                    (MediaKind::Video, StreamKind::Sub) => EventKind::SubStreamOn,
                };
                self.emit_for(slot, &user, event);
                self.bind_viewers_of(slot, &user);
                self.broadcast_user(slot, &user);
                self.renegotiate_room(slot);
            }
            (false, Direction::SendOnly | Direction::SendRecv) => {
                p.free_out.push((m.mid, m.kind));
                self.bind_viewer(pid);
            }
            _ => {}
        }
    }
}
