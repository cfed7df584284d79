//! TCP sub-queries over persistent, pipelined connections per upstream. The core's
//! `tcp_pool` decides which connection a query goes on and what a closed connection costs;
//! here each connection is one task with a writer (queued queries, coalesced into one write)
//! and a reader (frames handed to the gateway, which matches them itself).

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use gatherdns_core::framing::FrameDecoder;
use gatherdns_core::tcp_pool::{Action, Closed, ConnId, Limits, TcpPool};
use gatherdns_core::{AttemptId, UpstreamFailure, UpstreamTransport};
use smol::channel::{self, Receiver, Sender};
use smol::Async;

use crate::driver::Driver;
use crate::timer::sleep;

/// TCP sub-queries held at most (outstanding or waiting for a connection); beyond it one
/// fails at once and the gateway retries elsewhere or answers with what it has.
const MAX_TCP_ATTEMPTS: usize = 512;

/// How long opening a connection may take; a lost SYN is retransmitted after 1 s.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one write may wait for an upstream that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Replies handled before the reader yields to the other tasks.
const MESSAGES_PER_YIELD: usize = 16;

/// The pool and the way to each connection's writer.
pub(crate) struct Tcp {
    pool: RefCell<TcpPool>,
    writers: RefCell<HashMap<ConnId, Sender<()>>>,
}

impl Default for Tcp {
    fn default() -> Tcp {
        Tcp {
            pool: RefCell::new(TcpPool::new(Limits {
                max_queries: MAX_TCP_ATTEMPTS,
                ..Limits::default()
            })),
            writers: RefCell::new(HashMap::new()),
        }
    }
}

/// Hands one sub-query to the pool without waiting. Called while the driver holds the
/// gateway: `Err` is reported by the driver, later failures by the connection tasks.
pub(crate) fn send(
    driver: &Rc<Driver>,
    attempt: AttemptId,
    addr: SocketAddr,
    payload: Bytes,
) -> Result<(), UpstreamFailure> {
    let tcp = tcp(driver);
    tcp.pool
        .borrow_mut()
        .submit(Instant::now(), attempt, addr, payload)?;
    let failures = perform(driver);
    if !failures.is_empty() {
        // The gateway is borrowed by the caller: report from a task of its own.
        let driver_rc = driver.clone();
        driver.spawn(async move { report(&driver_rc, failures) });
    }
    Ok(())
}

fn tcp(driver: &Driver) -> &Tcp {
    &driver.upstreams().tcp
}

/// Runs the pool's actions (connects, writer wake-ups) and returns the failures, which the
/// caller reports once it holds no borrow.
fn perform(driver: &Rc<Driver>) -> Vec<(AttemptId, UpstreamFailure)> {
    let tcp = tcp(driver);
    let mut failures = Vec::new();
    loop {
        // The pool is not borrowed while an action runs.
        let Some(action) = tcp.pool.borrow_mut().poll_action() else {
            return failures;
        };
        match action {
            Action::Connect { conn, addr } => {
                // One slot is enough: a wake-up only says "look again".
                let (wake, woken) = channel::bounded(1);
                tcp.writers.borrow_mut().insert(conn, wake);
                driver.spawn(run_conn(driver.clone(), conn, addr, woken));
            }
            Action::Write(conn) => {
                if let Some(wake) = tcp.writers.borrow().get(&conn) {
                    let _ = wake.try_send(());
                }
            }
            Action::Fail { attempt, failure } => failures.push((attempt, failure)),
            _ => {}
        }
    }
}

/// Reports failures to the gateway as one input: one drain for a connection's worth of them.
fn report(driver: &Rc<Driver>, failures: Vec<(AttemptId, UpstreamFailure)>) {
    if failures.is_empty() {
        return;
    }
    driver.handle(|gateway, now| {
        for (attempt, failure) in failures {
            gateway.handle_upstream_failure(now, attempt, failure);
        }
    });
}

