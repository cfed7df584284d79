//! glommio as a gatherdns runtime: an executor per placement with its own io_uring rings,
//! listeners shared by the executors through SO_REUSEPORT, and UDP received through glommio
//! (a direct syscall while data is waiting, io_uring once the socket is empty) and then, a
//! batch per system call, whatever else has arrived (`recvmmsg`); sent at once with
//! `sendmmsg`, and only a full socket buffer hands a send to io_uring.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gatherdns_host::batch;
use gatherdns_host::cli::Cli;
use gatherdns_host::{panics, Runtime, UdpSocket as HostUdp};
use glommio::net::{TcpListener, TcpStream, UdpSocket};
use glommio::timer::Timer;
use glommio::{LocalExecutorBuilder, Placement, Task};
use socket2::{Domain, Protocol, SockAddr, Type};

use crate::{placement, uring};

/// How long a busy executor runs tasks before it looks at its rings again. glommio's default
/// (100 ms) suits batch work; a DNS server under load wants its sockets reaped sooner.
const PREEMPT_TIMER: Duration = Duration::from_millis(2);

/// Receive buffer asked of the kernel, which caps it at `net.core.rmem_max` (doubled). With
/// several executors, sub-queries are answered on other cores while this one is busy, so
/// replies arrive in bursts; the default (about 200 KiB) overflowed at a few hundred queued
/// replies in the load test, and every lost reply costs a query an attempt timeout.
const RECV_BUFFER: usize = 1 << 20;

/// The glommio runtime.
pub(crate) struct Glommio;

impl Runtime for Glommio {
    const NAME: &'static str = "gatherdns-glommio";

    /// glommio 0.9 (seen on Linux 6.18) sometimes parks while a socket's readiness completion
    /// is pending, and notices it only at its next wake-up: a TCP query then waited until the
    /// next connection or timer, seconds under load (reproduced with 1000 sequential
    /// connections on a busy 2-CPU host; a timer wake ended every stall). Waking this often
    /// bounds such a stall and costs an idle executor a few microseconds per beat.
    const HEARTBEAT: Option<Duration> = Some(Duration::from_millis(10));

    type Placement = Placement;
    type Task = Task<()>;
    type Udp = Udp;
    type TcpListener = TcpListener;
    type TcpStream = TcpStream;

    fn placements(cli: &Cli) -> Result<Vec<Placement>, String> {
        placement::placements(cli.threads, cli.cpus.as_deref())
    }

    fn prepare(executors: usize) -> Result<(), String> {
        uring::prepare(executors)
    }

    fn block_on(
        index: usize,
        placement: Placement,
        future: impl Future<Output = ()> + 'static,
    ) -> Result<(), String> {
        // glommio asserts, rather than returns an error, when the kernel cannot set up a ring.
        let made = panics::expected(|| {
            LocalExecutorBuilder::new(placement)
                .name(&format!("gatherdns-{index}"))
                .io_memory(uring::IO_MEMORY)
                .preempt_timer(PREEMPT_TIMER)
                .make()
        });
        let executor = match made {
            Ok(Ok(executor)) => executor,
            Ok(Err(e)) => return Err(uring::unavailable(&e.to_string())),
            Err(text) => return Err(uring::unavailable(&uring::panic_reason(&text))),
        };
        executor.run(future);
        Ok(())
    }

    fn spawn(future: impl Future<Output = ()> + 'static) -> Task<()> {
        // glommio's spawn_local runs a new task until it first waits, inside the caller. The
        // host spawns from drains that hold the gateway, and a task that can finish at once
        // (a background send that fails at once, towards an upstream that refused) would
        // re-enter it: the first wait here makes the task run only once the spawner is done.
        glommio::spawn_local(async move {
            futures_lite::future::yield_now().await;
            future.await;
        })
    }

    fn detach(task: Task<()>) {
        task.detach();
    }

    async fn sleep_until(deadline: Instant) {
        Timer::new(deadline.saturating_duration_since(Instant::now())).await;
    }

    async fn yield_now() {
        futures_lite::future::yield_now().await;
    }

    async fn yield_if_needed() {
        glommio::executor().yield_if_needed().await;
    }

    fn bind_udp(addr: SocketAddr) -> io::Result<Udp> {
        let socket = udp_socket(addr)?;
        // Listening sockets share their address with the other executors' (the kernel
        // spreads clients over them).
        socket.set_reuse_port(true)?;
        socket.bind(&SockAddr::from(addr))?;
        Udp::new(socket)
    }

