//! `gatherdns-glommio`: the command line and Corefile exactly as gatherdns-smol reads them,
//! then one glommio executor per CPU, each serving every listener with its own gateway and
//! sockets, until SIGINT or SIGTERM. Startup failures are one line on stderr and exit code 1.

mod admin;
mod budget;
mod driver;
mod executors;
mod log;
mod peers;
mod reload;
mod tcp;
mod timer;
mod udp;
mod upstream;
mod upstream_tcp;
mod uring;
mod watch;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;

use gatherdns_core::cli::Cli;
use gatherdns_core::startup;
pub(crate) use gatherdns_core::startup::describe;
use gatherdns_core::Gateway;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::executors::Note;

/// The binary's name, as it introduces itself.
const NAME: &str = "gatherdns-glommio";

fn main() -> ExitCode {
    startup::main(NAME, run)
}

/// Loads and checks the Corefile once, starts the executors, and waits for a stop signal.
/// `Err` is the one-line message.
fn run(cli: &Cli) -> Result<(), String> {
    let config = startup::load_config(cli)?;
    let plan = gatherdns_core::admin::Plan::from_config(&config);
    // Checked here, before any thread starts; each executor builds its own gateway. This one
    // never serves, so its seed does not matter.
    let listeners = Gateway::new(config.clone(), [0; 32])
        .map_err(|e| e.to_string())?
        .listeners()
        .to_vec();
    if cli.validate {
        log::info("Corefile OK");
        return Ok(());
    }
    let placements = executors::placements(cli.threads, cli.cpus.as_deref())?;
    uring::prepare(placements.len())?;
    executors::install_panic_hook();
    let (notes, inbox) = mpsc::channel();
    watch_signals(notes.clone())?;
    let pool = executors::start(placements, &config, &notes, &inbox)?;
    let admin = admin::Admin::bind(plan)?;
    let _pidfile = cli.pidfile.as_deref().map(PidFile::write).transpose()?;
    if !cli.quiet {
        log::line(startup::banner(&listeners, NAME));
    }
    reload::start(cli, &config, pool.reload.clone())?;
    pool.serve();
    // SIGTERM and SIGINT: lameduck, drain, exit (admin.rs).
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

/// The seed of a gateway's RNG, from the OS: sub-query IDs must not be predictable.
pub(crate) fn seed() -> Result<[u8; 32], String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| format!("cannot seed the random number generator: {e}"))?;
    Ok(seed)
}

/// Turns SIGINT and SIGTERM into notes for the main thread, from a thread of their own
/// (glommio's executors have no signal stream).
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
