//! ICE over TCP (RFC 6544, passive candidates only): a worker listens on TCP at its UDP port,
//! and each connection's RFC 4571 frames (a 2-byte length, then a STUN, DTLS or SRTP packet)
//! reach str0m as if they were datagrams from the connection's address; str0m's TCP transmits
//! go back framed on the same connection. One task per connection on the worker's runtime
//! moves frames; the worker owns the table of connections (no locks). A frame crosses between
//! the two as an owned buffer: one allocation per packet, on the fallback path only.

use super::Worker;
use crate::core::ParticipantId;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use str0m::net::Protocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Largest frame taken (str0m's packets stay under 1,500 bytes); a larger one closes the
/// connection.
const MAX_FRAME: usize = 2048;
/// Connections a worker holds at most; more are closed at once.
const MAX_CONNECTIONS: usize = 4096;
/// A connection that has not sent its session's ICE check by then is closed.
const BIND_DEADLINE: Duration = Duration::from_secs(10);
/// Frames queued towards one connection before further ones are dropped (as UDP would).
const OUT_QUEUE: usize = 512;
/// Frames from every connection queued for the worker.
const IN_QUEUE: usize = 4096;

/// What the connection tasks tell the worker.
pub(crate) enum TcpIn {
    Opened {
        from: SocketAddr,
        out: mpsc::Sender<Vec<u8>>,
    },
    Frame {
        from: SocketAddr,
        data: Vec<u8>,
    },
    Closed {
        from: SocketAddr,
    },
}

struct Conn {
    out: mpsc::Sender<Vec<u8>>,
    /// The session whose ICE check came on it.
    pid: Option<ParticipantId>,
    opened: Instant,
}

/// The worker's TCP side: its connections and their frames' queue.
pub(crate) struct TcpSide {
    conns: HashMap<SocketAddr, Conn>,
    pub inbox: Option<mpsc::Receiver<TcpIn>>,
}

impl TcpSide {
    /// Starts accepting on `listener` (on the current runtime: the worker's).
    pub fn start(listener: std::net::TcpListener) -> std::io::Result<Self> {
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener)?;
        let (tx, rx) = mpsc::channel(IN_QUEUE);
        tokio::spawn(accept(listener, tx));
        Ok(TcpSide {
            conns: HashMap::new(),
            inbox: Some(rx),
        })
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.conns.len()
    }
}

async fn accept(listener: TcpListener, tx: mpsc::Sender<TcpIn>) {
    loop {
        match listener.accept().await {
            Ok((stream, from)) => {
                let _ = stream.set_nodelay(true);
                let (out, out_rx) = mpsc::channel(OUT_QUEUE);
                if tx.send(TcpIn::Opened { from, out }).await.is_err() {
                    return;
                }
                tokio::spawn(serve(stream, from, tx.clone(), out_rx));
            }
            Err(e) => {
                tracing::debug!(error = %e, "ICE-TCP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Moves one connection's frames both ways until either side ends it.
async fn serve(
    stream: TcpStream,
    from: SocketAddr,
    tx: mpsc::Sender<TcpIn>,
    mut out: mpsc::Receiver<Vec<u8>>,
) {
    let (mut rd, mut wr) = stream.into_split();
    let reading = async {
        let mut len = [0u8; 2];
        loop {
            rd.read_exact(&mut len).await?;
            let n = usize::from(u16::from_be_bytes(len));
            if n == 0 || n > MAX_FRAME {
                return Err(std::io::Error::other("frame length out of bounds"));
            }
            let mut data = vec![0u8; n];
            rd.read_exact(&mut data).await?;
            // A full worker queue drops the frame, as a full socket buffer would.
            if let Err(mpsc::error::TrySendError::Closed(_)) =
                tx.try_send(TcpIn::Frame { from, data })
            {
                return Ok(());
            }
        }
    };
    let writing = async {
        let mut buf = Vec::with_capacity(MAX_FRAME + 2);
        // Ends when the worker drops the connection's sender.
        while let Some(frame) = out.recv().await {
            buf.clear();
            buf.extend_from_slice(&(frame.len() as u16).to_be_bytes());
            buf.extend_from_slice(&frame);
            wr.write_all(&buf).await?;
        }
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::select! {
        r = reading => r,
        r = writing => r,
    };
    let _ = tx.send(TcpIn::Closed { from }).await;
}

/// Queues a frame for the connection to `to`; false when there is none or it is full.
pub(crate) fn send(tcp: &mut Option<TcpSide>, data: &[u8], to: SocketAddr) -> bool {
    let Some(conn) = tcp.as_mut().and_then(|t| t.conns.get(&to)) else {
        return false;
    };
    if data.len() > usize::from(u16::MAX) {
        return false;
    }
    conn.out.try_send(data.to_vec()).is_ok()
}

impl Worker {
    pub(crate) fn handle_tcp(&mut self, msg: TcpIn) {
        let Some(tcp) = self.tcp.as_mut() else {
            return;
        };
        match msg {
            TcpIn::Opened { from, out } => {
                if tcp.conns.len() < MAX_CONNECTIONS {
                    let conn = Conn {
                        out,
                        pid: None,
                        opened: Instant::now(),
                    };
                    tcp.conns.insert(from, conn);
                } // else: `out` dropped, the connection closes
            }
            TcpIn::Closed { from } => {
                tcp.conns.remove(&from);
            }
            TcpIn::Frame { from, data } => self.receive_tcp(from, &data),
        }
    }

    /// One frame from a connection: to its session (known, else by the STUN check's ufrag).
    fn receive_tcp(&mut self, source: SocketAddr, data: &[u8]) {
        let Some(conn) = self.tcp.as_mut().and_then(|t| t.conns.get_mut(&source)) else {
            return;
        };
        let pid = match conn.pid {
            Some(pid) => pid,
            None => {
                let Some(pid) = super::demux::stun_local_ufrag(data)
                    .and_then(|u| self.by_ufrag.get(u))
                    .copied()
                else {
                    return;
                };
                conn.pid = Some(pid);
                pid
            }
        };
        self.deliver(pid, Protocol::Tcp, source, data);
    }

    /// Closes the connections of a session that ended, and those that never became one's.
    pub(crate) fn sweep_tcp(&mut self, now: Instant) {
        let peers = &self.peers;
        if let Some(tcp) = self.tcp.as_mut() {
            tcp.conns.retain(|_, c| match c.pid {
                Some(pid) => peers.contains_key(&pid),
                None => now.saturating_duration_since(c.opened) < BIND_DEADLINE,
            });
        }
    }
}
