//! Batched UDP on a worker's socket: datagrams are read up to `BATCH` per `recvmmsg` and sent
//! up to `BATCH` per `sendmmsg`, so a fan-out of thousands of packets costs tens of system
//! calls instead of thousands. Both are non-blocking: a full send buffer drops what did not
//! fit (UDP semantics), counted by the caller.
//!
//! Consecutive datagrams to one destination of one size (the last may be shorter) go as one
//! message with UDP GSO (`UDP_SEGMENT`): the kernel walks its send path once for all of them
//! and splits them into datagrams on the way out. A subscriber's packets leave in a run (its
//! connection is polled once per read: a keyframe's packets, the packets of a frame). Where the
//! kernel or the device refuses GSO, the batch falls back to one message per datagram for good.

use socket2::SockAddr;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

/// Datagrams per system call.
pub const BATCH: usize = 64;
/// Room per datagram: WebRTC keeps datagrams under the path MTU (str0m's default is 1150).
const SLOT: usize = 2048;
/// Datagrams one GSO message may carry (the kernel's `UDP_MAX_SEGMENTS` is 64 or more).
const MAX_SEGMENTS: usize = 64;
/// Bytes one GSO message may carry (it is one UDP datagram until the kernel splits it).
const MAX_GSO_BYTES: usize = 65_000;
/// Room for one `UDP_SEGMENT` control message (a `cmsghdr` and a `u16`, aligned).
const CMSG_ROOM: usize = 32;

/// One message of a batch: `count` consecutive slots to `to`, each `segment` bytes long but the
/// last, which may be shorter (the message then takes no more).
#[derive(Debug, Clone, Copy)]
struct Message {
    first: usize,
    count: usize,
    segment: usize,
    to: SocketAddr,
    open: bool,
}

/// Datagrams waiting to be sent, copied out of str0m's buffers.
pub struct SendBatch {
    data: Vec<u8>,
    lens: [usize; BATCH],
    addrs: Vec<SockAddr>,
    messages: Vec<Message>,
    /// Runs to one destination go as one GSO message (off once the kernel refused one).
    gso: bool,
}

/// What one flush did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    pub datagrams: u64,
    pub bytes: u64,
    /// Datagrams the kernel did not take (its buffer was full) or refused.
    pub dropped: u64,
    /// System calls made.
    pub calls: u64,
    /// Datagrams sent in GSO messages (runs of more than one).
    pub gso_datagrams: u64,
}

impl Default for SendBatch {
    fn default() -> Self {
        SendBatch {
            data: vec![0; BATCH * SLOT],
            lens: [0; BATCH],
            addrs: Vec::with_capacity(BATCH),
            messages: Vec::with_capacity(BATCH),
            gso: true,
        }
    }
}

impl SendBatch {
    /// A batch that never uses GSO (tests of the fallback).
    #[cfg(test)]
    fn without_gso() -> Self {
        SendBatch {
            gso: false,
            ..SendBatch::default()
        }
    }

    pub fn is_full(&self) -> bool {
        self.addrs.len() == BATCH
    }

    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// Queues a datagram; false when it does not fit a slot or the batch is full (the caller
    /// flushes first, or sends an oversized datagram on its own).
    pub fn push(&mut self, datagram: &[u8], to: SocketAddr) -> bool {
        let i = self.addrs.len();
        let len = datagram.len();
        if i == BATCH || len > SLOT {
            return false;
        }
        self.data[i * SLOT..i * SLOT + len].copy_from_slice(datagram);
        self.lens[i] = len;
        self.addrs.push(SockAddr::from(to));
        if self.gso {
            if let Some(m) = self.messages.last_mut() {
                if m.open
                    && m.to == to
                    && len > 0
                    && len <= m.segment
                    && m.count < MAX_SEGMENTS
                    && (m.count + 1) * m.segment <= MAX_GSO_BYTES
                {
                    m.count += 1;
                    m.open = len == m.segment;
                    return true;
                }
            }
        }
        self.messages.push(Message {
            first: i,
            count: 1,
            segment: len,
            to,
            open: len > 0,
        });
        true
    }

