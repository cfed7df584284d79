//! `gatherdns-smol`: the command line, loading and checking the Corefile, binding the
//! listeners, and running the driver on one thread until SIGINT or SIGTERM. Startup failures
//! are one line on stderr and exit code 1; usage errors exit 2, as Go's `flag` package does.

mod driver;
mod log;
mod tcp;
mod timer;
mod udp;
mod upstream;

use std::io;
use std::path::Path;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Instant;

use async_signal::{Signal, Signals};
use futures_lite::StreamExt;
use gatherdns_core::cli::{parse_args, usage, Cli};
use gatherdns_core::corefile::{parse_corefile, ParseOptions, SUPPORTED_DIRECTIVES};
use gatherdns_core::loader::FsLoader;
use gatherdns_core::{Config, Gateway};
use smol::LocalExecutor;

use crate::driver::{Driver, Listener};

/// The binary's name, as it introduces itself.
const NAME: &str = "gatherdns-smol";

/// The crate version, shared by the whole workspace.
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn main() -> ExitCode {
    let cli = match parse_args(std::env::args().skip(1)) {
        Ok(cli) => cli,
        Err(message) if message.starts_with("Usage of ") => {
            eprint!("{}", usage(NAME));
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("{message}");
            eprint!("{}", usage(NAME));
            return ExitCode::from(2);
        }
    };
    if cli.version {
        println!("{NAME} {VERSION}");
        return ExitCode::SUCCESS;
    }
    if cli.plugins {
        print_plugins();
        return ExitCode::SUCCESS;
    }
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// CoreDNS's `-plugins` layout, so that scripts that grep it keep working.
fn print_plugins() {
    let mut text = String::from("Server types:\n  dns\n\nOther plugins:\n");
    for directive in SUPPORTED_DIRECTIVES {
        text.push_str(&format!("  dns.{directive}\n"));
    }
    log::line(text.trim_end());
}

/// Loads, checks, binds and serves; returns on a stop signal. `Err` is the one-line message.
fn run(cli: &Cli) -> Result<(), String> {
    let config = load(cli)?;
    for warning in &config.warnings {
        log::warning(warning);
    }
    let gateway = Gateway::new(config, Instant::now(), seed()?).map_err(|e| e.to_string())?;
    if cli.validate {
        log::info("Corefile OK");
        return Ok(());
    }
    let listeners = bind(gateway.listeners())?;
    if let Some(path) = &cli.pidfile {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|e| format!("cannot write pidfile {}: {}", path.display(), describe(&e)))?;
    }
    if !cli.quiet {
        for addr in gateway.listeners() {
            log::line(format_args!("dns://{addr}"));
        }
        log::line(format_args!("{NAME}-{VERSION}"));
    }
    let result = serve(gateway, listeners);
    if let Some(path) = &cli.pidfile {
        // Best effort: a stale pidfile is harmless, a failure to stop is not.
        let _ = std::fs::remove_file(path);
    }
    result
}

fn load(cli: &Cli) -> Result<Config, String> {
    if !Path::new(&cli.conf).exists() {
        return Err(format!(
            "no Corefile at {} (give one with -conf FILE)",
            cli.conf.display()
        ));
    }
    let options = ParseOptions {
        default_port: cli
            .dns_port
            .unwrap_or(gatherdns_core::config::defaults::PORT),
    };
    parse_corefile(&cli.conf, &FsLoader, &options).map_err(|e| e.to_string())
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
fn serve(gateway: Gateway, listeners: Vec<Listener>) -> Result<(), String> {
    let mut signals = Signals::new([Signal::Int, Signal::Term])
        .map_err(|e| format!("cannot handle signals: {}", describe(&e)))?;
    let executor = Rc::new(LocalExecutor::new());
    let _driver = Driver::start(gateway, listeners, executor.clone());
    let stop = async {
        match signals.next().await {
            Some(Ok(Signal::Term)) => log::info("SIGTERM: Shutting down servers then terminating"),
            Some(Ok(_)) => log::info("SIGINT: Shutting down"),
            Some(Err(e)) => log::error(format_args!("signal handling failed: {e}")),
            None => {}
        }
    };
    smol::block_on(executor.run(stop));
    Ok(())
}

/// An OS error as Go prints it (`address already in use`), without Rust's "(os error 98)".
pub(crate) fn describe(error: &io::Error) -> String {
    let text = error.to_string();
    let text = match text.find(" (os error") {
        Some(end) => &text[..end],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
