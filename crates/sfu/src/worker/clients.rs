//! Multi-party clients on a worker (`docs/protocol.md`): a session with a publish connection
//! (the client offers) and a subscribe connection (the server offers), roles, mute, explicit or
//! automatic subscriptions, the roster, and resumption after a dropped socket.

use super::peer::{Outgoing, Peer, SessionKey};
use super::rooms::RoomSlot;
use super::Worker;
use crate::client::{
    ClientEntered, ClientNotice, NoticeReason, OfferedTrack, Role, RosterUser, Source,
};
use crate::command::{JoinRequest, SessionRef, SfuError};
use crate::core::{
    LayerChoice, MediaKind as CoreKind, ParticipantId, StreamKind, SubscriptionId, TrackId,
};
use crate::events::{EventKind, ExitReason};
use crate::offer::{check_offer, OfferDirection};
use hearth_types::UserId;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{Direction, MediaKind, Mid};
use tokio::sync::mpsc;

/// A client whose socket dropped may resume for this long.
pub(crate) const RESUME_WINDOW: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineState {
    /// In the offer awaiting an answer.
    Offered,
    Open(SubscriptionId),
    /// To be stopped in the next offer.
    ToStop,
    /// Stopped in the offer awaiting an answer.
    Stopping,
}

struct OutLine {
    mid: Mid,
    track: TrackId,
    user: UserId,
    stream: StreamKind,
    kind: MediaKind,
    state: LineState,
}

pub(crate) struct ClientState {
    pub slot: RoomSlot,
    pub user: UserId,
    role: Role,
    bot: bool,
    token: String,
    autosubscribe: bool,
    notify: mpsc::Sender<ClientNotice>,
    detached_since: Option<Instant>,
    pub publish_peer: Option<ParticipantId>,
    subscribe_peer: Option<ParticipantId>,
    /// Sources of the publish connection's media lines, as the client declared them.
    pub sources: HashMap<Mid, Source>,
    muted: HashSet<Source>,
    wanted: HashMap<(UserId, StreamKind), LayerChoice>,
    unwanted: HashSet<(UserId, StreamKind)>,
    lines: Vec<OutLine>,
    pending: Option<SdpPendingOffer>,
    /// Being removed with the rest of its room: no more offers.
    closing: bool,
    /// Its custom messages' rate budget and numbering.
    pub custom: super::custom::CustomBudget,
}

impl ClientState {
    pub(crate) fn role(&self) -> Role {
        self.role
    }

    /// A media bot of Hearth (`bot` at entry).
    pub(crate) fn is_bot(&self) -> bool {
        self.bot
    }
}

impl Worker {
    pub(crate) fn handle_client_command(&mut self, cmd: crate::command::ClientCommand) {
        use crate::command::ClientCommand as C;
        match cmd {
            C::Enter {
                req,
                role,
                autosubscribe,
                notify,
                spill,
                reply,
            } => {
                let r = self.client_enter(req, role, autosubscribe, notify, !spill);
                let _ = reply.send(r);
            }
            C::Attach {
                session,
                notify,
                reply,
            } => {
                let _ = reply.send(self.client_attach(&session, notify));
            }
            C::Detach { session, reply } => {
                let _ = reply.send(self.client_detach(&session));
            }
            C::Publish {
                session,
                sdp,
                sources,
                reply,
            } => {
                let _ = reply.send(self.client_publish(&session, &sdp, sources));
            }
            C::Answer {
                session,
                sdp,
                reply,
            } => {
                let _ = reply.send(self.client_answer(&session, &sdp));
            }
            C::Subscribe {
                session,
                user,
                stream,
                quality,
                on,
                reply,
            } => {
                let _ = reply.send(self.client_subscribe(&session, user, stream, quality, on));
            }
            C::Mute {
                session,
                source,
                muted,
                reply,
            } => {
                let _ = reply.send(self.client_mute(&session, source, muted));
            }
            C::Unpublish {
                session,
                source,
                reply,
            } => {
                let _ = reply.send(self.client_unpublish(&session, source));
            }
            C::Role {
                session,
                role,
                reply,
            } => {
                let _ = reply.send(self.client_role(&session, role));
            }
            C::Report {
                session,
                samples,
                reply,
            } => {
                let r = self.client_of(&session).map(|cid| {
                    let c = &self.clients[&cid];
                    let (slot, user) = (c.slot, c.user.clone());
                    for (peer, metric, value) in samples {
                        self.emit_for(
                            slot,
                            &user,
                            EventKind::Quality {
                                peer,
                                metric,
                                value,
                            },
                        );
                    }
                });
                let _ = reply.send(r);
            }
            C::Custom {
                session,
                cmd_id,
                data,
                reply,
            } => {
                let r = self.client_custom(&session, cmd_id, data, Instant::now());
                let _ = reply.send(r);
            }
            C::Exit { session, reply } => {
                let r = self
                    .client_of(&session)
                    .map(|cid| self.end_client(cid, ExitReason::Left, None));
                let _ = reply.send(r);
            }
        }
    }

