//! Model-based property test of the gateway (firezone's reference-state style): random
//! sequences of client queries, upstream replies right, late, forged, truncated and
//! malformed, send failures, connection events, time, reloads and hosts file changes, with
//! the gateway's invariants and the reference model's expectations checked after every step
//! (`gatherdns_core::fuzzing::run`). Upstream replies are encoded by `domain`.

use gatherdns_core::fuzzing::{run, Op, ReplyKind, Target};
use gatherdns_core::Closed;
use gatherdns_tests::upstream_reply;
use proptest::prelude::*;

/// Cases per run unless PROPTEST_CASES says otherwise: about ten seconds in a debug build.
const CASES: u32 = 256;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(CASES)
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        3 => Just(Target::Gather),
        3 => Just(Target::Proxy),
        1 => Just(Target::Hosts),
        1 => Just(Target::Refused),
    ]
}

fn reply_kind() -> impl Strategy<Value = ReplyKind> {
    prop_oneof![
        6 => Just(ReplyKind::Right),
        1 => Just(ReplyKind::ServFail),
        1 => Just(ReplyKind::WrongId),
        1 => Just(ReplyKind::WrongQuestion),
        1 => Just(ReplyKind::WrongSource),
        1 => Just(ReplyKind::WrongSocket),
        2 => Just(ReplyKind::Truncated),
        1 => proptest::collection::vec(any::<u8>(), 0..24).prop_map(ReplyKind::Malformed),
    ]
}

fn closed() -> impl Strategy<Value = Closed> {
    prop_oneof![
        Just(Closed::ConnectFailed),
        Just(Closed::Lost),
        Just(Closed::Broken)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (target(), any::<bool>(), proptest::bool::weighted(0.1))
            .prop_map(|(target, tcp, srv)| Op::Query { target, tcp, srv }),
        8 => (any::<u8>(), reply_kind()).prop_map(|(pick, kind)| Op::Reply { pick, kind }),
        1 => any::<u8>().prop_map(|pick| Op::Fail { pick }),
        3 => any::<u8>().prop_map(|pick| Op::Open { pick }),
        2 => (any::<u8>(), closed()).prop_map(|(pick, how)| Op::Close { pick, how }),
        3 => (0u16..3000).prop_map(|ms| Op::Advance { ms }),
        2 => Just(Op::NextTimeout),
        1 => (0u8..3).prop_map(|variant| Op::Reconfigure { variant }),
        1 => (0u8..5).prop_map(|variant| Op::UpdateFile { variant }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Whatever happens, in whatever order: every client query is answered exactly once by
    /// its deadline, the gateway's bookkeeping agrees with itself, retired configurations
    /// go, and what it holds stays within its caps.
    #[test]
    fn the_gateway_follows_its_model(ops in proptest::collection::vec(op(), 1..80)) {
        run(&ops, upstream_reply::from_spec).map_err(TestCaseError::fail)?;
    }
}
