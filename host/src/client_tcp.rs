//! Client TCP (RFC 7766): per connection a reader that splits frames and hands each query to
//! the gateway, and a writer fed from a bounded per-connection queue, so that pipelined queries
//! are answered in whatever order the gateway finishes them. Idle and connection limits apply.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use bytes::{Bytes, BytesMut};
use futures_lite::io::{split, ReadHalf, WriteHalf};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use gatherdns_core::framing::{encode_frame, FrameDecoder};
use gatherdns_core::{ClientAddr, ClientTransport, ListenerId};

use crate::budget::Budget;
use crate::driver::Driver;
use crate::runtime::Runtime;

/// Open client connections at most, over all listeners and executors; beyond it a new
/// connection is closed at once, so that connections cannot exhaust file descriptors or memory.
pub(crate) const MAX_CONNECTIONS: usize = 1000;

/// A connection with no query outstanding is closed after this long without traffic.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection is closed after this long without traffic even with queries outstanding:
/// the gateway answers every query within seconds, so this only catches lost accounting.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Queries of one connection in the gateway at once. The reader stops reading while this
/// many are unanswered, which also bounds the reply queue.
const MAX_PIPELINE: usize = 64;

/// How long one write may wait for a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Replies coalesced into one write, in bytes.
const WRITE_BATCH: usize = 64 * 1024;

/// Pause after a failed accept (out of descriptors), so that the loop cannot spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// The client connections of one driver: the process-wide count (touched on accept and
/// close only), this driver's next connection id, and each open connection's reply queue.
pub(crate) struct Clients {
    open: Arc<AtomicUsize>,
    next_id: Cell<u64>,
    replies: RefCell<BTreeMap<u64, Sender<Bytes>>>,
}

impl Clients {
    pub(crate) fn new(open: Arc<AtomicUsize>) -> Clients {
        Clients {
            open,
            next_id: Cell::new(0),
            replies: RefCell::default(),
        }
    }

    /// Queues a reply for connection `id`. The queue has room for every query the reader let
    /// through, so a full queue means the gateway sent more replies than it got queries: the
    /// extra one is dropped. A connection that closed before its reply was ready loses it.
    pub(crate) fn send(&self, id: u64, reply: Bytes) {
        if let Some(queue) = self.replies.borrow().get(&id) {
            let _ = queue.try_send(reply);
        }
    }

    /// Takes a place for a new connection, if one is free.
    fn admit(&self) -> Option<CountGuard> {
        if self.open.fetch_add(1, Ordering::Relaxed) < MAX_CONNECTIONS {
            Some(CountGuard(self.open.clone()))
        } else {
            self.open.fetch_sub(1, Ordering::Relaxed);
            None
        }
    }
}

/// Gives the place back however the connection task ends.
struct CountGuard(Arc<AtomicUsize>);

impl Drop for CountGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What reader and writer of one connection share.
struct ConnState {
    /// Queries handed to the gateway and not yet answered on the wire.
    outstanding: Cell<usize>,
    /// Last read or write.
    last_activity: Cell<Instant>,
}

/// Why the reader stopped.
#[derive(Debug, PartialEq, Eq)]
enum ReadEnd {
    /// The client closed its side: replies still owed are sent first.
    Eof,
    /// Idle or stalled, broken, or not DNS: close now.
    Close,
}

/// Accepts connections on listener `id` for as long as it is open.
pub(crate) async fn accept_loop<R: Runtime>(
    driver: Rc<Driver<R>>,
    id: ListenerId,
    listener: R::TcpListener,
) {
    let mut budget = Budget::<R>::new();
    loop {
        match R::accept(&listener).await {
            Ok((stream, remote)) => match driver.clients.admit() {
                Some(guard) => {
                    let conn = driver.clients.next_id.get();
                    driver.clients.next_id.set(conn + 1);
                    let client = ClientAddr {
                        listener: id,
                        remote,
                        transport: ClientTransport::Tcp(conn),
                    };
                    R::detach(R::spawn(serve_conn(driver.clone(), client, stream, guard)));
                }
                // Dropping the stream closes it at once: the cheapest possible refusal.
                None => drop(stream),
            },
            Err(_) => R::sleep_until(Instant::now() + ACCEPT_PAUSE).await,
        }
        // Accept storms must not starve the connections already open.
        budget.spend(1).await;
    }
}

async fn serve_conn<R: Runtime>(
    driver: Rc<Driver<R>>,
    client: ClientAddr,
    stream: R::TcpStream,
    _guard: CountGuard,
) {
    let ClientTransport::Tcp(id) = client.transport else {
        return;
    };
    R::set_nodelay(&stream);
    let (reader, writer) = split(stream);
    let state = Rc::new(ConnState {
        outstanding: Cell::new(0),
        last_activity: Cell::new(Instant::now()),
    });
    let (reply_tx, reply_rx) = async_channel::bounded(MAX_PIPELINE);
    // The writer signals progress (a reply written) through this; it closes when the writer
    // ends, which tells the reader that the connection is broken.
    let (progress_tx, progress_rx) = async_channel::bounded(1);
    driver.clients.replies.borrow_mut().insert(id, reply_tx);
    let writer = R::spawn(write_loop::<R>(
        writer,
        reply_rx,
        state.clone(),
        progress_tx,
    ));
    let end = read_loop(&driver, client, reader, &state, &progress_rx).await;
    if end == ReadEnd::Eof {
        // Let the replies still owed go out, for a bounded time.
        let until = Instant::now() + IDLE_TIMEOUT;
        while state.outstanding.get() > 0 && Instant::now() < until {
            let progressed = future::or(async { progress_rx.recv().await.is_ok() }, async {
                R::sleep_until(until).await;
                false
            });
            if !progressed.await {
                break;
            }
        }
    }
    // Dropping the queue's sender lets the writer finish what is queued and end.
    driver.clients.replies.borrow_mut().remove(&id);
    if end == ReadEnd::Eof {
        // The writer drops its end of `progress` once the queue is written out.
        let finished = async { while progress_rx.recv().await.is_ok() {} };
        future::or(finished, R::sleep_until(Instant::now() + WRITE_TIMEOUT)).await;
    }
    // Dropping the writer task cancels it; the last half of the stream closes it.
    drop(writer);
}