    /// Sends a notice to a client's signaling task (dropped if its queue is full).
    pub(crate) fn tell(&self, cid: ParticipantId, notice: ClientNotice) {
        if let Some(c) = self.clients.get(&cid) {
            let _ = c.notify.try_send(notice);
        }
    }

    pub(crate) fn client_of(&self, s: &SessionRef) -> Result<ParticipantId, SfuError> {
        match self.clients.get(&s.peer) {
            Some(c) if s.worker == self.index && c.token == s.token => Ok(s.peer),
            _ => Err(SfuError::SessionNotFound),
        }
    }

    pub(crate) fn client_enter(
        &mut self,
        req: JoinRequest,
        role: Role,
        autosubscribe: bool,
        notify: mpsc::Sender<ClientNotice>,
        final_say: bool,
    ) -> Result<ClientEntered, SfuError> {
        // Without the room here no other worker can mirror it: a refusal is final.
        let final_say = final_say || self.find_room(req.app, &req.room).is_none();
        self.check_capacity(final_say)?;
        self.quota.check(req.app, &req.user)?;
        let cid = self.next_participant();
        let slot = self.room_slot(req.app, &req.room, &req.user);
        let token = super::sessions::random(24);
        self.clients.insert(
            cid,
            ClientState {
                slot,
                user: req.user.clone(),
                role,
                bot: req.bot,
                token: token.clone(),
                autosubscribe,
                notify,
                detached_since: None,
                publish_peer: None,
                subscribe_peer: None,
                sources: HashMap::new(),
                muted: HashSet::new(),
                wanted: HashMap::new(),
                unwanted: HashSet::new(),
                lines: Vec::new(),
                pending: None,
                closing: false,
                custom: Default::default(),
            },
        );
        let entered = EventKind::Entered {
            client_ip: req.client_ip,
            device_type: req.device_type,
            sdk_version: req.sdk_version,
            anchor: role == Role::Anchor,
            bot: req.bot,
        };
        if let Some(old) = self.add_session(slot, &req.user, SessionKey::Client, cid, entered) {
            if self.clients.contains_key(&old) {
                self.end_client(old, ExitReason::Replaced, Some(NoticeReason::Replaced));
            } else {
                self.remove_peer(old, ExitReason::Replaced);
            }
        }
        self.emit_for(slot, &req.user, EventKind::SignalingConnected);
        self.broadcast_user(slot, &req.user);
        self.renegotiate(cid);
        Ok(ClientEntered {
            session: SessionRef {
                worker: self.index,
                peer: cid,
                token,
            },
            roster: self.roster(slot, Some(&req.user)),
        })
    }

    /// A dropped socket: the session waits for `client_attach` up to [`RESUME_WINDOW`].
    pub(crate) fn client_detach(&mut self, s: &SessionRef) -> Result<(), SfuError> {
        let cid = self.client_of(s)?;
        let c = self.clients.get_mut(&cid).expect("checked");
        c.detached_since = Some(Instant::now());
        let (slot, user) = (c.slot, c.user.clone());
        self.emit_for(slot, &user, EventKind::SignalingDisconnected);
        Ok(())
    }

