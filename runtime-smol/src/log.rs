//! Log lines on stdout in CoreDNS's format (`[INFO] plugin/NAME: …`), so that tooling written
//! for CoreDNS logs keeps working. Write errors (a closed pipe) are ignored: losing a log line
//! must never take the server down, which `println!` would do by panicking.

use std::fmt::Display;
use std::io::Write;

use gatherdns_core::Event;

/// Writes one line to stdout.
pub(crate) fn line(text: impl Display) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// `[INFO] message`.
pub(crate) fn info(message: impl Display) {
    line(format_args!("[INFO] {message}"));
}

/// `[WARNING] message`.
pub(crate) fn warning(message: impl Display) {
    line(format_args!("[WARNING] {message}"));
}

/// `[ERROR] message`, for failures of the server itself (not of a query).
pub(crate) fn error(message: impl Display) {
    line(format_args!("[ERROR] {message}"));
}

/// Prints an event of the core: the `log` plugin's query line or the `errors` plugin's line.
pub(crate) fn event(event: Event) {
    match event {
        Event::QueryLogged(log) => info(log.line()),
        // CoreDNS's errors plugin prints the RCODE it answered with (2, SERVFAIL) first.
        Event::Error { query, message } => {
            error(format_args!("plugin/errors: 2 {query}: {message}"))
        }
        // Events added to the core later are observability only; skipping them loses nothing.
        _ => {}
    }
}
