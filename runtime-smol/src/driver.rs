//! The run loop around the sans-IO gateway: every input makes one `handle_*` call, then the
//! driver drains `poll_transmit` → `poll_event` and re-arms the timer from `poll_timeout`.
//! Single-threaded (`LocalExecutor`), so the gateway lives in a `RefCell`, never across an await.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use gatherdns_core::drive;
use gatherdns_core::{
    AttemptId, ClientTransport, Config, ConnectionCommand, Destination, Event, Gateway, ListenerId,
    Transmit, UpstreamFailure,
};
use smol::{Async, LocalExecutor, Task};

use crate::tcp::ConnHandle;
use crate::timer::Alarm;
use crate::upstream::Upstreams;
use crate::{batch, log, tcp, timer, udp, upstream, upstream_tcp};

/// Rounds of "send the batch, report the sub-queries it could not send, drain again".
const FLUSH_ROUNDS: usize = 4;

/// Everything the tasks share: the gateway, the sockets and the per-connection queues.
pub(crate) struct Driver {
    gateway: RefCell<Gateway>,
    executor: Rc<LocalExecutor<'static>>,
    alarm: Alarm,
    /// Client UDP sockets by listener id (ids only grow, so a vector with gaps).
    client_udp: RefCell<Vec<Option<Rc<Async<UdpSocket>>>>>,
    /// The receive and accept tasks of each listener; dropping them closes the listener.
    listener_tasks: RefCell<HashMap<ListenerId, [Task<()>; 2]>>,
    /// Client TCP connections of all listeners (for the one connection limit).
    tcp_conns: Rc<tcp::ConnCounter>,
    /// The file watchers of the configuration in force; a reload replaces them.
    watchers: RefCell<Vec<Task<()>>>,
    /// Reloads that failed (`coredns_reload_failed_total`).
    reload_failures: Cell<u64>,
    /// Reply queues of open client TCP connections, by connection id.
    conns: RefCell<HashMap<u64, ConnHandle>>,
    upstreams: Upstreams,
    /// Client UDP replies waiting for a full socket buffer to empty.
    udp_backlog: Rc<Cell<usize>>,
    /// Client UDP replies of the drain in progress, and the headers that send them.
    outbox: RefCell<udp::Outbox>,
    sender: RefCell<batch::Sender>,
}

/// The sockets of one listening address, bound before the driver starts.
pub(crate) struct Listener {
    pub(crate) udp: Async<UdpSocket>,
    pub(crate) tcp: Async<TcpListener>,
}

impl Listener {
    /// Binds UDP, then TCP, on `addr`; the error reads like Go's (`listen udp ADDR: …`).
    pub(crate) fn bind(addr: SocketAddr) -> Result<Listener, String> {
        Ok(Listener {
            udp: udp::bind(addr)?,
            tcp: tcp::bind(addr)?,
        })
    }
}

impl Driver {
    /// Starts the tasks of every listener, the upstream receivers and the pump on `executor`.
    pub(crate) fn start(
        gateway: Gateway,
        listeners: Vec<Listener>,
        executor: Rc<LocalExecutor<'static>>,
    ) -> Rc<Driver> {
        let ids = gateway.listener_ids().to_vec();
        let driver = Rc::new(Driver {
            gateway: RefCell::new(gateway),
            executor,
            alarm: Alarm::new(),
            client_udp: RefCell::new(Vec::new()),
            listener_tasks: RefCell::new(HashMap::new()),
            tcp_conns: Rc::new(tcp::ConnCounter::default()),
            watchers: RefCell::new(Vec::new()),
            reload_failures: Cell::new(0),
            conns: RefCell::new(HashMap::new()),
            upstreams: Upstreams::new(),
            udp_backlog: Rc::new(Cell::new(0)),
            outbox: RefCell::new(udp::Outbox::default()),
            sender: RefCell::new(batch::Sender::new()),
        });
        for (id, listener) in ids.into_iter().zip(listeners) {
            driver.open_listener(id, listener);
        }
        driver.spawn(timer::pump(driver.clone()));
        // The gateway may already want a timer (health probes): arm it before any input.
        driver.drain();
        driver
    }

