//! What a runtime gives the host: executors, tasks, timers and sockets. Everything else of
//! the server (the drain loop, connections, upstream sockets, reloads, the HTTP side) is
//! written once over this trait, in quinn's manner (`quinn/src/runtime/mod.rs`). Tasks and
//! sockets live on one thread each, so nothing here is `Send`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_lite::{AsyncRead, AsyncWrite};

use crate::cli::Cli;

/// An async runtime the host can serve on.
pub trait Runtime: Sized + 'static {
    /// The binary's name, as it introduces itself.
    const NAME: &'static str;

    /// The longest the timer task sleeps, for a runtime that can miss a wake-up (see
    /// gatherdns-glommio); `None` sleeps until the gateway's next deadline.
    const HEARTBEAT: Option<Duration> = None;

    /// Where one executor runs.
    type Placement: Send + 'static;
    /// A spawned task; dropping it cancels the task.
    type Task: 'static;
    /// A UDP socket.
    type Udp: UdpSocket;
    /// A listening TCP socket.
    type TcpListener: 'static;
    /// A TCP connection.
    type TcpStream: AsyncRead + AsyncWrite + Unpin + 'static;

    /// The executors to run, from `-threads` and `-cpus`. `Err` is the startup message.
    fn placements(cli: &Cli) -> Result<Vec<Self::Placement>, String>;

    /// Checks what can be checked before any executor starts. `Err` is the startup message.
    fn prepare(executors: usize) -> Result<(), String> {
        let _ = executors;
        Ok(())
    }

    /// Makes an executor at `placement` on the calling thread and runs `future` on it until it
    /// completes. `Err` when the executor cannot be made (the startup message).
    fn block_on(
        index: usize,
        placement: Self::Placement,
        future: impl Future<Output = ()> + 'static,
    ) -> Result<(), String>;

    /// Runs a task on the current executor, not before `spawn` returns: the host spawns from
    /// inside drains, which hold the gateway a task may need.
    fn spawn(future: impl Future<Output = ()> + 'static) -> Self::Task;

    /// Lets a task run to its end without a handle.
    fn detach(task: Self::Task);

    /// Completes at `deadline`.
    fn sleep_until(deadline: Instant) -> impl Future<Output = ()>;

    /// Lets the executor's other tasks run.
    fn yield_now() -> impl Future<Output = ()>;

    /// Lets the other tasks run if the runtime wants the thread back (glommio's preemption),
    /// else completes at once.
    fn yield_if_needed() -> impl Future<Output = ()>;

    /// Binds a client-facing UDP socket on a fixed address (several executors may share it
    /// with SO_REUSEPORT).
    fn bind_udp(addr: SocketAddr) -> io::Result<Self::Udp>;

    /// Opens a UDP socket towards one upstream: a random ephemeral port of its own (RFC
    /// 6056), connected to `peer`, so that the kernel delivers only `peer`'s datagrams to it
    /// and sends without a route lookup each time.
    fn connect_udp(peer: SocketAddr) -> io::Result<Self::Udp>;

    /// Binds a listening TCP socket.
    fn bind_tcp(addr: SocketAddr) -> io::Result<Self::TcpListener>;

    /// Accepts a connection.
    fn accept(
        listener: &Self::TcpListener,
    ) -> impl Future<Output = io::Result<(Self::TcpStream, SocketAddr)>>;

    /// Opens a connection.
    fn connect(addr: SocketAddr) -> impl Future<Output = io::Result<Self::TcpStream>>;

    /// Turns off Nagle's algorithm: DNS messages are small and latency matters more than
    /// segment count.
    fn set_nodelay(stream: &Self::TcpStream);
}

/// A UDP socket as the host uses it: batches in, batches out without waiting, and a waiting
/// send for what a full buffer refused.
pub trait UdpSocket: 'static {
    /// What receiving needs besides the socket (buffers), owned by the receiving task.
    type RecvBuf: Default;

    /// Waits for datagrams and appends what arrived (one or a batch) to `out`, each as an
    /// owned message: a pending query must not pin a receive buffer.
    fn recv(
        &self,
        buf: &mut Self::RecvBuf,
        out: &mut Vec<(SocketAddr, Bytes)>,
    ) -> impl Future<Output = io::Result<()>>;

    /// Sends datagrams in order without waiting, each to its address or, for `None`, to the
    /// peer the socket is connected to; returns how many of the first ones went out (`Err`
    /// or 0 when the socket buffer is full at once).
    fn try_send<'a>(
        &self,
        datagrams: impl Iterator<Item = (Option<SocketAddr>, &'a [u8])>,
    ) -> io::Result<usize>;

    /// Sends one datagram (to the connected peer for `None`), waiting for room in the
    /// socket buffer.
    fn send(&self, payload: &[u8], to: Option<SocketAddr>) -> impl Future<Output = io::Result<()>>;
}
