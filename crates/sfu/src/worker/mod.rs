//! A media worker: one thread, one UDP socket, many peers and whole rooms. It owns all its
//! state (no locks): commands arrive on a channel, datagrams on the socket, and str0m's timers
//! come due from a heap. Sending is non-blocking; a full socket buffer drops (UDP semantics).

mod batch_io;
mod clients;
mod custom;
mod demux;
mod forward;
mod gate;
mod media;
mod mirror;
mod moderation;
mod nack;

pub use mirror::MirrorOf;
pub(crate) use mirror::{links, Inbox, Links};
pub use moderation::Blocked;
mod payload;
mod peer;
mod quality;
mod rewrite;
mod rooms;
mod sessions;
mod tcp;

use crate::command::{Command, SfuError, WorkerStats};
use crate::core::{ParticipantId, SubscriptionId, TrackId};
use crate::events::DomainEvent;
use hearth_types::{RoomKey, SdkAppId};
use peer::Peer;
use rooms::{RoomSlot, RoomState};
use rustc_hash::{FxHashMap, FxHashSet};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use str0m::media::Mid;
use str0m::net::{Protocol, Receive};
use str0m::{Event, Input};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// How often idle housekeeping runs (connect deadlines, dead peers).
const HOUSEKEEPING: Duration = Duration::from_secs(1);
/// A peer that has not completed ICE + DTLS this long after its offer is removed.
pub(crate) const CONNECT_DEADLINE: Duration = Duration::from_secs(20);
/// Timeouts already due handled within one poll of a peer before it goes to the heap.
const MAX_DUE_NOW: u32 = 4;
/// Batches read per wake-up before timers and commands get a turn.
const RECV_ROUNDS: usize = 4;
/// While polling a long list of peers (a large fan-out), the socket is read after this many, so
/// feedback and publishers' media wait in the kernel's buffer for a bounded time only.
const POLLS_BETWEEN_READS: usize = 128;

/// Where a track comes from: the publishing peer and its media line.
pub(crate) struct TrackSource {
    pub peer: ParticipantId,
    pub mid: Mid,
}

pub(crate) struct Worker {
    pub index: usize,
    pub socket: UdpSocket,
    /// The addresses announced in ICE candidates (at the socket's port): the bound one, or
    /// those configured (a public address behind 1:1 NAT, several interfaces).
    pub announced: Vec<SocketAddr>,
    /// `announced_for` of an IPv4 and of an IPv6 sender, worked out once.
    arrives_at: [SocketAddr; 2],
    /// ICE over TCP, when on: the connections at the same port.
    tcp: Option<tcp::TcpSide>,
    /// Looked up for every packet and every receiver: a fast hash (ids are ours, not input).
    pub peers: FxHashMap<ParticipantId, Peer>,
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
    /// Mirrored layers whose handed-over packets reached this worker too late and were
    /// dropped: their next packet makes the lines resume at a keyframe (`mirror.rs`).
    stale_layers: FxHashSet<(TrackId, crate::core::Layer)>,
    /// Events polled from a peer, handled after its polling ends.
    polled: Vec<(ParticipantId, Event)>,
    /// Reused for every frame's receivers.
    pub forwards: Vec<crate::core::Forward>,
    /// When quality was last sampled.
    pub last_quality: Instant,
    pub counters: crate::command::Counters,
    /// Sessions (WHIP, WHEP, protocol clients) taken at most; 0: no limit.
    capacity: usize,
    /// Sessions per user and application, shared by the workers.
    pub quota: std::sync::Arc<crate::SessionQuota>,
    /// Datagrams waiting for the next `sendmmsg`.
    sends: batch_io::SendBatch,
    /// Buffers of `recvmmsg`; taken while their datagrams are handled.
    reads: Option<Box<batch_io::RecvBatch>>,
    /// The channels to the other workers (rooms spread over workers, `mirror.rs`).
    links: Links,
    /// Home: the room of each viewer another worker holds.
    pub remote_rooms: FxHashMap<ParticipantId, RoomSlot>,
    /// Home: viewers another worker said were gone before their attach arrived.
    pub gone_early: FxHashMap<ParticipantId, Instant>,
}

