//! The executors: one per thread (as many as the runtime's placements say), each with its own
//! gateway built from the one parsed configuration, its own listeners (several executors share
//! an address with SO_REUSEPORT) and its own upstream sockets. The main thread starts them,
//! waits until each has bound its listeners, and lets them serve together.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use gatherdns_core::{Config, Gateway};

use crate::driver::{Driver, Listener};
use crate::peers::{self, Peers};
use crate::runtime::Runtime;
use crate::{http, kubernetes, reload, watch};

/// How long an executor may take to set up and bind its sockets.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What the executor threads (and the signal thread) tell the main thread.
#[derive(Debug)]
pub(crate) enum Note {
    /// An executor has bound its listeners and serves, or could not start (the message).
    Ready(Result<(), String>),
    /// An executor stopped while serving: the process must not go on half-served.
    Ended(String),
    /// SIGINT or SIGTERM.
    Signal(i32),
}

/// Client replies sent by one executor. Only its own thread writes it; the main thread reads
/// it when the process stops. Aligned so that no two executors' counters share a cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct Answered(AtomicU64);

impl Answered {
    pub(crate) fn add_one(&self) {
        // One writer: a plain load and store, no locked read-modify-write on the query path.
        self.0
            .store(self.0.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The started executors, bound and waiting for the go.
pub(crate) struct Pool {
    /// Client replies sent, per executor.
    pub(crate) answered: Vec<Arc<Answered>>,
    /// The command queue of each executor, for reloads.
    pub(crate) reload: Vec<async_channel::Sender<reload::Command>>,
    /// The command queue of each executor, for the HTTP side and stopping.
    pub(crate) admin: Vec<async_channel::Sender<http::Command>>,
    go: Arc<Barrier>,
}

impl Pool {
    /// Lets every executor serve. Until then the listeners are bound (queries wait in their
    /// buffers), so that the pidfile and the banner come first.
    pub(crate) fn serve(&self) {
        self.go.wait();
    }
}

/// What a driver keeps of what its executor shares with the others.
pub(crate) struct Local {
    /// Client replies sent by this executor.
    pub(crate) answered: Arc<Answered>,
    /// Open client TCP connections of the process (for the one connection limit).
    pub(crate) connections: Arc<AtomicUsize>,
    /// The other executors' inboxes for upstream health verdicts, and this one's.
    pub(crate) peers: Peers,
}

/// What an executor shares with the main thread and the other executors: nothing that a
/// query touches, except its own counter (health verdicts cross only when health changes).
struct Shared {
    local: Local,
    /// Reload commands from the control thread.
    commands: async_channel::Receiver<reload::Command>,
    /// Commands of the HTTP side and the stop sequence.
    admin: async_channel::Receiver<http::Command>,
    go: Arc<Barrier>,
    notes: Sender<Note>,
}

/// Starts one executor per placement and waits until each has bound its listeners. Executor
/// 0 starts alone first: if the runtime cannot make executors here it fails once, with the
/// runtime's own reason, rather than N times. `Err` is the startup message.
pub(crate) fn start<R: Runtime>(
    placements: Vec<R::Placement>,
    config: &Config,
    notes: &Sender<Note>,
    inbox: &Receiver<Note>,
) -> Result<Pool, String> {
    let go = Arc::new(Barrier::new(placements.len() + 1));
    let connections = Arc::new(AtomicUsize::new(0));
    let mut answered = Vec::new();
    let mut reloads = Vec::new();
    let mut admins = Vec::new();
    let mut signals = Vec::new();
    let mut pending = 0;
    let mesh = peers::mesh(placements.len());
    for ((index, placement), peers) in placements.into_iter().enumerate().zip(mesh) {
        let counter = Arc::new(Answered::default());
        answered.push(counter.clone());
        let (commands_tx, commands) = reload::channel();
        reloads.push(commands_tx);
        let (admin_tx, admin_commands) = http::channel();
        admins.push(admin_tx);
        let shared = Shared {
            local: Local {
                answered: counter,
                connections: connections.clone(),
                peers,
            },
            commands,
            admin: admin_commands,
            go: go.clone(),
            notes: notes.clone(),
        };
        let config = config.clone();
        thread::Builder::new()
            .name(format!("executor-{index}"))
            .spawn(move || run::<R>(index, placement, config, shared))
            .map_err(|e| format!("cannot start executor {index}: {e}"))?;
        pending += 1;
        if index == 0 {
            wait_ready(inbox, &mut pending, &mut signals)?;
        }
    }
    wait_ready(inbox, &mut pending, &mut signals)?;
    // A stop signal during startup is handled once the server is up, like any other.
    for signal in signals {
        let _ = notes.send(Note::Signal(signal));
    }
    Ok(Pool {
        answered,
        reload: reloads,
        admin: admins,
        go,
    })
}

/// Waits until `pending` executors have reported; the first failure ends the wait.
fn wait_ready(
    inbox: &Receiver<Note>,
    pending: &mut usize,
    signals: &mut Vec<i32>,
) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    while *pending > 0 {
        let timeout = deadline.saturating_duration_since(Instant::now());
        match inbox.recv_timeout(timeout) {
            Ok(Note::Ready(Ok(()))) => *pending -= 1,
            Ok(Note::Ready(Err(message)) | Note::Ended(message)) => return Err(message),
            Ok(Note::Signal(signal)) => signals.push(signal),
            Err(RecvTimeoutError::Timeout) => {
                return Err(format!("executors did not start within {START_TIMEOUT:?}"))
            }
            Err(RecvTimeoutError::Disconnected) => return Err("executors vanished".into()),
        }
    }
    Ok(())
}

/// The body of executor thread `index`.
fn run<R: Runtime>(index: usize, placement: R::Placement, config: Config, shared: Shared) {
    let notes = shared.notes.clone();
    match R::block_on(index, placement, serve::<R>(index, config, shared)) {
        // The executor could not be made: a startup failure.
        Err(reason) => {
            let _ = notes.send(Note::Ready(Err(reason)));
        }
        Ok(()) => {
            let _ = notes.send(Note::Ended(format!(
                "executor {index} stopped: its run loop returned"
            )));
        }
    }
}

/// Builds this executor's gateway, binds its listeners, reports, waits for the go, and
/// serves until the process exits.
async fn serve<R: Runtime>(index: usize, config: Config, shared: Shared) {
    let started = crate::seed().and_then(|seed| {
        let gateway = Gateway::new(config, seed).map_err(|e| e.to_string())?;
        let listeners = gateway
            .listeners()
            .iter()
            .map(|addr| Listener::<R>::bind(*addr))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((gateway, listeners))
    });
    let (gateway, listeners) = match started {
        Ok(parts) => parts,
        Err(message) => {
            let _ = shared.notes.send(Note::Ready(Err(message)));
            return;
        }
    };
    let _ = shared.notes.send(Note::Ready(Ok(())));
    // Blocking is fine here: nothing runs on this executor yet.
    shared.go.wait();
    let driver = Driver::start(gateway, listeners, shared.local);
    watch::start(&driver, index == 0);
    kubernetes::attach(&driver);
    // The tasks run until the process exits (see serve.rs): this takes reloads meanwhile and
    // never completes.
    R::detach(R::spawn(http::serve(driver.clone(), shared.admin)));
    reload::serve(driver, shared.commands, index == 0).await;
}
