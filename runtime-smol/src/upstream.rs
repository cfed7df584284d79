//! Sub-queries to the clusters' upstream servers. UDP goes through one unconnected socket per
//! address family on an ephemeral port (the gateway matches replies by address, ID and
//! question); TCP opens one connection per attempt, bounded in time so that no task leaks.

use std::cell::{Cell, OnceCell};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use gatherdns_core::framing::frame;
use gatherdns_core::{AttemptId, UpstreamFailure, UpstreamTransport};
use smol::Async;

use crate::driver::Driver;
use crate::log;
use crate::timer::sleep;

/// A TCP attempt (connect, query, reply) gives up after this long. The gateway has usually
/// moved on well before; this only bounds the task.
const TCP_ATTEMPT_LIMIT: Duration = Duration::from_secs(5);

/// TCP attempts in flight at most; beyond it an attempt fails at once and the gateway
/// retries elsewhere or answers with what it has.
const MAX_TCP_ATTEMPTS: usize = 512;

/// UDP sub-queries allowed to wait for a full socket buffer.
const MAX_UDP_BACKLOG: usize = 1024;

/// How long a backlogged sub-query may wait for the socket.
const UDP_SEND_WAIT: Duration = Duration::from_secs(1);

/// Datagrams handled before the receive task yields to the other tasks.
const DATAGRAMS_PER_YIELD: usize = 32;

/// Pause after a receive error, so that a persistent error cannot spin the loop.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// The upstream sockets, opened on first use so that a host without IPv6 only fails the
/// IPv6 sub-queries.
#[derive(Default)]
pub(crate) struct Upstreams {
    v4: OnceCell<Option<Rc<Async<UdpSocket>>>>,
    v6: OnceCell<Option<Rc<Async<UdpSocket>>>>,
    tcp_in_flight: Rc<Cell<usize>>,
    udp_backlog: Rc<Cell<usize>>,
}

impl Upstreams {
    pub(crate) fn new() -> Upstreams {
        Upstreams::default()
    }
}

/// Sends one sub-query without waiting. `Err` is a failure to report to the gateway once the
/// driver has released it.
pub(crate) fn send(
    driver: &Rc<Driver>,
    attempt: AttemptId,
    addr: SocketAddr,
    transport: UpstreamTransport,
    payload: Bytes,
) -> Result<(), UpstreamFailure> {
    match transport {
        UpstreamTransport::Udp => send_udp(driver, attempt, addr, payload),
        UpstreamTransport::Tcp => start_tcp(driver, attempt, addr, payload),
    }
}

fn send_udp(
    driver: &Rc<Driver>,
    attempt: AttemptId,
    addr: SocketAddr,
    payload: Bytes,
) -> Result<(), UpstreamFailure> {
    let ups = driver.upstreams();
    let Some(socket) = udp_socket(driver, addr) else {
        return Err(UpstreamFailure::Unreachable);
    };
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

/// The socket for `addr`'s family, opened (with its receive task) on first use.
fn udp_socket(driver: &Rc<Driver>, addr: SocketAddr) -> Option<Rc<Async<UdpSocket>>> {
    let ups = driver.upstreams();
    let (cell, any) = match addr.ip() {
        IpAddr::V4(_) => (&ups.v4, IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        IpAddr::V6(_) => (&ups.v6, IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
    };
    cell.get_or_init(|| {
        let bound = UdpSocket::bind(SocketAddr::new(any, 0)).and_then(Async::new);
        match bound {
            Ok(socket) => {
                let socket = Rc::new(socket);
                driver.spawn(receive(driver.clone(), socket.clone()));
                Some(socket)
            }
            Err(e) => {
                log::error(format_args!("upstream socket for {any}: {e}"));
                None
            }
        }
    })
    .clone()
}

/// Feeds every datagram that arrives on an upstream socket to the gateway, which decides
/// whether it answers a pending sub-query.
async fn receive(driver: Rc<Driver>, socket: Rc<Async<UdpSocket>>) {
    let mut buf = vec![0u8; 65535];
    let mut handled = 0usize;
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((len, from)) => {
                let msg = Bytes::copy_from_slice(&buf[..len]);
                driver.handle(|gateway, now| {
                    gateway.handle_upstream_message(now, from, UpstreamTransport::Udp, msg)
                });
            }
            Err(_) => sleep(ERROR_PAUSE).await,
        }
        handled += 1;
        if handled % DATAGRAMS_PER_YIELD == 0 {
            future::yield_now().await;
        }
    }
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
    let mut stream = Async::<TcpStream>::connect(addr)
        .await
        .map_err(|_| UpstreamFailure::Unreachable)?;
    let _ = stream.get_ref().set_nodelay(true);
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
