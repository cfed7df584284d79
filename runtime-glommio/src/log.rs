//! Log lines on stdout in CoreDNS's format (`[INFO] plugin/NAME: …`), printed as gatherdns-smol
//! prints them: one whole line per write, so that executors printing at once never interleave.

pub(crate) use gatherdns_core::startup::{error, info, line, log_event as event};
