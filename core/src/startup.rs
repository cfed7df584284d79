//! What both server binaries do before and around serving: the command line's informational
//! flags, loading the Corefile it names, and what they print (banner, log lines of the core's
//! events, OS errors) as whole lines on stdout. The binaries do the sockets and the serving.

use std::fmt::{Display, Write as _};
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::process::ExitCode;

use crate::cli::{parse_args, usage, Cli};
use crate::config::Config;
use crate::corefile::SUPPORTED_DIRECTIVES;
use crate::event::Event;

/// The version of every crate of the workspace, as the binaries introduce themselves.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the command line asks for.
#[derive(Debug)]
pub enum Startup {
    /// Load the Corefile and serve it (or only check it, with `-validate`).
    Run(Cli),
    /// Print these and exit without loading anything: help, a usage error, `-version`,
    /// `-plugins`.
    Exit(Exit),
}

/// Output and exit code of a run that ends before loading anything.
#[derive(Debug, PartialEq, Eq)]
pub struct Exit {
    /// Text for stdout, with its final newline.
    pub stdout: String,
    /// Text for stderr, with its final newline.
    pub stderr: String,
    /// 0, or 2 for a usage error as Go's `flag` package does.
    pub code: u8,
}

impl Exit {
    /// Prints the output, stdout first, and gives the exit code. Write errors (a closed pipe)
    /// are ignored, as for every line the binaries print.
    pub fn print(&self) -> ExitCode {
        let _ = io::stdout().lock().write_all(self.stdout.as_bytes());
        let _ = io::stderr().lock().write_all(self.stderr.as_bytes());
        ExitCode::from(self.code)
    }
}

/// A binary's whole `main`: the informational flags, then `serve` with the command line; an
/// `Err` from it is the one line on stderr and exit code 1.
pub fn main(binary: &str, serve: impl FnOnce(&Cli) -> Result<(), String>) -> ExitCode {
    match from_args(std::env::args().skip(1), binary) {
        Startup::Exit(exit) => exit.print(),
        Startup::Run(cli) => match serve(&cli) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                let _ = writeln!(io::stderr().lock(), "{message}");
                ExitCode::FAILURE
            }
        },
    }
}

/// Parses the arguments (without the program name) and handles the flags that only print.
pub fn from_args(args: impl IntoIterator<Item = String>, binary: &str) -> Startup {
    let exit = |stdout: String, stderr: String, code| {
        Startup::Exit(Exit {
            stdout,
            stderr,
            code,
        })
    };
    let cli = match parse_args(args) {
        Ok(cli) => cli,
        Err(message) if message.starts_with("Usage of ") => {
            return exit(String::new(), usage(binary), 0)
        }
        Err(message) => return exit(String::new(), format!("{message}\n{}", usage(binary)), 2),
    };
    if cli.version {
        return exit(format!("{binary} {VERSION}\n"), String::new(), 0);
    }
    if cli.plugins {
        return exit(plugins(), String::new(), 0);
    }
    Startup::Run(cli)
}

/// CoreDNS's `-plugins` layout, so that scripts that grep it keep working.
fn plugins() -> String {
    let mut text = String::from("Server types:\n  dns\n\nOther plugins:\n");
    for directive in SUPPORTED_DIRECTIVES {
        let _ = writeln!(text, "  dns.{directive}");
    }
    text
}

/// Reads the Corefile the command line names, with its imports, and prints its warnings as
/// `[WARNING]` lines. `Err` is the one-line message the binary prints before exiting with 1.
pub fn load_config(cli: &Cli) -> Result<Config, String> {
    let config = read_config(cli)?;
    for text in &config.warnings {
        warning(text);
    }
    Ok(config)
}

/// The configuration carries the fingerprint a reload compares ([`crate::reload::load`]).
fn read_config(cli: &Cli) -> Result<Config, String> {
    crate::reload::load(cli).config
}

