//! Batched UDP for the runtimes' sockets: `recvmmsg` takes up to a batch of datagrams in one
//! system call and `sendmmsg` sends a batch in one, so that under load a gathered query's six
//! datagrams cost a fraction of a system call each instead of one, and alike datagrams to one
//! peer go through the kernel's stack once, as one GSO send ([`Sender`]). All of it works on
//! any non-blocking descriptor, whoever waits for it (async-io's epoll, glommio's io_uring).
//! Through `nix` (already built for glommio), whose wrappers keep the unsafe `mmsghdr`
//! handling out of this crate.

use std::cell::RefCell;
use std::io;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use bytes::{Bytes, BytesMut};
use nix::sys::socket::{
    recvmmsg, sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage,
};

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

/// Largest datagram sent as a segment of a GSO send: one that fits the IPv6 minimum MTU
/// (1280 bytes less headers), so that no segment needs IP fragmentation, which the kernel
/// refuses for GSO. Larger datagrams (rare: replies to clients that allow more than 1232
/// bytes) go one by one.
const GSO_SEGMENT_MAX: usize = 1232;

// A GSO send is one IP packet until it is cut: a batch of the largest segments must fit 64 kB
// (and the kernel's 64 segments).
const _: () = assert!(BATCH * GSO_SEGMENT_MAX < 65_000 && BATCH <= 64);

