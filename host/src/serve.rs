//! A binary's whole life, written once: the command line, loading and checking the Corefile,
//! starting the runtime's executors, the pidfile and banner, then the main thread waits for a
//! stop signal while the executors serve and the HTTP and reload threads run beside them.
//! Startup failures are one line on stderr and exit code 1; usage errors exit 2, as Go's
//! `flag` package does.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;

use gatherdns_core::Gateway;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::cli::Cli;
use crate::executors::{self, Note};
use crate::log::{self, describe};
use crate::runtime::Runtime;
use crate::{admin, http, kubernetes, panics, reload, startup};

/// How long serving waits for the Kubernetes API's first lists (coredns/multicluster's 5 s).
const KUBERNETES_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The `main` of a binary that serves on runtime `R`.
pub fn main<R: Runtime>() -> ExitCode {
    startup::main(R::NAME, run::<R>)
}

/// Loads and checks the Corefile once, starts the executors, and waits for a stop signal.
/// `Err` is the one-line message.
fn run<R: Runtime>(cli: &Cli) -> Result<(), String> {
    let config = startup::load_config(cli)?;
    let plan = admin::Plan::from_config(&config);
    // Checked here, before any thread starts; each executor builds its own gateway. This one
    // never serves, so its seed does not matter.
    let listeners = Gateway::new(config.clone(), [0; 32])
        .map_err(|e| e.to_string())?
        .listeners()
        .to_vec();
    let kubernetes = kubernetes::prepare(&config, cli.validate)?;
    if cli.validate {
        log::info("Corefile OK");
        return Ok(());
    }
    // Before the executors, so that each joins the Kubernetes views as it starts.
    kubernetes::follow(kubernetes)?;
    let placements = R::placements(cli)?;
    R::prepare(placements.len())?;
    panics::install_hook();
    let (notes, inbox) = mpsc::channel();
    watch_signals(notes.clone())?;
    let pool = executors::start::<R>(placements, &config, &notes, &inbox)?;
    let admin = http::Admin::bind(plan)?;
    let _pidfile = cli.pidfile.as_deref().map(PidFile::write).transpose()?;
    if !cli.quiet {
        log::line(startup::banner(&listeners, R::NAME));
    }
    reload::start(cli, &config, pool.reload.clone())?;
    kubernetes::wait_until_listed(KUBERNETES_WAIT);
    pool.serve();
    // SIGTERM and SIGINT: lameduck, drain, exit (http.rs).
    let stopped = admin.serve_until_stopped(pool.admin.clone(), &inbox);
    // Which executor answered how much: the kernel's spread of clients over the executors.
    for (index, answered) in pool.answered.iter().enumerate() {
        log::info(format_args!(
            "executor {index} answered {} queries",
            answered.get()
        ));
    }
    // The executors end with the process: their sockets close, as they would on drop.
    stopped
}

/// The pidfile, removed when the server stops (best effort: a stale pidfile is harmless).
struct PidFile(PathBuf);

impl PidFile {
    fn write(path: &Path) -> Result<PidFile, String> {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|e| format!("cannot write pidfile {}: {}", path.display(), describe(&e)))?;
        Ok(PidFile(path.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Turns SIGINT and SIGTERM into notes for the main thread, from a thread of their own.
fn watch_signals(notes: mpsc::Sender<Note>) -> Result<(), String> {
    let mut signals = Signals::new([SIGINT, SIGTERM])
        .map_err(|e| format!("cannot handle signals: {}", describe(&e)))?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if notes.send(Note::Signal(signal)).is_err() {
                    break;
                }
            }
        })
        .map_err(|e| format!("cannot handle signals: {}", describe(&e)))?;
    Ok(())
}
