//! `gatherdns-smol`: the command line, loading and checking the Corefile, binding the
//! listeners, and running the driver on one thread until SIGINT or SIGTERM. Startup failures
//! are one line on stderr and exit code 1; usage errors exit 2, as Go's `flag` package does.

mod admin;
mod batch;
mod driver;
mod log;
mod reload;
mod tcp;
mod timer;
mod udp;
mod upstream;
mod upstream_tcp;
mod watch;

use std::process::ExitCode;
use std::rc::Rc;

use async_signal::{Signal, Signals};
use gatherdns_core::cli::Cli;
use gatherdns_core::startup;
pub(crate) use gatherdns_core::startup::describe;
use gatherdns_core::Gateway;
use smol::LocalExecutor;

use crate::driver::{Driver, Listener};

/// The binary's name, as it introduces itself.
const NAME: &str = "gatherdns-smol";

fn main() -> ExitCode {
    startup::main(NAME, run)
}

/// Loads, checks, binds and serves; returns on a stop signal. `Err` is the one-line message.
fn run(cli: &Cli) -> Result<(), String> {
    let config = startup::load_config(cli)?;
    let reloading = reload::Reloading::new(cli, &config)?;
    let plan = admin::plan(&config);
    let gateway = Gateway::new(config, seed()?).map_err(|e| e.to_string())?;
    if cli.validate {
        log::info("Corefile OK");
        return Ok(());
    }
    let listeners = bind(gateway.listeners())?;
    let admin = admin::Admin::bind(plan)?;
    if let Some(path) = &cli.pidfile {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|e| format!("cannot write pidfile {}: {}", path.display(), describe(&e)))?;
    }
    if !cli.quiet {
        log::line(startup::banner(gateway.listeners(), NAME));
    }
    let result = serve(gateway, listeners, reloading, admin);
    if let Some(path) = &cli.pidfile {
        // Best effort: a stale pidfile is harmless, a failure to stop is not.
        let _ = std::fs::remove_file(path);
    }
    result
}

/// The gateway's RNG seed, from the OS: sub-query IDs must not be predictable.
fn seed() -> Result<[u8; 32], String> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| format!("cannot seed the random number generator: {e}"))?;
    Ok(seed)
}

/// Binds UDP, then TCP, on every listening address, before anything is served: a port in use
/// is a startup error, not a half-working server.
fn bind(addrs: &[std::net::SocketAddr]) -> Result<Vec<Listener>, String> {
    addrs
        .iter()
        .map(|addr| {
            Ok(Listener {
                udp: udp::bind(*addr)?,
                tcp: tcp::bind(*addr)?,
            })
        })
        .collect()
}

/// Runs the driver until SIGINT or SIGTERM.
fn serve(
    gateway: Gateway,
    listeners: Vec<Listener>,
    reloading: reload::Reloading,
    admin: admin::Admin,
) -> Result<(), String> {
    let signals = Signals::new([Signal::Int, Signal::Term])
        .map_err(|e| format!("cannot handle signals: {}", describe(&e)))?;
    let executor = Rc::new(LocalExecutor::new());
    let files = gateway.watched_files();
    let driver = Driver::start(gateway, listeners, executor.clone());
    watch::start(&driver, files);
    reload::start(&driver, reloading);
    // SIGTERM and SIGINT: lameduck, drain, exit (admin.rs).
    let stop = admin.run(&driver, signals);
    smol::block_on(executor.run(stop));
    Ok(())
}
