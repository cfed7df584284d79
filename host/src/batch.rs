//! Batched UDP for the runtimes' sockets: `recvmmsg` takes up to a batch of datagrams in one
//! system call and `sendmmsg` sends a batch in one, so that under load a gathered query's six
//! datagrams cost a fraction of a system call each instead of one. Both work on any
//! non-blocking descriptor, whoever waits for it (async-io's epoll, glommio's io_uring).
//! Through `nix` (already built for glommio), whose wrappers keep the unsafe `mmsghdr`
//! handling out of this crate.

use std::cell::RefCell;
use std::io;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use bytes::{Bytes, BytesMut};
use nix::sys::socket::{recvmmsg, sendmmsg, MsgFlags, MultiHeaders, SockaddrStorage};

/// Datagrams per system call. Enough to empty a busy socket in a few calls; small enough
/// that the first datagram of a batch does not wait long for the last.
pub const BATCH: usize = 32;

/// Room for one received datagram. Queries and the replies of upstreams that were told our
/// EDNS size (1232) fit; a larger datagram arrives cut (MSG_TRUNC) and is treated as the
/// malformed message it then is.
const SLOT: usize = 4096;

thread_local! {
    /// The receiver of this executor thread, shared by all its sockets: a receive fills it
    /// and empties it into owned messages without waiting in between, so no two sockets need
    /// it at once. With one per socket, every socket held 128 kB of slots, and at 30k
    /// gathered queries/s some 60 replaced upstream sockets linger for their grace period
    /// (`upstream_udp.rs`): 8 MB of each executor's memory.
    static RECEIVER: RefCell<Receiver> = RefCell::new(Receiver::new());
}

/// Receives what `socket` has, up to a batch, without waiting, into this thread's shared
/// [`Receiver`], and appends `first` (a datagram received apart, if any) and the datagrams
/// to `out` as owned messages ([`Receiver::messages_into`]). The error of the receive (as
/// `WouldBlock` when the socket had nothing) is returned after `first` is appended.
pub fn recv_into(
    socket: &impl AsRawFd,
    first: Option<(SocketAddr, &[u8])>,
    out: &mut Vec<(SocketAddr, Bytes)>,
) -> io::Result<usize> {
    RECEIVER.with_borrow_mut(|receiver| {
        let received = receiver.recv(socket);
        receiver.messages_into(first, out);
        received
    })
}

/// Buffers and headers for receiving, reused for every batch.
pub struct Receiver {
    slots: Vec<Vec<u8>>,
    headers: MultiHeaders<SockaddrStorage>,
    /// What the last `recv` got: sender and length, per slot.
    got: Vec<(SocketAddr, usize)>,
}

impl Default for Receiver {
    fn default() -> Receiver {
        Receiver::new()
    }
}

impl Receiver {
    pub fn new() -> Receiver {
        Receiver {
            slots: vec![vec![0u8; SLOT]; BATCH],
            headers: MultiHeaders::preallocate(BATCH, None),
            got: Vec::with_capacity(BATCH),
        }
    }

    /// Receives what the socket has, up to a batch, without waiting (`WouldBlock` when it
    /// has nothing). Returns how many datagrams came.
    pub fn recv(&mut self, socket: &impl AsRawFd) -> io::Result<usize> {
        self.got.clear();
        let mut iovs: Vec<[io::IoSliceMut<'_>; 1]> = self
            .slots
            .iter_mut()
            .map(|slot| [io::IoSliceMut::new(slot)])
            .collect();
        let results = recvmmsg(
            socket.as_raw_fd(),
            &mut self.headers,
            iovs.iter_mut().map(|iov| &*iov),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(io::Error::from)?;
        for msg in results {
            // A datagram without a usable sender cannot be answered: left out.
            if let Some(from) = msg.address.as_ref().and_then(socket_addr) {
                self.got.push((from, msg.bytes.min(SLOT)));
            } else {
                self.got.push((unspecified(), 0));
            }
        }
        Ok(self.got.len())
    }

    /// Appends `first` (a datagram received apart, if any) and the datagrams of the last
    /// `recv` to `out` as owned messages, copied into one buffer of their exact total size:
    /// two allocations per batch rather than one per datagram, and slices of the messages
    /// (a question name the core keeps) only count a reference. A pending query pins the
    /// bytes of its batch only, never the batch's receive slots.
    pub fn messages_into(
        &self,
        first: Option<(SocketAddr, &[u8])>,
        out: &mut Vec<(SocketAddr, Bytes)>,
    ) {
        let rest = self
            .got
            .iter()
            .zip(&self.slots)
            .map(|(&(from, len), slot)| (from, &slot[..len]));
        let datagrams = first.into_iter().chain(rest).filter(|(_, d)| !d.is_empty());
        let total = datagrams.clone().map(|(_, d)| d.len()).sum();
        let mut all = BytesMut::with_capacity(total);
        for (from, datagram) in datagrams {
            all.extend_from_slice(datagram);
            out.push((from, all.split().freeze()));
        }
    }
}

fn socket_addr(storage: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = storage.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    storage
        .as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

fn unspecified() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 0))
}

