//! ICE over TCP for subscribers (`--tcp`): a connection to the server's passive TCP candidate
//! (RFC 6544) carrying RFC 4571 frames (a 2-byte length, then the packet) both ways.

use anyhow::{anyhow, Context, Result};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;

pub struct Link {
    pub stream: mio::net::TcpStream,
    /// The connection's own address: the client's active TCP candidate.
    pub local: SocketAddr,
    /// The server's passive candidate.
    pub remote: SocketAddr,
    rbuf: Vec<u8>,
    filled: usize,
    /// Framed bytes the socket did not take yet.
    pending: Vec<u8>,
}

/// The first passive TCP host candidate of an SDP answer.
fn passive_candidate(answer: &str) -> Option<SocketAddr> {
    answer.lines().find_map(|l| {
        let c = l.trim().strip_prefix("a=candidate:")?;
        let f: Vec<&str> = c.split_whitespace().collect();
        let passive = f.windows(2).any(|w| w == ["tcptype", "passive"]);
        if f.get(2)?.eq_ignore_ascii_case("tcp") && passive {
            format!("{}:{}", f.get(4)?, f.get(5)?).parse().ok()
        } else {
            None
        }
    })
}

impl Link {
    /// Connects to the answer's passive candidate (blocking, at setup).
    pub fn connect(answer: &str) -> Result<Link> {
        let remote = passive_candidate(answer)
            .ok_or_else(|| anyhow!("the answer has no passive TCP candidate"))?;
        let std = std::net::TcpStream::connect(remote)
            .with_context(|| format!("ICE-TCP connection to {remote}"))?;
        std.set_nodelay(true)?;
        std.set_nonblocking(true)?;
        let local = std.local_addr()?;
        Ok(Link {
            stream: mio::net::TcpStream::from_std(std),
            local,
            remote,
            rbuf: vec![0; 256 * 1024],
            filled: 0,
            pending: Vec::new(),
        })
    }

    /// Queues one frame and writes what the socket takes; false when the connection failed.
    pub fn send(&mut self, packet: &[u8]) -> bool {
        let Ok(len) = u16::try_from(packet.len()) else {
            return false;
        };
        self.pending.extend_from_slice(&len.to_be_bytes());
        self.pending.extend_from_slice(packet);
        self.flush()
    }

    fn flush(&mut self) -> bool {
        while !self.pending.is_empty() {
            match self.stream.write(&self.pending) {
                Ok(0) => return false,
                Ok(n) => {
                    self.pending.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        true
    }

    /// Reads what the socket has and calls `each` with every whole frame; false at the end of
    /// the connection (or a broken frame).
    pub fn read_frames(&mut self, mut each: impl FnMut(&[u8])) -> bool {
        loop {
            if self.filled == self.rbuf.len() {
                return false; // a frame larger than the buffer cannot be
            }
            match self.stream.read(&mut self.rbuf[self.filled..]) {
                Ok(0) => return false,
                Ok(n) => self.filled += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
            let mut at = 0;
            while self.filled - at >= 2 {
                let n = usize::from(u16::from_be_bytes([self.rbuf[at], self.rbuf[at + 1]]));
                if self.filled - at - 2 < n {
                    break;
                }
                each(&self.rbuf[at + 2..at + 2 + n]);
                at += 2 + n;
            }
            self.rbuf.copy_within(at..self.filled, 0);
            self.filled -= at;
        }
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_passive_tcp_candidate_is_found() {
        let sdp = "v=0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\n\
                   a=candidate:2 1 tcp 1671430143 127.0.0.1 50000 typ host tcptype passive\r\n";
        assert_eq!(
            passive_candidate(sdp),
            Some("127.0.0.1:50000".parse().unwrap())
        );
        assert_eq!(
            passive_candidate("a=candidate:1 1 udp 1 1.2.3.4 5 typ host"),
            None
        );
    }
}
