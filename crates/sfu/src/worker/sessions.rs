//! Sessions on a worker: WHIP publish, WHEP play, leave, dismiss, and removal of a peer with
//! everything it published or received.

use super::peer::{Outgoing, Peer, SessionKey};
use super::rooms::RoomSlot;
use super::Worker;
use crate::command::{JoinRequest, Joined, SessionRef, SfuError};
use crate::core::{LayerChoice, ParticipantId, StreamKind, SubscriptionId};
use crate::events::{EventKind, ExitReason};
use crate::offer::{check_offer, OfferDirection};
use hearth_types::{RoomKey, SdkAppId, UserId};
use rand::distributions::{Alphanumeric, DistString};
use std::cmp::Reverse;
use std::time::Instant;
use str0m::change::SdpOffer;
use str0m::media::MediaKind;
use str0m::net::TcpType;
use str0m::rtp::{Extension, ExtensionMap};
use str0m::{Candidate, IceCreds, Rtc};

pub(crate) fn random(n: usize) -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), n)
}

/// Initial downlink estimate for subscribers before TWCC feedback arrives.
const INITIAL_ESTIMATE_BPS: u64 = 1_500_000;
/// What subscriber connections probe for: room for a 720p camera, a screen share and audio.
const DESIRED_DOWNLINK_BPS: u64 = 5_000_000;

/// What a connection's media towards its client needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Downlink {
    /// A publisher: it receives no media. Transport-cc stays, for its own estimate.
    None,
    /// Media whose layers the estimate cannot change: no estimator, no pacer, and no
    /// transport-cc feedback to process.
    Fixed,
    /// Simulcast may be received: TWCC bandwidth estimation picks the layers, and video is
    /// paced.
    Estimated,
}

impl Worker {
    pub(crate) fn new_rtc(&self, ufrag: &str, downlink: Downlink) -> Result<Rtc, SfuError> {
        let estimate = downlink == Downlink::Estimated;
        let mut cfg = Rtc::builder()
            .set_ice_lite(true)
            // Packets are forwarded as packets (`forward.rs`), never depacketized.
            .set_rtp_mode(true)
            .set_stats_interval(Some(super::quality::SAMPLE_PERIOD))
            .set_local_ice_credentials(IceCreds {
                ufrag: ufrag.to_owned(),
                pass: random(24),
            })
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .enable_h264(true);
        if downlink == Downlink::Fixed {
            let mut exts = ExtensionMap::empty();
            for (id, e) in ExtensionMap::standard().iter() {
                if !matches!(e, Extension::TransportSequenceNumber) {
                    exts.set(id, e.clone());
                }
            }
            cfg = cfg.set_extension_map(exts);
        }
        if estimate {
            cfg = cfg.enable_bwe(Some(str0m::bwe::Bitrate::bps(INITIAL_ESTIMATE_BPS)));
        }
        let mut rtc = cfg.build(Instant::now());
        if estimate {
            // Probe up to what the biggest layers of a few publishers need, so the estimate
            // can rise above the layer being forwarded and let subscribers move up.
            rtc.bwe().set_bitrate(
                str0m::bwe::Bitrate::bps(0),
                str0m::bwe::Bitrate::bps(DESIRED_DOWNLINK_BPS),
            );
        }
        for addr in &self.announced {
            let udp = Candidate::host(*addr, "udp").map_err(|e| SfuError::BadSdp(e.to_string()))?;
            rtc.add_local_candidate(udp);
            if self.tcp.is_some() {
                let tcp = Candidate::builder()
                    .tcp()
                    .host(*addr)
                    .tcptype(TcpType::Passive)
                    .build()
                    .map_err(|e| SfuError::BadSdp(e.to_string()))?;
                rtc.add_local_candidate(tcp);
            }
        }
        Ok(rtc)
    }

    /// Accepts an offer into a new peer and registers its session (replacing an older one).
    /// A refusal for capacity is counted when `final_say` (no other worker is tried).
    pub(crate) fn admit(
        &mut self,
        req: JoinRequest,
        key: SessionKey,
        offer: &str,
        direction: OfferDirection,
        downlink: Downlink,
        final_say: bool,
    ) -> Result<Joined, SfuError> {
        check_offer(offer, direction)?;
        self.check_capacity(final_say)?;
        self.quota.check(req.app, &req.user)?;
        let offer =
            SdpOffer::from_sdp_string(offer).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let ufrag = random(16);
        let mut rtc = self.new_rtc(&ufrag, downlink)?;
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let pid = self.next_participant();
        let slot = self.room_slot(req.app, &req.room, &req.user);
        let token = random(24);
        let now = Instant::now();
        self.peers.insert(
            pid,
            Peer::new(
                pid,
                slot,
                req.user.clone(),
                key.clone(),
                token.clone(),
                ufrag.clone(),
                rtc,
                now,
                None,
            ),
        );
        self.by_ufrag.insert(ufrag, pid);
        let entered = EventKind::Entered {
            client_ip: req.client_ip,
            device_type: req.device_type,
            sdk_version: req.sdk_version,
            anchor: matches!(key, SessionKey::Publish),
            bot: false,
        };
        if let Some(old) = self.add_session(slot, &req.user, key, pid, entered) {
            self.remove_peer(old, ExitReason::Replaced);
        }
        self.mark_dirty(pid);
        Ok(Joined {
            session: SessionRef {
                worker: self.index,
                peer: pid,
                token,
            },
            // All our candidates are in the answer and we take no trickle (ICE-lite): say so.
            answer: answer
                .to_sdp_string()
                .replace("a=ice-options:trickle\r\n", ""),
        })
    }