/// Headers and addresses for sending, reused for every batch: sending allocates nothing.
pub struct Sender {
    headers: MultiHeaders<SockaddrStorage>,
    addrs: Vec<Option<SockaddrStorage>>,
}

impl Default for Sender {
    fn default() -> Sender {
        Sender::new()
    }
}

impl Sender {
    /// Headers for a batch, allocated once.
    pub fn new() -> Sender {
        Sender {
            headers: MultiHeaders::preallocate(BATCH, None),
            addrs: Vec::with_capacity(BATCH),
        }
    }

    /// Sends up to a batch of `(destination, payload)` without waiting (no destination: the
    /// connected peer). Returns how many of the first ones went out; `WouldBlock` when the
    /// socket buffer is full at once.
    pub fn send<'a>(
        &mut self,
        socket: &impl AsRawFd,
        datagrams: impl IntoIterator<Item = (Option<SocketAddr>, &'a [u8])>,
    ) -> io::Result<usize> {
        let mut iovs = [[io::IoSlice::new(&[])]; BATCH];
        self.addrs.clear();
        for ((to, payload), iov) in datagrams.into_iter().zip(iovs.iter_mut()) {
            *iov = [io::IoSlice::new(payload)];
            self.addrs.push(to.map(SockaddrStorage::from));
        }
        let count = self.addrs.len();
        let sent = sendmmsg(
            socket.as_raw_fd(),
            &mut self.headers,
            &iovs[..count],
            &self.addrs,
            [],
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?;
        Ok(sent.count())
    }
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;

    use super::*;

    #[test]
    fn a_batch_goes_out_and_comes_back_in_one_call_each() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let datagrams: Vec<(SocketAddr, Bytes)> = (0..5u8)
            .map(|i| (to, Bytes::from(vec![i; 10 + usize::from(i)])))
            .collect();
        let batch = datagrams
            .iter()
            .map(|(to, payload)| (Some(*to), &payload[..]));
        assert_eq!(Sender::new().send(&tx, batch).unwrap(), 5);
        let mut receiver = Receiver::new();
        let mut got = Vec::new();
        for _ in 0..100 {
            match receiver.recv(&rx) {
                Ok(_) => receiver.messages_into(None, &mut got),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) => panic!("{e}"),
            }
            if got.len() == 5 {
                break;
            }
        }
        assert_eq!(got.len(), 5);
        for (i, (from, msg)) in got.iter().enumerate() {
            assert_eq!(*from, tx.local_addr().unwrap());
            assert_eq!(msg.len(), 10 + i);
        }
        assert_eq!(
            receiver.recv(&rx).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }

    #[test]
    fn the_shared_receiver_hands_over_the_first_datagram_then_the_batch() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_nonblocking(true).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let first_from = SocketAddr::from(([192, 0, 2, 1], 53));
        let mut out = Vec::new();
        let empty = recv_into(&rx, Some((first_from, b"first")), &mut out);
        assert_eq!(empty.unwrap_err().kind(), io::ErrorKind::WouldBlock);
        assert_eq!(out, vec![(first_from, Bytes::from_static(b"first"))]);
        tx.send_to(b"one", rx.local_addr().unwrap()).unwrap();
        tx.send_to(b"two", rx.local_addr().unwrap()).unwrap();
        out.clear();
        for _ in 0..100 {
            let _ = recv_into(&rx, None, &mut out);
            if out.len() == 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let got: Vec<&[u8]> = out.iter().map(|(_, m)| &m[..]).collect();
        assert_eq!(got, [&b"one"[..], &b"two"[..]]);
        assert!(out
            .iter()
            .all(|(from, _)| *from == tx.local_addr().unwrap()));
    }
}
