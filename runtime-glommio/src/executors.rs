//! The executors: one glommio `LocalExecutor` per thread (by default one per CPU the process
//! may use, each pinned to its CPU), each with its own gateway built from the one parsed
//! configuration, its own listeners (SO_REUSEPORT) and its own upstream sockets.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use gatherdns_core::cli::parse_cpu_list;
use gatherdns_core::{Config, Gateway};
use glommio::{LocalExecutorBuilder, Placement};

use crate::driver::{Driver, Listener};
use crate::peers::{self, Peers};
use crate::{admin, reload, uring, watch};

/// How long an executor may take to set up its ring and bind its sockets.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a busy executor runs tasks before it looks at its rings again. glommio's default
/// (100 ms) suits batch work; a DNS server under load wants its sockets reaped sooner.
const PREEMPT_TIMER: Duration = Duration::from_millis(2);

/// What the executor threads tell the main thread.
#[derive(Debug)]
pub(crate) enum Note {
    /// An executor has bound its listeners and serves, or could not start (the message).
    Ready(Result<(), String>),
    /// An executor stopped while serving (a panic): the process must not go on half-served.
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

/// How many executors, and where each runs: `-cpus` pins one to each CPU listed, `-threads`
/// leaves N to the kernel's scheduler, and by default one is pinned to each CPU the process
/// may use. `Err` is the startup message.
pub(crate) fn placements(
    threads: Option<usize>,
    cpus: Option<&[usize]>,
) -> Result<Vec<Placement>, String> {
    // The CPUs the affinity mask allows, fewer under a cgroup CPU quota (a container's limit).
    let usable = thread::available_parallelism().map_or(1, |n| n.get());
    let allowed = allowed_cpus();
    match (threads, cpus) {
        (Some(n), Some(list)) if n != list.len() => Err(format!(
            "-threads {n} and -cpus with {} CPUs disagree: -cpus alone runs one executor per CPU listed",
            list.len()
        )),
        (_, Some(list)) => list
            .iter()
            .map(|&cpu| {
                if !allowed.is_empty() && !allowed.contains(&cpu) {
                    return Err(format!(
                        "-cpus: CPU {cpu} is not one this process may run on (allowed: {})",
                        cpu_list(&allowed)
                    ));
                }
                Placement::Fixed(cpu)
                    .generate_cpu_set()
                    .map(|_| Placement::Fixed(cpu))
                    .map_err(|e| format!("-cpus: cannot pin an executor to CPU {cpu}: {e}"))
            })
            .collect(),
        // The kernel places executors of an explicit count: which CPUs suit a subset (or an
        // excess) is the operator's call (-cpus, taskset, systemd's CPUAffinity=).
        (Some(n), None) => Ok(vec![Placement::Unbound; n]),
        // Thread per core: each executor keeps its CPU's caches to itself. A CPU that glommio
        // cannot place on (no topology in /sys) gets an unbound executor instead.
        (None, None) if allowed.len() == usable => Ok(allowed
            .into_iter()
            .map(|cpu| match Placement::Fixed(cpu).generate_cpu_set() {
                Ok(_) => Placement::Fixed(cpu),
                Err(_) => Placement::Unbound,
            })
            .collect()),
        // A quota smaller than the mask: as many executors as CPUs' worth of time, unpinned.
        (None, None) => Ok(vec![Placement::Unbound; usable]),
    }
}

/// The CPUs this process may run on (its affinity mask, as `taskset` or a cgroup sets it).
fn allowed_cpus() -> Vec<usize> {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return Vec::new();
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .and_then(parse_cpu_list)
        .unwrap_or_default()
}

/// [0, 1, 2, 5] → `0,1,2,5`, for messages.
fn cpu_list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The started executors, bound and waiting for the go.
pub(crate) struct Pool {
    /// Client replies sent, per executor.
    pub(crate) answered: Vec<Arc<Answered>>,
    /// The command queue of each executor, for reloads.
    pub(crate) reload: Vec<async_channel::Sender<reload::Command>>,
    /// The command queue of each executor, for the HTTP side and stopping.
    pub(crate) admin: Vec<async_channel::Sender<admin::Command>>,
    go: Arc<Barrier>,
}

impl Pool {
    /// Lets every executor serve. Until then the listeners are bound (queries wait in their
    /// buffers), so that the pidfile and the banner come first, as with gatherdns-smol.
    pub(crate) fn serve(&self) {
        self.go.wait();
    }
}

/// Starts one executor per placement and waits until each has bound its listeners. Executor
/// 0 starts alone first: if io_uring is unusable it fails once, with glommio's own reason,
/// rather than N times. `Err` is the startup message.
pub(crate) fn start(
    placements: Vec<Placement>,
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
        let (admin_tx, admin_commands) = admin::channel();
        admins.push(admin_tx);
        let shared = Shared {
            answered: counter,
            commands,
            admin: admin_commands,
            connections: connections.clone(),
            peers,
            go: go.clone(),
            notes: notes.clone(),
        };
        let config = config.clone();
        thread::Builder::new()
            .name(format!("executor-{index}"))
            .spawn(move || run(index, placement, config, shared))
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

/// What an executor shares with the main thread and the other executors: nothing that a
/// query touches, except its own counter (health verdicts cross only when health changes).
struct Shared {
    answered: Arc<Answered>,
    /// Reload commands from the control thread.
    commands: async_channel::Receiver<reload::Command>,
    /// Commands of the HTTP side and the stop sequence.
    admin: async_channel::Receiver<admin::Command>,
    /// Open client TCP connections of the process (for the one connection limit).
    connections: Arc<AtomicUsize>,
    /// The other executors' inboxes for upstream health verdicts, and this one's.
    peers: Peers,
    go: Arc<Barrier>,
    notes: Sender<Note>,
}

thread_local! {
    /// Set while glommio builds this thread's rings: its panics there are reported as
    /// "io_uring is unavailable", not printed as a crash.
    static EXPECTED_PANIC: Cell<bool> = const { Cell::new(false) };
}

/// Installs the process's panic hook: silent where a panic is an expected startup failure;
/// everywhere else the standard report, then the process stops (exit code 101, as a panic in
/// gatherdns-smol). glommio would only cancel the task that panicked, which could leave a
/// socket in the SO_REUSEPORT group that nobody reads: its share of clients unanswered.
pub(crate) fn install_panic_hook() {
    let standard = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if !EXPECTED_PANIC.with(Cell::get) {
            standard(info);
            std::process::exit(101);
        }
    }));
}

