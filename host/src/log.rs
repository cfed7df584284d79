//! Log lines on stdout in CoreDNS's format (`[INFO] plugin/NAME: …`), so that tooling written
//! for CoreDNS logs keeps working, and OS errors as Go prints them.

use std::fmt::Display;
use std::io::{self, Write as _};

use gatherdns_core::Event;

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
        Event::Fatal { plugin, message } => Some(format!("[FATAL] plugin/{plugin}: {message}")),
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

    #[test]
    fn os_errors_read_like_go() {
        let error = io::Error::from_raw_os_error(98);
        assert_eq!(describe(&error), "address already in use");
    }
}
