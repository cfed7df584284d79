//! Reloading the Corefile while serving: on SIGUSR1 at once, and at the `reload` directive's
//! interval when a file it was read from changed. The Corefile is read off the serving thread;
//! the driver then binds what is new, reconfigures the gateway and closes what is gone. A bad
//! file is logged and counted, and the old configuration keeps serving.

use std::rc::Rc;
use std::time::Duration;

use async_signal::{Signal, Signals};
use futures_lite::{future, StreamExt};
use gatherdns_core::cli::Cli;
use gatherdns_core::reload::{self, Reloader, Step, Trigger};
use gatherdns_core::startup::{line, warning};
use gatherdns_core::Config;
use smol::Timer;

use crate::driver::Driver;
use crate::{describe, watch};

/// What the reload task needs, made before serving so that SIGUSR1 is caught from the first
/// query on (its default action would end the process).
pub(crate) struct Reloading {
    cli: Cli,
    signals: Signals,
    reloader: Reloader,
    /// The `reload` directive's check interval; `None` without one.
    interval: Option<Duration>,
}

impl Reloading {
    /// For a process about to serve `config`, read as `cli` says.
    pub(crate) fn new(cli: &Cli, config: &Config) -> Result<Reloading, String> {
        let signals = Signals::new([Signal::Usr1])
            .map_err(|e| format!("cannot handle signals: {}", describe(&e)))?;
        Ok(Reloading {
            cli: cli.clone(),
            signals,
            reloader: Reloader::new(config),
            interval: reload::check_interval(config, fastrand::u64(..)),
        })
    }
}

/// Starts the reload task on the driver's executor.
pub(crate) fn start(driver: &Rc<Driver>, reloading: Reloading) {
    // CoreDNS prints this at startup when the Corefile uses `reload`.
    if let (Some(_), Some(fingerprint)) = (reloading.interval, reloading.reloader.running()) {
        line(Reloader::running_line(&fingerprint));
    }
    driver.spawn(run(driver.clone(), reloading));
}

async fn run(driver: Rc<Driver>, mut state: Reloading) {
    loop {
        let signal = async {
            match state.signals.next().await {
                Some(Ok(_)) => Some(Trigger::Signal),
                // The signal pipe broke: reload by timer only from now on.
                Some(Err(_)) | None => future::pending().await,
            }
        };
        let trigger = match state.interval {
            Some(every) => {
                let tick = async {
                    Timer::after(every).await;
                    Some(Trigger::Timer)
                };
                future::or(signal, tick).await
            }
            None => signal.await,
        };
        if let Some(trigger) = trigger {
            reload_once(&driver, &mut state, trigger).await;
        }
    }
}

async fn reload_once(driver: &Rc<Driver>, state: &mut Reloading, trigger: Trigger) {
    if trigger == Trigger::Signal {
        line(Reloader::starting(trigger));
    }
    // Reading zone files may take a while: the queries go on meanwhile.
    let cli = state.cli.clone();
    let loaded = smol::unblock(move || reload::load(&cli)).await;
    let step = state.reloader.consider(trigger, loaded);
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
            let interval = reload::check_interval(&config, fastrand::u64(..));
            match driver.reconfigure(config) {
                Ok(()) => {
                    state.interval = interval;
                    watch::start(driver, driver.watched_files());
                    for text in state.reloader.succeeded(fingerprint) {
                        line(text);
                    }
                }
                Err(message) => line(state.reloader.failed(trigger, &message)),
            }
        }
    }
    driver.set_reload_failures(state.reloader.failures());
}
