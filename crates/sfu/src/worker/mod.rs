//! A media worker: one thread, one UDP socket, many peers and whole rooms. It owns all its
//! state (no locks): commands arrive on a channel, datagrams on the socket, and str0m's timers
//! come due from a heap. Sending is non-blocking; a full socket buffer drops (UDP semantics).

mod clients;
mod demux;
mod media;
mod moderation;

pub use moderation::Blocked;
mod peer;
mod quality;
mod rooms;
mod sessions;

use crate::command::{Command, SfuError, WorkerStats};
use crate::core::{ParticipantId, SubscriptionId, TrackId};
use crate::events::DomainEvent;
use hearth_types::{RoomKey, SdkAppId};
use peer::Peer;
use rooms::{RoomSlot, RoomState};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use str0m::media::Mid;
use str0m::net::{Protocol, Receive};
use str0m::{Event, Input};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Largest datagram read; WebRTC keeps packets under the path MTU.
const RECV_BUF: usize = 2048;
/// How often idle housekeeping runs (connect deadlines, dead peers).
const HOUSEKEEPING: Duration = Duration::from_secs(1);
/// A peer that has not completed ICE + DTLS this long after its offer is removed.
pub(crate) const CONNECT_DEADLINE: Duration = Duration::from_secs(20);
/// Datagrams handled per wake-up before timers and commands get a turn.
const RECV_BATCH: usize = 64;

/// Where a track comes from: the publishing peer and its media line.
pub(crate) struct TrackSource {
    pub peer: ParticipantId,
    pub mid: Mid,
}

pub(crate) struct Worker {
    pub index: usize,
    pub socket: UdpSocket,
    pub local: SocketAddr,
    pub peers: HashMap<ParticipantId, Peer>,
    pub by_addr: HashMap<SocketAddr, ParticipantId>,
    pub by_ufrag: HashMap<String, ParticipantId>,
    pub rooms: HashMap<RoomSlot, RoomState>,
    pub room_index: HashMap<(SdkAppId, RoomKey), RoomSlot>,
    pub tracks: HashMap<TrackId, TrackSource>,
    pub subs: HashMap<SubscriptionId, ParticipantId>,
    pub clients: HashMap<ParticipantId, clients::ClientState>,
    timers: BinaryHeap<Reverse<(Instant, ParticipantId)>>,
    pub events: mpsc::Sender<DomainEvent>,
    pub events_dropped: u64,
    next_id: u64,
    /// Peers to poll after the current work item.
    dirty: Vec<ParticipantId>,
    /// Events polled from a peer, handled after its polling ends.
    polled: Vec<(ParticipantId, Event)>,
    /// Reused for every frame's receivers.
    pub forwards: Vec<crate::core::Forward>,
    /// When quality was last sampled.
    pub last_quality: Instant,
    pub counters: crate::command::Counters,
    /// Sessions (WHIP, WHEP, protocol clients) taken at most; 0: no limit.
    capacity: usize,
}

impl Worker {
    pub fn new(
        index: usize,
        socket: UdpSocket,
        events: mpsc::Sender<DomainEvent>,
        capacity: usize,
    ) -> std::io::Result<Self> {
        let local = socket.local_addr()?;
        Ok(Worker {
            index,
            socket,
            local,
            peers: HashMap::new(),
            by_addr: HashMap::new(),
            by_ufrag: HashMap::new(),
            rooms: HashMap::new(),
            room_index: HashMap::new(),
            tracks: HashMap::new(),
            subs: HashMap::new(),
            clients: HashMap::new(),
            timers: BinaryHeap::new(),
            events,
            events_dropped: 0,
            next_id: 1,
            dirty: Vec::new(),
            polled: Vec::new(),
            forwards: Vec::new(),
            last_quality: Instant::now(),
            counters: Default::default(),
            capacity,
        })
    }

    /// Sessions held: WHIP and WHEP sessions, and protocol clients (whose one or two
    /// connections count as one).
    fn sessions(&self) -> usize {
        let own = self
            .peers
            .values()
            .filter(|p| p.key != peer::SessionKey::Client)
            .count();
        own + self.clients.len()
    }

