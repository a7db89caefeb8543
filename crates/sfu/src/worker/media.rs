//! str0m events of a peer: connection state, media lines appearing, frames to forward,
//! keyframe requests from receivers, and downlink estimates.

use super::peer::{order_rids, Inbound, SessionKey};
use super::{TrackSource, Worker};
use crate::core::{KeyframeAsk, ParticipantId, StreamKind, TrackId};
use crate::events::EventKind;
use std::time::Instant;
use str0m::bwe::BweKind;
use str0m::media::{Direction, KeyframeRequestKind, MediaAdded, MediaData, MediaKind};
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
            Event::MediaData(d) => self.forward(pid, d),
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
                if let (Some(p), Some(loss)) = (self.peers.get_mut(&pid), s.loss) {
                    let e = p.loss.entry(s.mid).or_insert(0.0);
                    *e = if s.rid.is_some() { e.max(loss) } else { loss };
                }
            }
            Event::MediaEgressStats(s) => {
                if let (Some(p), Some(loss)) = (self.peers.get_mut(&pid), s.loss) {
                    p.loss.insert(s.mid, loss);
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

    /// One frame from a publisher to every subscriber the room core picks.
    fn forward(&mut self, pid: ParticipantId, d: MediaData) {
        let Some(p) = self.peers.get_mut(&pid) else {
            return;
        };
        let slot = p.slot;
        let Some(inbound) = p.inbound.get_mut(&d.mid) else {
            return;
        };
        let (track, layer) = (inbound.track, inbound.layer_of(d.rid));
        let keyframe = d.is_keyframe();
        let l = usize::from(layer.0.min(3));
        if keyframe {
            if let Some(dims) = vp8_keyframe_dims(&d.data) {
                inbound.dims[l] = Some(dims);
            }
        }
        let dims = inbound.dims[l];
        inbound.flow.bytes += d.data.len() as u64;
        if l + 1 >= inbound.rids.len().max(1) {
            // Frames and picture size of the top layer: what the sender's encoder produces.
            inbound.flow.frames += 1;
            inbound.flow.dims = dims;
        }
        if inbound.muted || inbound.blocked {
            return;
        }
        let inbound_kind = inbound.kind;
        let Some(room) = self.rooms.get_mut(&slot) else {
            return;
        };
        let now = Instant::now();
        self.forwards.clear();
        let mut ask = room.core.on_frame(
            now,
            track,
            layer,
            keyframe,
            d.data.len(),
            &mut self.forwards,
        );
        if !d.contiguous && inbound_kind == MediaKind::Video {
            // Loss upstream: the publisher's next keyframe repairs every receiver at once.
            ask = ask.or_else(|| room.core.on_keyframe_request_for_track(now, track, layer));
        }
        for f in &self.forwards {
            let Some(s) = self.peers.get_mut(&f.subscriber) else {
                continue;
            };
            let Some((mid, _)) = s.out_by_sub.get(&f.subscription).copied() else {
                continue;
            };
            let Some(writer) = s.rtc.writer(mid) else {
                continue;
            };
            let Some(pt) = writer.match_params(d.params) else {
                continue;
            };
            if let Err(e) = writer.write(pt, d.network_time, d.time, d.data.clone()) {
                tracing::debug!(peer = f.subscriber.0, error = %e, "write failed; disconnecting");
                s.rtc.disconnect();
            }
            self.counters.frames_forwarded += 1;
            let flow = s.out_flow.entry(mid).or_default();
            flow.bytes += d.data.len() as u64;
            flow.frames += 1;
            flow.dims = dims;
            if !s.dirty {
                s.dirty = true;
                self.dirty.push(f.subscriber);
            }
        }
        if let Some(a) = ask {
            self.ask_keyframe(a);
        }
    }

    /// Sends a PLI to the publisher of a track for one of its layers.
    pub(crate) fn ask_keyframe(&mut self, ask: KeyframeAsk) {
        let Some(src) = self.tracks.get(&ask.track) else {
            return;
        };
        let (peer, mid) = (src.peer, src.mid);
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        let rid = p.inbound.get(&mid).and_then(|i| i.rid_of(ask.layer));
        if let Some(mut writer) = p.rtc.writer(mid) {
            if writer.is_request_keyframe_possible(KeyframeRequestKind::Pli) {
                let _ = writer.request_keyframe(rid, KeyframeRequestKind::Pli);
            }
        }
        self.mark_dirty(peer);
    }
}

/// Width and height of a VP8 keyframe (RFC 6386 §9.1: 3-byte frame tag, start code
/// 9d 01 2a, then 14-bit width and height, little-endian).
pub(crate) fn vp8_keyframe_dims(frame: &[u8]) -> Option<(u16, u16)> {
    if frame.len() < 10 || frame[0] & 1 != 0 || frame[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([frame[6], frame[7]]) & 0x3fff;
    let h = u16::from_le_bytes([frame[8], frame[9]]) & 0x3fff;
    (w > 0 && h > 0).then_some((w, h))
}

#[cfg(test)]
mod tests {
    use super::vp8_keyframe_dims;

    #[test]
    fn reads_the_size_of_a_vp8_keyframe() {
        // 640x360 keyframe header; the scale bits (top 2) are ignored.
        let f = [
            0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x42, 0x68, 0x01, 0, 0,
        ];
        assert_eq!(vp8_keyframe_dims(&f), Some((640, 360)));
        let mut inter = f;
        inter[0] |= 1;
        assert_eq!(
            vp8_keyframe_dims(&inter),
            None,
            "inter frames carry no size"
        );
        assert_eq!(vp8_keyframe_dims(&f[..8]), None);
    }
}
