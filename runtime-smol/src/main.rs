//! `gatherdns-smol`: gatherdns for small hosts, on smol's single-threaded executor and
//! async-io's epoll reactor. Everything but the sockets
//! and the executor is the shared server (`gatherdns-host`).

mod runtime;

use std::process::ExitCode;

fn main() -> ExitCode {
    gatherdns_host::main::<runtime::Smol>()
}
