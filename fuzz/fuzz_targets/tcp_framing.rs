//! Any chunking of any TCP stream through the frame decoder.
//! The checks live in `gatherdns_core::fuzzing::tcp_framing`, shared with the corpus replay test.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gatherdns_core::fuzzing::tcp_framing(data));
