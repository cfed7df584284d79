//! The run loop around one sans-IO gateway, written once for every runtime: each input makes
//! one `handle_*` call, then [`crate::drain`] sends what the gateway has to say and the timer
//! is re-armed from `poll_timeout`. One driver per executor; the gateway lives in a
//! `RefCell`, never borrowed across an await.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use gatherdns_core::wire::{write_reply, ClientQuery, Opcode, Rcode, ReplyHeader, PLAIN_UDP_LIMIT};
use gatherdns_core::{
    AttemptId, ClientAddr, ClientTransport, Config, ConnectionCommand, Destination, Event, Gateway,
    ListenerId, Transmit, UpstreamFailure, WatchedFile,
};

use crate::drain::{self, Outputs};
use crate::executors::Answered;
use crate::log;
use crate::peers::{Peers, Verdict};
use crate::runtime::Runtime;
use crate::timer::Alarm;
use crate::udp::Outbox;
use crate::{client_tcp, panics, timer, udp, upstream_tcp, upstream_udp};

/// Everything the tasks of one executor share: its gateway, sockets and connection queues.
pub(crate) struct Driver<R: Runtime> {
    gateway: RefCell<Gateway>,
    alarm: Alarm,
    /// Client UDP sockets by listener id (ids only grow, so a vector with gaps).
    client_udp: RefCell<Vec<Option<Rc<R::Udp>>>>,
    /// The receive and accept tasks of each listener; dropping them closes the listener.
    listener_tasks: RefCell<BTreeMap<ListenerId, [R::Task; 2]>>,
    pub(crate) clients: client_tcp::Clients,
    pub(crate) upstream_udp: upstream_udp::Sockets<R>,
    pub(crate) upstream_tcp: upstream_tcp::Connections,
    /// UDP datagrams of the drain in progress.
    outbox: RefCell<Outbox<R>>,
    /// The file watchers of the configuration in force; a reload replaces them.
    watchers: RefCell<Vec<R::Task>>,
    /// The other executors, told of every upstream health verdict this one reaches.
    peers: Peers,
    /// Replies sent to clients, read by the main thread when the process stops.
    answered: Arc<Answered>,
    /// Panics recovered while the gateway handled an input (`coredns_panics_total`).
    panics: Cell<u64>,
}

/// The sockets of one listening address, bound before they serve.
pub(crate) struct Listener<R: Runtime> {
    udp: R::Udp,
    tcp: R::TcpListener,
}

impl<R: Runtime> Listener<R> {
    /// Binds UDP, then TCP, on `addr`; the error reads like Go's (`listen udp ADDR: …`).
    pub(crate) fn bind(addr: SocketAddr) -> Result<Listener<R>, String> {
        let udp =
            R::bind_udp(addr).map_err(|e| format!("listen udp {addr}: {}", log::describe(&e)))?;
        let tcp =
            R::bind_tcp(addr).map_err(|e| format!("listen tcp {addr}: {}", log::describe(&e)))?;
        Ok(Listener { udp, tcp })
    }
}

impl<R: Runtime> Driver<R> {
    /// Starts the tasks of every listener and the pump on the current executor.
    pub(crate) fn start(
        gateway: Gateway,
        listeners: Vec<Listener<R>>,
        shared: crate::executors::Local,
    ) -> Rc<Driver<R>> {
        let ids = gateway.listener_ids().to_vec();
        let driver = Rc::new(Driver {
            gateway: RefCell::new(gateway),
            alarm: Alarm::new(),
            client_udp: RefCell::new(Vec::new()),
            listener_tasks: RefCell::new(BTreeMap::new()),
            clients: client_tcp::Clients::new(shared.connections),
            upstream_udp: upstream_udp::Sockets::default(),
            upstream_tcp: upstream_tcp::Connections::default(),
            outbox: RefCell::new(Outbox::default()),
            watchers: RefCell::new(Vec::new()),
            peers: shared.peers,
            answered: shared.answered,
            panics: Cell::new(0),
        });
        for (id, listener) in ids.into_iter().zip(listeners) {
            driver.open_listener(id, listener);
        }
        R::detach(R::spawn(timer::pump(driver.clone())));
        // The startup checks (the `loop` probe) go out now that the listeners are bound; the
        // drain that follows also arms the timer the gateway may already want (health probes).
        driver.handle(|gateway, now| gateway.handle_start(now));
        driver
    }

