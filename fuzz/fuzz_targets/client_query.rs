//! Any bytes as a client message (UDP and TCP) to a gateway answering from zones.
//! The checks live in `gatherdns_core::fuzzing::client_query`, shared with the corpus replay test.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gatherdns_core::fuzzing::client_query(data));