    /// Runs a task on the driver's executor; it lives until it finishes or the process ends.
    pub(crate) fn spawn(&self, future: impl Future<Output = ()> + 'static) {
        self.executor.spawn(future).detach();
    }

    /// Runs a task whose handle the caller keeps: dropping the handle cancels the task.
    pub(crate) fn spawn_task<T: 'static>(
        &self,
        future: impl Future<Output = T> + 'static,
    ) -> Task<T> {
        self.executor.spawn(future)
    }

    /// Starts serving a bound listener under `id`.
    fn open_listener(self: &Rc<Self>, id: ListenerId, listener: Listener) {
        let socket = Rc::new(listener.udp);
        {
            let mut udp = self.client_udp.borrow_mut();
            if udp.len() <= id.0 {
                udp.resize(id.0 + 1, None);
            }
            udp[id.0] = Some(socket.clone());
        }
        let receive = self.spawn_task(udp::serve(self.clone(), id.0, socket));
        let accept = self.spawn_task(tcp::accept_loop(
            self.clone(),
            id.0,
            listener.tcp,
            self.tcp_conns.clone(),
        ));
        self.listener_tasks
            .borrow_mut()
            .insert(id, [receive, accept]);
    }

    /// Stops listening on `id`: its sockets close once their tasks are gone. Connections
    /// already accepted on it run to their end.
    fn close_listener(&self, id: ListenerId) {
        let tasks = self.listener_tasks.borrow_mut().remove(&id);
        if let Some(slot) = self.client_udp.borrow_mut().get_mut(id.0) {
            *slot = None;
        }
        drop(tasks);
    }

    /// Installs `config`: binds the listeners it adds, reconfigures the gateway, closes the
    /// listeners it drops. On `Err` (a listener that cannot be bound, a configuration the
    /// gateway refuses) nothing has changed. Queries in flight finish under the old
    /// configuration; listeners that stay keep their sockets.
    pub(crate) fn reconfigure(self: &Rc<Self>, config: Config) -> Result<(), String> {
        let before: Vec<(ListenerId, SocketAddr)> = {
            let gateway = self.gateway.borrow();
            let ids = gateway.listener_ids().iter().copied();
            ids.zip(gateway.listeners().iter().copied()).collect()
        };
        let mut added: Vec<(SocketAddr, Listener)> = Vec::new();
        for addr in gatherdns_core::reload::listeners(&config) {
            if before.iter().all(|(_, a)| *a != addr) {
                added.push((addr, Listener::bind(addr)?));
            }
        }
        let after: Vec<(ListenerId, SocketAddr)> = {
            let mut gateway = self.gateway.borrow_mut();
            gateway
                .reconfigure(Instant::now(), config)
                .map_err(|e| e.to_string())?;
            let ids = gateway.listener_ids().iter().copied();
            ids.zip(gateway.listeners().iter().copied()).collect()
        };
        for (id, _) in before
            .iter()
            .filter(|(id, _)| after.iter().all(|(i, _)| i != id))
        {
            self.close_listener(*id);
        }
        for (id, addr) in after {
            if let Some(index) = added.iter().position(|(a, _)| *a == addr) {
                let (_, listener) = added.swap_remove(index);
                self.open_listener(id, listener);
            }
        }
        // The new configuration may want timers (probes of upstreams still down).
        self.drain();
        Ok(())
    }

    /// Replaces the file watchers (at start and after a reload).
    pub(crate) fn set_watchers(&self, tasks: Vec<Task<()>>) {
        let old = std::mem::replace(&mut *self.watchers.borrow_mut(), tasks);
        drop(old);
    }

    /// The files the configuration in force answers from.
    pub(crate) fn watched_files(&self) -> Vec<gatherdns_core::WatchedFile> {
        self.gateway.borrow().watched_files()
    }

    /// Reloads that failed since the start (`coredns_reload_failed_total`).
    #[allow(dead_code)] // for the metrics exposition
    pub(crate) fn reload_failures(&self) -> u64 {
        self.reload_failures.get()
    }

    pub(crate) fn set_reload_failures(&self, count: u64) {
        self.reload_failures.set(count);
    }

    pub(crate) fn alarm(&self) -> &Alarm {
        &self.alarm
    }

    pub(crate) fn upstreams(&self) -> &Upstreams {
        &self.upstreams
    }

    pub(crate) fn register_conn(&self, id: u64, handle: ConnHandle) {
        self.conns.borrow_mut().insert(id, handle);
    }

    pub(crate) fn unregister_conn(&self, id: u64) {
        self.conns.borrow_mut().remove(&id);
    }

    /// One input: `input` gets the gateway and the time of this wake, then everything the
    /// gateway has to say is drained.
    pub(crate) fn handle(self: &Rc<Self>, input: impl FnOnce(&mut Gateway, Instant)) {
        {
            let mut gateway = self.gateway.borrow_mut();
            input(&mut gateway, Instant::now());
        }
        self.drain();
    }

    /// Sends what the gateway wants sent and prints its events (`drive::drain`), then
    /// re-arms the timer; what the budget left behind the pump drains next.
    /// The UDP datagrams it queued go out in batches after each round; sub-queries that
    /// could not be sent at all are reported back, which may queue more: a few rounds.
    pub(crate) fn drain(self: &Rc<Self>) {
        let mut more = false;
        for _ in 0..FLUSH_ROUNDS {
            let now = Instant::now();
            more |= drive::drain(&mut self.gateway.borrow_mut(), now, &mut Outputs(self));
            let failures = self
                .outbox
                .borrow_mut()
                .flush(self, &mut self.sender.borrow_mut());
            if failures.is_empty() {
                break;
            }
            let mut gateway = self.gateway.borrow_mut();
            for (attempt, failure) in failures {
                gateway.handle_upstream_failure(now, attempt, failure);
            }
            more = true;
        }
        let deadline = self.gateway.borrow().poll_timeout();
        self.alarm.rearm(deadline);
        if more {
            self.alarm.kick();
        }
    }

    /// Queues a UDP datagram of this drain (see `udp::Outbox`).
    pub(crate) fn queue_udp(
        &self,
        socket: Rc<Async<UdpSocket>>,
        to: SocketAddr,
        payload: Bytes,
        attempt: Option<AttemptId>,
    ) {
        self.outbox.borrow_mut().push(socket, to, payload, attempt);
    }

    /// Client UDP replies waiting for room in a socket buffer.
    pub(crate) fn udp_backlog(&self) -> Rc<Cell<usize>> {
        self.udp_backlog.clone()
    }

    fn send_tcp_reply(&self, id: u64, payload: Bytes) {
        // A connection that closed before its reply was ready simply loses it, as the
        // client would with any server.
        if let Some(handle) = self.conns.borrow().get(&id) {
            handle.send(payload);
        }
    }
}