/// What a worker is started with, besides its socket.
pub(crate) struct Setup {
    pub index: usize,
    /// The addresses to announce (empty: the bound one).
    pub announce: Vec<IpAddr>,
    /// A listener at the socket's address for ICE over TCP.
    pub tcp: Option<std::net::TcpListener>,
    pub events: mpsc::Sender<DomainEvent>,
    pub capacity: usize,
    pub quota: std::sync::Arc<crate::SessionQuota>,
    pub links: Links,
}

impl Worker {
    /// Called on the worker's runtime (the ICE-TCP listener's tasks run there).
    pub fn new(socket: UdpSocket, setup: Setup) -> std::io::Result<Self> {
        let Setup {
            index,
            announce,
            tcp,
            events,
            capacity,
            quota,
            links,
        } = setup;
        let local = socket.local_addr()?;
        let announced = if announce.is_empty() {
            vec![local]
        } else {
            announce
                .iter()
                .map(|ip| SocketAddr::new(*ip, local.port()))
                .collect()
        };
        let first_of = |v6: bool| {
            let a = announced.iter().find(|a| a.is_ipv6() == v6);
            *a.unwrap_or(&announced[0])
        };
        let arrives_at = [first_of(false), first_of(true)];
        let tcp = tcp.map(tcp::TcpSide::start).transpose()?;
        Ok(Worker {
            arrives_at,
            index,
            socket,
            announced,
            tcp,
            peers: FxHashMap::default(),
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
            next_id: mirror::first_id(index),
            dirty: Vec::new(),
            stale_layers: FxHashSet::default(),
            polled: Vec::new(),
            forwards: Vec::new(),
            last_quality: Instant::now(),
            counters: Default::default(),
            capacity,
            quota,
            sends: batch_io::SendBatch::default(),
            reads: Some(Box::default()),
            links,
            remote_rooms: FxHashMap::default(),
            gone_early: FxHashMap::default(),
        })
    }

    /// Sessions held: WHIP and WHEP sessions, and protocol clients (whose one or two
    /// connections count as one).
    fn sessions(&self) -> usize {
        let own = self.peers.values().filter(|p| p.client.is_none()).count();
        own + self.clients.len()
    }

