//! Calling, TUICallKit's way (`docs/protocol.md`, Calls): logged-in users place one-to-one and
//! group calls, invitees ring and answer, parties meet in the call's room, and every call leaves
//! a call record. The driver task here owns the [`book::CallBook`] (all call state, sans-IO),
//! the calling socket of each logged-in user, and writes the records through the `Store`.

pub(crate) mod book;
pub(crate) mod line;
pub(crate) mod rules;

mod callbacks;

use crate::proto::{ProtoError, ServerMsg};
use book::{CallBook, Now, Out, RoomExit, Who};
use hearth_sfu::events::{DomainEvent, EventKind, ExitReason};
use hearth_store::Store;
use hearth_types::UnixSecs;
use rules::CallRequest;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Messages queued for one calling socket before it is taken as stuck and skipped.
const LINE_QUEUE: usize = 256;
const COMMAND_QUEUE: usize = 1024;
/// Room entries and exits queued for the calls driver before they are dropped (and logged).
pub const ROOM_EVENTS_QUEUE: usize = 65_536;

#[derive(Clone, Copy, Debug)]
pub struct CallsConfig {
    /// How long an invitation rings unless the caller asks otherwise.
    pub ring_timeout: Duration,
    /// How long a party whose calling socket dropped may log in again before leaving the call.
    pub reconnect_grace: Duration,
    /// How long a party of a connected call may take to enter its room.
    pub enter_timeout: Duration,
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig {
            ring_timeout: Duration::from_secs(30),
            reconnect_grace: Duration::from_secs(10),
            enter_timeout: Duration::from_secs(30),
        }
    }
}

/// What the driver sends a calling socket.
pub(crate) struct LineOut {
    pub msg: ServerMsg,
    /// Close the socket after this message (replaced, server shutdown).
    pub close: bool,
}

pub(crate) type LineId = u64;

pub(crate) enum CallReq {
    Place(CallRequest),
    Accept(String),
    Reject(String),
    Cancel(String),
    Hangup(String),
}

enum Cmd {
    Login {
        who: Who,
        line: mpsc::Sender<LineOut>,
        reply: oneshot::Sender<LineId>,
    },
    Gone {
        who: Who,
        line: LineId,
        on_purpose: bool,
        done: oneshot::Sender<()>,
    },
    Request {
        who: Who,
        line: LineId,
        req: CallReq,
        reply: oneshot::Sender<Result<(), ProtoError>>,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
    Stats {
        reply: oneshot::Sender<CallStats>,
    },
}

/// Gauges of the calling service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallStats {
    /// Calls ringing or connected.
    pub calls: usize,
    /// Users logged in on a calling socket.
    pub logged_in: usize,
}

/// The handle the client edge talks to calls through.
#[derive(Clone)]
pub struct Calls {
    tx: mpsc::Sender<Cmd>,
}

fn now() -> Now {
    Now {
        mono: Instant::now(),
        wall: UnixSecs::now(),
    }
}

impl Calls {
    /// Starts the driver task (on the current tokio runtime). `rooms`: the media plane's
    /// entries and exits ([`ROOM_EVENTS_QUEUE`] is a good bound), which tie calls to their rooms.
    pub fn start(
        config: CallsConfig,
        store: Arc<dyn Store>,
        directory: hearth_callbacks::Directory,
        rooms: mpsc::Receiver<DomainEvent>,
    ) -> Calls {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let driver = Driver {
            book: CallBook::new(
                config.ring_timeout,
                config.reconnect_grace,
                config.enter_timeout,
            ),
            directory,
            callbacks: Default::default(),
            lines: HashMap::new(),
            next_line: 1,
            store,
        };
        tokio::spawn(driver.run(rx, rooms));
        Calls { tx }
    }

    /// Registers `who`'s calling socket (taking over from an earlier one); returns its id and
    /// the queue of messages for it.
    pub(crate) async fn login(
        &self,
        who: Who,
    ) -> Result<(LineId, mpsc::Receiver<LineOut>), ProtoError> {
        let (line, rx) = mpsc::channel(LINE_QUEUE);
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Cmd::Login { who, line, reply })
            .await
            .map_err(|_| ProtoError::Unavailable)?;
        let id = answer.await.map_err(|_| ProtoError::Unavailable)?;
        Ok((id, rx))
    }

    /// The calling socket `line` of `who` is gone (`on_purpose`: logout).
    pub(crate) async fn gone(&self, who: Who, line: LineId, on_purpose: bool) {
        let (done, wait) = oneshot::channel();
        let cmd = Cmd::Gone {
            who,
            line,
            on_purpose,
            done,
        };
        if self.tx.send(cmd).await.is_ok() {
            let _ = wait.await;
        }
    }

    pub(crate) async fn request(
        &self,
        who: Who,
        line: LineId,
        req: CallReq,
    ) -> Result<(), ProtoError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Cmd::Request {
                who,
                line,
                req,
                reply,
            })
            .await
            .map_err(|_| ProtoError::Unavailable)?;
        answer.await.map_err(|_| ProtoError::Unavailable)?
    }

    /// Calls in progress and logged-in users; `None` once the driver has stopped.
    pub async fn stats(&self) -> Option<CallStats> {
        let (reply, answer) = oneshot::channel();
        self.tx.send(Cmd::Stats { reply }).await.ok()?;
        answer.await.ok()
    }

    /// Ends every call in progress as `Interrupt` (recorded), closes every calling socket and
    /// stops the driver.
    pub async fn shutdown(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Cmd::Shutdown { done }).await.is_ok() {
            let _ = wait.await;
        }
    }
}