/// The driver's sockets and log, as a drain sees them.
struct Outputs<'a>(&'a Rc<Driver>);

impl drive::Outputs for Outputs<'_> {
    fn transmit(&mut self, transmit: Transmit) -> Result<(), (AttemptId, UpstreamFailure)> {
        let driver = self.0;
        let Transmit {
            destination,
            payload,
        } = transmit;
        match destination {
            Destination::Client(client) => {
                match client.transport {
                    ClientTransport::Udp => {
                        // A listener closed by a reload loses the replies still owed on it.
                        let udp = driver.client_udp.borrow();
                        if let Some(Some(socket)) = udp.get(client.listener.0) {
                            let socket = socket.clone();
                            driver
                                .outbox
                                .borrow_mut()
                                .push(socket, client.remote, payload, None);
                        }
                    }
                    ClientTransport::Tcp(id) => driver.send_tcp_reply(id, payload),
                }
                Ok(())
            }
            Destination::Upstream { attempt, addr } => {
                upstream::send_udp(driver, attempt, addr, payload)
                    .map_err(|failure| (attempt, failure))
            }
            Destination::Connection(conn) => {
                upstream_tcp::write(driver, conn, payload);
                Ok(())
            }
        }
    }

    fn connection(&mut self, command: ConnectionCommand) {
        upstream_tcp::command(self.0, command);
    }

    fn event(&mut self, event: Event) {
        log::event(event);
    }
}