    /// Refuses a new session when the worker holds its capacity; `count` when the refusal is
    /// the final answer (no other worker will be tried).
    pub(crate) fn check_capacity(&mut self, count: bool) -> Result<(), SfuError> {
        if self.capacity > 0 && self.sessions() >= self.capacity {
            self.counters.refused_full += u64::from(count);
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
    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>, mut inbox: Inbox) {
        let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
        let mut tcp_in = self.tcp.as_mut().and_then(|t| t.inbox.take());
        loop {
            let deadline = self.next_deadline();
            tokio::select! {
                biased;
                cmd = commands.recv() => match cmd {
                    Some(Command::Shutdown) | None => break,
                    Some(cmd) => self.handle_command(cmd),
                },
                // Before the socket: a mirror's viewers wait on these packets.
                Some(msg) = inbox.ctl.recv() => self.handle_ctl(msg),
                Some(batch) = inbox.media.recv() => self.relayed(batch),
                Some(msg) = recv_some(&mut tcp_in) => self.handle_tcp(msg),
                r = self.socket.readable() => {
                    if r.is_ok() {
                        for _ in 0..RECV_ROUNDS {
                            if self.read_socket() < batch_io::BATCH {
                                break;
                            }
                        }
                    }
                }
                _ = tokio::time::sleep_until(deadline.into()) => self.fire_timers(),
                _ = housekeeping.tick() => self.housekeeping(),
            }
            self.poll_dirty();
            self.flush_sends();
            self.flush_relays();
        }
        self.shutdown();
        self.flush_sends();
    }

    /// Reads one batch of datagrams and handles them; returns how many there were. When the
    /// socket is empty, tokio's readiness is cleared so the loop waits for the next datagram.
    fn read_socket(&mut self) -> usize {
        let Some(mut reads) = self.reads.take() else {
            return 0; // already reading further up the stack
        };
        let fd = batch_io::fd_of(&self.socket);
        let n = self
            .socket
            .try_io(tokio::io::Interest::READABLE, || reads.read(fd))
            .unwrap_or_default();
        self.receive_batch(reads, n);
        n
    }

    /// Handles the `n` datagrams of a read and puts the buffers back.
    fn receive_batch(&mut self, reads: Box<batch_io::RecvBatch>, n: usize) {
        for i in 0..n {
            if let Some((data, source)) = reads.get(i) {
                self.receive(data, source);
            }
        }
        self.reads = Some(reads);
        // Other workers fan out what was handed to them while this one fans out its own.
        self.flush_relays();
    }

    /// Reads the socket in the middle of other work, bypassing tokio's readiness (which is
    /// not updated until the loop yields).
    fn read_socket_now(&mut self) {
        let Some(mut reads) = self.reads.take() else {
            return;
        };
        let n = reads.read(batch_io::fd_of(&self.socket)).unwrap_or(0);
        self.receive_batch(reads, n);
    }

    /// Sends what is batched.
    pub(crate) fn flush_sends(&mut self) {
        if !self.sends.is_empty() {
            flush(&mut self.sends, &self.socket, &mut self.counters);
        }
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
                spill,
                reply,
            } => {
                let _ = reply.send(self.play(req, publisher, stream, &offer, spill));
            }
            Command::Describe {
                app,
                room,
                publisher,
                stream,
                reply,
            } => {
                let _ = reply.send(self.describe(app, &room, &publisher, stream));
            }
            Command::PlayMirrored {
                req,
                publisher,
                stream,
                offer,
                of,
                last,
                reply,
            } => {
                let r = self.play_mirrored(req, publisher, stream, &offer, of, last);
                let _ = reply.send(r);
            }
            Command::DescribeRoom { app, room, reply } => {
                let _ = reply.send(self.describe_room(app, &room));
            }
            Command::EnterMirrored {
                req,
                autosubscribe,
                notify,
                of,
                last,
                reply,
            } => {
                let _ = reply.send(self.enter_mirrored(req, autosubscribe, notify, of, last));
            }
            Command::Attach {
                req,
                viewer,
                publisher,
                stream,
                of,
                reply,
            } => {
                let _ = reply.send(self.attach(req, viewer, publisher, stream, &of));
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
            // Mirrors are counted by their home.
            rooms: self.rooms.values().filter(|r| r.mirror.is_none()).count(),
            peers: self.peers.len(),
            addr_routes: self.by_addr.len(),
            ufrag_routes: self.by_ufrag.len(),
            tracks: self.tracks.len(),
            subscriptions: self.subs.len(),
            timers: self.timers.len(),
            events_dropped: self.events_dropped,
            events_queued: self.events.max_capacity() - self.events.capacity(),
            tcp_connections: self.tcp.as_ref().map_or(0, |t| t.len()),
            users: self
                .rooms
                .values()
                .filter(|r| r.mirror.is_none())
                .map(|r| r.sessions.users().count())
                .sum(),
            counters: self.counters,
        }
    }

    /// The announced address a packet from `source` is taken to have come to: the first of
    /// its address family (str0m pairs it with the host candidate of that address).
    fn announced_for(&self, source: SocketAddr) -> SocketAddr {
        self.arrives_at[usize::from(source.is_ipv6())]
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
        self.deliver(pid, Protocol::Udp, source, data);
    }

