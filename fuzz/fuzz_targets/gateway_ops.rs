//! Any bytes as a sequence of gateway operations (queries, upstream replies and failures,
//! connection events, time, reloads, file changes), with every invariant checked after every
//! step. The decoder and the checks live in `gatherdns_core::fuzzing::gateway_ops`, shared with
//! the corpus replay test and the model-based property test.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gatherdns_core::fuzzing::gateway_ops(data));
