//! Upstream TCP connections as the gateway commands them: each is one task that connects,
//! writes what the gateway sends on it and hands every frame it reads back to the gateway.
//! Which connection a query goes on, and when one is closed, the gateway decides. Each
//! executor has its own connections, as it has its own gateway.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use async_channel::{Receiver, Sender};
use bytes::Bytes;
use futures_lite::io::{split, ReadHalf, WriteHalf};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use gatherdns_core::framing::FrameDecoder;
use gatherdns_core::{Closed, ConnId, ConnectionCommand};
use glommio::net::TcpStream;

use crate::budget::Budget;
use crate::driver::Driver;
use crate::timer::sleep;

/// How long opening a connection may take; a lost SYN is retransmitted after 1 s.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one write may wait for an upstream that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The way to each open connection's writer; dropping it closes the connection.
#[derive(Default)]
pub(crate) struct Tcp {
    writers: RefCell<HashMap<ConnId, Sender<Bytes>>>,
}

fn tcp(driver: &Driver) -> &Tcp {
    &driver.upstreams().tcp
}

/// Opens or closes a connection without waiting.
pub(crate) fn command(driver: &Rc<Driver>, command: ConnectionCommand) {
    match command {
        ConnectionCommand::Open { conn, addr } => {
            let (writer, written) = async_channel::unbounded();
            tcp(driver).writers.borrow_mut().insert(conn, writer);
            driver.spawn(run_conn(driver.clone(), conn, addr, written));
        }
        ConnectionCommand::Close(conn) => {
            tcp(driver).writers.borrow_mut().remove(&conn);
        }
    }
}

/// Hands framed queries to a connection's writer.
pub(crate) fn write(driver: &Driver, conn: ConnId, bytes: Bytes) {
    if let Some(writer) = tcp(driver).writers.borrow().get(&conn) {
        let _ = writer.try_send(bytes);
    }
}

/// One connection from connect to close.
async fn run_conn(driver: Rc<Driver>, conn: ConnId, addr: SocketAddr, written: Receiver<Bytes>) {
    let connect = async { TcpStream::connect(addr).await.ok() };
    let stream = future::or(connect, async {
        sleep(CONNECT_TIMEOUT).await;
        None
    })
    .await;
    let how = match stream {
        Some(stream) => {
            // Queries are small and latency matters more than segment count.
            let _ = stream.set_nodelay(true);
            driver.handle(|gateway, now| gateway.handle_connection_opened(now, conn));
            let (reader, writer) = split(stream);
            future::or(
                read_loop(&driver, conn, reader),
                write_loop(writer, &written),
            )
            .await
        }
        None => Some(Closed::ConnectFailed),
    };
    // A connection the gateway closed is one it has forgotten: nothing to report.
    let known = tcp(&driver).writers.borrow_mut().remove(&conn).is_some();
    if let (Some(how), true) = (how, known) {
        driver.handle(|gateway, now| gateway.handle_connection_closed(now, conn, how));
    }
    // Dropping the stream closes the connection.
}

/// Hands every message read to the gateway until the connection ends.
async fn read_loop(
    driver: &Rc<Driver>,
    conn: ConnId,
    mut reader: ReadHalf<TcpStream>,
) -> Option<Closed> {
    let mut decoder = FrameDecoder::new();
    let mut buf = vec![0u8; 16 * 1024];
    let mut budget = Budget::new();
    loop {
        let len = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return Some(Closed::Lost),
            Ok(len) => len,
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
                driver.handle(|gateway, now| gateway.handle_connection_message(now, conn, msg));
                budget.spend().await;
            }
        }
    }
}

/// Writes what the gateway sends on the connection. Ends when a write fails or times out, or
/// (with `None`) when the gateway closes the connection.
async fn write_loop(mut writer: WriteHalf<TcpStream>, written: &Receiver<Bytes>) -> Option<Closed> {
    while let Ok(bytes) = written.recv().await {
        let write = async { writer.write_all(&bytes).await.is_ok() };
        let ok = future::or(write, async {
            sleep(WRITE_TIMEOUT).await;
            false
        })
        .await;
        if !ok {
            return Some(Closed::Lost);
        }
    }
    None
}