    /// Starts serving a bound listener under `id`.
    fn open_listener(self: &Rc<Self>, id: ListenerId, listener: Listener<R>) {
        let socket = Rc::new(listener.udp);
        {
            let mut udp = self.client_udp.borrow_mut();
            if udp.len() <= id.0 {
                udp.resize_with(id.0 + 1, || None);
            }
            udp[id.0] = Some(socket.clone());
        }
        let receive = R::spawn(udp::serve(self.clone(), id, socket));
        let accept = R::spawn(client_tcp::accept_loop(self.clone(), id, listener.tcp));
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
        mut added: Vec<(SocketAddr, Listener<R>)>,
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
    pub(crate) fn set_watchers(&self, tasks: Vec<R::Task>) {
        let old = std::mem::replace(&mut *self.watchers.borrow_mut(), tasks);
        drop(old);
    }

    /// The files the configuration in force answers from.
    pub(crate) fn watched_files(&self) -> Vec<WatchedFile> {
        self.gateway.borrow().watched_files()
    }

    /// Reads the gateway without an input (metrics, readiness): no drain follows.
    pub(crate) fn inspect<T>(&self, read: impl FnOnce(&Gateway) -> T) -> T {
        read(&self.gateway.borrow())
    }

    /// Panics recovered so far.
    pub(crate) fn panics(&self) -> u64 {
        self.panics.get()
    }

    /// Client UDP replies waiting for room in a full socket buffer.
    pub(crate) fn replies_waiting(&self) -> usize {
        self.outbox.borrow().replies_waiting()
    }

    /// Client UDP replies that waited for room in a full socket buffer.
    pub(crate) fn replies_waited(&self) -> u64 {
        self.outbox.borrow().replies_waited()
    }

    /// Client UDP replies given up because their socket stayed full.
    pub(crate) fn replies_dropped(&self) -> u64 {
        self.outbox.borrow().replies_dropped()
    }

    pub(crate) fn alarm(&self) -> &Alarm {
        &self.alarm
    }

    /// One input: `input` gets the gateway and the time of this wake, then everything the
    /// gateway has to say is drained. A panic inside `input` is recovered and counted.
    pub(crate) fn handle(self: &Rc<Self>, input: impl FnOnce(&mut Gateway, Instant)) {
        let now = Instant::now();
        {
            let mut gateway = self.gateway.borrow_mut();
            self.take_verdicts(&mut gateway, now);
            if let Err(why) = panics::recover(|| input(&mut gateway, now)) {
                self.panicked(&why, "an input");
            }
        }
        self.drain();
    }

    /// Client messages (a received batch, or one TCP frame) as one input. A query whose
    /// handling panics gets SERVFAIL; the others are unaffected.
    pub(crate) fn handle_client_messages(
        self: &Rc<Self>,
        messages: impl Iterator<Item = (ClientAddr, Bytes)>,
    ) {
        let now = Instant::now();
        let mut failed = Vec::new();
        // What a SERVFAIL needs of a query (header and question), copied on the stack: the
        // message itself goes to the gateway, and a second handle to it would cost an
        // allocation per query.
        let mut head = [0u8; SERVFAIL_SOURCE];
        {
            let mut gateway = self.gateway.borrow_mut();
            self.take_verdicts(&mut gateway, now);
            for (from, msg) in messages {
                let kept = msg.len().min(SERVFAIL_SOURCE);
                head[..kept].copy_from_slice(&msg[..kept]);
                let handled = panics::recover(|| {
                    #[cfg(debug_assertions)]
                    panics::injected(&msg);
                    gateway.handle_client_message(now, from, msg)
                });
                if let Err(why) = handled {
                    self.panicked(&why, &format!("a query from {}", from.remote));
                    failed.extend(servfail(&head[..kept]).map(|reply| (from, reply)));
                }
            }
        }
        for (from, reply) in failed {
            self.send_reply(from, reply);
        }
        self.drain();
    }

    /// Verdicts of the other executors first (an empty queue costs an atomic load): one sent
    /// before a reply went out is then in force for every query that reply caused, whichever
    /// executor it reaches and whichever of its tasks runs first.
    fn take_verdicts(&self, gateway: &mut Gateway, now: Instant) {
        self.peers.take_verdicts(gateway, now);
    }

    fn panicked(&self, why: &str, during: &str) {
        self.panics.set(self.panics.get() + 1);
        log::error(format_args!(
            "Recovered from panic while handling {during}: {why}"
        ));
    }

    /// Sends what the gateway wants sent and prints its events (`drain::drain`), then
    /// re-arms the timer; what the budget left behind the pump drains next.
    pub(crate) fn drain(self: &Rc<Self>) {
        let mut gateway = self.gateway.borrow_mut();
        let more = drain::drain(&mut gateway, Instant::now(), &mut DriverOutputs(self));
        self.alarm.rearm(gateway.poll_timeout());
        if more {
            self.alarm.kick();
        }
    }

    fn send_reply(self: &Rc<Self>, client: ClientAddr, payload: Bytes) {
        self.answered.add_one();
        match client.transport {
            ClientTransport::Udp => {
                // A lost reply is retried by the client, as with any server; a listener
                // closed by a reload loses the replies still owed on it.
                let socket = self
                    .client_udp
                    .borrow()
                    .get(client.listener.0)
                    .and_then(Clone::clone);
                if let Some(socket) = socket {
                    self.outbox
                        .borrow_mut()
                        .push(socket, Some(client.remote), payload, None);
                }
            }
            ClientTransport::Tcp(id) => self.clients.send(id, payload),
        }
    }
}

/// A driver's sockets and log, as a drain sees them.
struct DriverOutputs<'a, R: Runtime>(&'a Rc<Driver<R>>);

