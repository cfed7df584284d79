//! Sub-queries to the clusters' upstream servers, from this executor's own sockets: UDP through
//! one unconnected socket per address family on an ephemeral port (the gateway matches replies
//! by address, ID and question); TCP as one io_uring connection per attempt, bounded in time.

use std::cell::{Cell, OnceCell};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use gatherdns_core::framing::frame;
use gatherdns_core::{AttemptId, UpstreamFailure, UpstreamTransport};
use glommio::net::TcpStream;

use crate::driver::Driver;
use crate::timer::sleep;
use crate::{log, udp};

/// A TCP attempt (connect, query, reply) gives up after this long. The gateway has usually
/// moved on well before; this only bounds the task.
const TCP_ATTEMPT_LIMIT: Duration = Duration::from_secs(5);

/// TCP attempts in flight at most; beyond it an attempt fails at once and the gateway
/// retries elsewhere or answers with what it has.
const MAX_TCP_ATTEMPTS: usize = 512;

/// Upstream replies handled per turn: four times a client socket's, since every client query
/// can fan out to several clusters, and finishing the queries in flight comes before taking
/// new ones (a reply left waiting in a full buffer is lost and costs a retry).
const REPLIES_PER_YIELD: usize = 4 * crate::budget::ITEMS_PER_YIELD;

/// The upstream sockets, opened on first use so that a host without IPv6 only fails the
/// IPv6 sub-queries.
#[derive(Default)]
pub(crate) struct Upstreams {
    v4: OnceCell<Option<Rc<udp::Socket>>>,
    v6: OnceCell<Option<Rc<udp::Socket>>>,
    tcp_in_flight: Rc<Cell<usize>>,
}

/// Sends one sub-query without waiting. `Err` is a failure to report to the gateway once the
/// driver has released it; later failures are reported by the task that finds them.
pub(crate) fn send(
    driver: &Rc<Driver>,
    attempt: AttemptId,
    addr: SocketAddr,
    transport: UpstreamTransport,
    payload: Bytes,
) -> Result<(), UpstreamFailure> {
    match transport {
        UpstreamTransport::Udp => {
            let socket = udp_socket(driver, addr).ok_or(UpstreamFailure::Unreachable)?;
            let driver_rc = driver.clone();
            let sent = udp::send(driver, &socket, addr, payload, move || {
                driver_rc.handle(|gateway, now| {
                    gateway.handle_upstream_failure(now, attempt, UpstreamFailure::Unreachable)
                })
            });
            sent.then_some(()).ok_or(UpstreamFailure::Unreachable)
        }
        UpstreamTransport::Tcp => start_tcp(driver, attempt, addr, payload),
    }
}

/// The socket for `addr`'s family, opened (with its receive task) on first use.
fn udp_socket(driver: &Rc<Driver>, addr: SocketAddr) -> Option<Rc<udp::Socket>> {
    let ups = driver.upstreams();
    let (cell, any) = match addr.ip() {
        IpAddr::V4(_) => (&ups.v4, IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        IpAddr::V6(_) => (&ups.v6, IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
    };
    cell.get_or_init(|| match udp::bind(SocketAddr::new(any, 0), false) {
        Ok(socket) => {
            let socket = Rc::new(socket);
            let driver_rc = driver.clone();
            driver.spawn(udp::receive(
                socket.clone(),
                REPLIES_PER_YIELD,
                move |from, msg| {
                    driver_rc.handle(|gateway, now| {
                        gateway.handle_upstream_message(now, from, UpstreamTransport::Udp, msg)
                    })
                },
            ));
            Some(socket)
        }
        Err(e) => {
            log::error(format_args!("upstream socket for {any}: {e}"));
            None
        }
    })
    .clone()
}

fn start_tcp(
    driver: &Rc<Driver>,
    attempt: AttemptId,
    addr: SocketAddr,
    payload: Bytes,
) -> Result<(), UpstreamFailure> {
    let in_flight = driver.upstreams().tcp_in_flight.clone();
    if in_flight.get() >= MAX_TCP_ATTEMPTS {
        return Err(UpstreamFailure::Unreachable);
    }
    in_flight.set(in_flight.get() + 1);
    let driver_rc = driver.clone();
    driver.spawn(async move {
        let outcome = future::or(exchange(addr, &payload), async {
            sleep(TCP_ATTEMPT_LIMIT).await;
            Err(UpstreamFailure::ConnectionLost)
        })
        .await;
        in_flight.set(in_flight.get() - 1);
        driver_rc.handle(|gateway, now| match outcome {
            Ok(reply) => gateway.handle_upstream_message(now, addr, UpstreamTransport::Tcp, reply),
            Err(failure) => gateway.handle_upstream_failure(now, attempt, failure),
        });
    });
    Ok(())
}

/// Connect, send one framed query, read one framed reply.
async fn exchange(addr: SocketAddr, query: &[u8]) -> Result<Bytes, UpstreamFailure> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|_| UpstreamFailure::Unreachable)?;
    let _ = stream.set_nodelay(true);
    let lost = |_| UpstreamFailure::ConnectionLost;
    stream.write_all(&frame(query)).await.map_err(lost)?;
    let mut prefix = [0u8; 2];
    stream.read_exact(&mut prefix).await.map_err(lost)?;
    let len = usize::from(u16::from_be_bytes(prefix));
    if len == 0 {
        return Err(UpstreamFailure::ConnectionLost);
    }
    let mut reply = vec![0u8; len];
    stream.read_exact(&mut reply).await.map_err(lost)?;
    Ok(Bytes::from(reply))
}