    pub(crate) fn client_attach(
        &mut self,
        s: &SessionRef,
        notify: mpsc::Sender<ClientNotice>,
    ) -> Result<ClientEntered, SfuError> {
        let cid = self.client_of(s)?;
        let c = self.clients.get_mut(&cid).expect("checked");
        c.notify = notify;
        c.detached_since = None;
        let (slot, user) = (c.slot, c.user.clone());
        // Whatever offer was in flight went to the old socket: offer again.
        if c.pending.take().is_some() {
            for l in &mut c.lines {
                l.state = match l.state {
                    LineState::Offered | LineState::Stopping => LineState::ToStop,
                    other => other,
                };
            }
        }
        self.emit_for(slot, &user, EventKind::SignalingConnected);
        self.renegotiate(cid);
        Ok(ClientEntered {
            session: s.clone(),
            roster: self.roster(slot, Some(&user)),
        })
    }

    pub(crate) fn client_publish(
        &mut self,
        s: &SessionRef,
        sdp: &str,
        sources: Vec<(String, Source)>,
    ) -> Result<String, SfuError> {
        let cid = self.client_of(s)?;
        if self.clients[&cid].role != Role::Anchor {
            return Err(SfuError::Forbidden("an audience member cannot publish"));
        }
        let c = &self.clients[&cid];
        if self.blocked(c.slot, &c.user).any() {
            return Err(SfuError::Forbidden(
                "an operator blocked your audio or video in this room",
            ));
        }
        check_offer(sdp, OfferDirection::Sends)?;
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let c = self.clients.get_mut(&cid).expect("checked");
        c.sources.extend(
            sources
                .into_iter()
                .map(|(mid, src)| (Mid::from(mid.as_str()), src)),
        );
        let (slot, user) = (c.slot, c.user.clone());
        let pid = match c.publish_peer {
            Some(p) => p,
            None => {
                let p = self.client_peer(cid, slot, &user, false)?;
                self.clients.get_mut(&cid).expect("checked").publish_peer = Some(p);
                p
            }
        };
        let peer = self.peers.get_mut(&pid).ok_or(SfuError::SessionNotFound)?;
        let answer = peer
            .rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| SfuError::BadSdp(e.to_string()))?;
        self.mark_dirty(pid);
        Ok(answer.to_sdp_string())
    }

    pub(crate) fn client_answer(&mut self, s: &SessionRef, sdp: &str) -> Result<(), SfuError> {
        let cid = self.client_of(s)?;
        let answer =
            SdpAnswer::from_sdp_string(sdp).map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let c = self.clients.get_mut(&cid).expect("checked");
        let pending = c
            .pending
            .take()
            .ok_or(SfuError::BadSdp("no offer is awaiting an answer".into()))?;
        let sub_peer = c.subscribe_peer.ok_or(SfuError::SessionNotFound)?;
        let peer = self
            .peers
            .get_mut(&sub_peer)
            .ok_or(SfuError::SessionNotFound)?;
        peer.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| SfuError::BadSdp(e.to_string()))?;
        let slot = self.clients[&cid].slot;
        let offered: Vec<(usize, TrackId, StreamKind, UserId, MediaKind, Mid)> = self.clients[&cid]
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.state == LineState::Offered)
            .map(|(i, l)| (i, l.track, l.stream, l.user.clone(), l.kind, l.mid))
            .collect();
        for (i, track, stream, user, kind, mid) in offered {
            let choice = self.clients[&cid]
                .wanted
                .get(&(user.clone(), stream))
                .copied()
                .unwrap_or(LayerChoice::Big);
            let sub = SubscriptionId(self.next_participant().0);
            let ok = self
                .rooms
                .get_mut(&slot)
                .is_some_and(|r| r.core.subscribe(sub, sub_peer, track, choice));
            let c = self.clients.get_mut(&cid).expect("checked");
            if !ok {
                c.lines[i].state = LineState::ToStop;
                continue;
            }
            c.lines[i].state = LineState::Open(sub);
            self.subs.insert(sub, sub_peer);
            if let Some(p) = self.peers.get_mut(&sub_peer) {
                p.out_by_sub.insert(sub, Outgoing::new(mid, kind, None));
                p.sub_by_mid.insert(mid, sub);
            }
            let me = self.clients[&cid].user.clone();
            let event = if kind == MediaKind::Audio {
                EventKind::SubscribedAudio { publisher: user }
            } else {
                EventKind::SubscribedVideo { publisher: user }
            };
            self.emit_for(slot, &me, event);
        }
        self.clients
            .get_mut(&cid)
            .expect("checked")
            .lines
            .retain(|l| l.state != LineState::Stopping);
        self.mark_dirty(sub_peer);
        self.renegotiate(cid);
        Ok(())
    }

    pub(crate) fn client_subscribe(
        &mut self,
        s: &SessionRef,
        user: UserId,
        stream: StreamKind,
        quality: Option<LayerChoice>,
        on: bool,
    ) -> Result<(), SfuError> {
        let cid = self.client_of(s)?;
        let slot = self.clients[&cid].slot;
        let key = (user.clone(), stream);
        if on {
            let exists = self.rooms.get(&slot).is_some_and(|r| {
                r.core.tracks().any(|(_, t)| {
                    t.stream == stream && self.owner_user(slot, t.owner) == Some(&user)
                })
            });
            if !exists {
                return Err(SfuError::PublisherNotFound);
            }
            let choice = quality.unwrap_or(LayerChoice::Big);
            let c = self.clients.get_mut(&cid).expect("checked");
            c.unwanted.remove(&key);
            c.wanted.insert(key, choice);
            let open: Vec<SubscriptionId> = c
                .lines
                .iter()
                .filter(|l| l.user == user && l.stream == stream)
                .filter_map(|l| {
                    if let LineState::Open(sub) = l.state {
                        Some(sub)
                    } else {
                        None
                    }
                })
                .collect();
            let now = Instant::now();
            let mut asks = Vec::new();
            if let Some(r) = self.rooms.get_mut(&slot) {
                asks.extend(
                    open.into_iter()
                        .filter_map(|sub| r.core.set_choice(sub, choice, now)),
                );
            }
            for a in asks {
                self.ask_keyframe(a);
            }
        } else {
            let c = self.clients.get_mut(&cid).expect("checked");
            c.wanted.remove(&key);
            c.unwanted.insert(key);
        }
        self.renegotiate(cid);
        Ok(())
    }

    pub(crate) fn client_mute(
        &mut self,
        s: &SessionRef,
        source: Source,
        muted: bool,
    ) -> Result<(), SfuError> {
        let cid = self.client_of(s)?;
        let c = self.clients.get_mut(&cid).expect("checked");
        let changed = if muted {
            c.muted.insert(source)
        } else {
            c.muted.remove(&source)
        };
        let mids: Vec<Mid> = c
            .sources
            .iter()
            .filter(|(_, s)| **s == source)
            .map(|(m, _)| *m)
            .collect();
        let (slot, user, publish) = (c.slot, c.user.clone(), c.publish_peer);
        if let Some(p) = publish.and_then(|p| self.peers.get_mut(&p)) {
            for m in mids {
                if let Some(i) = p.inbound.get_mut(&m) {
                    i.muted = muted;
                }
            }
        }
        if changed {
            let event = match (source, muted) {
                (Source::Mic, true) => EventKind::AudioOff,
                (Source::Mic, false) => EventKind::AudioOn,
                (Source::Camera, true) => EventKind::VideoOff,
                (Source::Camera, false) => EventKind::VideoOn,
                (Source::Screen, true) => EventKind::SubStreamOff,
                (Source::Screen, false) => EventKind::SubStreamOn,
            };
            self.emit_for(slot, &user, event);
            self.broadcast_user(slot, &user);
        }
        Ok(())
    }

    pub(crate) fn client_unpublish(
        &mut self,
        s: &SessionRef,
        source: Source,
    ) -> Result<(), SfuError> {
        let cid = self.client_of(s)?;
        let c = &self.clients[&cid];
        let mids: Vec<Mid> = c
            .sources
            .iter()
            .filter(|(_, s)| **s == source)
            .map(|(m, _)| *m)
            .collect();
        let (slot, user, publish) = (c.slot, c.user.clone(), c.publish_peer);
        let Some(pid) = publish else { return Ok(()) };
        // It was on if a line still carried it and it was not muted.
        let was_on = !c.muted.contains(&source)
            && self
                .peers
                .get(&pid)
                .is_some_and(|p| mids.iter().any(|m| p.inbound.contains_key(m)));
        for m in mids {
            self.remove_inbound(pid, m);
        }
        if was_on {
            self.emit_for(slot, &user, source_off(source));
        }
        self.broadcast_user(slot, &user);
        self.renegotiate_room(slot);
        Ok(())
    }

    pub(crate) fn client_role(&mut self, s: &SessionRef, role: Role) -> Result<(), SfuError> {
        let cid = self.client_of(s)?;
        let mirrored = self
            .rooms
            .get(&self.clients[&cid].slot)
            .is_some_and(|r| r.mirror.is_some());
        if mirrored && role == Role::Anchor {
            return Err(SfuError::Forbidden(
                "this audience member is on an overflow media worker of the room and cannot become an anchor there; enter the room again as an anchor",
            ));
        }
        let c = self.clients.get_mut(&cid).expect("checked");
        let changed = c.role != role;
        c.role = role;
        let (slot, user) = (c.slot, c.user.clone());
        if role == Role::Audience {
            if let Some(p) = c.publish_peer.take() {
                // What was being published (a line still carrying it, not muted) stops.
                let lines = self.peers.get(&p).map(|peer| &peer.inbound);
                let mut on: Vec<Source> = Vec::new();
                for (mid, s) in &c.sources {
                    let live = lines.is_some_and(|l| l.contains_key(mid));
                    if live && !on.contains(s) && !c.muted.contains(s) {
                        on.push(*s);
                    }
                }
                c.sources.clear();
                c.muted.clear();
                self.remove_peer(p, ExitReason::Left);
                for s in on {
                    self.emit_for(slot, &user, source_off(s));
                }
            }
            self.renegotiate_room(slot);
        }
        if changed {
            let anchor = role == Role::Anchor;
            self.emit_for(slot, &user, EventKind::RoleChanged { anchor });
        }
        self.broadcast_user(slot, &user);
        Ok(())
    }

    /// Removes a published media line's track (its subscribers' lines stop).
    pub(crate) fn remove_inbound(&mut self, pid: ParticipantId, mid: Mid) {
        let Some(p) = self.peers.get_mut(&pid) else {
            return;
        };
        let Some(inbound) = p.inbound.remove(&mid) else {
            return;
        };
        let slot = p.slot;
        self.tracks.remove(&inbound.track);
        let ended = self
            .rooms
            .get_mut(&slot)
            .map(|r| r.core.remove_track(inbound.track))
            .unwrap_or_default();
        self.end_subscriptions(ended);
    }

    /// Ends a client's session: tells it why (if it should hear), removes its connections,
    /// closes its presence.
    pub(crate) fn end_client(
        &mut self,
        cid: ParticipantId,
        reason: ExitReason,
        notice: Option<NoticeReason>,
    ) {
        let Some(c) = self.clients.remove(&cid) else {
            return;
        };
        if let Some(n) = notice {
            let _ = c.notify.try_send(ClientNotice::Ended(n));
        }
        for p in [c.publish_peer, c.subscribe_peer].into_iter().flatten() {
            self.remove_peer(p, reason);
        }
        self.drop_session(
            c.slot,
            &c.user,
            &SessionKey::Client,
            cid,
            EventKind::Exited { reason },
        );
        self.broadcast_user(c.slot, &c.user);
        self.renegotiate_room(c.slot);
    }

    /// A str0m connection owned by a client (publish or subscribe side).
    fn client_peer(
        &mut self,
        cid: ParticipantId,
        slot: RoomSlot,
        user: &UserId,
        subscriber: bool,
    ) -> Result<ParticipantId, SfuError> {
        let ufrag = super::sessions::random(16);
        let downlink = if subscriber {
            super::sessions::Downlink::Estimated
        } else {
            super::sessions::Downlink::None
        };
        let rtc = self.new_rtc(&ufrag, downlink)?;
        let pid = self.next_participant();
        let now = Instant::now();
        let key = if subscriber {
            SessionKey::Client
        } else {
            SessionKey::Publish
        };
        self.peers.insert(
            pid,
            Peer::new(
                pid,
                slot,
                user.clone(),
                key,
                String::new(),
                ufrag.clone(),
                rtc,
                now,
                Some(cid),
            ),
        );
        self.by_ufrag.insert(ufrag, pid);
        Ok(pid)
    }

    fn wants(c: &ClientState, user: &UserId, stream: StreamKind) -> bool {
        let key = (user.clone(), stream);
        if c.unwanted.contains(&key) {
            return false;
        }
        c.wanted.contains_key(&key) || c.autosubscribe
    }

    /// Brings a client's subscribe connection in line with what it wants and what exists: one
    /// offer at a time; the next waits for the answer.
    pub(crate) fn renegotiate(&mut self, cid: ParticipantId) {
        let Some(c) = self.clients.get(&cid) else {
            return;
        };
        if c.pending.is_some() || c.detached_since.is_some() || c.closing {
            return;
        }
        let slot = c.slot;
        let Some(room) = self.rooms.get(&slot) else {
            return;
        };
        let desired: Vec<(TrackId, UserId, StreamKind, MediaKind)> = room
            .core
            .tracks()
            .filter_map(|(id, t)| {
                let owner = self.owner_user(slot, t.owner)?;
                (*owner != c.user && Self::wants(c, owner, t.stream)).then(|| {
                    let kind = if t.kind == CoreKind::Audio {
                        MediaKind::Audio
                    } else {
                        MediaKind::Video
                    };
                    (id, owner.clone(), t.stream, kind)
                })
            })
            .collect();
        let desired_ids: HashSet<TrackId> = desired.iter().map(|d| d.0).collect();
        let mut to_unsubscribe = Vec::new();
        let c = self.clients.get_mut(&cid).expect("checked");
        for l in &mut c.lines {
            if !desired_ids.contains(&l.track) {
                match l.state {
                    LineState::Open(sub) => {
                        to_unsubscribe.push(sub);
                        l.state = LineState::ToStop;
                    }
                    LineState::Offered => l.state = LineState::ToStop,
                    _ => {}
                }
            }
        }
        let have: HashSet<TrackId> = c
            .lines
            .iter()
            .filter(|l| matches!(l.state, LineState::Offered | LineState::Open(_)))
            .map(|l| l.track)
            .collect();
        let adds: Vec<_> = desired
            .into_iter()
            .filter(|d| !have.contains(&d.0))
            .collect();
        let stops = c.lines.iter().any(|l| l.state == LineState::ToStop);
        let user = c.user.clone();
        for sub in to_unsubscribe {
            self.unsubscribe(slot, sub);
        }
        if adds.is_empty() && !stops {
            return;
        }
        let first_offer = self.clients[&cid].subscribe_peer.is_none();
        let sub_peer = match self.clients[&cid].subscribe_peer {
            Some(p) => p,
            None => match self.client_peer(cid, slot, &user, true) {
                Ok(p) => {
                    self.clients.get_mut(&cid).expect("checked").subscribe_peer = Some(p);
                    p
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not create a subscribe connection");
                    return;
                }
            },
        };
        let Some(peer) = self.peers.get_mut(&sub_peer) else {
            return;
        };
        let c = self.clients.get_mut(&cid).expect("checked");
        let mut change = peer.rtc.sdp_api();
        if first_offer {
            // A data channel opens the connection and stays its first m-line for good, so
            // stopping any media line later never empties the BUNDLE group or moves the
            // transport (browsers refuse the one and renegotiate DTLS on the other).
            change.add_channel("hearth".into());
        }
        for (track, owner, stream, kind) in adds {
            let stream_id = format!(
                "{owner}:{}",
                if stream == StreamKind::Sub {
                    "sub"
                } else {
                    "main"
                }
            );
            let mid = change.add_media(
                kind,
                Direction::SendOnly,
                Some(stream_id.clone()),
                Some(format!("{stream_id}:{kind}")),
                None,
            );
            c.lines.push(OutLine {
                mid,
                track,
                user: owner,
                stream,
                kind,
                state: LineState::Offered,
            });
        }
        for l in &mut c.lines {
            if l.state == LineState::ToStop {
                change.stop_media(l.mid);
                l.state = LineState::Stopping;
            }
        }
        let Some((offer, pending)) = change.apply() else {
            c.lines.retain(|l| l.state != LineState::Stopping);
            return;
        };
        c.pending = Some(pending);
        let tracks = c
            .lines
            .iter()
            .filter(|l| matches!(l.state, LineState::Offered | LineState::Open(_)))
            .map(|l| OfferedTrack {
                mid: l.mid.to_string(),
                user: l.user.clone(),
                stream: l.stream,
                audio: l.kind == MediaKind::Audio,
            })
            .collect();
        let _ = c.notify.try_send(ClientNotice::Offer {
            sdp: offer.to_sdp_string(),
            tracks,
        });
        self.mark_dirty(sub_peer);
    }

    fn unsubscribe(&mut self, slot: RoomSlot, sub: SubscriptionId) {
        if let Some(r) = self.rooms.get_mut(&slot) {
            r.core.unsubscribe(sub);
        }
        if let Some(pid) = self.subs.remove(&sub) {
            if let Some(p) = self.peers.get_mut(&pid) {
                if let Some(line) = p.out_by_sub.remove(&sub) {
                    p.sub_by_mid.remove(&line.mid);
                }
            }
        }
    }

    /// Subscriptions that ended because their track went: WHEP viewers wait for the publisher
    /// to return; clients stop the media line in their next offer.
    pub(crate) fn end_subscriptions(&mut self, ended: Vec<SubscriptionId>) {
        for sub in ended {
            let Some(viewer) = self.subs.remove(&sub) else {
                continue;
            };
            let Some(v) = self.peers.get_mut(&viewer) else {
                continue;
            };
            let Some(Outgoing {
                mid, kind, rewrite, ..
            }) = v.out_by_sub.remove(&sub)
            else {
                continue;
            };
            v.sub_by_mid.remove(&mid);
            match v.client {
                Some(cid) => {
                    if let Some(c) = self.clients.get_mut(&cid) {
                        for l in &mut c.lines {
                            if l.state == LineState::Open(sub) {
                                l.state = LineState::ToStop;
                            }
                        }
                    }
                }
                None => {
                    v.parked.insert(mid, rewrite);
                    v.free_out.push((mid, kind));
                }
            }
        }
    }

    pub(crate) fn renegotiate_room(&mut self, slot: RoomSlot) {
        let cids: Vec<ParticipantId> = self
            .clients
            .iter()
            .filter(|(_, c)| c.slot == slot)
            .map(|(id, _)| *id)
            .collect();
        for cid in cids {
            self.renegotiate(cid);
        }
    }

    /// Users others see: WHIP publishers and anchors (audience members are not listed).
    fn visible(&self, slot: RoomSlot, user: &UserId) -> bool {
        let Some(room) = self.rooms.get(&slot) else {
            return false;
        };
        room.sessions.session(user, &SessionKey::Publish).is_some()
            || room
                .sessions
                .session(user, &SessionKey::Client)
                .and_then(|cid| self.clients.get(&cid))
                .is_some_and(|c| c.role == Role::Anchor)
    }

    pub(crate) fn roster_user(&self, slot: RoomSlot, user: &UserId) -> RosterUser {
        let mut r = RosterUser {
            user: user.clone(),
            audio: false,
            video: false,
            sub: false,
            audio_muted: false,
            video_muted: false,
            bot: false,
        };
        if let Some(room) = self.rooms.get(&slot) {
            for (_, t) in room.core.tracks() {
                if self.peers.get(&t.owner).is_some_and(|p| p.user == *user) {
                    match (t.kind, t.stream) {
                        (CoreKind::Audio, _) => r.audio = true,
                        (CoreKind::Video, StreamKind::Main) => r.video = true,
                        (CoreKind::Video, StreamKind::Sub) => r.sub = true,
                    }
                }
            }
            if let Some(c) = room
                .sessions
                .session(user, &SessionKey::Client)
                .and_then(|cid| self.clients.get(&cid))
            {
                r.audio_muted = c.muted.contains(&Source::Mic);
                r.video_muted = c.muted.contains(&Source::Camera);
                r.bot = c.bot;
            }
        }
        r
    }

    pub(crate) fn roster(&self, slot: RoomSlot, except: Option<&UserId>) -> Vec<RosterUser> {
        let Some(room) = self.rooms.get(&slot) else {
            return Vec::new();
        };
        if let Some(m) = &room.mirror {
            // The home's roster, as its notices keep it (ordered by user).
            return m
                .roster
                .values()
                .filter(|u| Some(&u.user) != except)
                .cloned()
                .collect();
        }
        let mut users: Vec<RosterUser> = room
            .sessions
            .users()
            .map(|(u, _)| u)
            .filter(|u| Some(*u) != except && self.visible(slot, u))
            .map(|u| self.roster_user(slot, u))
            .collect();
        users.sort_by(|a, b| a.user.cmp(&b.user));
        users
    }

    pub(crate) fn send_room(&self, slot: RoomSlot, except: &UserId, notice: &ClientNotice) {
        for c in self
            .clients
            .values()
            .filter(|c| c.slot == slot && c.user != *except)
        {
            let _ = c.notify.try_send(notice.clone());
        }
    }

    /// Tells the room's clients about a user: `user_entered` the first time they are visible,
    /// `user_updated` after, `user_exited` once they are no longer visible. The workers that
    /// mirror the room hear of the user's tracks.
    pub(crate) fn broadcast_user(&mut self, slot: RoomSlot, user: &UserId) {
        self.sync_mirrors(slot, user);
        let visible = self.visible(slot, user);
        let roster = self.roster_user(slot, user);
        let Some(room) = self.rooms.get_mut(&slot) else {
            return;
        };
        let notice = match (visible, room.announced.contains(user)) {
            (true, false) => {
                room.announced.insert(user.clone());
                ClientNotice::UserEntered(roster)
            }
            (true, true) => ClientNotice::UserUpdated(roster),
            (false, true) => {
                room.announced.remove(user);
                ClientNotice::UserExited(user.clone())
            }
            (false, false) => return,
        };
        self.send_room(slot, user, &notice);
        self.notify_mirrors(slot, user, &notice);
    }

    pub(crate) fn emit_for(&mut self, slot: RoomSlot, user: &UserId, kind: EventKind) {
        if let Some(r) = self.rooms.get(&slot) {
            let (app, room, comm_id) = (r.app, r.room.clone(), r.comm_id.clone());
            self.emit(app, &room, &comm_id, user, kind);
        }
    }

    /// Sessions whose socket stayed away past the resume window end.
    pub(crate) fn expire_detached(&mut self, now: Instant) {
        let expired: Vec<ParticipantId> = self
            .clients
            .iter()
            .filter(|(_, c)| {
                c.detached_since
                    .is_some_and(|t| now.saturating_duration_since(t) > RESUME_WINDOW)
            })
            .map(|(id, _)| *id)
            .collect();
        for cid in expired {
            self.end_client(cid, ExitReason::Timeout, None);
        }
    }

    /// The stream a client's published media line carries.
    pub(crate) fn client_source(&self, cid: ParticipantId, mid: Mid, kind: MediaKind) -> Source {
        self.clients
            .get(&cid)
            .and_then(|c| c.sources.get(&mid).copied())
            .unwrap_or(if kind == MediaKind::Audio {
                Source::Mic
            } else {
                Source::Camera
            })
    }

    pub(crate) fn client_muted(&self, cid: ParticipantId, source: Source) -> bool {
        self.clients
            .get(&cid)
            .is_some_and(|c| c.muted.contains(&source))
    }

    pub(crate) fn end_room_clients(
        &mut self,
        slot: RoomSlot,
        reason: ExitReason,
        notice: NoticeReason,
    ) {
        let cids: Vec<ParticipantId> = self
            .clients
            .iter()
            .filter(|(_, c)| c.slot == slot)
            .map(|(id, _)| *id)
            .collect();
        for cid in &cids {
            if let Some(c) = self.clients.get_mut(cid) {
                c.closing = true;
            }
        }
        for cid in cids {
            self.end_client(cid, reason, Some(notice));
        }
    }
}

/// The event of a source that stops being published.
fn source_off(source: Source) -> EventKind {
    match source {
        Source::Mic => EventKind::AudioOff,
        Source::Camera => EventKind::VideoOff,
        Source::Screen => EventKind::SubStreamOff,
    }
}
