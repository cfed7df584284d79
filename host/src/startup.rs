//! What both server binaries do before serving: the command line's informational flags,
//! loading the Corefile it names, and the banner.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::process::ExitCode;

use gatherdns_core::config::Config;
use gatherdns_core::corefile::SUPPORTED_DIRECTIVES;
use gatherdns_core::VERSION;

use crate::cli::{parse_args, usage, Cli};
use crate::log::warning;

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

/// The configuration carries the fingerprint a reload compares ([`crate::reload::reader::load`]).
fn read_config(cli: &Cli) -> Result<Config, String> {
    crate::reload::reader::load(cli).config
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
    fn missing_corefile_is_named() {
        let cli = Cli {
            conf: "/nonexistent/Corefile".into(),
            ..Cli::default()
        };
        let error = load_config(&cli).expect_err("no such file");
        assert!(error.contains("/nonexistent/Corefile"), "{error}");
    }
}