    fn connect_udp(peer: SocketAddr) -> io::Result<Udp> {
        // An ephemeral port of its own, so that replies come back to the executor that asked.
        let socket = udp_socket(peer)?;
        let any: SocketAddr = match peer {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        socket.bind(&SockAddr::from(any))?;
        socket.connect(&SockAddr::from(peer))?;
        Udp::new(socket)
    }

    fn bind_tcp(addr: SocketAddr) -> io::Result<TcpListener> {
        // glommio's listeners are SO_REUSEPORT: each executor accepts its own connections.
        TcpListener::bind(addr).map_err(io::Error::from)
    }

    async fn accept(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
        let stream = listener.accept().await.map_err(io::Error::from)?;
        let remote = stream.peer_addr().map_err(io::Error::from)?;
        Ok((stream, remote))
    }

    async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        TcpStream::connect(addr).await.map_err(io::Error::from)
    }

    fn set_nodelay(stream: &TcpStream) {
        let _ = stream.set_nodelay(true);
    }
}

/// A UDP socket of `addr`'s family, with the receive buffer this runtime wants.
fn udp_socket(addr: SocketAddr) -> io::Result<socket2::Socket> {
    let socket = socket2::Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a smaller buffer only means earlier drops under load.
    let _ = socket.set_recv_buffer_size(RECV_BUFFER);
    Ok(socket)
}

/// One UDP socket of an executor.
pub(crate) struct Udp {
    /// The socket as glommio drives it.
    io: UdpSocket,
    /// The same socket (a duplicated descriptor) for what must not wait: batches received
    /// after glommio's first datagram, and sends.
    now: socket2::Socket,
    /// Headers reused by every batch sent (taken only within a call, never across an await).
    sender: RefCell<batch::Sender>,
}

/// Room for the datagram glommio waits for, as large as a batch slot: queries and replies to
/// our EDNS size fit, a larger one arrives cut and is the malformed message it then is. (The
/// batch that follows it goes into the thread's shared receiver.)
pub(crate) struct RecvBuf {
    first: Vec<u8>,
}

impl Default for RecvBuf {
    fn default() -> RecvBuf {
        RecvBuf {
            first: vec![0u8; 4096],
        }
    }
}

impl Udp {
    fn new(socket: socket2::Socket) -> io::Result<Udp> {
        Ok(Udp {
            now: socket.try_clone()?,
            io: UdpSocket::from(socket),
            sender: RefCell::new(batch::Sender::new()),
        })
    }
}

impl HostUdp for Udp {
    type RecvBuf = RecvBuf;

    async fn recv(&self, buf: &mut RecvBuf, out: &mut Vec<(SocketAddr, Bytes)>) -> io::Result<()> {
        let (len, from) = self
            .io
            .recv_from(&mut buf.first)
            .await
            .map_err(io::Error::from)?;
        // What arrived meanwhile, without waiting: under load, one wake takes a batch. A
        // failed receive (nothing waiting, mostly) still hands over the first datagram.
        let _ = batch::recv_into(&self.now, Some((from, &buf.first[..len])), out);
        Ok(())
    }

    fn try_send<'a>(
        &self,
        datagrams: impl Iterator<Item = (Option<SocketAddr>, &'a [u8])>,
    ) -> io::Result<usize> {
        self.sender.borrow_mut().send(&self.now, datagrams)
    }

    async fn send(&self, payload: &[u8], to: Option<SocketAddr>) -> io::Result<()> {
        let sent = match to {
            Some(to) => self.io.send_to(payload, to).await,
            None => self.io.send(payload).await,
        };
        sent.map(drop).map_err(io::Error::from)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;

    use glommio::LocalExecutorBuilder;

    use super::*;

    #[test]
    fn a_spawned_task_runs_only_after_its_spawner_is_done() {
        uring::prepare(1).expect("io_uring");
        let executor = LocalExecutorBuilder::default()
            .io_memory(uring::IO_MEMORY)
            .make()
            .expect("executor");
        executor.run(async {
            let ran = Rc::new(Cell::new(false));
            let flag = ran.clone();
            let task = Glommio::spawn(async move { flag.set(true) });
            assert!(!ran.get(), "the task ran inside spawn");
            task.await;
            assert!(ran.get());
        });
    }
}
