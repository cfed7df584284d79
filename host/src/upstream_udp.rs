//! UDP sub-queries leave from sockets connected to their upstream, `UPSTREAM_SOCKETS` per
//! upstream, each on its own random ephemeral port and replaced after a number of uses (RFC
//! 5452). The gateway picks the socket of each sub-query and takes its reply only on that
//! socket, and the kernel delivers a connected socket only its peer's datagrams: a spoofer
//! must guess the one port and the ID. Each socket's receive task hands every batch that
//! arrives to the gateway.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future;
use gatherdns_core::{SocketIndex, UPSTREAM_SOCKETS};

use crate::budget::{Budget, ITEMS_PER_YIELD};
use crate::driver::Driver;
use crate::log;
use crate::runtime::{Runtime, UdpSocket};
use crate::udp::ERROR_PAUSE;

/// A socket is replaced by one on a fresh random port after this many sub-queries.
const SOCKET_USES: u32 = 2000;

/// A replaced socket keeps receiving this long, so replies already on their way arrive: as
/// long as a whole query may wait (gathersrv's default `timeout`), longer than a sub-query's
/// attempt waits by default (`cluster_timeout` 500 ms, 1 s proxied). Each retired socket
/// keeps its receive buffers (about 140 kB) meanwhile, and at 40k sub-queries a second 20
/// sockets retire every second: 5 s held 100 of them, 14 MB.
const RETIRED_GRACE: Duration = Duration::from_secs(2);

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

/// The sockets towards each upstream, opened on first use (so that a host without IPv6 only
/// fails the IPv6 sub-queries).
pub(crate) struct Sockets<R: Runtime> {
    by_upstream: RefCell<BTreeMap<SocketAddr, Vec<Option<Pooled<R>>>>>,
}

impl<R: Runtime> Default for Sockets<R> {
    fn default() -> Self {
        Sockets {
            by_upstream: RefCell::default(),
        }
    }
}

impl<R: Runtime> Sockets<R> {
    /// Socket `index` towards `addr`, opened if need be; a socket that has served
    /// `SOCKET_USES` sub-queries is swapped for a new one on a new port (the old one keeps
    /// receiving for a while, under the same index). `None` when no socket can be opened.
    pub(crate) fn socket(
        &self,
        driver: &Rc<Driver<R>>,
        addr: SocketAddr,
        index: SocketIndex,
    ) -> Option<Rc<R::Udp>> {
        let mut all = self.by_upstream.borrow_mut();
        let slots = all
            .entry(addr)
            .or_insert_with(|| (0..UPSTREAM_SOCKETS).map(|_| None).collect());
        let slot = slots.get_mut(index.0)?;
        if slot.is_none() {
            *slot = Some(open(driver, addr, index)?);
        }
        let pooled = slot.as_ref()?;
        let uses = pooled.uses.get() + 1;
        pooled.uses.set(uses);
        let chosen = pooled.socket.clone();
        if uses >= SOCKET_USES {
            if let Some(fresh) = open(driver, addr, index) {
                if let Some(retired) = slot.replace(fresh) {
                    R::detach(R::spawn(async move {
                        R::sleep_until(Instant::now() + RETIRED_GRACE).await;
                        drop(retired.stop);
                    }));
                }
            }
        }
        Some(chosen)
    }
}

/// Opens socket `index` towards `addr` and starts its receive task, which ends when the
/// socket is retired.
fn open<R: Runtime>(
    driver: &Rc<Driver<R>>,
    addr: SocketAddr,
    index: SocketIndex,
) -> Option<Pooled<R>> {
    match R::connect_udp(addr) {
        Ok(socket) => {
            let socket = Rc::new(socket);
            let (stop, stopped) = async_channel::bounded::<()>(1);
            let task = receive(driver.clone(), socket.clone(), addr, index);
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
            log::error(format_args!("upstream socket for {addr}: {e}"));
            None
        }
    }
}

/// Feeds every datagram that arrives on an upstream socket to the gateway: a batch per wake
/// and per drain. A refusal (the ICMP port unreachable a connected socket reports) fails the
/// sub-queries waiting on the socket at once.
async fn receive<R: Runtime>(
    driver: Rc<Driver<R>>,
    socket: Rc<R::Udp>,
    addr: SocketAddr,
    index: SocketIndex,
) {
    let mut buf = <R::Udp as UdpSocket>::RecvBuf::default();
    let mut batch = Vec::new();
    let mut budget = Budget::<R>::with(REPLIES_PER_YIELD);
    loop {
        match socket.recv(&mut buf, &mut batch).await {
            Ok(()) => {
                let count = batch.len();
                driver.handle(|gateway, now| {
                    for (from, msg) in batch.drain(..) {
                        gateway.handle_upstream_message(now, from, index, msg);
                    }
                });
                batch.clear();
                budget.spend(count.max(1)).await;
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                driver.handle(|gateway, now| gateway.handle_upstream_refused(now, addr, index));
                budget.spend(1).await;
            }
            Err(_) => {
                R::sleep_until(Instant::now() + ERROR_PAUSE).await;
                budget.spend(1).await;
            }
        }
    }
}
