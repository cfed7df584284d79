//! The gateway's pooled TCP connections to upstreams, as tasks: the gateway decides when to
//! open one, what to write on it and when to close it (its `tcp_pool`); here each connection
//! is one task with a writer (what the gateway wrote, coalesced into one write) and a reader
//! (frames handed to the gateway). What happens to a connection goes back as an input.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use bytes::BytesMut;
use futures_lite::io::{split, ReadHalf, WriteHalf};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use gatherdns_core::framing::FrameDecoder;
use gatherdns_core::{Closed, ConnId};

use crate::budget::Budget;
use crate::driver::Driver;
use crate::runtime::Runtime;

/// How long opening a connection may take; a lost SYN is retransmitted after 1 s.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one write may wait for an upstream that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The driver's side of each open connection: its unwritten bytes and the writer's wake-up.
/// Removing a connection's entry closes the wake-up channel, which ends its task.
#[derive(Default)]
pub(crate) struct Connections {
    open: RefCell<BTreeMap<ConnId, Handle>>,
}

struct Handle {
    unwritten: Rc<RefCell<BytesMut>>,
    wake: Sender<()>,
}

impl Connections {
    /// Queues framed bytes for the connection's writer; a connection that is gone (closed
    /// by the gateway or broken) drops them, as its queries are settled already.
    pub(crate) fn write(&self, conn: ConnId, framed: &[u8]) {
        if let Some(handle) = self.open.borrow().get(&conn) {
            handle.unwritten.borrow_mut().extend_from_slice(framed);
            // One slot is enough: a wake-up only says "look again".
            let _ = handle.wake.try_send(());
        }
    }

    /// The gateway closed the connection: its task ends, and the stream closes with it.
    pub(crate) fn close(&self, conn: ConnId) {
        self.open.borrow_mut().remove(&conn);
    }
}

/// Opens connection `conn` to `addr` in a task of its own.
pub(crate) fn open<R: Runtime>(driver: &Rc<Driver<R>>, conn: ConnId, addr: SocketAddr) {
    let (wake, woken) = async_channel::bounded(1);
    let unwritten = Rc::new(RefCell::new(BytesMut::new()));
    driver.upstream_tcp.open.borrow_mut().insert(
        conn,
        Handle {
            unwritten: unwritten.clone(),
            wake,
        },
    );
    R::detach(R::spawn(run(driver.clone(), conn, addr, unwritten, woken)));
}

/// One connection from connect to close.
async fn run<R: Runtime>(
    driver: Rc<Driver<R>>,
    conn: ConnId,
    addr: SocketAddr,
    unwritten: Rc<RefCell<BytesMut>>,
    woken: Receiver<()>,
) {
    let connect = async { R::connect(addr).await.ok() };
    let timeout = async {
        R::sleep_until(Instant::now() + CONNECT_TIMEOUT).await;
        None
    };
    let how = match future::or(connect, timeout).await {
        Some(stream) => {
            R::set_nodelay(&stream);
            let (reader, writer) = split(stream);
            driver.handle(|gateway, now| gateway.handle_connection_opened(now, conn));
            future::or(
                read_loop(&driver, conn, reader),
                write_loop::<R>(writer, &unwritten, &woken),
            )
            .await
        }
        None => Some(Closed::ConnectFailed),
    };
    // The gateway's entry goes either way; a connection it closed itself is not reported.
    driver.upstream_tcp.close(conn);
    if let Some(how) = how {
        driver.handle(|gateway, now| gateway.handle_connection_closed(now, conn, how));
    }
    // Dropping the halves closes the connection.
}

/// Reads replies and hands each to the gateway until the connection ends.
async fn read_loop<R: Runtime>(
    driver: &Rc<Driver<R>>,
    conn: ConnId,
    mut reader: ReadHalf<R::TcpStream>,
) -> Option<Closed> {
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut budget = Budget::<R>::new();
    loop {
        let len = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return Some(Closed::Lost),
            Ok(len) => len,
        };
        for msg in decoder.messages(&buf[..len]) {
            // A zero-length frame: the peer is not speaking DNS.
            let Ok(msg) = msg else {
                return Some(Closed::Broken);
            };
            driver.handle(|gateway, now| gateway.handle_connection_message(now, conn, msg));
            budget.spend(1).await;
        }
    }
}

/// Writes what the gateway queued for the connection, all of it in one write, whenever
/// woken. `None` when the gateway closed the connection; `Lost` when a write fails or
/// times out.
async fn write_loop<R: Runtime>(
    mut writer: WriteHalf<R::TcpStream>,
    unwritten: &RefCell<BytesMut>,
    woken: &Receiver<()>,
) -> Option<Closed> {
    let mut out = BytesMut::new();
    loop {
        std::mem::swap(&mut out, &mut *unwritten.borrow_mut());
        if out.is_empty() {
            if woken.recv().await.is_err() {
                return None;
            }
            continue;
        }
        let write = async { writer.write_all(&out).await.is_ok() };
        let timeout = async {
            R::sleep_until(Instant::now() + WRITE_TIMEOUT).await;
            false
        };
        if !future::or(write, timeout).await {
            return Some(Closed::Lost);
        }
        out.clear();
    }
}
