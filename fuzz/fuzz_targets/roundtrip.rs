//! Parse → write → parse → compare of upstream-style messages.
//! The checks live in `gatherdns_core::fuzzing::roundtrip`, shared with the corpus replay test.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gatherdns_core::fuzzing::roundtrip(data));
