//! Sub-queries to the clusters' upstream servers. UDP goes through a pool of unconnected
//! sockets per address family, each on its own random ephemeral port and replaced after a
//! number of uses (RFC 5452: a spoofer must guess port and ID; the gateway also checks source
//! and question). TCP goes over the connections the gateway asks for (`upstream_tcp`).

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::future;
use gatherdns_core::{AttemptId, UpstreamFailure};
use smol::Async;

use crate::batch;
use crate::driver::Driver;
use crate::timer::sleep;
use crate::{log, upstream_tcp};

/// UDP sub-queries allowed to wait for a full socket buffer.
const MAX_UDP_BACKLOG: usize = 1024;

/// How long a backlogged sub-query may wait for the socket.
const UDP_SEND_WAIT: Duration = Duration::from_secs(1);

/// Datagrams handled before the receive task yields to the other tasks.
const DATAGRAMS_PER_YIELD: usize = 32;

/// Pause after a receive error, so that a persistent error cannot spin the loop.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// UDP sockets per address family; each sub-query leaves from a random one.
const UDP_SOCKETS_PER_FAMILY: usize = 8;

/// A socket is replaced by one on a fresh random port after this many sub-queries.
const UDP_SOCKET_USES: u32 = 2000;

/// A replaced socket keeps receiving this long, so replies already on their way arrive.
const RETIRED_GRACE: Duration = Duration::from_secs(5);

/// One pooled upstream socket.
struct Pooled {
    socket: Rc<Async<UdpSocket>>,
    uses: Cell<u32>,
    /// Closing this ends the socket's receive task.
    stop: smol::channel::Sender<()>,
}

/// The upstream sockets, opened on first use so that a host without IPv6 only fails the
/// IPv6 sub-queries.
#[derive(Default)]
pub(crate) struct Upstreams {
    v4: RefCell<Vec<Pooled>>,
    v6: RefCell<Vec<Pooled>>,
    /// The TCP connections.
    pub(crate) tcp: upstream_tcp::Tcp,
    udp_backlog: Rc<Cell<usize>>,
}

impl Upstreams {
    pub(crate) fn new() -> Upstreams {
        Upstreams::default()
    }
}

/// Chooses the socket for a UDP sub-query and queues it in the drain's outbox, which sends
/// the drain's datagrams in batches when it ends. `Err` is a failure to report to the
/// gateway once the driver has released it.
pub(crate) fn send_udp(
    driver: &Rc<Driver>,
    attempt: AttemptId,
    addr: SocketAddr,
    payload: Bytes,
) -> Result<(), UpstreamFailure> {
    let Some(socket) = udp_socket(driver, addr) else {
        return Err(UpstreamFailure::Unreachable);
    };
    driver.queue_udp(socket, addr, payload, Some(attempt));
    Ok(())
}

/// Sends one sub-query now if the socket has room, else from a bounded background task that
/// reports the attempt failed if the socket stays full. For what a batch could not send.
pub(crate) fn send_udp_now(
    driver: &Rc<Driver>,
    socket: Rc<Async<UdpSocket>>,
    attempt: AttemptId,
    addr: SocketAddr,
    payload: Bytes,
) -> Result<(), UpstreamFailure> {
    let ups = driver.upstreams();
    match socket.get_ref().send_to(&payload, addr) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            if ups.udp_backlog.get() >= MAX_UDP_BACKLOG {
                return Err(UpstreamFailure::Unreachable);
            }
            let backlog = ups.udp_backlog.clone();
            backlog.set(backlog.get() + 1);
            let driver_rc = driver.clone();
            driver.spawn(async move {
                let send = async { socket.send_to(&payload, addr).await.is_ok() };
                let sent = future::or(send, async {
                    sleep(UDP_SEND_WAIT).await;
                    false
                })
                .await;
                backlog.set(backlog.get() - 1);
                if !sent {
                    driver_rc.handle(|gateway, now| {
                        gateway.handle_upstream_failure(now, attempt, UpstreamFailure::Unreachable)
                    });
                }
            });
            Ok(())
        }
        Err(_) => Err(UpstreamFailure::Unreachable),
    }
}

/// A random socket of `addr`'s family. The pool is filled on first use; a socket that has
/// served `UDP_SOCKET_USES` sub-queries is swapped for a new one on a new port.
fn udp_socket(driver: &Rc<Driver>, addr: SocketAddr) -> Option<Rc<Async<UdpSocket>>> {
    let ups = driver.upstreams();
    let (pool, any) = match addr.ip() {
        IpAddr::V4(_) => (&ups.v4, IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        IpAddr::V6(_) => (&ups.v6, IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
    };
    let mut sockets = pool.borrow_mut();
    while sockets.len() < UDP_SOCKETS_PER_FAMILY {
        sockets.push(open(driver, any)?);
    }
    let index = fastrand::usize(..sockets.len());
    let uses = sockets[index].uses.get() + 1;
    sockets[index].uses.set(uses);
    let chosen = sockets[index].socket.clone();
    if uses >= UDP_SOCKET_USES {
        if let Some(fresh) = open(driver, any) {
            let retired = std::mem::replace(&mut sockets[index], fresh);
            driver.spawn(async move {
                sleep(RETIRED_GRACE).await;
                drop(retired.stop);
            });
        }
    }
    Some(chosen)
}

/// Binds a socket on a random ephemeral port (the kernel randomises it, RFC 6056) and starts
/// its receive task.
fn open(driver: &Rc<Driver>, any: IpAddr) -> Option<Pooled> {
    match UdpSocket::bind(SocketAddr::new(any, 0)).and_then(Async::new) {
        Ok(socket) => {
            let socket = Rc::new(socket);
            let (stop, stopped) = smol::channel::bounded(1);
            let task = receive(driver.clone(), socket.clone());
            driver.spawn(async move {
                future::or(task, async {
                    let _ = stopped.recv().await;
                })
                .await;
            });
            Some(Pooled {
                socket,
                uses: Cell::new(0),
                stop,
            })
        }
        Err(e) => {
            log::error(format_args!("upstream socket for {any}: {e}"));
            None
        }
    }
}

/// Feeds every datagram that arrives on an upstream socket to the gateway, which decides
/// whether it answers a pending sub-query; a batch per system call and per drain.
async fn receive(driver: Rc<Driver>, socket: Rc<Async<UdpSocket>>) {
    let mut receiver = batch::Receiver::new();
    let mut handled = 0usize;
    loop {
        match socket.read_with(|s| receiver.recv(s)).await {
            Ok(count) => {
                driver.handle(|gateway, now| {
                    for (from, msg) in receiver.messages() {
                        gateway.handle_upstream_message(now, from, msg);
                    }
                });
                handled += count;
            }
            Err(_) => {
                sleep(ERROR_PAUSE).await;
                handled += 1;
            }
        }
        if handled >= DATAGRAMS_PER_YIELD {
            handled = 0;
            future::yield_now().await;
        }
    }
}