    pub(crate) fn publish(&mut self, req: JoinRequest, offer: &str) -> Result<Joined, SfuError> {
        let blocked = self
            .find_room(req.app, &req.room)
            .is_some_and(|slot| self.blocked(slot, &req.user).any());
        if blocked {
            return Err(SfuError::Forbidden(
                "an operator blocked this user's audio or video in this room",
            ));
        }
        self.admit(
            req,
            SessionKey::Publish,
            offer,
            OfferDirection::Sends,
            Downlink::None,
            true,
        )
    }

    pub(crate) fn play(
        &mut self,
        req: JoinRequest,
        publisher: UserId,
        stream: StreamKind,
        offer: &str,
        spill: bool,
    ) -> Result<Joined, SfuError> {
        let (_, simulcast) = self.playable(req.app, &req.room, &publisher, stream)?;
        self.admit(
            req,
            SessionKey::Play { publisher, stream },
            offer,
            OfferDirection::Receives,
            if simulcast {
                Downlink::Estimated
            } else {
                Downlink::Fixed
            },
            !spill,
        )
    }

    /// The room of a publisher that publishes `stream`, and whether it sends simulcast (only
    /// simulcast gives a viewer's estimate something to choose; a viewer whose publisher comes
    /// back with simulcast then gets its top layer).
    pub(crate) fn playable(
        &self,
        app: SdkAppId,
        room: &RoomKey,
        publisher: &UserId,
        stream: StreamKind,
    ) -> Result<(RoomSlot, bool), SfuError> {
        let slot = self
            .find_room(app, room)
            .ok_or(SfuError::PublisherNotFound)?;
        let source = self
            .publisher_of(slot, publisher)
            .filter(|pid| {
                self.rooms[&slot]
                    .core
                    .tracks()
                    .any(|(_, t)| t.owner == *pid && t.stream == stream)
            })
            .ok_or(SfuError::PublisherNotFound)?;
        let simulcast = self.peers.get(&source).is_some_and(|p| {
            p.inbound
                .values()
                .any(|i| i.kind == MediaKind::Video && i.rids.len() > 1)
        });
        Ok((slot, simulcast))
    }

    /// The peer through which `user` publishes in a room.
    pub(crate) fn publisher_of(&self, slot: RoomSlot, user: &UserId) -> Option<ParticipantId> {
        let room = self.rooms.get(&slot)?;
        if let Some(m) = &room.mirror {
            return m.publishers.get(user).copied();
        }
        room.sessions
            .session(user, &SessionKey::Publish)
            .or_else(|| {
                let cid = room.sessions.session(user, &SessionKey::Client)?;
                self.clients.get(&cid)?.publish_peer
            })
    }

    pub(crate) fn leave(&mut self, s: &SessionRef) -> Result<(), SfuError> {
        match self.peers.get(&s.peer) {
            Some(p) if s.worker == self.index && p.token == s.token => {
                self.remove_peer(s.peer, ExitReason::Left);
                Ok(())
            }
            _ => Err(SfuError::SessionNotFound),
        }
    }

    pub(crate) fn dismiss(&mut self, app: SdkAppId, room: &RoomKey) -> Result<(), SfuError> {
        let slot = self.find_room(app, room).ok_or(SfuError::RoomNotFound)?;
        let notice = crate::client::NoticeReason::RoomDismissed;
        self.end_room_clients(slot, ExitReason::RoomDismissed, notice);
        let Some(state) = self.rooms.get(&slot) else {
            return Ok(());
        };
        let pids: Vec<ParticipantId> = state.sessions.all_sessions().map(|(_, p)| p).collect();
        for pid in pids {
            self.remove_peer(pid, ExitReason::RoomDismissed);
        }
        Ok(())
    }