/// Tells the pool, runs what it decides and reports the failures.
fn settle(driver: &Rc<Driver>, call: impl FnOnce(&mut TcpPool)) {
    call(&mut tcp(driver).pool.borrow_mut());
    let failures = perform(driver);
    report(driver, failures);
}

/// One connection from connect to close.
async fn run_conn(driver: Rc<Driver>, conn: ConnId, addr: SocketAddr, woken: Receiver<()>) {
    let connect = async { Async::<TcpStream>::connect(addr).await.ok() };
    let stream = future::or(connect, async {
        sleep(CONNECT_TIMEOUT).await;
        None
    })
    .await;
    let how = match stream {
        Some(stream) => {
            // Queries are small and latency matters more than segment count.
            let _ = stream.get_ref().set_nodelay(true);
            settle(&driver, |pool| pool.connected(Instant::now(), conn));
            future::or(
                read_loop(&driver, conn, addr, &stream),
                write_loop(&driver, conn, &stream, &woken),
            )
            .await
        }
        None => Some(Closed::ConnectFailed),
    };
    tcp(&driver).writers.borrow_mut().remove(&conn);
    if let Some(how) = how {
        settle(&driver, |pool| pool.closed(Instant::now(), conn, how));
    }
    // Dropping the stream closes the connection.
}

/// Reads replies until the connection ends. `None` when the pool closed it (idle, stalled,
/// or retired after its reply), which has then settled its queries itself.
async fn read_loop(
    driver: &Rc<Driver>,
    conn: ConnId,
    addr: SocketAddr,
    stream: &Async<TcpStream>,
) -> Option<Closed> {
    let mut reader = stream;
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut handled = 0usize;
    loop {
        let deadline = tcp(driver).pool.borrow().deadline(conn)?;
        let read = async { Some(reader.read(&mut buf).await) };
        let timer = async {
            sleep(deadline.saturating_duration_since(Instant::now())).await;
            None
        };
        let len = match future::or(read, timer).await {
            None => {
                let mut keep = true;
                settle(driver, |pool| keep = pool.timeout(Instant::now(), conn));
                if !keep {
                    return None;
                }
                continue;
            }
            Some(Ok(0)) | Some(Err(_)) => return Some(Closed::Lost),
            Some(Ok(len)) => len,
        };
        let mut chunk = &buf[..len];
        while !chunk.is_empty() {
            let used = decoder.push(chunk);
            chunk = &chunk[used..];
            loop {
                let msg = match decoder.next_message() {
                    Ok(Some(msg)) => msg,
                    Ok(None) => break,
                    // A zero-length frame: the peer is not speaking DNS.
                    Err(_) => return Some(Closed::Broken),
                };
                let mut keep = true;
                settle(driver, |pool| keep = pool.reply(Instant::now(), conn, &msg));
                driver.handle(|gateway, now| {
                    gateway.handle_upstream_message(now, addr, UpstreamTransport::Tcp, msg)
                });
                if !keep {
                    return None;
                }
                handled += 1;
                if handled % MESSAGES_PER_YIELD == 0 {
                    future::yield_now().await;
                }
            }
        }
    }
}

/// Writes what the pool queued for the connection, all of it in one write, whenever woken.
/// Ends only when a write fails or times out.
async fn write_loop(
    driver: &Rc<Driver>,
    conn: ConnId,
    stream: &Async<TcpStream>,
    woken: &Receiver<()>,
) -> Option<Closed> {
    let mut writer = stream;
    let mut out = BytesMut::new();
    loop {
        out.clear();
        let taken = tcp(driver)
            .pool
            .borrow_mut()
            .take_writes(Instant::now(), conn, &mut out);
        if !taken {
            // The sender lives in `writers` until this task ends.
            if woken.recv().await.is_err() {
                return None;
            }
            continue;
        }
        let write = async { writer.write_all(&out).await.is_ok() };
        let written = future::or(write, async {
            sleep(WRITE_TIMEOUT).await;
            false
        })
        .await;
        if !written {
            return Some(Closed::Lost);
        }
    }
}
