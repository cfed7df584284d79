//! `gatherdns-glommio`: gatherdns for high-load hosts, thread per core on glommio: one
//! executor per CPU, each serving every listener (SO_REUSEPORT) with its own gateway and
//! sockets over io_uring. Everything but executors, placement and sockets is the shared
//! server (`gatherdns-host`).

mod placement;
mod runtime;
mod uring;

use std::process::ExitCode;

fn main() -> ExitCode {
    gatherdns_host::main::<runtime::Glommio>()
}