    /// Sends everything queued; the batch is empty afterwards.
    pub fn flush(&mut self, fd: RawFd) -> Flushed {
        let mut done = Flushed::default();
        let mut at = 0;
        while at < self.messages.len() {
            let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
            let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            // u64 elements keep the control messages aligned for `cmsghdr`.
            let mut control = [[0u64; CMSG_ROOM / 8]; BATCH];
            let count = self.messages.len() - at;
            let mut slot = 0;
            for k in 0..count {
                let m = self.messages[at + k];
                let first = slot;
                for i in m.first..m.first + m.count {
                    iov[slot] = libc::iovec {
                        iov_base: self.data[i * SLOT..].as_mut_ptr().cast(),
                        iov_len: self.lens[i],
                    };
                    slot += 1;
                }
                let h = &mut hdrs[k].msg_hdr;
                h.msg_name = self.addrs[m.first].as_ptr() as *mut libc::c_void;
                h.msg_namelen = self.addrs[m.first].len();
                h.msg_iov = &mut iov[first];
                h.msg_iovlen = m.count;
                if m.count > 1 {
                    // SAFETY: `control[k]` has room for one cmsghdr and a u16, aligned.
                    unsafe { segment_size(h, &mut control[k], m.segment as u16) };
                }
            }
            done.calls += 1;
            // SAFETY: `hdrs[..count]` point at `iov`, `control` and `self.addrs`, alive for
            // the call; every iovec points into `self.data`.
            let sent = unsafe {
                libc::sendmmsg(
                    fd,
                    hdrs.as_mut_ptr(),
                    count as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if sent < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                let m = self.messages[at];
                if m.count > 1 && gso_refused(&e) {
                    // This kernel or device does not do GSO: one message per datagram from
                    // now on.
                    tracing::info!(error = %e, "UDP GSO refused; sending datagram by datagram");
                    self.gso = false;
                    self.split_from(at);
                    continue;
                }
                // Buffer full (EAGAIN) or the first message refused (e.g. EPERM, unreachable):
                // drop that one and go on with the rest.
                done.dropped += m.count as u64;
                at += 1;
                continue;
            }
            let sent = sent as usize;
            for (k, h) in hdrs[..sent].iter().enumerate() {
                let m = &self.messages[at + k];
                done.bytes += u64::from(h.msg_len);
                done.datagrams += m.count as u64;
                if m.count > 1 {
                    done.gso_datagrams += m.count as u64;
                }
            }
            at += sent;
            if sent == 0 {
                done.dropped += self.messages[at..]
                    .iter()
                    .map(|m| m.count as u64)
                    .sum::<u64>();
                break;
            }
        }
        self.addrs.clear();
        self.messages.clear();
        done
    }

    /// Makes every message from `at` on one datagram each.
    fn split_from(&mut self, at: usize) {
        let rest: Vec<Message> = self.messages.drain(at..).collect();
        for m in rest {
            for i in m.first..m.first + m.count {
                self.messages.push(Message {
                    first: i,
                    count: 1,
                    segment: self.lens[i],
                    to: m.to,
                    open: false,
                });
            }
        }
    }
}

/// Errors by which a kernel or device says it cannot send a GSO message.
fn gso_refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EIO | libc::EINVAL | libc::EOPNOTSUPP | libc::ENOPROTOOPT)
    )
}

/// Attaches a `UDP_SEGMENT` control message of `size` to `h`, in `room`.
///
/// # Safety
/// `room` must stay alive and unmoved until the message is sent.
unsafe fn segment_size(h: &mut libc::msghdr, room: &mut [u64; CMSG_ROOM / 8], size: u16) {
    let space = libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) as usize;
    debug_assert!(space <= CMSG_ROOM);
    h.msg_control = room.as_mut_ptr().cast();
    h.msg_controllen = space;
    let c = libc::CMSG_FIRSTHDR(h);
    (*c).cmsg_level = libc::SOL_UDP;
    (*c).cmsg_type = libc::UDP_SEGMENT;
    (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as usize;
    std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<u16>(), size);
}

/// Buffers for reading a batch of datagrams.
pub struct RecvBatch {
    data: Vec<u8>,
    lens: [usize; BATCH],
    addrs: Vec<libc::sockaddr_storage>,
    addr_lens: [libc::socklen_t; BATCH],
    count: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch {
            data: vec![0; BATCH * SLOT],
            lens: [0; BATCH],
            // SAFETY: sockaddr_storage is plain data; all zeroes is a valid (unspecified) value.
            addrs: vec![unsafe { std::mem::zeroed() }; BATCH],
            addr_lens: [0; BATCH],
            count: 0,
        }
    }
}

impl RecvBatch {
    /// Reads what is waiting, up to `BATCH` datagrams; `WouldBlock` when nothing is.
    pub fn read(&mut self, fd: RawFd) -> io::Result<usize> {
        let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let name_len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        for k in 0..BATCH {
            let buf = &mut self.data[k * SLOT..(k + 1) * SLOT];
            let name = (&mut self.addrs[k] as *mut libc::sockaddr_storage).cast();
            one_buffer(&mut hdrs[k], &mut iov[k], buf, name, name_len);
        }
        // SAFETY: every header points at a live slot of `self.data` and `self.addrs`.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            self.count = 0;
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for (k, h) in hdrs[..n].iter().enumerate() {
            let truncated = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            self.lens[k] = if truncated {
                usize::MAX
            } else {
                h.msg_len as usize
            };
            self.addr_lens[k] = h.msg_hdr.msg_namelen;
        }
        self.count = n;
        Ok(n)
    }

