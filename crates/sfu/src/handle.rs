//! The rest of the server's handle on the media plane: starts the worker threads, routes each
//! room to its home worker (by hash), places a full home's further WHEP viewers on other
//! workers, and turns calls into commands with replies.

use crate::client::{ClientEntered, ClientNotice, Role, Source};
use crate::command::{
    ClientCommand, Command, JoinRequest, Joined, RoomUser, SessionRef, SfuError, WorkerStats,
};
use crate::core::StreamKind;
use crate::events::DomainEvent;
use crate::worker::Worker;
use hearth_types::{RoomKey, SdkAppId, UserId};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

/// Socket buffers of a media worker: one socket carries every peer of its rooms, and a fan-out
/// burst (plus the feedback it triggers) overflows the kernel's 208 KiB default, which drops
/// publishers' media before the CPU is busy (seen in `bench/media.sh`).
const SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;

fn bind_media_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Commands queued per worker before callers wait.
const COMMAND_QUEUE: usize = 1024;

/// Where and how many workers run.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// Bound (UDP, and TCP with `tcp`).
    pub ip: IpAddr,
    /// Announced in ICE candidates; empty: `ip`. Several addresses (a public one behind 1:1
    /// NAT, more interfaces) all lead to the same sockets.
    pub announce: Vec<IpAddr>,
    /// ICE over TCP: each worker also listens on TCP at its port (passive candidates).
    pub tcp: bool,
    /// Media sessions one user, and one application, may hold across the workers (0: no
    /// limit); joins beyond are refused with [`SfuError::TooManySessions`].
    pub sessions_per_user: u32,
    pub sessions_per_app: u32,
    /// Worker `i` binds `first_port + i`.
    pub first_port: u16,
    pub last_port: u16,
    pub workers: usize,
    /// Media connections (WHIP/WHEP sessions and protocol clients) a worker takes at most;
    /// joins beyond are refused with [`SfuError::Full`]. 0: no limit.
    pub capacity: usize,
}

#[derive(Clone)]
pub struct SfuHandle {
    inner: Arc<Inner>,
}

