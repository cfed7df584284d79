//! gatherdns-glommio: the thread-per-core io_uring runtime. It is not built yet; until it is,
//! it says so and points at gatherdns-smol instead of pretending to serve.

fn main() {
    eprintln!("gatherdns-glommio is not available in this release; run gatherdns-smol with the same flags");
    std::process::exit(1);
}