/// The body of executor thread `index`.
fn run(index: usize, placement: Placement, config: Config, shared: Shared) {
    EXPECTED_PANIC.with(|p| p.set(true));
    let made = panic::catch_unwind(|| {
        LocalExecutorBuilder::new(placement)
            .name(&format!("gatherdns-{index}"))
            .io_memory(uring::IO_MEMORY)
            .preempt_timer(PREEMPT_TIMER)
            .make()
    });
    EXPECTED_PANIC.with(|p| p.set(false));
    let executor = match made {
        Ok(Ok(executor)) => executor,
        Ok(Err(e)) => {
            let reason = uring::unavailable(&e.to_string());
            let _ = shared.notes.send(Note::Ready(Err(reason)));
            return;
        }
        Err(payload) => {
            let reason = uring::unavailable(&uring::panic_reason(payload.as_ref()));
            let _ = shared.notes.send(Note::Ready(Err(reason)));
            return;
        }
    };
    let notes = shared.notes.clone();
    let served = panic::catch_unwind(AssertUnwindSafe(|| {
        executor.run(serve(index, config, shared))
    }));
    let why = match served {
        Err(payload) => uring::panic_text(payload.as_ref()),
        Ok(()) => "its run loop returned".to_string(),
    };
    let _ = notes.send(Note::Ended(format!("executor {index} stopped: {why}")));
}

/// Builds this executor's gateway, binds its listeners, reports, waits for the go, and
/// serves until the process exits.
async fn serve(index: usize, config: Config, shared: Shared) {
    let started = crate::seed().and_then(|seed| {
        let gateway = Gateway::new(config, seed).map_err(|e| e.to_string())?;
        let listeners = gateway
            .listeners()
            .iter()
            .map(|addr| Listener::bind(*addr))
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
    let files = gateway.watched_files();
    let driver = Driver::start(
        gateway,
        listeners,
        shared.answered,
        shared.connections,
        shared.peers,
    );
    watch::start(&driver, files, index == 0);
    // The tasks run until the process exits (see main): this takes reloads meanwhile and
    // never completes.
    driver.spawn(admin::serve(driver.clone(), shared.admin));
    reload::serve(driver, shared.commands, index == 0).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_count_is_unbound() {
        assert_eq!(placements(Some(3), None), Ok(vec![Placement::Unbound; 3]));
        assert!(placements(None, None).is_ok_and(|p| !p.is_empty()));
    }

    #[test]
    fn listed_cpus_are_pinned_and_checked() {
        assert_eq!(placements(None, Some(&[0])), Ok(vec![Placement::Fixed(0)]));
        assert_eq!(
            placements(Some(1), Some(&[0])),
            Ok(vec![Placement::Fixed(0)])
        );
        assert!(placements(Some(2), Some(&[0])).is_err_and(|e| e.contains("disagree")));
        assert!(placements(None, Some(&[4000])).is_err_and(|e| e.contains("CPU 4000")));
    }
}