/// CoreDNS's startup banner: one `dns://ADDR` line per listener, then `BINARY-VERSION`.
pub fn banner(listeners: &[SocketAddr], binary: &str) -> String {
    let mut text = String::new();
    for addr in listeners {
        let _ = writeln!(text, "dns://{addr}");
    }
    let _ = write!(text, "{binary}-{VERSION}");
    text
}

/// The log line of an event of the core: the `log` plugin's query line or the `errors`
/// plugin's line. `None` for events that are not logged (counters only).
pub fn event_line(event: &Event) -> Option<String> {
    match event {
        Event::QueryLogged(log) => Some(format!("[INFO] {}", log.line())),
        // CoreDNS's errors plugin prints the RCODE it answered with (2, SERVFAIL) first.
        Event::Error { query, message } => Some(format!(
            "[ERROR] plugin/errors: 2 {query}: {message}"
        )),
        Event::UpstreamHealth { upstream, healthy: false } => Some(format!(
            "[WARNING] plugin/forward: upstream {upstream} is down: skipped until a health check succeeds"
        )),
        Event::UpstreamHealth { upstream, healthy: true } => Some(format!(
            "[INFO] plugin/forward: upstream {upstream} is healthy again"
        )),
        // Events added to the core later are observability only until a binary logs them.
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

/// Writes one line to stdout in one piece, so that threads printing at once never interleave
/// mid-line. Write errors (a closed pipe) are ignored: losing a log line must never take the
/// server down, which `println!` would do by panicking.
pub fn line(text: impl Display) {
    let _ = writeln!(io::stdout().lock(), "{text}");
}

/// `[INFO] message`.
pub fn info(message: impl Display) {
    line(format_args!("[INFO] {message}"));
}

/// `[WARNING] message`.
pub fn warning(message: impl Display) {
    line(format_args!("[WARNING] {message}"));
}

/// `[ERROR] message`, for failures of the server itself (not of a query).
pub fn error(message: impl Display) {
    line(format_args!("[ERROR] {message}"));
}

/// Prints an event of the core, if it is one that is logged.
pub fn log_event(event: &Event) {
    if let Some(text) = event_line(event) {
        line(text);
    }
}

/// An OS error as Go prints it (`address already in use`), without Rust's "(os error 98)".
pub fn describe(error: &io::Error) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn informational_flags_exit_before_loading() {
        let Startup::Exit(exit) = from_args(args(&["-version"]), "gatherdns-x") else {
            panic!("-version exits");
        };
        assert_eq!(exit.stdout, format!("gatherdns-x {VERSION}\n"));
        assert_eq!(exit.code, 0);
        let Startup::Exit(exit) = from_args(args(&["-plugins"]), "gatherdns-x") else {
            panic!("-plugins exits");
        };
        assert!(exit.stdout.contains("  dns.gathersrv\n"));
        let Startup::Exit(exit) = from_args(args(&["-frobnicate"]), "gatherdns-x") else {
            panic!("an unknown flag exits");
        };
        assert_eq!(exit.code, 2);
        assert!(
            exit.stderr.contains("-frobnicate") && exit.stderr.contains("Usage of gatherdns-x:")
        );
        assert!(matches!(
            from_args(args(&["-conf", "x"]), "gatherdns-x"),
            Startup::Run(cli) if cli.conf == Path::new("x")
        ));
    }

    #[test]
    fn banner_lists_listeners_then_version() {
        let addrs: Vec<SocketAddr> = vec!["127.0.0.1:1053".parse().expect("addr")];
        assert_eq!(
            banner(&addrs, "gatherdns-x"),
            format!("dns://127.0.0.1:1053\ngatherdns-x-{VERSION}")
        );
    }

    #[test]
    fn os_errors_read_like_go() {
        let error = io::Error::from_raw_os_error(98);
        assert_eq!(describe(&error), "address already in use");
    }

    #[test]
    fn missing_corefile_is_named() {
        let cli = Cli {
            conf: "/nonexistent/Corefile".into(),
            ..Cli::default()
        };
        let error = load_config(&cli).expect_err("no such file");
        assert!(error.contains("/nonexistent/Corefile"), "{error}");
    }
}