    /// Refuses a new session when the worker holds its capacity.
    pub(crate) fn check_capacity(&mut self) -> Result<(), SfuError> {
        if self.capacity > 0 && self.sessions() >= self.capacity {
            self.counters.refused_full += 1;
            return Err(SfuError::Full(self.capacity));
        }
        Ok(())
    }

    pub fn next_participant(&mut self) -> ParticipantId {
        let id = ParticipantId(self.next_id);
        self.next_id += 1;
        id
    }

    /// Runs until `Shutdown` or until every command sender is gone.
    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut buf = vec![0u8; RECV_BUF];
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                biased;
                cmd = commands.recv() => match cmd {
                    Some(Command::Shutdown) | None => break,
                    Some(cmd) => self.handle_command(cmd),
                },
                r = self.socket.recv_from(&mut buf) => {
                    if let Ok((n, source)) = r {
                        self.receive(&buf[..n], source);
                        for _ in 1..RECV_BATCH {
                            match self.socket.try_recv_from(&mut buf) {
                                Ok((n, source)) => self.receive(&buf[..n], source),
                                Err(_) => break,
                            }
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline.into()) => self.fire_timers(),
                _ = housekeeping.tick() => self.housekeeping(),
            }
            self.poll_dirty();
        }
        self.shutdown();
    }

    fn next_deadline(&self) -> Instant {
        self.timers
            .peek()
            .map_or_else(|| Instant::now() + HOUSEKEEPING, |Reverse((t, _))| *t)
    }

    fn handle_command(&mut self, cmd: Command) {
        match cmd {
            Command::Publish { req, offer, reply } => {
                let _ = reply.send(self.publish(req, &offer));
            }
            Command::Play {
                req,
                publisher,
                stream,
                offer,
                reply,
            } => {
                let _ = reply.send(self.play(req, publisher, stream, &offer));
            }
            Command::Leave { session, reply } => {
                let _ = reply.send(self.leave(&session));
            }
            Command::Dismiss { app, room, reply } => {
                let _ = reply.send(self.dismiss(app, &room));
            }
            Command::RoomUsers { app, room, reply } => {
                let _ = reply.send(self.room_users(app, &room));
            }
            Command::Client(c) => self.handle_client_command(c),
            Command::Kick {
                app,
                room,
                users,
                reply,
            } => {
                let _ = reply.send(self.kick(app, &room, &users));
            }
            Command::Block {
                app,
                room,
                user,
                blocked,
                reply,
            } => {
                let _ = reply.send(self.block(app, &room, &user, blocked));
            }
            Command::Stats { reply } => {
                let _ = reply.send(Ok(self.stats()));
            }
            Command::Shutdown => {}
        }
    }

    fn stats(&self) -> WorkerStats {
        WorkerStats {
            rooms: self.rooms.len(),
            peers: self.peers.len(),
            addr_routes: self.by_addr.len(),
            ufrag_routes: self.by_ufrag.len(),
            tracks: self.tracks.len(),
            subscriptions: self.subs.len(),
            timers: self.timers.len(),
            events_dropped: self.events_dropped,
            events_queued: self.events.max_capacity() - self.events.capacity(),
            users: self
                .rooms
                .values()
                .map(|r| r.sessions.users().count())
                .sum(),
            counters: self.counters,
        }
    }

    /// One datagram: find its peer (address map, else STUN ufrag), feed it to str0m.
    fn receive(&mut self, data: &[u8], source: SocketAddr) {
        let pid = match self.by_addr.get(&source) {
            Some(pid) => *pid,
            None => {
                let Some(pid) = demux::stun_local_ufrag(data)
                    .and_then(|u| self.by_ufrag.get(u))
                    .copied()
                else {
                    return;
                };
                pid
            }
        };
        self.counters.datagrams_in += 1;
        self.counters.bytes_in += data.len() as u64;
        let Some(peer) = self.peers.get_mut(&pid) else {
            return;
        };
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
        if !peer.rtc.accepts(&input) {
            return;
        }
        if peer.addr != Some(source) {
            if let Some(old) = peer.addr.replace(source) {
                self.by_addr.remove(&old);
            }
            self.by_addr.insert(source, pid);
        }
        if let Err(e) = peer.rtc.handle_input(input) {
            tracing::debug!(peer = pid.0, error = %e, "input rejected; disconnecting");
            peer.rtc.disconnect();
        }
        self.mark_dirty(pid);
    }

    pub fn mark_dirty(&mut self, pid: ParticipantId) {
        if let Some(p) = self.peers.get_mut(&pid) {
            if !p.dirty {
                p.dirty = true;
                self.dirty.push(pid);
            }
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((t, pid))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(peer) = self.peers.get_mut(&pid) else {
                continue;
            };
            if peer.next_timeout != t {
                continue; // superseded by a later poll
            }
            if let Err(e) = peer.rtc.handle_input(Input::Timeout(now)) {
                tracing::debug!(peer = pid.0, error = %e, "timeout handling failed; disconnecting");
                peer.rtc.disconnect();
            }
            self.mark_dirty(pid);
        }
    }

    /// Polls every dirty peer until str0m has nothing more to say, handling the events this
    /// produces (which may dirty other peers, polled in the same pass).
    fn poll_dirty(&mut self) {
        let mut i = 0;
        while i < self.dirty.len() {
            let pid = self.dirty[i];
            i += 1;
            self.poll_peer(pid);
            let mut polled = std::mem::take(&mut self.polled);
            for (pid, event) in polled.drain(..) {
                self.handle_event(pid, event);
            }
            self.polled = polled;
        }
        let dead: Vec<ParticipantId> = self
            .dirty
            .drain(..)
            .filter(|pid| self.peers.get(pid).is_some_and(|p| !p.rtc.is_alive()))
            .collect();
        for pid in dead {
            // The remote closing DTLS is a goodbye; anything else (ICE consent lapsed, never
            // connected) is a timeout.
            let reason = if self.peers[&pid].remote_closed {
                crate::events::ExitReason::Left
            } else {
                crate::events::ExitReason::Timeout
            };
            self.remove_peer(pid, reason);
        }
    }

    fn poll_peer(&mut self, pid: ParticipantId) {
        let Some(peer) = self.peers.get_mut(&pid) else {
            return;
        };
        peer.dirty = false;
        loop {
            if !peer.rtc.is_alive() {
                return;
            }
            match peer.rtc.poll_output() {
                Ok(str0m::Output::Transmit(t)) => {
                    // Non-blocking: a full socket buffer drops the datagram, as the network would.
                    match self.socket.try_send_to(&t.contents, t.destination) {
                        Ok(n) => {
                            self.counters.datagrams_out += 1;
                            self.counters.bytes_out += n as u64;
                        }
                        Err(_) => self.counters.send_drops += 1,
                    }
                }
                Ok(str0m::Output::Timeout(t)) => {
                    if peer.next_timeout != t {
                        peer.next_timeout = t;
                        self.timers.push(Reverse((t, pid)));
                    }
                    return;
                }
                Ok(str0m::Output::Event(e)) => self.polled.push((pid, e)),
                Err(e) => {
                    tracing::debug!(peer = pid.0, error = %e, "poll failed; disconnecting");
                    peer.rtc.disconnect();
                    return;
                }
            }
        }
    }

    fn housekeeping(&mut self) {
        let now = Instant::now();
        let late: Vec<ParticipantId> = self
            .peers
            .values()
            .filter(|p| !p.connected && now.saturating_duration_since(p.created) > CONNECT_DEADLINE)
            .map(|p| p.id)
            .collect();
        for pid in late {
            tracing::info!(peer = pid.0, "never connected; removing");
            self.remove_peer(pid, crate::events::ExitReason::Timeout);
        }
        self.expire_detached(now);
        self.sample_quality(now);
        // Drop heap entries of peers that are gone, so the heap tracks live peers only.
        if self.timers.len() > 4 * self.peers.len() + 64 {
            let peers = &self.peers;
            self.timers
                .retain(|Reverse((t, pid))| peers.get(pid).is_some_and(|p| p.next_timeout == *t));
        }
    }

    fn shutdown(&mut self) {
        let clients: Vec<ParticipantId> = self.clients.keys().copied().collect();
        for cid in clients {
            let notice = Some(crate::client::NoticeReason::ServerShutdown);
            self.end_client(cid, crate::events::ExitReason::ServerShutdown, notice);
        }
        let all: Vec<ParticipantId> = self.peers.keys().copied().collect();
        for pid in all {
            self.remove_peer(pid, crate::events::ExitReason::ServerShutdown);
        }
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
