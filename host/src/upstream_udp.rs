//! UDP sub-queries leave from a pool of unconnected sockets per address family, each on its
//! own random ephemeral port and replaced after a number of uses (RFC 5452: a spoofer must
//! guess port and ID; the gateway also checks source and question). Each socket's receive
//! task hands every batch that arrives to the gateway, which decides what it answers.

use std::cell::{Cell, RefCell};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future;

use crate::budget::{Budget, ITEMS_PER_YIELD};
use crate::driver::Driver;
use crate::log;
use crate::runtime::{Runtime, UdpSocket};
use crate::udp::ERROR_PAUSE;

/// UDP sockets per address family; each sub-query leaves from a random one.
const SOCKETS_PER_FAMILY: usize = 8;

/// A socket is replaced by one on a fresh random port after this many sub-queries.
const SOCKET_USES: u32 = 2000;

/// A replaced socket keeps receiving this long, so replies already on their way arrive.
const RETIRED_GRACE: Duration = Duration::from_secs(5);

/// Upstream replies handled per turn: four times a client socket's, since every client query
/// can fan out to several clusters, and finishing the queries in flight comes before taking
/// new ones (a reply left waiting in a full buffer is lost and costs a retry).
const REPLIES_PER_YIELD: usize = 4 * ITEMS_PER_YIELD;

/// One pooled upstream socket.
struct Pooled<R: Runtime> {
    socket: Rc<R::Udp>,
    uses: Cell<u32>,
    /// Closing this ends the socket's receive task.
    stop: async_channel::Sender<()>,
}

/// The upstream sockets, opened on first use so that a host without IPv6 only fails the
/// IPv6 sub-queries.
pub(crate) struct Sockets<R: Runtime> {
    v4: RefCell<Vec<Pooled<R>>>,
    v6: RefCell<Vec<Pooled<R>>>,
}

impl<R: Runtime> Default for Sockets<R> {
    fn default() -> Self {
        Sockets {
            v4: RefCell::default(),
            v6: RefCell::default(),
        }
    }
}

impl<R: Runtime> Sockets<R> {
    /// A random socket of `addr`'s family. The pool is filled on first use; a socket that has
    /// served `SOCKET_USES` sub-queries is swapped for a new one on a new port. `None` when
    /// no socket can be opened.
    pub(crate) fn socket(&self, driver: &Rc<Driver<R>>, addr: SocketAddr) -> Option<Rc<R::Udp>> {
        let (pool, any) = match addr.ip() {
            IpAddr::V4(_) => (&self.v4, IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            IpAddr::V6(_) => (&self.v6, IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        };
        let mut sockets = pool.borrow_mut();
        while sockets.len() < SOCKETS_PER_FAMILY {
            sockets.push(open(driver, any)?);
        }
        let index = fastrand::usize(..sockets.len());
        let uses = sockets[index].uses.get() + 1;
        sockets[index].uses.set(uses);
        let chosen = sockets[index].socket.clone();
        if uses >= SOCKET_USES {
            if let Some(fresh) = open(driver, any) {
                let retired = std::mem::replace(&mut sockets[index], fresh);
                R::detach(R::spawn(async move {
                    R::sleep_until(Instant::now() + RETIRED_GRACE).await;
                    drop(retired.stop);
                }));
            }
        }
        Some(chosen)
    }
}

/// Binds a socket on a random ephemeral port (the kernel randomises it, RFC 6056) and starts
/// its receive task, which ends when the socket is retired.
fn open<R: Runtime>(driver: &Rc<Driver<R>>, any: IpAddr) -> Option<Pooled<R>> {
    match R::bind_udp(SocketAddr::new(any, 0), false) {
        Ok(socket) => {
            let socket = Rc::new(socket);
            let (stop, stopped) = async_channel::bounded::<()>(1);
            let task = receive(driver.clone(), socket.clone());
            R::detach(R::spawn(async move {
                future::or(task, async {
                    let _ = stopped.recv().await;
                })
                .await;
            }));
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

/// Feeds every datagram that arrives on an upstream socket to the gateway: a batch per wake
/// and per drain.
async fn receive<R: Runtime>(driver: Rc<Driver<R>>, socket: Rc<R::Udp>) {
    let mut buf = <R::Udp as UdpSocket>::RecvBuf::default();
    let mut batch = Vec::new();
    let mut budget = Budget::<R>::with(REPLIES_PER_YIELD);
    loop {
        match socket.recv(&mut buf, &mut batch).await {
            Ok(()) => {
                let count = batch.len();
                driver.handle(|gateway, now| {
                    for (from, msg) in batch.drain(..) {
                        gateway.handle_upstream_message(now, from, msg);
                    }
                });
                batch.clear();
                budget.spend(count.max(1)).await;
            }
            Err(_) => {
                R::sleep_until(Instant::now() + ERROR_PAUSE).await;
                budget.spend(1).await;
            }
        }
    }
}
