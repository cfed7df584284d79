//! smol as a gatherdns runtime: one executor on its own thread (`-threads` and `-cpus` are
//! accepted and ignored, so that one unit file can switch binaries), async-io sockets, and
//! UDP through the host's `batch` (a batch of datagrams per system call) once epoll says a
//! socket is ready.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Instant;

use async_io::{Async, Timer};
use bytes::Bytes;
use gatherdns_host::batch;
use gatherdns_host::cli::Cli;
use gatherdns_host::{Runtime, UdpSocket as HostUdp};
use smol::{LocalExecutor, Task};

thread_local! {
    /// The executor of this thread: the one the server's tasks run on.
    static EXECUTOR: LocalExecutor<'static> = const { LocalExecutor::new() };
}

/// The smol runtime.
pub(crate) struct Smol;

impl Runtime for Smol {
    const NAME: &'static str = "gatherdns-smol";

    type Placement = ();
    type Task = Task<()>;
    type Udp = Udp;
    type TcpListener = Async<TcpListener>;
    type TcpStream = Async<TcpStream>;

    fn placements(_cli: &Cli) -> Result<Vec<()>, String> {
        Ok(vec![()])
    }

    fn block_on(
        _index: usize,
        _placement: (),
        future: impl Future<Output = ()> + 'static,
    ) -> Result<(), String> {
        EXECUTOR.with(|executor| smol::block_on(executor.run(future)));
        Ok(())
    }

    fn spawn(future: impl Future<Output = ()> + 'static) -> Task<()> {
        EXECUTOR.with(|executor| executor.spawn(future))
    }

    fn detach(task: Task<()>) {
        task.detach();
    }

    async fn sleep_until(deadline: Instant) {
        Timer::at(deadline).await;
    }

    async fn yield_now() {
        futures_lite::future::yield_now().await;
    }

    async fn yield_if_needed() {}

    fn bind_udp(addr: SocketAddr) -> io::Result<Udp> {
        Udp::new(UdpSocket::bind(addr)?)
    }

    fn connect_udp(peer: SocketAddr) -> io::Result<Udp> {
        let any: SocketAddr = match peer {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(any)?;
        socket.connect(peer)?;
        Udp::new(socket)
    }

    fn bind_tcp(addr: SocketAddr) -> io::Result<Async<TcpListener>> {
        Async::new(TcpListener::bind(addr)?)
    }

    async fn accept(listener: &Async<TcpListener>) -> io::Result<(Async<TcpStream>, SocketAddr)> {
        listener.accept().await
    }

    async fn connect(addr: SocketAddr) -> io::Result<Async<TcpStream>> {
        Async::<TcpStream>::connect(addr).await
    }

    fn set_nodelay(stream: &Async<TcpStream>) {
        let _ = stream.get_ref().set_nodelay(true);
    }
}

/// A UDP socket on async-io's reactor, sent to in batches.
pub(crate) struct Udp {
    io: Async<UdpSocket>,
    /// Headers reused by every batch sent (taken only within a call, never across an await).
    sender: RefCell<batch::Sender>,
}

impl Udp {
    fn new(socket: UdpSocket) -> io::Result<Udp> {
        Ok(Udp {
            io: Async::new(socket)?,
            sender: RefCell::new(batch::Sender::new()),
        })
    }
}

impl HostUdp for Udp {
    /// Nothing of its own: the batch is received into the thread's shared receiver.
    type RecvBuf = ();

    async fn recv(&self, _buf: &mut (), out: &mut Vec<(SocketAddr, Bytes)>) -> io::Result<()> {
        self.io
            .read_with(|socket| batch::recv_into(socket, None, out))
            .await
            .map(drop)
    }

    fn try_send<'a>(
        &self,
        datagrams: impl Iterator<Item = (Option<SocketAddr>, &'a [u8])>,
    ) -> io::Result<usize> {
        self.sender.borrow_mut().send(self.io.get_ref(), datagrams)
    }

    async fn send(&self, payload: &[u8], to: Option<SocketAddr>) -> io::Result<()> {
        match to {
            Some(to) => self.io.send_to(payload, to).await.map(drop),
            None => self.io.send(payload).await.map(drop),
        }
    }
}
