//! `prometheus`, `health` and `ready` over HTTP, on listeners of their own served by tasks on
//! the driver's executor (a scrape renders off the thread), and the stop sequence: SIGTERM
//! fails `/ready` and keeps answering for the `lameduck` period, then the server stops taking
//! queries, lets those in flight finish and exits 0; SIGINT stops at once the same way; a
//! SIGINT while stopping forces the exit (code 2), as CoreDNS's second SIGINT does.

use std::cell::Cell;
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use async_signal::{Signal, Signals};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt, StreamExt};
use gatherdns_core::admin::{self, Listener, Plan, Request, Route, State};
use gatherdns_core::Config;
use smol::{Async, Timer};

use crate::driver::Driver;
use crate::log;

/// How long a stopping server waits for the queries in flight (CoreDNS's graceful stop
/// waits as long for its TCP connections).
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// How long writing a response may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The HTTP side, bound before serving.
pub(crate) struct Admin {
    plan: Plan,
    listeners: Vec<(Listener, Async<TcpListener>)>,
    state: Rc<State>,
}

/// What the Corefile asks of the HTTP side (read before the configuration goes to the
/// gateway).
pub(crate) fn plan(config: &Config) -> Plan {
    Plan::from_config(config)
}

impl Admin {
    /// Binds every HTTP listener of `plan`; a port in use is a startup error, as for DNS.
    pub(crate) fn bind(plan: Plan) -> Result<Admin, String> {
        let listeners = plan
            .listeners
            .iter()
            .map(|l| {
                TcpListener::bind(l.addr)
                    .and_then(Async::new)
                    .map(|tcp| (l.clone(), tcp))
                    .map_err(|e| format!("listen tcp {}: {}", l.addr, crate::describe(&e)))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Admin {
            plan,
            listeners,
            state: Rc::new(State::default()),
        })
    }

    /// Starts serving HTTP (and the readiness probes when `ready` is configured) and returns
    /// the stop sequence, which completes when the process should exit 0.
    pub(crate) fn run(
        self,
        driver: &Rc<Driver>,
        signals: Signals,
    ) -> impl std::future::Future<Output = ()> {
        if self.plan.ready {
            driver.handle(|gateway, now| gateway.probe_upstreams(now));
        }
        let open = Rc::new(Cell::new(0usize));
        for (listener, tcp) in self.listeners {
            driver.spawn(accept_loop(
                driver.clone(),
                listener,
                tcp,
                self.state.clone(),
                open.clone(),
            ));
        }
        stop(driver.clone(), signals, self.plan.lameduck, self.state)
    }
}

async fn accept_loop(
    driver: Rc<Driver>,
    listener: Listener,
    tcp: Async<TcpListener>,
    state: Rc<State>,
    open: Rc<Cell<usize>>,
) {
    loop {
        let stream = match tcp.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // Out of descriptors, most likely: pause rather than spin.
                Timer::after(Duration::from_millis(50)).await;
                continue;
            }
        };
        if open.get() >= admin::MAX_CONNECTIONS {
            continue; // Dropping it closes it.
        }
        open.set(open.get() + 1);
        let (d, l, s, o) = (
            driver.clone(),
            listener.clone(),
            state.clone(),
            open.clone(),
        );
        driver.spawn(async move {
            serve_connection(&d, stream, &l, &s).await;
            o.set(o.get() - 1);
        });
    }
}

/// One request, one response, then the connection is closed.
async fn serve_connection(
    driver: &Rc<Driver>,
    mut stream: Async<TcpStream>,
    listener: &Listener,
    state: &State,
) {
    let deadline = Instant::now() + admin::READ_TIMEOUT;
    let mut buf = Vec::with_capacity(512);
    let request = loop {
        match admin::parse_request(&buf, listener) {
            Request::Incomplete => {}
            request => break request,
        }
        let mut chunk = [0u8; 1024];
        let read = async { stream.read(&mut chunk).await.ok() };
        let timeout = async {
            Timer::at(deadline).await;
            None
        };
        match future::or(read, timeout).await {
            Some(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return,
        }
    };
    let (response, head) = match request {
        Request::Route { route, head } => (respond(driver, route, state).await, head),
        Request::Respond(response) => (response, false),
        Request::Incomplete => return,
    };
    let bytes = response.to_bytes(head);
    let write = async {
        let _ = stream.write_all(&bytes).await;
        let _ = stream.flush().await;
    };
    let timeout = async {
        Timer::after(WRITE_TIMEOUT).await;
    };
    future::or(write, timeout).await;
}

async fn respond(driver: &Rc<Driver>, route: Route, state: &State) -> admin::Response {
    match route {
        Route::Health => admin::health(),
        Route::Ready => state.ready(|| {
            let mut waiting = Vec::new();
            driver.handle(|gateway, _| waiting = gateway.not_ready());
            waiting
        }),
        Route::Metrics => {
            let mut snapshot = None;
            driver.handle(|gateway, _| snapshot = Some(gateway.metrics()));
            let snapshot = snapshot.unwrap_or_default();
            let failures = driver.reload_failures();
            // Rendering and reading /proc take a moment: not on the thread that serves DNS.
            smol::unblock(move || admin::metrics(snapshot, failures)).await
        }
    }
}

/// Waits for SIGTERM or SIGINT, then stops (see the module documentation).
async fn stop(driver: Rc<Driver>, mut signals: Signals, lameduck: Duration, state: Rc<State>) {
    let term = match signals.next().await {
        Some(Ok(Signal::Term)) => {
            log::info("SIGTERM: Shutting down servers then terminating");
            true
        }
        Some(Ok(_)) => {
            log::info("SIGINT: Shutting down");
            false
        }
        Some(Err(e)) => {
            log::error(format_args!("signal handling failed: {e}"));
            return;
        }
        None => return,
    };
    state.begin_stopping();
    let orderly = async {
        if term && !lameduck.is_zero() {
            log::line(admin::lameduck_line(lameduck));
            Timer::after(lameduck).await;
        }
        drain(&driver).await;
        true
    };
    let forced = async {
        loop {
            match signals.next().await {
                Some(Ok(Signal::Int)) => return false,
                Some(Ok(_)) => {} // Another SIGTERM: already stopping.
                Some(Err(_)) | None => future::pending::<()>().await,
            }
        }
    };
    if !future::or(orderly, forced).await {
        log::info("SIGINT: Force quit");
        std::process::exit(2);
    }
}

/// Stops taking queries and waits (bounded) until those in flight are answered.
async fn drain(driver: &Rc<Driver>) {
    driver.handle(|gateway, _| gateway.stop_accepting());
    let until = Instant::now() + DRAIN_LIMIT;
    while Instant::now() < until {
        let mut in_flight = 0;
        driver.handle(|gateway, _| in_flight = gateway.queries_in_flight());
        if in_flight == 0 {
            return;
        }
        Timer::after(Duration::from_millis(10)).await;
    }
}
