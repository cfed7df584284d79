//! Sub-queries to the clusters' upstream servers, from this executor's own sockets: UDP through
//! a pool of unconnected sockets per address family, each on its own random ephemeral port and
//! replaced after a number of uses (RFC 5452; the gateway also matches address, ID and
//! question); TCP over the connections the gateway asks for (`upstream_tcp`).

use std::cell::{Cell, RefCell};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::future;
use gatherdns_core::{AttemptId, UpstreamFailure};

use crate::driver::Driver;
use crate::timer::sleep;
use crate::{log, udp, upstream_tcp};

/// Upstream replies handled per turn: four times a client socket's, since every client query
/// can fan out to several clusters, and finishing the queries in flight comes before taking
/// new ones (a reply left waiting in a full buffer is lost and costs a retry).
const REPLIES_PER_YIELD: usize = 4 * crate::budget::ITEMS_PER_YIELD;

/// UDP sockets per address family; each sub-query leaves from a random one.
const UDP_SOCKETS_PER_FAMILY: usize = 8;

/// A socket is replaced by one on a fresh random port after this many sub-queries.
const UDP_SOCKET_USES: u32 = 2000;

/// A replaced socket keeps receiving this long, so replies already on their way arrive.
const RETIRED_GRACE: Duration = Duration::from_secs(5);

/// One pooled upstream socket.
struct Pooled {
    socket: Rc<udp::Socket>,
    uses: Cell<u32>,
    /// Closing this ends the socket's receive task.
    stop: async_channel::Sender<()>,
}

/// The upstream sockets, opened on first use so that a host without IPv6 only fails the
/// IPv6 sub-queries.
#[derive(Default)]
pub(crate) struct Upstreams {
    v4: RefCell<Vec<Pooled>>,
    v6: RefCell<Vec<Pooled>>,
    /// The TCP connections.
    pub(crate) tcp: upstream_tcp::Tcp,
}

/// Sends one UDP sub-query without waiting. `Err` is a failure to report to the gateway once
/// the driver has released it; later failures are reported by the task that finds them.
pub(crate) fn send_udp(
    driver: &Rc<Driver>,
    attempt: AttemptId,
    addr: SocketAddr,
    payload: Bytes,
) -> Result<(), UpstreamFailure> {
    let socket = udp_socket(driver, addr).ok_or(UpstreamFailure::Unreachable)?;
    let driver_rc = driver.clone();
    let sent = udp::send(driver, &socket, addr, payload, move || {
        driver_rc.handle(|gateway, now| {
            gateway.handle_upstream_failure(now, attempt, UpstreamFailure::Unreachable)
        })
    });
    sent.then_some(()).ok_or(UpstreamFailure::Unreachable)
}

/// A random socket of `addr`'s family. The pool is filled on first use; a socket that has
/// served `UDP_SOCKET_USES` sub-queries is swapped for a new one on a new port.
fn udp_socket(driver: &Rc<Driver>, addr: SocketAddr) -> Option<Rc<udp::Socket>> {
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
/// its receive task, which ends when the socket is retired.
fn open(driver: &Rc<Driver>, any: IpAddr) -> Option<Pooled> {
    match udp::bind(SocketAddr::new(any, 0), false) {
        Ok(socket) => {
            let socket = Rc::new(socket);
            let (stop, stopped) = async_channel::bounded::<()>(1);
            let driver_rc = driver.clone();
            let task = udp::receive(socket.clone(), REPLIES_PER_YIELD, move |from, msg| {
                driver_rc.handle(|gateway, now| gateway.handle_upstream_message(now, from, msg))
            });
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
