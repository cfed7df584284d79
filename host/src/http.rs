//! `prometheus`, `health` and `ready` over HTTP, and the stop sequence. The HTTP listeners are
//! served by plain threads (one per listener, one per connection, bounded), away from the
//! executors; what they need of the gateways they ask each executor through a command queue
//! that a task of the executor answers, so the query path takes no lock. A scrape adds up the
//! executors' snapshots.
//!
//! Stopping: SIGTERM fails `/ready` and keeps answering for the `lameduck` period, then every
//! executor stops taking queries, those in flight finish, and the process exits 0; SIGINT
//! stops at once the same way; a SIGINT while stopping forces the exit (code 2).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use gatherdns_core::metrics::{families, Snapshot};
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::admin::{self, Listener, Plan, Request, Route, State};
use crate::driver::Driver;
use crate::executors::Note;
use crate::log::{self, describe};
use crate::runtime::Runtime;

/// How long an executor may take to answer the HTTP side.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a stopping server waits for the queries in flight.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// What the HTTP side and the stop sequence ask of an executor.
pub(crate) enum Command {
    /// A snapshot of its gateway's metrics.
    Metrics(mpsc::Sender<Snapshot>),
    /// What its gateway is not ready for.
    NotReady(mpsc::Sender<Vec<String>>),
    /// Send the readiness probes.
    ProbeUpstreams,
    /// Stop taking queries; answer with the queries still in flight.
    StopAccepting(mpsc::Sender<usize>),
    /// The queries still in flight.
    InFlight(mpsc::Sender<usize>),
}

/// The command queue of one executor.
pub(crate) fn channel() -> (Sender<Command>, Receiver<Command>) {
    async_channel::bounded(16)
}

/// An executor's side: answers commands for as long as the process runs.
pub(crate) async fn serve<R: Runtime>(driver: Rc<Driver<R>>, commands: Receiver<Command>) {
    while let Ok(command) = commands.recv().await {
        match command {
            Command::Metrics(reply) => {
                let mut snapshot = driver.inspect(|gateway| gateway.metrics());
                snapshot.counter(&families::PANICS, &[], driver.panics());
                snapshot.counter(&families::UDP_REPLIES_WAITED, &[], driver.replies_waited());
                snapshot.counter(
                    &families::UDP_REPLIES_DROPPED,
                    &[],
                    driver.replies_dropped(),
                );
                let _ = reply.send(snapshot);
            }
            Command::NotReady(reply) => {
                let _ = reply.send(driver.inspect(|gateway| gateway.not_ready()));
            }
            Command::ProbeUpstreams => driver.handle(|gateway, now| gateway.probe_upstreams(now)),
            Command::StopAccepting(reply) => {
                let mut in_flight = 0;
                driver.handle(|gateway, _| {
                    gateway.stop_accepting();
                    in_flight = gateway.queries_in_flight();
                });
                let _ = reply.send(in_flight);
            }
            Command::InFlight(reply) => {
                let _ = reply.send(driver.inspect(|gateway| gateway.queries_in_flight()));
            }
        }
    }
}

/// The executors, as the HTTP threads and the stop sequence reach them.
#[derive(Clone)]
struct Executors(Arc<Vec<Sender<Command>>>);

impl Executors {
    /// Asks every executor; the answers that came in time.
    fn ask<T: Send + 'static>(&self, command: impl Fn(mpsc::Sender<T>) -> Command) -> Vec<T> {
        let (reply, answers) = mpsc::channel();
        let asked = self
            .0
            .iter()
            .filter(|e| e.send_blocking(command(reply.clone())).is_ok())
            .count();
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        (0..asked)
            .map_while(|_| {
                answers
                    .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                    .ok()
            })
            .collect()
    }

    fn tell(&self, command: impl Fn() -> Command) {
        for executor in self.0.iter() {
            let _ = executor.send_blocking(command());
        }
    }
}

/// The HTTP side, bound before serving.
pub(crate) struct Admin {
    plan: Plan,
    listeners: Vec<(Listener, TcpListener)>,
    state: Arc<State>,
}

