//! A driver thread: many clients, each with its own non-blocking UDP socket, multiplexed with
//! epoll (mio). Sans-IO: datagrams go into each client's `Rtc`, its transmits go out on its
//! socket, str0m's deadlines are kept in a heap, and publishers' frames are written when due.
//! Counters are copied to a shared snapshot a few times a second for the reporter.

use crate::client::{After, Client, Latency, Role};
use crate::stats::ThreadSnapshot;
use mio::{Events, Interest, Poll, Token, Waker};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use str0m::net::{Protocol, Receive};
use str0m::{Input, Output};

const WAKER: Token = Token(usize::MAX);
const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// Longest sleep when nothing is due (commands wake us anyway).
const IDLE: Duration = Duration::from_millis(50);
/// Datagrams read from one socket per readiness event before others get a turn.
const RECV_BATCH: usize = 64;

pub enum Cmd {
    Add(Box<Client>),
    Stop,
}

pub struct DriverHandle {
    pub tx: Sender<Cmd>,
    pub waker: Arc<Waker>,
    pub shared: Arc<Mutex<ThreadSnapshot>>,
    pub thread: JoinHandle<()>,
}

impl DriverHandle {
    pub fn send(&self, cmd: Cmd) {
        if self.tx.send(cmd).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

pub fn spawn(index: usize) -> std::io::Result<DriverHandle> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (tx, rx) = std::sync::mpsc::channel();
    let shared = Arc::new(Mutex::new(ThreadSnapshot::default()));
    let s = shared.clone();
    let thread = std::thread::Builder::new()
        .name(format!("loadgen-{index}"))
        .spawn(move || Driver::new(poll, rx, s).run())?;
    Ok(DriverHandle {
        tx,
        waker,
        shared,
        thread,
    })
}

struct Driver {
    poll: Poll,
    rx: Receiver<Cmd>,
    shared: Arc<Mutex<ThreadSnapshot>>,
    clients: Vec<Option<Client>>,
    publishers: Vec<usize>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    lat: Latency,
    send_errors: u64,
    disconnects: u64,
    buf: Vec<u8>,
    stop: bool,
    /// Time spent outside `epoll_wait`, ns.
    busy_ns: u64,
    /// Longest wake-up past the deadline since the last flush, µs.
    late_max_us: u64,
}

impl Driver {
    fn new(poll: Poll, rx: Receiver<Cmd>, shared: Arc<Mutex<ThreadSnapshot>>) -> Self {
        Driver {
            poll,
            rx,
            shared,
            clients: Vec::new(),
            publishers: Vec::new(),
            timers: BinaryHeap::new(),
            lat: Default::default(),
            send_errors: 0,
            disconnects: 0,
            buf: vec![0; crate::gro::BUFFER],
            stop: false,
            busy_ns: 0,
            late_max_us: 0,
        }
    }

    fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut next_flush = Instant::now() + FLUSH_EVERY;
        let mut woke = Instant::now();
        while !self.stop {
            let now = Instant::now();
            self.busy_ns += now.saturating_duration_since(woke).as_nanos() as u64;
            let mut wake = (now + IDLE).min(next_flush);
            if let Some(Reverse((t, _))) = self.timers.peek() {
                wake = wake.min(*t);
            }
            for &i in &self.publishers {
                if let Some(t) = self.clients[i].as_ref().and_then(Client::next_due) {
                    wake = wake.min(t);
                }
            }
            let timeout = wake.saturating_duration_since(now);
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != ErrorKind::Interrupted {
                    eprintln!("loadgen: poll failed: {e}");
                    return;
                }
            }
            woke = Instant::now();
            // Woken by the deadline, not by I/O: how late did the OS let us run?
            if events.is_empty() {
                let late = woke.saturating_duration_since(wake).as_micros() as u64;
                self.late_max_us = self.late_max_us.max(late);
            }
            for ev in events.iter() {
                match ev.token() {
                    WAKER => self.commands(),
                    Token(i) => self.readable(i),
                }
            }
            let now = Instant::now();
            self.fire_timers(now);
            self.send_media(now);
            if now >= next_flush {
                self.flush();
                next_flush = now + FLUSH_EVERY;
            }
        }
        self.flush();
    }

    fn commands(&mut self) {
        loop {
            match self.rx.try_recv() {
                Ok(Cmd::Add(c)) => self.add(*c),
                Ok(Cmd::Stop) | Err(TryRecvError::Disconnected) => {
                    self.stop = true;
                    return;
                }
                Err(TryRecvError::Empty) => return,
            }
        }
    }

    fn add(&mut self, mut c: Client) {
        let i = self
            .clients
            .iter()
            .position(Option::is_none)
            .unwrap_or_else(|| {
                self.clients.push(None);
                self.clients.len() - 1
            });
        let registered = match c.tcp.as_mut() {
            Some(link) => {
                self.poll
                    .registry()
                    .register(&mut link.stream, Token(i), Interest::READABLE)
            }
            None => self
                .poll
                .registry()
                .register(&mut c.socket, Token(i), Interest::READABLE),
        };
        if let Err(e) = registered {
            eprintln!("loadgen: cannot register a socket: {e}");
            return;
        }
        if matches!(c.role, Role::Publisher(_)) {
            self.publishers.push(i);
        }
        self.clients[i] = Some(c);
        self.drive(i);
    }

    fn readable(&mut self, i: usize) {
        let Some(c) = self.clients.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        if c.tcp.is_some() {
            self.readable_tcp(i);
            return;
        }
        let mut got = false;
        let mut exhausted = true;
        let fd = c.socket.as_raw_fd();
        for _ in 0..RECV_BATCH {
            match crate::gro::recv(fd, &mut self.buf) {
                Ok((n, source, segment)) => {
                    // One datagram, or a run of them of `segment` bytes each (the last may be
                    // shorter) when the socket has GRO.
                    let local = c.local;
                    for datagram in self.buf[..n].chunks(segment) {
                        feed(c, Protocol::Udp, source, local, datagram);
                    }
                    got = true;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => {
                    exhausted = false;
                    break;
                }
            }
        }
        if got {
            self.drive(i);
        }
        // Edge-triggered: if the batch ended with data left, re-arm so this socket comes back.
        if !exhausted {
            return;
        }
        if let Some(c) = self.clients.get_mut(i).and_then(Option::as_mut) {
            let _ = self
                .poll
                .registry()
                .reregister(&mut c.socket, Token(i), Interest::READABLE);
        }
    }

    /// An ICE-TCP client's connection: every whole frame into its `Rtc` (mio is edge-triggered:
    /// `read_frames` reads until the socket is empty).
    fn readable_tcp(&mut self, i: usize) {
        let Some(c) = self.clients.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        let Some(mut link) = c.tcp.take() else {
            return;
        };
        let (source, destination) = (link.remote, link.local);
        let open = link.read_frames(|frame| feed(c, Protocol::Tcp, source, destination, frame));
        c.tcp = Some(link);
        if !open {
            c.rtc.disconnect();
        }
        self.drive(i);
    }

    /// Polls a client until str0m wants a timeout: transmits, events, next deadline.
    fn drive(&mut self, i: usize) {
        let Some(c) = self.clients.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        loop {
            if !c.rtc.is_alive() {
                break;
            }
            match c.rtc.poll_output() {
                Ok(Output::Transmit(t)) if t.proto == Protocol::Tcp => {
                    let sent = c.tcp.as_mut().is_some_and(|l| l.send(&t.contents));
                    if !sent {
                        self.send_errors += 1;
                    }
                }
                Ok(Output::Transmit(t)) => {
                    if c.socket.send_to(&t.contents, t.destination).is_err() {
                        self.send_errors += 1;
                    } else if let Role::Publisher(p) = &mut c.role {
                        p.counters.datagrams_out += 1;
                    }
                }
                Ok(Output::Timeout(t)) => {
                    if t != c.next_timeout {
                        c.next_timeout = t;
                        self.timers.push(Reverse((t, i)));
                    }
                    return;
                }
                Ok(Output::Event(e)) => {
                    if let After::Disconnected = c.handle_event(e, &mut self.lat) {
                        c.rtc.disconnect();
                    }
                }
                Err(_) => {
                    c.rtc.disconnect();
                    break;
                }
            }
        }
        self.remove(i);
    }

    fn remove(&mut self, i: usize) {
        let Some(mut c) = self.clients.get_mut(i).and_then(Option::take) else {
            return;
        };
        self.disconnects += 1;
        let _ = match c.tcp.as_mut() {
            Some(link) => self.poll.registry().deregister(&mut link.stream),
            None => self.poll.registry().deregister(&mut c.socket),
        };
        self.publishers.retain(|p| *p != i);
        let mut s = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        match &mut c.role {
            Role::Publisher(p) => {
                p.counters.dead = true;
                s.pubs.insert(p.index as usize, p.counters);
            }
            Role::Subscriber(sub) => {
                sub.counters.dead = true;
                s.subs.insert(sub.index, sub.counters);
            }
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(Reverse((t, i))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            let Some(c) = self.clients.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            if c.next_timeout != t {
                continue;
            }
            if c.rtc.handle_input(Input::Timeout(now)).is_err() {
                c.rtc.disconnect();
            }
            self.drive(i);
        }
        if self.timers.len() > 4 * self.clients.len() + 64 {
            let clients = &self.clients;
            self.timers.retain(|Reverse((t, i))| {
                clients
                    .get(*i)
                    .and_then(Option::as_ref)
                    .is_some_and(|c| c.next_timeout == *t)
            });
        }
    }

    fn send_media(&mut self, now: Instant) {
        for k in 0..self.publishers.len() {
            let Some(&i) = self.publishers.get(k) else {
                break;
            };
            let Some(c) = self.clients.get_mut(i).and_then(Option::as_mut) else {
                continue;
            };
            if c.next_due().is_some_and(|t| t <= now) {
                if !c.send_due(now) {
                    self.send_errors += 1;
                }
                self.drive(i);
            }
        }
    }

    fn flush(&mut self) {
        let mut s = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        for c in self.clients.iter().flatten() {
            match &c.role {
                Role::Publisher(p) => {
                    s.pubs.insert(p.index as usize, p.counters);
                }
                Role::Subscriber(sub) => {
                    s.subs.insert(sub.index, sub.counters);
                }
            }
        }
        for k in 0..2 {
            s.latency_window[k].merge(&self.lat[k]);
            s.latency_interval[k].merge(&self.lat[k]);
            self.lat[k].clear();
        }
        s.send_errors = self.send_errors;
        s.disconnects = self.disconnects;
        s.busy_ns = self.busy_ns;
        s.late_max_window_us = s.late_max_window_us.max(self.late_max_us);
        s.late_max_interval_us = s.late_max_interval_us.max(self.late_max_us);
        self.late_max_us = 0;
    }
}

/// One received packet (a datagram, or an ICE-TCP frame) into the client's `Rtc`, counted.
fn feed(
    c: &mut Client,
    proto: Protocol,
    source: std::net::SocketAddr,
    destination: std::net::SocketAddr,
    packet: &[u8],
) {
    if let Role::Subscriber(s) = &mut c.role {
        s.counters.datagrams += 1;
    }
    let Ok(contents) = packet.try_into() else {
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
    if c.rtc.handle_input(input).is_err() {
        c.rtc.disconnect();
    }
}
