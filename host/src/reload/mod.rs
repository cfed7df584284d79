//! Reloading the Corefile while serving: on SIGUSR1 at once, and at the `reload` directive's
//! interval when a file it was read from changed. A control thread reads and checks the new
//! Corefile once, then has every executor bind the listeners it adds (prepare) and, only if all
//! could, install it in its own gateway (commit); otherwise every executor drops what it bound
//! (abort), so the executors never serve different configurations. A bad file is logged and
//! counted, and the old configuration keeps serving.

pub mod reader;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use async_channel::{Receiver, Sender};
use gatherdns_core::{Config, Gateway};
use signal_hook::consts::SIGUSR1;
use signal_hook::iterator::Signals;

use self::reader::{Reloader, Step, Trigger};
use crate::cli::Cli;
use crate::driver::{Driver, Listener};
use crate::log::{describe, line, warning};
use crate::runtime::Runtime;
use crate::{kubernetes, watch};

/// Reloads that failed since the start: `coredns_reload_failed_total`.
pub(crate) static RELOAD_FAILURES: AtomicU64 = AtomicU64::new(0);

/// How long an executor may take to bind or install a configuration.
const EXECUTOR_TIMEOUT: Duration = Duration::from_secs(10);

/// What the control thread asks of an executor; each answers on the sender it carries.
pub(crate) enum Command {
    /// Bind the listeners this configuration adds and keep them with it.
    Prepare(Box<Config>, mpsc::Sender<Result<(), String>>),
    /// Install the prepared configuration (`true`) or drop it and what was bound (`false`).
    Finish(bool, mpsc::Sender<Result<(), String>>),
}

/// The command queue of one executor: the control thread's end and the executor's end.
pub(crate) fn channel() -> (Sender<Command>, Receiver<Command>) {
    async_channel::bounded(1)
}

/// An executor's side: carries out commands for as long as the process runs. Only the
/// `reporting` executor's file watchers log (see `watch`).
pub(crate) async fn serve<R: Runtime>(
    driver: Rc<Driver<R>>,
    commands: Receiver<Command>,
    reporting: bool,
) {
    let mut prepared: Option<(Config, Added<R>)> = None;
    while let Ok(command) = commands.recv().await {
        match command {
            Command::Prepare(config, reply) => {
                let result = bind_added(&driver, &config);
                let answer = result.as_ref().map(|_| ()).map_err(Clone::clone);
                prepared = result.ok().map(|added| (*config, added));
                let _ = reply.send(answer);
            }
            Command::Finish(commit, reply) => {
                let result = match prepared.take() {
                    Some((config, added)) if commit => {
                        driver.reconfigure(config, added).map(|()| {
                            watch::start(&driver, reporting);
                        })
                    }
                    // Dropping the prepared listeners closes them.
                    _ => Ok(()),
                };
                let _ = reply.send(result);
            }
        }
    }
    // The control thread is gone (the process is stopping): serve on until it ends.
    futures_lite::future::pending::<()>().await;
}

/// The listeners a configuration adds, bound, by address.
type Added<R> = Vec<(SocketAddr, Listener<R>)>;

/// Binds (SO_REUSEPORT, beside the other executors) the addresses `config` adds.
fn bind_added<R: Runtime>(driver: &Driver<R>, config: &Config) -> Result<Added<R>, String> {
    let current = driver.listeners();
    reader::listeners(config)
        .into_iter()
        .filter(|addr| current.iter().all(|(_, a)| a != addr))
        .map(|addr| Listener::bind(addr).map(|l| (addr, l)))
        .collect()
}

/// Starts the control thread: SIGUSR1 is caught from now on (its default action would end
/// the process). `executors` are the command queues of every executor.
pub(crate) fn start(
    cli: &Cli,
    config: &Config,
    executors: Vec<Sender<Command>>,
) -> Result<(), String> {
    let signals =
        Signals::new([SIGUSR1]).map_err(|e| format!("cannot handle signals: {}", describe(&e)))?;
    let mut control = Control {
        cli: cli.clone(),
        reloader: Reloader::new(config),
        interval: reader::check_interval(config, random()),
        executors,
    };
    // CoreDNS prints this at startup when the Corefile uses `reload`.
    if let (Some(_), Some(fingerprint)) = (control.interval, control.reloader.running()) {
        line(Reloader::running_line(&fingerprint));
    }
    let (wake, woken) = mpsc::channel();
    spawn("reload-signals", move || {
        let mut signals = signals;
        for _ in signals.forever() {
            if wake.send(()).is_err() {
                break;
            }
        }
    })?;
    spawn("reload", move || control.run(&woken))
}

fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> Result<(), String> {
    thread::Builder::new()
        .name(name.into())
        .spawn(body)
        .map(drop)
        .map_err(|e| format!("cannot start the {name} thread: {}", describe(&e)))
}

/// A random number for the reload jitter (any will do if the OS has none).
fn random() -> u64 {
    getrandom::u64().unwrap_or(0)
}

struct Control {
    cli: Cli,
    reloader: Reloader,
    interval: Option<Duration>,
    executors: Vec<Sender<Command>>,
}

impl Control {
    fn run(&mut self, signals: &mpsc::Receiver<()>) {
        let mut next_check = self.interval.map(|every| Instant::now() + every);
        loop {
            let trigger = match next_check {
                Some(at) => {
                    match signals.recv_timeout(at.saturating_duration_since(Instant::now())) {
                        Ok(()) => Trigger::Signal,
                        Err(mpsc::RecvTimeoutError::Timeout) => Trigger::Timer,
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
                None => match signals.recv() {
                    Ok(()) => Trigger::Signal,
                    Err(_) => return,
                },
            };
            self.reload(trigger);
            if trigger == Trigger::Timer || next_check.is_none() {
                next_check = self.interval.map(|every| Instant::now() + every);
            }
        }
    }

    fn reload(&mut self, trigger: Trigger) {
        if trigger == Trigger::Signal {
            line(Reloader::starting(trigger));
        }
        let step = self.reloader.consider(trigger, reader::load(&self.cli));
        if trigger == Trigger::Timer && !matches!(step, Step::Unchanged) {
            line(Reloader::starting(trigger));
        }
        match step {
            Step::Unchanged => {}
            Step::Failed(text) => line(text),
            Step::Apply(config) => {
                for text in &config.warnings {
                    warning(text);
                }
                let fingerprint = config.fingerprint;
                let interval = reader::check_interval(&config, random());
                match self.install(config) {
                    Ok(()) => {
                        self.interval = interval;
                        for text in self.reloader.succeeded(fingerprint) {
                            line(text);
                        }
                    }
                    Err(message) => line(self.reloader.failed(trigger, &message)),
                }
            }
        }
        RELOAD_FAILURES.store(self.reloader.failures(), Ordering::Relaxed);
    }

    /// Checks `config` by building a gateway of it (it never serves) and the client
    /// configurations of its Kubernetes sources, then prepares and commits it on every
    /// executor, or aborts everywhere if one cannot bind; then follows its Kubernetes sources.
    fn install(&self, config: Config) -> Result<(), String> {
        Gateway::new(config.clone(), [0; 32]).map_err(|e| e.to_string())?;
        let kubernetes = kubernetes::prepare(&config, false)?;
        let prepared = self.ask(|reply| Command::Prepare(Box::new(config.clone()), reply));
        let commit = prepared.is_ok();
        let finished = self.ask(|reply| Command::Finish(commit, reply));
        prepared.and(finished)?;
        kubernetes::follow(kubernetes)
    }

    /// Sends a command to every executor and waits for every answer; the first error wins.
    fn ask(
        &self,
        command: impl Fn(mpsc::Sender<Result<(), String>>) -> Command,
    ) -> Result<(), String> {
        let (reply, answers) = mpsc::channel();
        let mut asked = 0;
        for executor in &self.executors {
            if executor.send_blocking(command(reply.clone())).is_ok() {
                asked += 1;
            }
        }
        let deadline = Instant::now() + EXECUTOR_TIMEOUT;
        let mut result = Ok(());
        for _ in 0..asked {
            let answer = answers
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| Err("an executor did not answer in time".to_string()));
            result = result.and(answer);
        }
        result
    }
}