struct Driver {
    book: CallBook,
    /// Who listens to call-status callbacks, and which calls were announced.
    directory: hearth_callbacks::Directory,
    callbacks: callbacks::CallCallbacks,
    /// The calling socket of each logged-in user.
    lines: HashMap<Who, (LineId, mpsc::Sender<LineOut>)>,
    next_line: LineId,
    store: Arc<dyn Store>,
}

impl Driver {
    async fn run(mut self, mut rx: mpsc::Receiver<Cmd>, mut rooms: mpsc::Receiver<DomainEvent>) {
        let mut rooms_open = true;
        loop {
            let deadline = self.book.poll_timeout();
            let cmd = tokio::select! {
                cmd = rx.recv() => cmd,
                e = rooms.recv(), if rooms_open => {
                    match e {
                        Some(e) => self.room_event(e),
                        None => rooms_open = false,
                    }
                    self.carry_out().await;
                    continue;
                }
                _ = sleep_until(deadline) => {
                    self.book.on_timeout(now());
                    self.carry_out().await;
                    continue;
                }
            };
            let Some(cmd) = cmd else { break };
            match cmd {
                Cmd::Login { who, line, reply } => {
                    let id = self.next_line;
                    self.next_line += 1;
                    if let Some((_, old)) = self.lines.insert(who.clone(), (id, line)) {
                        let _ = old.try_send(LineOut {
                            msg: ServerMsg::Notice {
                                reason: "replaced",
                                message: "you logged in from another connection".into(),
                            },
                            close: true,
                        });
                    }
                    // The reply goes first so the socket can say `logged_in` before the call
                    // state the book sends now.
                    if reply.send(id).is_err() {
                        self.lines.remove(&who);
                        continue;
                    }
                    self.book.login(now(), who);
                }
                Cmd::Gone {
                    who,
                    line,
                    on_purpose,
                    done,
                } => {
                    if self.lines.get(&who).is_some_and(|(id, _)| *id == line) {
                        self.lines.remove(&who);
                        self.book.logout(now(), who, on_purpose);
                    }
                    self.carry_out().await;
                    let _ = done.send(());
                    continue;
                }
                Cmd::Request {
                    who,
                    line,
                    req,
                    reply,
                } => {
                    let r = if self.lines.get(&who).is_some_and(|(id, _)| *id == line) {
                        self.request(who, req)
                    } else {
                        Err(ProtoError::Conflict(
                            "this socket was replaced by a newer login".into(),
                        ))
                    };
                    self.carry_out().await;
                    let _ = reply.send(r);
                    continue;
                }
                Cmd::Stats { reply } => {
                    let _ = reply.send(CallStats {
                        calls: self.book.len(),
                        logged_in: self.lines.len(),
                    });
                    continue;
                }
                Cmd::Shutdown { done } => {
                    self.book.interrupt_all(now());
                    self.carry_out().await;
                    for (_, (_, line)) in self.lines.drain() {
                        let _ = line.try_send(LineOut {
                            msg: ServerMsg::Notice {
                                reason: "server_shutdown",
                                message: "the server is shutting down".into(),
                            },
                            close: true,
                        });
                    }
                    let _ = done.send(());
                    break;
                }
            }
            self.carry_out().await;
        }
    }

    fn room_event(&mut self, e: DomainEvent) {
        let who = (e.app, e.user.0);
        match e.kind {
            EventKind::Entered { .. } => self.book.room_entered(who, e.room),
            EventKind::Exited { reason } => {
                let how = match reason {
                    ExitReason::Kicked => RoomExit::Removed,
                    ExitReason::RoomDismissed => RoomExit::Dismissed,
                    ExitReason::Left
                    | ExitReason::Timeout
                    | ExitReason::Replaced
                    | ExitReason::ServerShutdown => RoomExit::Left,
                };
                self.book.room_exited(now(), who, e.room, how);
            }
            _ => {}
        }
    }

    fn request(&mut self, who: Who, req: CallReq) -> Result<(), ProtoError> {
        let now = now();
        match req {
            CallReq::Place(r) => self.book.place(now, who, r).map(|_| ()),
            CallReq::Accept(id) => self.book.accept(now, who, &id),
            CallReq::Reject(id) => self.book.reject(now, who, &id),
            CallReq::Cancel(id) => self.book.cancel(now, who, &id),
            CallReq::Hangup(id) => self.book.hangup(now, who, &id),
        }
    }

    /// Saves records (before anyone hears of them) and delivers messages, in order.
    async fn carry_out(&mut self) {
        let outs: Vec<Out> = self.book.drain().collect();
        for out in outs {
            match out {
                Out::Save(log) => {
                    let store = self.store.clone();
                    let id = log.call_id.clone();
                    let now_ms = hearth_types::unix_ms();
                    let cb = self.callbacks.of(&self.directory, &log, now_ms);
                    let saved = tokio::task::spawn_blocking(move || {
                        store.put_call_log(&log)?;
                        match cb {
                            Some(cb) => store.enqueue_callbacks(&[cb]),
                            None => Ok(()),
                        }
                    });
                    match saved.await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            tracing::error!(call = %id, error = %e, "saving a call record failed")
                        }
                        Err(e) => {
                            tracing::error!(call = %id, error = %e, "saving a call record panicked")
                        }
                    }
                }
                Out::Send(who, msg) => {
                    if let Some((_, line)) = self.lines.get(&who) {
                        if line.try_send(LineOut { msg, close: false }).is_err() {
                            tracing::warn!(user = %who.1, "calling socket is not reading; message dropped");
                        }
                    }
                }
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