struct Inner {
    workers: Vec<mpsc::Sender<Command>>,
    quota: Arc<crate::SessionQuota>,
    addrs: Vec<SocketAddr>,
    threads: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl SfuHandle {
    /// Binds one UDP socket per worker and starts the worker threads.
    pub fn start(config: &SfuConfig, events: mpsc::Sender<DomainEvent>) -> std::io::Result<Self> {
        str0m::crypto::from_feature_flags().install_process_default();
        let ports = usize::from(config.last_port.saturating_sub(config.first_port)) + 1;
        let count = config.workers.max(1);
        if count > ports {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{count} media workers need {count} UDP ports; media.ports has {ports}"),
            ));
        }
        let mut workers = Vec::with_capacity(count);
        let mut addrs = Vec::with_capacity(count);
        let mut threads = Vec::with_capacity(count);
        let (links, inboxes) = crate::worker::links(count);
        let quota = Arc::new(crate::SessionQuota::new(
            config.sessions_per_user,
            config.sessions_per_app,
        ));
        for (i, (links, inbox)) in links.into_iter().zip(inboxes).enumerate() {
            let addr = SocketAddr::new(config.ip, config.first_port + i as u16);
            let std_socket = bind_media_socket(addr)?;
            let addr = std_socket.local_addr()?;
            // Without its TCP port a worker still serves UDP (and says so).
            let tcp = if config.tcp {
                std::net::TcpListener::bind(addr)
                    .inspect_err(|e| {
                        tracing::warn!(worker = i, %addr, error = %e, "no ICE-TCP on this worker: its TCP port is taken");
                    })
                    .ok()
            } else {
                None
            };
            let announce = config.announce.clone();
            let worker_quota = quota.clone();
            let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
            let events = events.clone();
            let capacity = config.capacity;
            let thread = std::thread::Builder::new()
                .name(format!("hearth-media-{i}"))
                .spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("worker runtime");
                    rt.block_on(async move {
                        let socket =
                            tokio::net::UdpSocket::from_std(std_socket).expect("worker socket");
                        let setup = crate::worker::Setup {
                            index: i,
                            announce,
                            tcp,
                            events,
                            capacity,
                            quota: worker_quota,
                            links,
                        };
                        let worker = Worker::new(socket, setup).expect("worker socket address");
                        worker.run(rx, inbox).await;
                    });
                })?;
            tracing::info!(worker = i, %addr, "media worker listening (announced in ICE candidates)");
            workers.push(tx);
            addrs.push(addr);
            threads.push(thread);
        }
        Ok(SfuHandle {
            inner: Arc::new(Inner {
                workers,
                quota,
                addrs,
                threads: std::sync::Mutex::new(threads),
            }),
        })
    }

    /// Media sessions per user and application: what is held and what was refused.
    pub fn quota(&self) -> &crate::SessionQuota {
        &self.inner.quota
    }

    /// The UDP addresses the workers announce.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.inner.addrs
    }

    fn worker_of(&self, app: SdkAppId, room: &RoomKey) -> usize {
        let mut h = DefaultHasher::new();
        (app, room).hash(&mut h);
        (h.finish() % self.inner.workers.len() as u64) as usize
    }

    async fn ask<T>(
        &self,
        worker: usize,
        make: impl FnOnce(oneshot::Sender<Result<T, SfuError>>) -> Command,
    ) -> Result<T, SfuError> {
        let (tx, rx) = oneshot::channel();
        let w = self
            .inner
            .workers
            .get(worker)
            .ok_or(SfuError::SessionNotFound)?;
        w.send(make(tx)).await.map_err(|_| SfuError::Unavailable)?;
        rx.await.map_err(|_| SfuError::Unavailable)?
    }

    /// WHIP: the user publishes what the offer sends.
    pub async fn publish(&self, req: JoinRequest, offer: String) -> Result<Joined, SfuError> {
        let w = self.worker_of(req.app, &req.room);
        self.ask(w, |reply| Command::Publish { req, offer, reply })
            .await
    }

    /// WHEP: the user plays one stream of a publisher in the room. When the room's home worker
    /// is full, the viewer is placed on the next worker that has room; that worker mirrors the
    /// room and the home hands it the publisher's packets.
    pub async fn play(
        &self,
        req: JoinRequest,
        publisher: UserId,
        stream: StreamKind,
        offer: String,
    ) -> Result<Joined, SfuError> {
        let home = self.worker_of(req.app, &req.room);
        let n = self.inner.workers.len();
        let spill = n > 1;
        let first = self
            .ask(home, |reply| Command::Play {
                req: req.clone(),
                publisher: publisher.clone(),
                stream,
                offer: offer.clone(),
                spill,
                reply,
            })
            .await;
        if !spill || !matches!(first, Err(SfuError::Full(_))) {
            return first;
        }
        let of = self
            .ask(home, |reply| Command::Describe {
                app: req.app,
                room: req.room.clone(),
                publisher: publisher.clone(),
                stream,
                reply,
            })
            .await?;
        let mut refused = first;
        for (w, last) in self.after(home) {
            let joined = self
                .ask(w, |reply| Command::PlayMirrored {
                    req: req.clone(),
                    publisher: publisher.clone(),
                    stream,
                    offer: offer.clone(),
                    of: of.clone(),
                    last,
                    reply,
                })
                .await;
            let joined = match joined {
                Err(e @ SfuError::Full(_)) => {
                    refused = Err(e);
                    continue;
                }
                other => other?,
            };
            let viewer = Some(publisher.clone());
            if let Err(e) = self
                .attach(home, &req, &joined.session, viewer, stream, &of)
                .await
            {
                let _ = self.leave(joined.session).await;
                return Err(e);
            }
            return Ok(joined);
        }
        refused
    }

    /// The workers to try after a full home, in order, each with whether it is the last.
    fn after(&self, home: usize) -> impl Iterator<Item = (usize, bool)> {
        let n = self.inner.workers.len();
        (1..n).map(move |k| ((home + k) % n, k + 1 == n))
    }

    /// Tells a room's home about a session another worker admitted.
    async fn attach(
        &self,
        home: usize,
        req: &JoinRequest,
        session: &SessionRef,
        publisher: Option<UserId>,
        stream: StreamKind,
        of: &crate::worker::MirrorOf,
    ) -> Result<(), SfuError> {
        self.ask(home, |reply| Command::Attach {
            req: req.clone(),
            viewer: session.peer,
            publisher,
            stream,
            of: of.clone(),
            reply,
        })
        .await
    }

    pub async fn leave(&self, session: SessionRef) -> Result<(), SfuError> {
        self.ask(session.worker, |reply| Command::Leave { session, reply })
            .await
    }

    /// Removes everyone from a room; `RoomNotFound` when nobody is in it.
    pub async fn dismiss(&self, app: SdkAppId, room: RoomKey) -> Result<(), SfuError> {
        let w = self.worker_of(app, &room);
        self.ask(w, |reply| Command::Dismiss { app, room, reply })
            .await
    }

    /// Removes users from a room (each told `kicked`); returns those that were in it.
    pub async fn kick(
        &self,
        app: SdkAppId,
        room: RoomKey,
        users: Vec<UserId>,
    ) -> Result<Vec<UserId>, SfuError> {
        let w = self.worker_of(app, &room);
        self.ask(w, |reply| Command::Kick {
            app,
            room,
            users,
            reply,
        })
        .await
    }

    /// Blocks or unblocks a user's audio and video in a room.
    pub async fn block(
        &self,
        app: SdkAppId,
        room: RoomKey,
        user: UserId,
        blocked: crate::Blocked,
    ) -> Result<(), SfuError> {
        let w = self.worker_of(app, &room);
        self.ask(w, |reply| Command::Block {
            app,
            room,
            user,
            blocked,
            reply,
        })
        .await
    }

    pub async fn room_users(
        &self,
        app: SdkAppId,
        room: RoomKey,
    ) -> Result<Vec<RoomUser>, SfuError> {
        let w = self.worker_of(app, &room);
        self.ask(w, |reply| Command::RoomUsers { app, room, reply })
            .await
    }

    /// Enters a multi-party client; notices for it arrive on `notify`. When the room's home
    /// worker is full, a member of the audience of a room that exists is placed on another
    /// worker that mirrors the room (anchors publish, so they need the home).
    pub async fn client_enter(
        &self,
        req: JoinRequest,
        role: Role,
        autosubscribe: bool,
        notify: mpsc::Sender<ClientNotice>,
    ) -> Result<ClientEntered, SfuError> {
        let home = self.worker_of(req.app, &req.room);
        let n = self.inner.workers.len();
        let spill = n > 1 && role == Role::Audience;
        let first = self
            .ask(home, |reply| {
                Command::Client(ClientCommand::Enter {
                    req: req.clone(),
                    role,
                    autosubscribe,
                    notify: notify.clone(),
                    spill,
                    reply,
                })
            })
            .await;
        if !spill || !matches!(first, Err(SfuError::Full(_))) {
            return first;
        }
        let of = match self
            .ask(home, |reply| Command::DescribeRoom {
                app: req.app,
                room: req.room.clone(),
                reply,
            })
            .await
        {
            Ok(of) => of,
            // No room to mirror (the home is full of others): the refusal stands.
            Err(_) => return first,
        };
        let mut refused = first;
        for (w, last) in self.after(home) {
            let entered = self
                .ask(w, |reply| Command::EnterMirrored {
                    req: req.clone(),
                    autosubscribe,
                    notify: notify.clone(),
                    of: of.clone(),
                    last,
                    reply,
                })
                .await;
            let entered = match entered {
                Err(e @ SfuError::Full(_)) => {
                    refused = Err(e);
                    continue;
                }
                other => other?,
            };
            let attached = self
                .attach(home, &req, &entered.session, None, StreamKind::Main, &of)
                .await;
            if let Err(e) = attached {
                let _ = self.client_exit(entered.session).await;
                return Err(e);
            }
            return Ok(entered);
        }
        refused
    }

    /// Re-attaches a client whose socket dropped (within the resume window).
    pub async fn client_attach(
        &self,
        session: SessionRef,
        notify: mpsc::Sender<ClientNotice>,
    ) -> Result<ClientEntered, SfuError> {
        self.ask(session.worker, |reply| {
            Command::Client(ClientCommand::Attach {
                session,
                notify,
                reply,
            })
        })
        .await
    }

    pub async fn client_detach(&self, session: SessionRef) -> Result<(), SfuError> {
        self.ask(session.worker, |reply| {
            Command::Client(ClientCommand::Detach { session, reply })
        })
        .await
    }

    /// The publish connection's offer; returns the answer.
    pub async fn client_publish(
        &self,
        session: SessionRef,
        sdp: String,
        sources: Vec<(String, Source)>,
    ) -> Result<String, SfuError> {
        self.ask(session.worker, |reply| {
            Command::Client(ClientCommand::Publish {
                session,
                sdp,
                sources,
                reply,
            })
        })
        .await
    }

    /// The client's answer to the subscribe connection's latest offer.
    pub async fn client_answer(&self, session: SessionRef, sdp: String) -> Result<(), SfuError> {
        self.ask(session.worker, |reply| {
            Command::Client(ClientCommand::Answer {
                session,
                sdp,
                reply,
            })
        })
        .await
    }

    pub async fn client_subscribe(
        &self,
        session: SessionRef,
        user: UserId,
        stream: StreamKind,
        quality: Option<crate::core::LayerChoice>,
        on: bool,
    ) -> Result<(), SfuError> {
        self.ask(session.worker, |reply| {
            Command::Client(ClientCommand::Subscribe {
                session,
                user,
                stream,
                quality,
                on,
                reply,
            })
        })
        .await
    }

    pub async fn client_mute(
        &self,
        session: SessionRef,
        source: Source,
        muted: bool,
    ) -> Result<(), SfuError> {
        self.ask(session.worker, |reply| {
            Command::Client(ClientCommand::Mute {
                session,
                source,
                muted,
                reply,
            })
        })
        .await
    }

    pub async fn client_unpublish(
        &self,
        session: SessionRef,
        source: Source,
    ) -> Result<(), SfuError> {
        self.ask(session.worker, |reply| {
            Command::Client(ClientCommand::Unpublish {
                session,
                source,
                reply,
            })
        })
        .await
    }

    pub async fn client_role(&self, session: SessionRef, role: Role) -> Result<(), SfuError> {
        self.ask(session.worker, |reply| {
            Command::Client(ClientCommand::Role {
                session,
                role,
                reply,
            })
        })
        .await
    }

    /// Quality the client measured over its last report period.
    pub async fn client_report(
        &self,
        session: SessionRef,
        samples: Vec<(String, &'static str, f64)>,
    ) -> Result<(), SfuError> {
        self.ask(session.worker, |reply| {
            Command::Client(ClientCommand::Report {
                session,
                samples,
                reply,
            })
        })
        .await
    }

    /// Sends a client's custom message to the rest of its room.
    pub async fn client_custom(
        &self,
        session: SessionRef,
        cmd_id: u8,
        data: Vec<u8>,
    ) -> Result<(), SfuError> {
        self.ask(session.worker, |reply| {
            Command::Client(ClientCommand::Custom {
                session,
                cmd_id,
                data,
                reply,
            })
        })
        .await
    }

    pub async fn client_exit(&self, session: SessionRef) -> Result<(), SfuError> {
        self.ask(session.worker, |reply| {
            Command::Client(ClientCommand::Exit { session, reply })
        })
        .await
    }

    /// What every worker holds, summed.
    pub async fn stats(&self) -> Result<WorkerStats, SfuError> {
        let mut total = WorkerStats::default();
        for w in 0..self.inner.workers.len() {
            let s = self.ask(w, |reply| Command::Stats { reply }).await?;
            total.rooms += s.rooms;
            total.peers += s.peers;
            total.addr_routes += s.addr_routes;
            total.ufrag_routes += s.ufrag_routes;
            total.tracks += s.tracks;
            total.subscriptions += s.subscriptions;
            total.timers += s.timers;
            total.events_dropped += s.events_dropped;
            total.events_queued = total.events_queued.max(s.events_queued);
            total.users += s.users;
            total.tcp_connections += s.tcp_connections;
            let (t, c) = (&mut total.counters, s.counters);
            t.datagrams_in += c.datagrams_in;
            t.bytes_in += c.bytes_in;
            t.datagrams_out += c.datagrams_out;
            t.bytes_out += c.bytes_out;
            t.frames_forwarded += c.frames_forwarded;
            t.packets_forwarded += c.packets_forwarded;
            t.queue_drops += c.queue_drops;
            t.queue_skips += c.queue_skips;
            t.send_drops += c.send_drops;
            t.send_calls += c.send_calls;
            t.gso_datagrams += c.gso_datagrams;
            t.refused_full += c.refused_full;
            t.packets_relayed += c.packets_relayed;
            t.relay_drops += c.relay_drops;
            t.relay_stale += c.relay_stale;
        }
        Ok(total)
    }

    /// Stops the workers (everyone leaves with `ServerShutdown`) and waits for their threads.
    pub async fn shutdown(&self) {
        for w in &self.inner.workers {
            let _ = w.send(Command::Shutdown).await;
        }
        let threads =
            std::mem::take(&mut *self.inner.threads.lock().unwrap_or_else(|p| p.into_inner()));
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}