    /// A packet of peer `pid` (a datagram, or an ICE-TCP frame) into its str0m connection; a
    /// UDP address it checks from becomes a route to it.
    pub(crate) fn deliver(
        &mut self,
        pid: ParticipantId,
        proto: Protocol,
        source: SocketAddr,
        data: &[u8],
    ) {
        self.counters.datagrams_in += 1;
        self.counters.bytes_in += data.len() as u64;
        let destination = self.announced_for(source);
        let Some(peer) = self.peers.get_mut(&pid) else {
            return;
        };
        let Ok(contents) = data.try_into() else {
            return;
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto,
                source,
                destination,
                contents,
            },
        );
        if !peer.rtc.accepts(&input) {
            return;
        }
        if proto == Protocol::Udp && !peer.addrs.contains(&source) {
            // A new address of this peer (a check on another candidate pair) routes to it as
            // well: replacing the route of the address carrying its media would drop that
            // media until its next check from there.
            if peer.addrs.len() == peer::MAX_PEER_ADDRS {
                let oldest = peer.addrs.remove(0);
                if self.by_addr.get(&oldest) == Some(&pid) {
                    self.by_addr.remove(&oldest);
                }
            }
            peer.addrs.push(source);
            self.by_addr.insert(source, pid);
        }
        if let Err(e) = peer.rtc.handle_input(input) {
            tracing::debug!(peer = pid.0, error = %e, "input rejected; disconnecting");
            peer.rtc.disconnect();
        }
        // In RTP mode str0m holds one received packet until the next poll: poll now, so the
        // next datagram of this peer cannot replace it.
        self.poll_now(pid);
    }

    /// Polls one peer and handles what it said; peers this dirties are polled later.
    fn poll_now(&mut self, pid: ParticipantId) {
        let queued = self.peers.get(&pid).is_some_and(|p| p.dirty);
        self.poll_peer(pid);
        let mut polled = std::mem::take(&mut self.polled);
        for (pid, event) in polled.drain(..) {
            self.handle_event(pid, event);
        }
        self.polled = polled;
        if let Some(p) = self.peers.get_mut(&pid) {
            if queued {
                p.dirty = true; // still listed: `poll_dirty` polls it again
            } else if !p.rtc.is_alive() {
                self.mark_dirty(pid); // `poll_dirty` removes it
            }
        }
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
            if i % POLLS_BETWEEN_READS == 0 {
                self.flush_sends();
                self.read_socket_now();
            }
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
        let mut dead = dead;
        dead.sort_unstable();
        dead.dedup();
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
        let mut now = None;
        let mut due_now = 0;
        loop {
            if !peer.rtc.is_alive() {
                return;
            }
            match peer.rtc.poll_output() {
                Ok(str0m::Output::Transmit(t)) => transmit(
                    &mut self.sends,
                    &self.socket,
                    &mut self.tcp,
                    &mut self.counters,
                    &t,
                ),
                Ok(str0m::Output::Timeout(t)) => {
                    // Due already (str0m asks for this after every write, to release the
                    // packet): handle it here rather than through the heap and another pass.
                    let n = *now.get_or_insert_with(Instant::now);
                    if t <= n && due_now < MAX_DUE_NOW {
                        due_now += 1;
                        if let Err(e) = peer.rtc.handle_input(Input::Timeout(n)) {
                            tracing::debug!(peer = pid.0, error = %e, "timeout handling failed; disconnecting");
                            peer.rtc.disconnect();
                            return;
                        }
                        continue;
                    }
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
        self.sweep_tcp(now);
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
        self.expire_gone_early(now);
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

/// Sends what str0m transmits: on the ICE-TCP connection it names, else as a datagram.
pub(crate) fn transmit(
    sends: &mut batch_io::SendBatch,
    socket: &UdpSocket,
    tcp: &mut Option<tcp::TcpSide>,
    counters: &mut crate::command::Counters,
    t: &str0m::net::Transmit,
) {
    if t.proto == Protocol::Tcp {
        if tcp::send(tcp, &t.contents, t.destination) {
            counters.datagrams_out += 1;
            counters.bytes_out += t.contents.len() as u64;
        } else {
            counters.send_drops += 1;
        }
        return;
    }
    send(sends, socket, counters, &t.contents, t.destination);
}

/// The next message of an optional queue; never, when there is none.
async fn recv_some<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Queues a datagram for the next `sendmmsg`, flushing first when the batch is full.
/// Non-blocking: a full socket buffer drops the datagram, as the network would.
pub(crate) fn send(
    sends: &mut batch_io::SendBatch,
    socket: &UdpSocket,
    counters: &mut crate::command::Counters,
    datagram: &[u8],
    to: SocketAddr,
) {
    if sends.push(datagram, to) {
        return;
    }
    if sends.is_full() {
        flush(sends, socket, counters);
        if sends.push(datagram, to) {
            return;
        }
    }
    // Larger than a batch slot: on its own.
    match socket.try_send_to(datagram, to) {
        Ok(n) => {
            counters.datagrams_out += 1;
            counters.bytes_out += n as u64;
        }
        Err(_) => counters.send_drops += 1,
    }
}

/// One `sendmmsg` of what is batched, counted.
fn flush(
    sends: &mut batch_io::SendBatch,
    socket: &UdpSocket,
    counters: &mut crate::command::Counters,
) {
    let f = sends.flush(batch_io::fd_of(socket));
    counters.datagrams_out += f.datagrams;
    counters.bytes_out += f.bytes;
    counters.send_drops += f.dropped;
    counters.send_calls += f.calls;
    counters.gso_datagrams += f.gso_datagrams;
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
