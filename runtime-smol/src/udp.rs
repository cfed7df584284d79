//! Client UDP: one receive task per listening address, and replies sent without waiting
//! whenever the socket has room (the common case); only a full socket buffer costs a task.

use std::cell::Cell;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::future;
use gatherdns_core::{AttemptId, ClientAddr, ClientTransport, ListenerId, UpstreamFailure};
use smol::Async;

use crate::driver::Driver;
use crate::timer::sleep;
use crate::{batch, upstream};

/// Datagrams handled before the receive task yields to the other tasks (a whole batch is
/// handled at once, so this many or a little more).
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

/// Receives client queries on the socket of listener `index` for as long as the process runs:
/// a batch per system call, handed to the gateway as one input (one drain, one batch of
/// replies), so that a busy socket costs a fraction of a wake-up per query.
pub(crate) async fn serve(driver: Rc<Driver>, index: usize, socket: Rc<Async<UdpSocket>>) {
    let mut receiver = batch::Receiver::new();
    let mut handled = 0usize;
    loop {
        match socket.read_with(|s| receiver.recv(s)).await {
            Ok(count) => {
                driver.handle(|gateway, now| {
                    for (remote, msg) in receiver.messages() {
                        let from = ClientAddr {
                            listener: ListenerId(index),
                            remote,
                            transport: ClientTransport::Udp,
                        };
                        gateway.handle_client_message(now, from, msg);
                    }
                });
                handled += count;
            }
            // ICMP errors of earlier sends surface here on some systems; they concern one
            // client, not the socket, so the loop goes on.
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

/// The datagrams of one drain (client replies and upstream sub-queries), sent together when
/// it ends: a batch per system call and socket.
#[derive(Default)]
pub(crate) struct Outbox {
    queued: Vec<Queued>,
}

struct Queued {
    socket: Rc<Async<UdpSocket>>,
    to: SocketAddr,
    payload: Bytes,
    /// The sub-query's attempt; `None` for a client reply.
    attempt: Option<AttemptId>,
}

impl Outbox {
    pub(crate) fn push(
        &mut self,
        socket: Rc<Async<UdpSocket>>,
        to: SocketAddr,
        payload: Bytes,
        attempt: Option<AttemptId>,
    ) {
        self.queued.push(Queued {
            socket,
            to,
            payload,
            attempt,
        });
    }

    /// Sends what is queued, a batch per system call and socket, and empties the outbox
    /// (keeping its allocation). What a socket cannot take now goes the one-by-one way,
    /// which waits for room in the background (bounded); sub-queries that cannot be sent at
    /// all are returned, for the gateway to hear of.
    pub(crate) fn flush(
        &mut self,
        driver: &Rc<Driver>,
        sender: &mut batch::Sender,
    ) -> Vec<(AttemptId, UpstreamFailure)> {
        let mut failures = Vec::new();
        // Each socket's datagrams together, in their order (the sort is stable).
        self.queued.sort_by_key(|q| Rc::as_ptr(&q.socket) as usize);
        for run in self
            .queued
            .chunk_by(|a, b| Rc::ptr_eq(&a.socket, &b.socket))
        {
            let socket = run[0].socket.get_ref();
            let mut sent = 0;
            while sent < run.len() {
                let batch = run[sent..].iter().map(|q| (q.to, &q.payload[..]));
                match sender.send(socket, batch) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sent += n,
                }
            }
            for q in &run[sent..] {
                let (socket, payload) = (q.socket.clone(), q.payload.clone());
                match q.attempt {
                    None => send_reply(driver, &socket, &driver.udp_backlog(), q.to, payload),
                    Some(attempt) => {
                        if let Err(failure) =
                            upstream::send_udp_now(driver, socket, attempt, q.to, payload)
                        {
                            failures.push((attempt, failure));
                        }
                    }
                }
            }
        }
        self.queued.clear();
        failures
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
