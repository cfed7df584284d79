//! UDP sockets, client side and upstream side alike: datagrams are received through glommio
//! (a direct syscall while data is waiting, io_uring once the socket is empty), and sent at
//! once with a non-blocking syscall; only a full socket buffer hands the send to io_uring.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::future;
use socket2::{Domain, Protocol, SockAddr, Type};

use crate::budget::Budget;
use crate::driver::Driver;
use crate::timer::sleep;

/// Sends allowed to wait for a full socket buffer, per socket; beyond this they are dropped,
/// as the network would drop them, rather than piling up in memory.
const MAX_BACKLOG: usize = 1024;

/// How long a backlogged send may wait before it is dropped.
const SEND_WAIT: Duration = Duration::from_secs(1);

/// Receive buffer asked of the kernel, which caps it at `net.core.rmem_max` (doubled). With
/// several executors, sub-queries are answered on other cores while this one is busy, so
/// replies arrive in bursts; the default (about 200 KiB) overflowed at a few hundred queued
/// replies in the load test, and every lost reply costs a query an attempt timeout.
const RECV_BUFFER: usize = 1 << 20;

/// Pause after a receive error, so that a persistent error cannot spin the loop.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// One UDP socket of this executor.
pub(crate) struct Socket {
    /// The socket as glommio drives it.
    io: glommio::net::UdpSocket,
    /// The same socket (a duplicated descriptor) for sends that must not wait.
    now: socket2::Socket,
    /// Sends waiting in background tasks for buffer space.
    backlog: Cell<usize>,
}

/// Opens a UDP socket on `addr`. Listening sockets share their address with the other
/// executors' (SO_REUSEPORT: the kernel spreads clients over them); upstream sockets take an
/// ephemeral port of their own, so that replies come back to the executor that asked.
pub(crate) fn bind(addr: SocketAddr, reuse_port: bool) -> io::Result<Socket> {
    let socket = socket2::Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    // Best effort: a smaller buffer only means earlier drops under load.
    let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    socket.bind(&SockAddr::from(addr))?;
    Ok(Socket {
        now: socket.try_clone()?,
        io: glommio::net::UdpSocket::from(socket),
        backlog: Cell::new(0),
    })
}

/// Feeds every datagram that arrives on `socket` to `input`, for as long as the process runs,
/// `per_yield` at a time before the other tasks get their turn.
pub(crate) async fn receive(
    socket: Rc<Socket>,
    per_yield: usize,
    input: impl Fn(SocketAddr, Bytes),
) {
    // One reusable buffer of the largest datagram; each message is copied out at its own size
    // so that a pending query never pins 64 KiB.
    let mut buf = vec![0u8; 65535];
    let mut budget = Budget::with(per_yield);
    loop {
        match socket.io.recv_from(&mut buf).await {
            Ok((len, from)) => input(from, Bytes::copy_from_slice(&buf[..len])),
            // ICMP errors of earlier sends surface here on some systems; they concern one
            // peer, not the socket, so the loop goes on.
            Err(_) => sleep(ERROR_PAUSE).await,
        }
        budget.spend().await;
    }
}

/// Sends `payload` to `to` now if the socket has room, else from a bounded background task.
/// Returns false if the datagram is lost already; `on_late_failure` runs if the background
/// send fails (it runs in its own task, so it may call into the gateway).
pub(crate) fn send(
    driver: &Driver,
    socket: &Rc<Socket>,
    to: SocketAddr,
    payload: Bytes,
    on_late_failure: impl FnOnce() + 'static,
) -> bool {
    match socket
        .now
        .send_to_with_flags(&payload, &SockAddr::from(to), libc::MSG_DONTWAIT)
    {
        Ok(_) => true,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            if socket.backlog.get() >= MAX_BACKLOG {
                return false;
            }
            socket.backlog.set(socket.backlog.get() + 1);
            let socket = socket.clone();
            driver.spawn(async move {
                let send = async { socket.io.send_to(&payload, to).await.is_ok() };
                let sent = future::or(send, async {
                    sleep(SEND_WAIT).await;
                    false
                })
                .await;
                socket.backlog.set(socket.backlog.get() - 1);
                if !sent {
                    on_late_failure();
                }
            });
            true
        }
        // Other errors (an unroutable address) lose this datagram only.
        Err(_) => false,
    }
}