    /// Datagram `i` of the last read, with its source; `None` for a source that is not IP or a
    /// datagram truncated by its slot.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        if i >= self.count || self.lens[i] > SLOT {
            return None;
        }
        let source = socket_addr(&self.addrs[i], self.addr_lens[i])?;
        Some((&self.data[i * SLOT..i * SLOT + self.lens[i]], source))
    }
}

/// Points a message header at one buffer and one socket address.
fn one_buffer(
    hdr: &mut libc::mmsghdr,
    iov: &mut libc::iovec,
    buf: &mut [u8],
    name: *mut libc::c_void,
    name_len: libc::socklen_t,
) {
    *iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let h = &mut hdr.msg_hdr;
    h.msg_name = name;
    h.msg_namelen = name_len;
    h.msg_iov = iov;
    h.msg_iovlen = 1;
}

/// The IPv4 or IPv6 address the kernel wrote into `storage`.
fn socket_addr(storage: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    let len = len as usize;
    match i32::from(storage.ss_family) {
        libc::AF_INET if len >= std::mem::size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 if len >= std::mem::size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a = unsafe {
                &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// The raw descriptor of a tokio socket, for the calls above.
pub fn fd_of(socket: &tokio::net::UdpSocket) -> RawFd {
    socket.as_raw_fd()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every datagram waiting on `b`, in order.
    fn drain(b: &std::net::UdpSocket) -> Vec<(Vec<u8>, SocketAddr)> {
        let mut input = RecvBatch::default();
        let mut out = Vec::new();
        while let Ok(n) = input.read(b.as_raw_fd()) {
            for i in 0..n {
                let (d, from) = input.get(i).unwrap();
                out.push((d.to_vec(), from));
            }
        }
        out
    }

    /// Runs of one size to one address (a shorter last one too), a longer datagram, another
    /// address in between: each receiver gets its datagrams whole and in order, with GSO and
    /// without.
    #[test]
    fn runs_to_one_address_arrive_as_the_datagrams_they_were() {
        for gso in [true, false] {
            let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            b.set_nonblocking(true).unwrap();
            c.set_nonblocking(true).unwrap();
            let (to_b, to_c) = (b.local_addr().unwrap(), c.local_addr().unwrap());
            let mut out = if gso {
                SendBatch::default()
            } else {
                SendBatch::without_gso()
            };
            let sizes_b = [1_200, 1_200, 1_200, 700, 1_200, 1_200, 1_300, 80, 80];
            let mut sent_b = Vec::new();
            for (i, n) in sizes_b.iter().enumerate() {
                let d = vec![i as u8; *n];
                assert!(out.push(&d, to_b));
                sent_b.push(d);
                if i == 4 {
                    assert!(out.push(&[0xcc; 1_200], to_c));
                }
            }
            let f = out.flush(a.as_raw_fd());
            assert_eq!((f.datagrams, f.dropped, f.calls), (10, 0, 1));
            assert_eq!(f.bytes, sizes_b.iter().sum::<usize>() as u64 + 1_200);
            if gso {
                // b [1200 ×3, 700] [1200], c [1200], b [1200] [1300, 80] [80]: 6 in GSO runs.
                assert_eq!(f.gso_datagrams, 6);
            } else {
                assert_eq!(f.gso_datagrams, 0);
            }
            let from = a.local_addr().unwrap();
            let got_b = drain(&b);
            assert_eq!(
                got_b.iter().map(|g| g.0.clone()).collect::<Vec<_>>(),
                sent_b,
                "gso {gso}"
            );
            assert!(got_b.iter().all(|g| g.1 == from));
            assert_eq!(drain(&c), vec![(vec![0xcc; 1_200], from)]);
            assert!(out.is_empty());
        }
    }

    #[test]
    fn a_batch_goes_out_and_comes_back_with_sources() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_nonblocking(true).unwrap();
        let to = b.local_addr().unwrap();
        let mut out = SendBatch::default();
        for i in 0..(BATCH + 6) {
            if out.is_full() {
                let f = out.flush(a.as_raw_fd());
                assert_eq!((f.datagrams, f.dropped), (BATCH as u64, 0));
                assert_eq!(f.gso_datagrams, BATCH as u64, "one run to one address");
            }
            assert!(out.push(&[i as u8; 100], to));
        }
        assert!(!out.push(&[0; SLOT + 1], to), "oversized");
        assert_eq!(out.flush(a.as_raw_fd()).datagrams, 6);
        assert!(out.is_empty());
        let mut input = RecvBatch::default();
        assert_eq!(input.read(b.as_raw_fd()).unwrap(), BATCH);
        let (d, from) = input.get(0).unwrap();
        assert_eq!((d, from), (&[0u8; 100][..], a.local_addr().unwrap()));
        assert_eq!(input.get(BATCH - 1).unwrap().0[0], (BATCH - 1) as u8);
        assert_eq!(input.read(b.as_raw_fd()).unwrap(), 6);
        assert_eq!(input.get(5).unwrap().0[0], (BATCH + 5) as u8);
        assert!(input.get(6).is_none());
        let e = input.read(b.as_raw_fd()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }
}