/// Reads frames and hands each query to the gateway until the client closes, goes idle or
/// breaks the framing.
async fn read_loop<R: Runtime>(
    driver: &Rc<Driver<R>>,
    client: ClientAddr,
    mut reader: ReadHalf<R::TcpStream>,
    state: &ConnState,
    progress: &Receiver<()>,
) -> ReadEnd {
    let mut decoder = FrameDecoder::new();
    // Queries are small; a modest buffer keeps a thousand idle connections cheap.
    let mut buf = vec![0u8; 4096];
    let mut budget = Budget::<R>::new();
    loop {
        let len = match read_or_idle::<R>(&mut reader, &mut buf, state, progress).await {
            Some(Ok(0)) => return ReadEnd::Eof,
            Some(Ok(len)) => len,
            Some(Err(_)) | None => return ReadEnd::Close,
        };
        state.last_activity.set(Instant::now());
        for msg in decoder.messages(&buf[..len]) {
            // A zero-length frame: the peer is not speaking DNS.
            let Ok(msg) = msg else {
                return ReadEnd::Close;
            };
            // Backpressure: a client that pipelines faster than it is answered waits.
            while state.outstanding.get() >= MAX_PIPELINE {
                let waited = future::or(async { progress.recv().await.is_ok() }, async {
                    R::sleep_until(Instant::now() + STALL_TIMEOUT).await;
                    false
                });
                if !waited.await {
                    return ReadEnd::Close;
                }
            }
            if expects_reply(&msg) {
                state.outstanding.set(state.outstanding.get() + 1);
            }
            driver.handle_client_messages(std::iter::once((client, msg)));
            budget.spend(1).await;
        }
    }
}

/// One read, or `None` once the connection has been idle too long (or the writer died).
/// Writes count as activity, so the deadline is re-evaluated whenever the writer progresses.
async fn read_or_idle<R: Runtime>(
    reader: &mut ReadHalf<R::TcpStream>,
    buf: &mut [u8],
    state: &ConnState,
    progress: &Receiver<()>,
) -> Option<std::io::Result<usize>> {
    loop {
        let limit = if state.outstanding.get() == 0 {
            IDLE_TIMEOUT
        } else {
            STALL_TIMEOUT
        };
        let deadline = state.last_activity.get() + limit;
        if Instant::now() >= deadline {
            return None;
        }
        enum Woke {
            Read(std::io::Result<usize>),
            Progress(bool),
            Timer,
        }
        let woke = future::or(
            async { Woke::Read(reader.read(buf).await) },
            future::or(
                async { Woke::Progress(progress.recv().await.is_ok()) },
                async {
                    R::sleep_until(deadline).await;
                    Woke::Timer
                },
            ),
        )
        .await;
        match woke {
            Woke::Read(result) => return Some(result),
            Woke::Progress(false) => return None,
            // Re-evaluate the deadline: a write happened, or time is up.
            Woke::Progress(true) | Woke::Timer => {}
        }
    }
}

/// Whether the gateway will answer this message. It drops what is shorter than a header or
/// is itself a response (QR set); counting those as outstanding would keep an idle
/// connection open until the stall timeout.
fn expects_reply(msg: &[u8]) -> bool {
    msg.len() >= 12 && msg[2] & 0x80 == 0
}

/// Writes queued replies, several per write when they pile up, until the queue closes or a
/// write fails or times out.
async fn write_loop<R: Runtime>(
    mut writer: WriteHalf<R::TcpStream>,
    replies: Receiver<Bytes>,
    state: Rc<ConnState>,
    progress: Sender<()>,
) {
    let mut out = BytesMut::new();
    while let Ok(reply) = replies.recv().await {
        out.clear();
        encode_frame(&reply, &mut out);
        let mut count = 1;
        while out.len() < WRITE_BATCH {
            let Ok(next) = replies.try_recv() else { break };
            encode_frame(&next, &mut out);
            count += 1;
        }
        let write = async { writer.write_all(&out).await.is_ok() };
        let timeout = async {
            R::sleep_until(Instant::now() + WRITE_TIMEOUT).await;
            false
        };
        if !future::or(write, timeout).await {
            // Dropping `progress` tells the reader to close the connection.
            return;
        }
        state
            .outstanding
            .set(state.outstanding.get().saturating_sub(count));
        state.last_activity.set(Instant::now());
        let _ = progress.try_send(());
    }
}
