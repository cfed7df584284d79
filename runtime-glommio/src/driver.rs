//! One executor's run loop around its own sans-IO gateway: every input makes one `handle_*`
//! call, then the driver drains `poll_transmit` → `poll_event` and re-arms the timer from
//! `poll_timeout`. Single-threaded (glommio is `!Send`), so the gateway lives in a `RefCell`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use gatherdns_core::drive;
use gatherdns_core::{
    AttemptId, ClientAddr, ClientTransport, Config, ConnectionCommand, Destination, Event, Gateway,
    ListenerId, Transmit, UpstreamFailure, WatchedFile,
};
use glommio::net::TcpListener;
use glommio::Task;

use crate::executors::Answered;
use crate::peers::{Peers, Verdict};
use crate::tcp::ConnHandle;
use crate::timer::Alarm;
use crate::upstream::Upstreams;
use crate::{log, tcp, timer, udp, upstream, upstream_tcp};

/// Everything the tasks of one executor share: its gateway, sockets and connection queues.
pub(crate) struct Driver {
    gateway: RefCell<Gateway>,
    alarm: Alarm,
    /// Client UDP sockets by listener id (ids only grow, so a vector with gaps).
    client_udp: RefCell<Vec<Option<Rc<udp::Socket>>>>,
    /// The receive and accept tasks of each listener; dropping them closes the listener.
    listener_tasks: RefCell<HashMap<ListenerId, [Task<()>; 2]>>,
    /// Client TCP connections (this executor's ids, the process's count).
    tcp_conns: Rc<tcp::ConnCounter>,
    /// The file watchers of the configuration in force; a reload replaces them.
    watchers: RefCell<Vec<Task<()>>>,
    /// Reply queues of open client TCP connections, by connection id.
    conns: RefCell<HashMap<u64, ConnHandle>>,
    upstreams: Upstreams,
    /// Replies sent to clients, read by the main thread when the process stops.
    answered: Arc<Answered>,
    /// The other executors, told of every upstream health verdict this one reaches.
    peers: Peers,
}

/// The sockets of one listening address, bound by this executor before it serves.
pub(crate) struct Listener {
    pub(crate) udp: udp::Socket,
    pub(crate) tcp: TcpListener,
}

impl Listener {
    /// Binds UDP, then TCP, with SO_REUSEPORT; the error reads like Go's
    /// (`listen udp ADDR: address already in use`).
    pub(crate) fn bind(addr: std::net::SocketAddr) -> Result<Listener, String> {
        let udp = udp::bind(addr, true)
            .map_err(|e| format!("listen udp {addr}: {}", crate::describe(&e)))?;
        let tcp = TcpListener::bind(addr)
            .map_err(|e| format!("listen tcp {addr}: {}", crate::describe(&e.into())))?;
        Ok(Listener { udp, tcp })
    }
}

impl Driver {
    /// Starts the tasks of every listener, the upstream receivers and the pump on the
    /// current executor. `connections` counts the client connections of all executors.
    pub(crate) fn start(
        gateway: Gateway,
        listeners: Vec<Listener>,
        answered: Arc<Answered>,
        connections: Arc<AtomicUsize>,
        peers: Peers,
    ) -> Rc<Driver> {
        let ids = gateway.listener_ids().to_vec();
        let driver = Rc::new(Driver {
            gateway: RefCell::new(gateway),
            alarm: Alarm::new(),
            client_udp: RefCell::new(Vec::new()),
            listener_tasks: RefCell::new(HashMap::new()),
            tcp_conns: Rc::new(tcp::ConnCounter::new(connections)),
            watchers: RefCell::new(Vec::new()),
            conns: RefCell::new(HashMap::new()),
            upstreams: Upstreams::default(),
            answered,
            peers,
        });
        for (id, listener) in ids.into_iter().zip(listeners) {
            driver.open_listener(id, listener);
        }
        driver.spawn(timer::pump(driver.clone()));
        // The gateway may already want a timer (health probes): arm it before any input.
        driver.drain();
        driver
    }