/// Headers and addresses for sending, reused for every batch: sending allocates nothing.
///
/// Datagrams that follow each other to one destination with one length (the last of them may
/// be shorter) go out as one GSO send (`UDP_SEGMENT`): the kernel takes them through its
/// stack once and cuts them into datagrams at the end. On loopback that costs a third of the
/// CPU of sending them one by one in a `sendmmsg`, receiver's side included (batches of 32
/// 60-byte datagrams: 1.3–1.5 µs per datagram for the whole machine against 3.7–4.3 µs,
/// `host/examples/gso_cost.rs`). A gathered query's sub-queries to one cluster are alike when
/// many clients ask one name, as are the replies to a client that asks it many times (a
/// node's DNS cache, a load generator).
pub struct Sender {
    headers: MultiHeaders<SockaddrStorage>,
    /// One message, with room for the `UDP_SEGMENT` control message.
    gso_header: MultiHeaders<SockaddrStorage>,
    addrs: Vec<Option<SockaddrStorage>>,
    /// Off once the kernel refused a GSO send on this socket (no `UDP_SEGMENT` before Linux
    /// 4.18, a device without checksum offload, a path MTU below a segment): from then on,
    /// one by one.
    gso: bool,
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
            gso_header: MultiHeaders::preallocate(1, Some(nix::cmsg_space!(u16))),
            addrs: Vec::with_capacity(BATCH),
            gso: true,
        }
    }

    /// A sender that never tries GSO: one datagram per message of a `sendmmsg` (to measure
    /// what GSO saves, `host/examples/gso_cost.rs`).
    pub fn one_by_one() -> Sender {
        Sender {
            gso: false,
            ..Sender::new()
        }
    }

    /// Sends the first of `(destination, payload)` without waiting (no destination: the
    /// connected peer): a run of alike datagrams in one GSO send, else up to a batch of the
    /// others in one `sendmmsg`. Returns how many of the first ones went out, so a caller
    /// sends the rest with more calls; `WouldBlock` when the socket buffer is full at once.
    pub fn send<'a>(
        &mut self,
        socket: &impl AsRawFd,
        datagrams: impl IntoIterator<Item = (Option<SocketAddr>, &'a [u8])>,
    ) -> io::Result<usize> {
        let mut batch: [(Option<SocketAddr>, &[u8]); BATCH] = [(None, &[]); BATCH];
        let mut count = 0;
        for (datagram, slot) in datagrams.into_iter().zip(batch.iter_mut()) {
            *slot = datagram;
            count += 1;
        }
        let batch = &batch[..count];
        if self.gso {
            let run = gso_run(batch);
            if run > 1 {
                match self.send_gso(socket, &batch[..run]) {
                    Err(e) if gso_refused(&e) => self.gso = false,
                    sent => return sent,
                }
            }
        }
        // Up to the next run that GSO can take.
        let single = if self.gso {
            (1..count)
                .find(|&i| gso_run(&batch[i..]) > 1)
                .unwrap_or(count)
        } else {
            count
        };
        self.send_each(socket, &batch[..single])
    }

    /// Sends a run of alike datagrams as one GSO send: all of them or none.
    fn send_gso(
        &mut self,
        socket: &impl AsRawFd,
        run: &[(Option<SocketAddr>, &[u8])],
    ) -> io::Result<usize> {
        let mut iovs = [io::IoSlice::new(&[]); BATCH];
        for (iov, (_, payload)) in iovs.iter_mut().zip(run) {
            *iov = io::IoSlice::new(payload);
        }
        // A run's segments fit GSO_SEGMENT_MAX (gso_run).
        let segment = run[0].1.len() as u16;
        let addr = [run[0].0.map(SockaddrStorage::from)];
        let message = [&iovs[..run.len()]];
        let sent = sendmmsg(
            socket.as_raw_fd(),
            &mut self.gso_header,
            &message,
            addr,
            [ControlMessage::UdpGsoSegments(&segment)],
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?;
        Ok(if sent.count() == 1 { run.len() } else { 0 })
    }

    /// Sends datagrams one per message of a `sendmmsg`.
    fn send_each(
        &mut self,
        socket: &impl AsRawFd,
        batch: &[(Option<SocketAddr>, &[u8])],
    ) -> io::Result<usize> {
        let mut iovs = [[io::IoSlice::new(&[])]; BATCH];
        self.addrs.clear();
        for ((to, payload), iov) in batch.iter().zip(iovs.iter_mut()) {
            *iov = [io::IoSlice::new(payload)];
            self.addrs.push(to.map(SockaddrStorage::from));
        }
        let sent = sendmmsg(
            socket.as_raw_fd(),
            &mut self.headers,
            &iovs[..batch.len()],
            &self.addrs,
            [],
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?;
        Ok(sent.count())
    }
}

/// How many of the first datagrams one GSO send can carry: those to the first one's
/// destination with its length, and then one shorter, if it comes next. 1 when the second
/// does not join the first.
fn gso_run(batch: &[(Option<SocketAddr>, &[u8])]) -> usize {
    let Some(&(to, first)) = batch.first() else {
        return 0;
    };
    if first.is_empty() || first.len() > GSO_SEGMENT_MAX {
        return 1;
    }
    let mut run = 1;
    for &(next_to, next) in &batch[1..] {
        if next_to != to || next.len() > first.len() || next.is_empty() {
            break;
        }
        run += 1;
        if next.len() < first.len() {
            break;
        }
    }
    run
}

/// Whether a failed GSO send says the socket cannot do GSO (rather than being full or its
/// peer unreachable).
fn gso_refused(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(nix::libc::EIO | nix::libc::EINVAL | nix::libc::ENOPROTOOPT | nix::libc::EOPNOTSUPP)
    )
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

    /// Receives until `count` datagrams came (or a second passed).
    fn receive(rx: &UdpSocket, count: usize) -> Vec<Vec<u8>> {
        rx.set_read_timeout(Some(std::time::Duration::from_secs(1)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        while got.len() < count {
            match rx.recv(&mut buf) {
                Ok(len) => got.push(buf[..len].to_vec()),
                Err(_) => break,
            }
        }
        got
    }

    #[test]
    fn alike_datagrams_go_out_in_one_gso_send_and_arrive_one_by_one() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.connect(rx.local_addr().unwrap()).unwrap();
        let mut payloads: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 60]).collect();
        payloads.push(vec![9; 20]);
        let batch = payloads.iter().map(|p| (None, &p[..]));
        let mut sender = Sender::new();
        assert_eq!(sender.send(&tx, batch).unwrap(), 6);
        assert!(sender.gso);
        assert_eq!(receive(&rx, 6), payloads);
    }

    #[test]
    fn a_gso_send_reaches_the_peer_as_one_message_where_it_asks_for_them_whole() {
        // A receiver with UDP_GRO takes a GSO send whole (loopback coalesces nothing else):
        // proof that the run went out as one send, not as six.
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        nix::sys::socket::setsockopt(&rx, nix::sys::socket::sockopt::UdpGroSegment, &true).unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = Some(rx.local_addr().unwrap());
        let payloads: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 50]).collect();
        let batch = payloads.iter().map(|p| (to, &p[..]));
        assert_eq!(Sender::new().send(&tx, batch).unwrap(), 6);
        assert_eq!(receive(&rx, 1), vec![payloads.concat()]);
    }

    #[test]
    fn a_mixed_batch_goes_out_in_runs_and_whole() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (to_a, to_b) = (Some(a.local_addr().unwrap()), Some(b.local_addr().unwrap()));
        let sent: Vec<(Option<SocketAddr>, Vec<u8>)> = vec![
            (to_a, vec![1; 60]),
            (to_a, vec![2; 60]),
            (to_b, vec![3; 60]),
            (to_a, vec![4; 30]),
            (to_a, vec![5; 30]),
            (to_a, vec![6; 10]),
            (to_a, vec![7; 2000]),
            (to_a, vec![8; 2000]),
        ];
        let mut sender = Sender::new();
        let mut calls = Vec::new();
        let mut done = 0;
        while done < sent.len() {
            let batch = sent[done..].iter().map(|(to, p)| (*to, &p[..]));
            let n = sender.send(&tx, batch).unwrap();
            assert!(n > 0);
            calls.push(n);
            done += n;
        }
        // Two alike, one to another peer, three alike (the last shorter), then the two too
        // large for GSO together in one sendmmsg.
        assert_eq!(calls, [2, 1, 3, 2]);
        let to = |peer| {
            sent.iter()
                .filter(move |(to, _)| *to == peer)
                .map(|(_, p)| p.clone())
        };
        assert_eq!(receive(&a, 7), to(to_a).collect::<Vec<_>>());
        assert_eq!(receive(&b, 1), to(to_b).collect::<Vec<_>>());
    }

    #[test]
    #[allow(unsafe_code)] // setsockopt(SO_NO_CHECK): neither nix nor socket2 offers it
    fn a_socket_that_refuses_gso_sends_one_by_one() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        // Without UDP checksums the kernel refuses GSO (EINVAL), as it does on old kernels
        // and on devices without checksum offload.
        let one: nix::libc::c_int = 1;
        // SAFETY: a valid descriptor and a pointer to an int of the length given.
        let set = unsafe {
            nix::libc::setsockopt(
                tx.as_raw_fd(),
                nix::libc::SOL_SOCKET,
                nix::libc::SO_NO_CHECK,
                (&one as *const nix::libc::c_int).cast(),
                std::mem::size_of::<nix::libc::c_int>() as nix::libc::socklen_t,
            )
        };
        assert_eq!(set, 0);
        let to = Some(rx.local_addr().unwrap());
        let payloads: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 40]).collect();
        let mut sender = Sender::new();
        let batch = payloads.iter().map(|p| (to, &p[..]));
        assert_eq!(sender.send(&tx, batch).unwrap(), 4);
        assert!(!sender.gso);
        assert_eq!(receive(&rx, 4), payloads);
    }

    #[test]
    fn a_gso_run_is_alike_datagrams_to_one_peer_and_one_shorter_at_most() {
        let (a, b) = (
            Some(SocketAddr::from(([127, 0, 0, 1], 1))),
            Some(SocketAddr::from(([127, 0, 0, 1], 2))),
        );
        let (d60, d30, big) = ([0u8; 60], [0u8; 30], [0u8; 1300]);
        let run = |batch: &[(Option<SocketAddr>, &[u8])]| gso_run(batch);
        assert_eq!(run(&[]), 0);
        assert_eq!(run(&[(a, &d60)]), 1);
        assert_eq!(run(&[(a, &d60), (a, &d60), (a, &d60)]), 3);
        assert_eq!(run(&[(a, &d60), (a, &d60), (a, &d30), (a, &d30)]), 3);
        assert_eq!(run(&[(a, &d30), (a, &d60)]), 1);
        assert_eq!(run(&[(a, &d60), (b, &d60)]), 1);
        assert_eq!(run(&[(None, &d60), (None, &d60)]), 2);
        assert_eq!(run(&[(a, &big), (a, &big)]), 1);
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