    /// Binds a viewer's free media lines to its publisher's tracks of the same kind and stream.
    pub(crate) fn bind_viewer(&mut self, viewer: ParticipantId) {
        let Some(peer) = self.peers.get(&viewer) else {
            return;
        };
        let SessionKey::Play { publisher, stream } = peer.key.clone() else {
            return;
        };
        let slot = peer.slot;
        let Some(source) = self.publisher_of(slot, &publisher) else {
            return;
        };
        let free = peer.free_out.clone();
        for (mid, kind) in free {
            let wanted = if kind == MediaKind::Audio {
                crate::core::MediaKind::Audio
            } else {
                crate::core::MediaKind::Video
            };
            let track = self.rooms[&slot]
                .core
                .tracks()
                .find(|(_, t)| {
                    t.owner == source
                        && t.kind == wanted
                        && (t.stream == stream || wanted == crate::core::MediaKind::Audio)
                })
                .map(|(id, _)| id);
            let Some(track) = track else { continue };
            let sub = SubscriptionId(self.next_participant().0);
            let room = self.rooms.get_mut(&slot).expect("slot is live");
            if !room.core.subscribe(sub, viewer, track, LayerChoice::Big) {
                continue;
            }
            let (app, rk, comm_id) = (room.app, room.room.clone(), room.comm_id.clone());
            self.subs.insert(sub, viewer);
            let peer = self.peers.get_mut(&viewer).expect("checked above");
            peer.free_out.retain(|(m, _)| *m != mid);
            let rewrite = peer.parked.remove(&mid);
            peer.out_by_sub
                .insert(sub, Outgoing::new(mid, kind, rewrite));
            peer.sub_by_mid.insert(mid, sub);
            let user = peer.user.clone();
            let event = if kind == MediaKind::Audio {
                EventKind::SubscribedAudio {
                    publisher: publisher.clone(),
                }
            } else {
                EventKind::SubscribedVideo {
                    publisher: publisher.clone(),
                }
            };
            self.emit(app, &rk, &comm_id, &user, event);
        }
    }

    /// Binds every viewer in the room waiting for `publisher`.
    pub(crate) fn bind_viewers_of(&mut self, slot: RoomSlot, publisher: &UserId) {
        let Some(room) = self.rooms.get(&slot) else {
            return;
        };
        let viewers: Vec<ParticipantId> = room
            .sessions
            .all_sessions()
            .filter(|(k, _)| matches!(k, SessionKey::Play { publisher: p, .. } if p == publisher))
            .map(|(_, pid)| pid)
            .collect();
        for v in viewers {
            self.bind_viewer(v);
        }
    }

    /// Removes a peer: its tracks and subscriptions end, its routes go, its session closes.
    pub(crate) fn remove_peer(&mut self, pid: ParticipantId, reason: ExitReason) {
        let Some(mut peer) = self.peers.remove(&pid) else {
            // A session of this room that another worker holds.
            self.remove_remote(pid, reason);
            return;
        };
        // Say goodbye (DTLS close_notify, RTCP BYE) so the client learns now, not at its next
        // consent check; then drop the connection.
        if peer.rtc.is_alive() && peer.connected {
            let _ = peer.rtc.close();
            for _ in 0..16 {
                match peer.rtc.poll_output() {
                    Ok(str0m::Output::Transmit(t)) => super::transmit(
                        &mut self.sends,
                        &self.socket,
                        &mut self.tcp,
                        &mut self.counters,
                        &t,
                    ),
                    Ok(str0m::Output::Event(_)) => {}
                    _ => break,
                }
            }
        }
        peer.rtc.disconnect();
        self.timers.retain(|Reverse((_, p))| *p != pid);
        self.by_ufrag.remove(&peer.ufrag);
        for addr in &peer.addrs {
            // An address another session took over since is that session's route.
            if self.by_addr.get(addr) == Some(&pid) {
                self.by_addr.remove(addr);
            }
        }
        let Some(room) = self.rooms.get_mut(&peer.slot) else {
            return;
        };
        let (app, rk, comm_id) = (room.app, room.room.clone(), room.comm_id.clone());
        let (tracks, ended) = room.core.remove_participant(pid);
        for t in tracks {
            self.tracks.remove(&t);
        }
        self.end_subscriptions(ended);
        self.renegotiate_room(peer.slot);
        if peer.connected {
            self.emit(app, &rk, &comm_id, &peer.user, EventKind::MediaDisconnected);
        }
        match peer.client {
            // A client's connection died on its own: the whole client session ends.
            Some(cid) => {
                let unpublished = reason == ExitReason::Left
                    && self
                        .clients
                        .get(&cid)
                        .is_some_and(|c| c.publish_peer.is_none());
                if !unpublished {
                    let notice = Some(crate::client::NoticeReason::Timeout);
                    self.end_client(cid, reason, notice);
                }
            }
            None => {
                let exited = EventKind::Exited { reason };
                self.drop_session(peer.slot, &peer.user, &peer.key, pid, exited);
                self.broadcast_user(peer.slot, &peer.user);
            }
        }
    }
}