impl Admin {
    /// Binds every HTTP listener of the Corefile; a port in use is a startup error.
    pub(crate) fn bind(plan: Plan) -> Result<Admin, String> {
        let listeners = plan
            .listeners
            .iter()
            .map(|l| {
                TcpListener::bind(l.addr)
                    .map(|tcp| (l.clone(), tcp))
                    .map_err(|e| format!("listen tcp {}: {}", l.addr, describe(&e)))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Admin {
            plan,
            listeners,
            state: Arc::new(State::default()),
        })
    }

    /// Starts the HTTP threads (and the readiness probes when `ready` is configured), then
    /// waits for a stop signal and stops (see the module documentation). `Err` when an
    /// executor ended instead.
    pub(crate) fn serve_until_stopped(
        self,
        executors: Vec<Sender<Command>>,
        inbox: &mpsc::Receiver<Note>,
    ) -> Result<(), String> {
        let executors = Executors(Arc::new(executors));
        if self.plan.ready {
            executors.tell(|| Command::ProbeUpstreams);
        }
        let open = Arc::new(AtomicUsize::new(0));
        for (listener, tcp) in self.listeners {
            let (executors, state, open) = (executors.clone(), self.state.clone(), open.clone());
            thread::Builder::new()
                .name(format!("http-{}", listener.addr))
                .spawn(move || accept_loop(&listener, &tcp, &executors, &state, &open))
                .map_err(|e| format!("cannot start the HTTP thread: {}", describe(&e)))?;
        }
        stop(inbox, &executors, self.plan.lameduck, &self.state)
    }
}

fn accept_loop(
    listener: &Listener,
    tcp: &TcpListener,
    executors: &Executors,
    state: &Arc<State>,
    open: &Arc<AtomicUsize>,
) {
    loop {
        let stream = match tcp.accept() {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors, most likely: pause rather than spin.
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if open.fetch_add(1, Ordering::Relaxed) >= admin::MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::Relaxed);
            continue; // Dropping it closes it.
        }
        let (l, e, s, o) = (
            listener.clone(),
            executors.clone(),
            state.clone(),
            open.clone(),
        );
        let spawned = thread::Builder::new()
            .name("http-connection".into())
            .spawn(move || {
                serve_connection(stream, &l, &e, &s);
                o.fetch_sub(1, Ordering::Relaxed);
            });
        if spawned.is_err() {
            open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// One request, one response, then the connection is closed.
fn serve_connection(
    mut stream: TcpStream,
    listener: &Listener,
    executors: &Executors,
    state: &State,
) {
    let deadline = Instant::now() + admin::READ_TIMEOUT;
    let mut buf = Vec::with_capacity(512);
    let request = loop {
        match admin::parse_request(&buf, listener) {
            Request::Incomplete => {}
            request @ (Request::Route { .. } | Request::Respond(_)) => break request,
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        let mut chunk = [0u8; 1024];
        match stream.read(&mut chunk) {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    };
    let (response, head) = match request {
        Request::Route { route, head } => (respond(route, executors, state), head),
        Request::Respond(response) => (response, false),
        Request::Incomplete => return,
    };
    let _ = stream.set_write_timeout(Some(admin::READ_TIMEOUT));
    let _ = stream.write_all(&response.to_bytes(head));
}

fn respond(route: Route, executors: &Executors, state: &State) -> admin::Response {
    match route {
        Route::Health => admin::health(),
        Route::Ready => state.ready(|| {
            let answers = executors.ask(Command::NotReady);
            if answers.len() < executors.0.len() {
                return vec!["an executor did not answer".to_string()];
            }
            let mut waiting: Vec<String> = Vec::new();
            for item in answers.into_iter().flatten() {
                if !waiting.contains(&item) {
                    waiting.push(item);
                }
            }
            waiting
        }),
        Route::Metrics => {
            let mut total = Snapshot::default();
            for snapshot in executors.ask(Command::Metrics) {
                total.merge(&snapshot);
            }
            crate::kubernetes::add_metrics(&mut total);
            let failures = crate::reload::RELOAD_FAILURES.load(Ordering::Relaxed);
            admin::metrics(total, failures)
        }
    }
}

/// Waits for SIGTERM or SIGINT on the main thread's inbox, then stops.
fn stop(
    inbox: &mpsc::Receiver<Note>,
    executors: &Executors,
    lameduck: Duration,
    state: &State,
) -> Result<(), String> {
    let term = loop {
        match inbox.recv() {
            Ok(Note::Signal(SIGTERM)) => {
                log::info("SIGTERM: Shutting down servers then terminating");
                break true;
            }
            Ok(Note::Signal(SIGINT)) => {
                log::info("SIGINT: Shutting down");
                break false;
            }
            Ok(Note::Signal(_)) => {}
            Ok(Note::Ended(message)) => return Err(message),
            Ok(Note::Ready(_)) | Err(_) => return Err("the executors stopped".to_string()),
        }
    };
    state.begin_stopping();
    if term && !lameduck.is_zero() {
        log::line(admin::lameduck_line(lameduck));
        wait(inbox, Instant::now() + lameduck)?;
    }
    let mut in_flight: usize = executors.ask(Command::StopAccepting).into_iter().sum();
    let until = Instant::now() + DRAIN_LIMIT;
    while in_flight > 0 && Instant::now() < until {
        wait(inbox, Instant::now() + Duration::from_millis(10))?;
        in_flight = executors.ask(Command::InFlight).into_iter().sum();
    }
    Ok(())
}

/// Sleeps until `until`, watching the inbox: a SIGINT forces the exit, an executor that ends
/// ends the wait with its message.
fn wait(inbox: &mpsc::Receiver<Note>, until: Instant) -> Result<(), String> {
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        match inbox.recv_timeout(left) {
            Ok(Note::Signal(SIGINT)) => {
                log::info("SIGINT: Force quit");
                std::process::exit(2);
            }
            Ok(Note::Ended(message)) => return Err(message),
            Ok(_) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}