    /// Runs a task on this executor; it lives until it finishes or the process ends.
    pub(crate) fn spawn(&self, future: impl Future<Output = ()> + 'static) {
        glommio::spawn_local(future).detach();
    }

    /// Runs a task whose handle the caller keeps: dropping the handle cancels the task.
    pub(crate) fn spawn_task<T: 'static>(
        &self,
        future: impl Future<Output = T> + 'static,
    ) -> Task<T> {
        glommio::spawn_local(future)
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
        let driver = self.clone();
        let per_yield = crate::budget::ITEMS_PER_YIELD;
        let receive = self.spawn_task(udp::receive(socket, per_yield, move |remote, msg| {
            let from = ClientAddr {
                listener: id,
                remote,
                transport: ClientTransport::Udp,
            };
            driver.handle(|gateway, now| gateway.handle_client_message(now, from, msg));
        }));
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

    /// The listening addresses of the configuration in force, with their ids.
    pub(crate) fn listeners(&self) -> Vec<(ListenerId, SocketAddr)> {
        let gateway = self.gateway.borrow();
        let ids = gateway.listener_ids().iter().copied();
        ids.zip(gateway.listeners().iter().copied()).collect()
    }

    /// Installs `config` with `added`, the listeners it adds, already bound: reconfigures
    /// the gateway and closes the listeners it drops. On `Err` (the gateway refuses the
    /// configuration) nothing has changed. Queries in flight finish under the old
    /// configuration; listeners that stay keep their sockets.
    pub(crate) fn reconfigure(
        self: &Rc<Self>,
        config: Config,
        mut added: Vec<(SocketAddr, Listener)>,
    ) -> Result<(), String> {
        let before = self.listeners();
        self.gateway
            .borrow_mut()
            .reconfigure(Instant::now(), config)
            .map_err(|e| e.to_string())?;
        let after = self.listeners();
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
    pub(crate) fn watched_files(&self) -> Vec<WatchedFile> {
        self.gateway.borrow().watched_files()
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
        let now = Instant::now();
        {
            let mut gateway = self.gateway.borrow_mut();
            // Verdicts of the other executors first (an empty queue costs an atomic load): one
            // sent before a reply went out is then in force for every query that reply caused,
            // whichever executor it reaches and whichever of its tasks runs first.
            self.peers.take_verdicts(&mut gateway, now);
            input(&mut gateway, now);
        }
        self.drain();
    }

    /// Sends what the gateway wants sent and prints its events (`drive::drain`), then
    /// re-arms the timer; what the budget left behind the pump drains next.
    pub(crate) fn drain(self: &Rc<Self>) {
        let more = {
            let mut gateway = self.gateway.borrow_mut();
            drive::drain(&mut gateway, Instant::now(), &mut Outputs(self))
        };
        let deadline = self.gateway.borrow().poll_timeout();
        self.alarm.rearm(deadline);
        if more {
            self.alarm.kick();
        }
    }

    fn send_tcp_reply(&self, id: u64, payload: Bytes) {
        // A connection that closed before its reply was ready simply loses it.
        if let Some(handle) = self.conns.borrow().get(&id) {
            handle.send(payload);
        }
    }
}

/// The executor's sockets and log, as a drain sees them.
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
                driver.answered.add_one();
                match client.transport {
                    ClientTransport::Udp => {
                        // A lost reply is retried by the client, as with any server; a
                        // listener closed by a reload loses the replies still owed on it.
                        let udp = driver.client_udp.borrow();
                        if let Some(Some(socket)) = udp.get(client.listener.0) {
                            udp::send(driver, socket, client.remote, payload, || {});
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
        // Sibling executors take over this executor's health verdicts (peers.rs).
        if let Event::UpstreamHealth { upstream, healthy } = event {
            self.0.peers.tell(Verdict { upstream, healthy });
        }
        log::event(&event);
    }
}
