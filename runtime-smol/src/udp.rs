//! Client UDP: one receive task per listening address, and replies sent without waiting
//! whenever the socket has room (the common case); only a full socket buffer costs a task.

use std::cell::Cell;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::future;
use gatherdns_core::{ClientAddr, ClientTransport, ListenerId};
use smol::Async;

use crate::driver::Driver;
use crate::timer::sleep;

/// Datagrams handled before the receive task yields to the other tasks.
const DATAGRAMS_PER_YIELD: usize = 32;

/// Replies allowed to wait for a full socket buffer; beyond this they are dropped, as the
/// network would drop them, rather than piling up in memory.
const MAX_BACKLOG: usize = 1024;

/// How long a backlogged reply may wait before it is dropped.
const SEND_WAIT: Duration = Duration::from_secs(1);

/// Pause after a receive error, so that a persistent error cannot spin the loop.
const ERROR_PAUSE: Duration = Duration::from_millis(10);

/// Binds a UDP listening socket; the error reads like Go's (`listen udp ADDR: …`).
pub(crate) fn bind(addr: SocketAddr) -> Result<Async<UdpSocket>, String> {
    UdpSocket::bind(addr)
        .and_then(Async::new)
        .map_err(|e| format!("listen udp {addr}: {}", crate::describe(&e)))
}

/// Receives client queries on the socket of listener `index` for as long as the process runs.
pub(crate) async fn serve(driver: Rc<Driver>, index: usize, socket: Rc<Async<UdpSocket>>) {
    // One reusable buffer of the largest datagram; each query is copied out at its own size
    // so that a pending query never pins 64 KiB.
    let mut buf = vec![0u8; 65535];
    let mut handled = 0usize;
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((len, remote)) => {
                let msg = Bytes::copy_from_slice(&buf[..len]);
                let from = ClientAddr {
                    listener: ListenerId(index),
                    remote,
                    transport: ClientTransport::Udp,
                };
                driver.handle(|gateway, now| gateway.handle_client_message(now, from, msg));
            }
            // ICMP errors of earlier sends surface here on some systems; they concern one
            // client, not the socket, so the loop goes on.
            Err(_) => sleep(ERROR_PAUSE).await,
        }
        handled += 1;
        if handled % DATAGRAMS_PER_YIELD == 0 {
            future::yield_now().await;
        }
    }
}

/// Sends a reply now if the socket has room, else from a bounded background task.
pub(crate) fn send_reply(
    driver: &Driver,
    socket: &Rc<Async<UdpSocket>>,
    backlog: &Rc<Cell<usize>>,
    remote: SocketAddr,
    payload: Bytes,
) {
    match socket.get_ref().send_to(&payload, remote) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            if backlog.get() >= MAX_BACKLOG {
                return;
            }
            backlog.set(backlog.get() + 1);
            let socket = socket.clone();
            let backlog = backlog.clone();
            driver.spawn(async move {
                let send = async {
                    let _ = socket.send_to(&payload, remote).await;
                };
                future::or(send, sleep(SEND_WAIT)).await;
                backlog.set(backlog.get() - 1);
            });
        }
        // Other errors (an unroutable client address) lose this reply only; UDP replies are
        // best effort and the client retries.
        Err(_) => {}
    }
}
