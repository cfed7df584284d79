//! Deterministic simulation tests of the core: every rule of SPEC §3 and §5 driven through
//! `Gateway` with a simulated clock and simulated upstreams. No sockets, no sleeping.

mod deadlines;
mod fixtures;
mod gather;
mod hygiene;
mod truncation;
mod zones;
