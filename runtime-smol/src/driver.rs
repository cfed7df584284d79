//! The run loop around the sans-IO gateway: every input makes one `handle_*` call, then the
//! driver drains `poll_transmit` → `poll_event` and re-arms the timer from `poll_timeout`.
//! Single-threaded (`LocalExecutor`), so the gateway lives in a `RefCell`, never across an await.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::net::{TcpListener, UdpSocket};
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use gatherdns_core::{AttemptId, ClientTransport, Destination, Gateway, Transmit, UpstreamFailure};
use smol::{Async, LocalExecutor, Task};

use crate::tcp::ConnHandle;
use crate::timer::Alarm;
use crate::upstream::Upstreams;
use crate::{log, tcp, timer, udp, upstream};

/// Transmits sent per drain before the rest is left to the pump, so that one burst of
/// replies cannot starve the sockets (firezone's `MAX_EVENTLOOP_ITERS`).
const TRANSMIT_BUDGET: usize = 256;

/// Events printed per drain; the rest waits for the next drain.
const EVENT_BUDGET: usize = 256;

/// Rounds of "report failures, drain again" per drain; each round is itself budgeted.
const FAILURE_ROUNDS: usize = 4;

/// Everything the tasks share: the gateway, the sockets and the per-connection queues.
pub(crate) struct Driver {
    gateway: RefCell<Gateway>,
    executor: Rc<LocalExecutor<'static>>,
    alarm: Alarm,
    client_udp: Vec<Rc<Async<UdpSocket>>>,
    /// Reply queues of open client TCP connections, by connection id.
    conns: RefCell<HashMap<u64, ConnHandle>>,
    upstreams: Upstreams,
    /// Client UDP replies waiting for a full socket buffer to empty.
    udp_backlog: Rc<Cell<usize>>,
}

/// The sockets of one listening address, bound before the driver starts.
pub(crate) struct Listener {
    pub(crate) udp: Async<UdpSocket>,
    pub(crate) tcp: Async<TcpListener>,
}

impl Driver {
    /// Starts the tasks of every listener, the upstream receivers and the pump on `executor`.
    pub(crate) fn start(
        gateway: Gateway,
        listeners: Vec<Listener>,
        executor: Rc<LocalExecutor<'static>>,
    ) -> Rc<Driver> {
        let (udp, tcp): (Vec<_>, Vec<_>) = listeners
            .into_iter()
            .map(|l| (Rc::new(l.udp), l.tcp))
            .unzip();
        let driver = Rc::new(Driver {
            gateway: RefCell::new(gateway),
            executor,
            alarm: Alarm::new(),
            client_udp: udp,
            conns: RefCell::new(HashMap::new()),
            upstreams: Upstreams::new(),
            udp_backlog: Rc::new(Cell::new(0)),
        });
        for (index, socket) in driver.client_udp.iter().enumerate() {
            driver.spawn(udp::serve(driver.clone(), index, socket.clone()));
        }
        let conns = Rc::new(tcp::ConnCounter::default());
        for (index, listener) in tcp.into_iter().enumerate() {
            driver.spawn(tcp::accept_loop(
                driver.clone(),
                index,
                listener,
                conns.clone(),
            ));
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

    /// Sends what the gateway wants sent and prints its events, within the budget, then
    /// re-arms the timer. Failures found while sending are reported after the gateway borrow
    /// ends, which may produce more to drain: a few rounds of that, then the pump takes over.
    pub(crate) fn drain(self: &Rc<Self>) {
        let mut budget = TRANSMIT_BUDGET;
        let mut more = false;
        for _ in 0..FAILURE_ROUNDS {
            let mut failures = Vec::new();
            let mut gateway = self.gateway.borrow_mut();
            while budget > 0 {
                let Some(transmit) = gateway.poll_transmit() else {
                    break;
                };
                budget -= 1;
                self.dispatch(transmit, &mut failures);
            }
            more = budget == 0;
            let mut events = 0;
            while events < EVENT_BUDGET {
                let Some(event) = gateway.poll_event() else {
                    break;
                };
                events += 1;
                log::event(event);
            }
            // Events left behind must not wait for the next query: the pump prints them.
            more |= events == EVENT_BUDGET;
            if failures.is_empty() {
                break;
            }
            let now = Instant::now();
            for (attempt, failure) in failures {
                gateway.handle_upstream_failure(now, attempt, failure);
            }
            // The failures produced output that the next round (or the pump) drains.
            more = true;
        }
        let deadline = self.gateway.borrow().poll_timeout();
        self.alarm.rearm(deadline);
        if more {
            self.alarm.kick();
        }
    }

    /// Hands one transmit to its socket without waiting; anything that would wait becomes a
    /// bounded background send.
    fn dispatch(
        self: &Rc<Self>,
        transmit: Transmit,
        failures: &mut Vec<(AttemptId, UpstreamFailure)>,
    ) {
        let Transmit {
            destination,
            payload,
        } = transmit;
        match destination {
            Destination::Client(client) => match client.transport {
                ClientTransport::Udp => {
                    if let Some(socket) = self.client_udp.get(client.listener.0) {
                        udp::send_reply(self, socket, &self.udp_backlog, client.remote, payload);
                    }
                }
                ClientTransport::Tcp(id) => self.send_tcp_reply(id, payload),
            },
            Destination::Upstream {
                attempt,
                addr,
                transport,
            } => {
                if let Err(failure) = upstream::send(self, attempt, addr, transport, payload) {
                    failures.push((attempt, failure));
                }
            }
        }
    }

    fn send_tcp_reply(&self, id: u64, payload: Bytes) {
        // A connection that closed before its reply was ready simply loses it, as the
        // client would with any server.
        if let Some(handle) = self.conns.borrow().get(&id) {
            handle.send(payload);
        }
    }
}
