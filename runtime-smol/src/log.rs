//! Log lines on stdout in CoreDNS's format (`[INFO] plugin/NAME: …`), so that tooling written
//! for CoreDNS logs keeps working. Write errors (a closed pipe) are ignored: losing a log line
//! must never take the server down, which `println!` would do by panicking.

pub(crate) use gatherdns_core::startup::{error, info, line};
use gatherdns_core::Event;

/// Prints an event of the core: the `log` plugin's query line or the `errors` plugin's line.
pub(crate) fn event(event: Event) {
    gatherdns_core::startup::log_event(&event);
}