impl<R: Runtime> Outputs for DriverOutputs<'_, R> {
    fn event(&mut self, event: Event) {
        // Sibling executors take over this executor's health verdicts (peers.rs).
        if let Event::UpstreamHealth { upstream, healthy } = event {
            self.0.peers.tell(Verdict { upstream, healthy });
        }
        log::log_event(&event);
        if let Event::Fatal { .. } = event {
            // CoreDNS's log.Fatal: the line above, then exit status 1.
            std::process::exit(1);
        }
    }

    fn connection(&mut self, command: ConnectionCommand) {
        match command {
            ConnectionCommand::Open { conn, addr } => upstream_tcp::open(self.0, conn, addr),
            ConnectionCommand::Close(conn) => self.0.upstream_tcp.close(conn),
        }
    }

    fn transmit(&mut self, transmit: Transmit) {
        let driver = self.0;
        let Transmit {
            destination,
            payload,
        } = transmit;
        match destination {
            Destination::Client(client) => driver.send_reply(client, payload),
            Destination::Upstream {
                attempt,
                addr,
                socket,
            } => {
                let socket = driver.upstream_udp.socket(driver, addr, socket);
                let mut outbox = driver.outbox.borrow_mut();
                match socket {
                    // Connected: no address on the datagram.
                    Some(socket) => outbox.push(socket, None, payload, Some(attempt)),
                    None => outbox.fail(attempt, UpstreamFailure::Unreachable),
                }
            }
            Destination::Connection(conn) => driver.upstream_tcp.write(conn, &payload),
        }
    }

    fn flush(&mut self, failed: &mut Vec<(AttemptId, UpstreamFailure)>) {
        let driver = self.0;
        driver.outbox.borrow_mut().flush(driver, failed);
    }
}

/// The start of a query kept to answer it SERVFAIL if handling it panics: a header, the
/// longest name, type and class, and a small OPT record.
const SERVFAIL_SOURCE: usize = 12 + 255 + 4 + 11;

/// SERVFAIL for a client message whose handling panicked, if it is a query at all (parsed
/// from its first `SERVFAIL_SOURCE` bytes).
fn servfail(msg: &[u8]) -> Option<Bytes> {
    let query = ClientQuery::parse(Bytes::copy_from_slice(msg)).ok()?;
    let header = ReplyHeader {
        id: query.id,
        opcode: Opcode::QUERY,
        rd: query.rd,
        cd: query.cd,
        aa: false,
        ra: false,
        rcode: u16::from(Rcode::SERVFAIL.to_int()),
        question: Some((&query.qname, query.qtype, query.qclass)),
        edns_do: query.edns.map(|e| e.dnssec_ok),
        udp_size: 1232,
        ede: &[],
    };
    let mut buf = BytesMut::with_capacity(512);
    Some(write_reply(&mut buf, &header, [&[], &[], &[]], PLAIN_UDP_LIMIT).0)
}
