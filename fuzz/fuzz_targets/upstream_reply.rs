//! Any bytes as the upstream reply to a gathered query's sub-queries.
//! The checks live in `gatherdns_core::fuzzing::upstream_reply`, shared with the corpus replay test.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gatherdns_core::fuzzing::upstream_reply(data));
