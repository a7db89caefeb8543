//! Batched UDP on a worker's socket: datagrams are read up to `BATCH` per `recvmmsg` and sent
//! up to `BATCH` per `sendmmsg`, so a fan-out of thousands of packets costs tens of system
//! calls instead of thousands. Both are non-blocking: a full send buffer drops what did not
//! fit (UDP semantics), counted by the caller.
//!
//! UDP GSO (`UDP_SEGMENT`) is not used: it merges datagrams to *one* destination, and a
//! fan-out sends consecutive datagrams to different subscribers (see `docs/sfu.md`).

use socket2::SockAddr;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

/// Datagrams per system call.
pub const BATCH: usize = 64;
/// Room per datagram: WebRTC keeps datagrams under the path MTU (str0m's default is 1150).
const SLOT: usize = 2048;

/// Datagrams waiting to be sent, copied out of str0m's buffers.
pub struct SendBatch {
    data: Vec<u8>,
    lens: [usize; BATCH],
    addrs: Vec<SockAddr>,
}

/// What one flush did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    pub datagrams: u64,
    pub bytes: u64,
    /// Datagrams the kernel did not take (its buffer was full) or refused.
    pub dropped: u64,
}

impl Default for SendBatch {
    fn default() -> Self {
        SendBatch {
            data: vec![0; BATCH * SLOT],
            lens: [0; BATCH],
            addrs: Vec::with_capacity(BATCH),
        }
    }
}

impl SendBatch {
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
        if i == BATCH || datagram.len() > SLOT {
            return false;
        }
        self.data[i * SLOT..i * SLOT + datagram.len()].copy_from_slice(datagram);
        self.lens[i] = datagram.len();
        self.addrs.push(SockAddr::from(to));
        true
    }

    /// Sends everything queued; the batch is empty afterwards.
    pub fn flush(&mut self, fd: RawFd) -> Flushed {
        let n = self.addrs.len();
        let mut done = Flushed::default();
        let mut at = 0;
        while at < n {
            let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
            let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
            let count = n - at;
            for k in 0..count {
                let i = at + k;
                let buf = &mut self.data[i * SLOT..i * SLOT + self.lens[i]];
                let name = self.addrs[i].as_ptr() as *mut libc::c_void;
                one_buffer(&mut hdrs[k], &mut iov[k], buf, name, self.addrs[i].len());
            }
            // SAFETY: `hdrs[..count]` point at `iov` and `self.addrs`, alive for the call.
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
                // Buffer full (EAGAIN) or the first datagram refused (e.g. EPERM, unreachable):
                // drop that one and go on with the rest.
                done.dropped += 1;
                at += 1;
                continue;
            }
            let sent = sent as usize;
            done.bytes += hdrs[..sent]
                .iter()
                .map(|h| u64::from(h.msg_len))
                .sum::<u64>();
            done.datagrams += sent as u64;
            at += sent;
            if sent == 0 {
                done.dropped += (n - at) as u64;
                break;
            }
        }
        self.addrs.clear();
        done
    }
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
