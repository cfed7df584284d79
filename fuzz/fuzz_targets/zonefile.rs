//! Any text as a zone file for `example.`.
//! The checks live in `gatherdns_core::fuzzing::zonefile`, shared with the corpus replay test.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gatherdns_core::fuzzing::zonefile(data));
