//! Any text as a Corefile; an accepted one must also build and run a gateway.
//! The checks live in `gatherdns_core::fuzzing::corefile`, shared with the corpus replay test.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gatherdns_core::fuzzing::corefile(data));
