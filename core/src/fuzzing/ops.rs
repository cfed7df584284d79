//! The operations the reference model runs, and the `gateway_ops` fuzz target: bytes decoded
//! into a sequence of [`Op`]s, run against the model of `model.rs`, with every invariant
//! checked after every step.

use super::model::run;
use super::reply::encode_with_domain;
use crate::transmit::Closed;

/// What a client asks about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A name of the distributed domain: both clusters are asked.
    Gather,
    /// A name of the `forward` block.
    Proxy,
    /// The name of the `hosts` file: answered at once.
    Hosts,
    /// A name no block serves: REFUSED at once.
    Refused,
}

/// How a simulated upstream replies to the sub-query it picks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplyKind {
    /// The genuine reply, with an address that names the client query.
    Right,
    /// A genuine SERVFAIL.
    ServFail,
    /// Another message ID.
    WrongId,
    /// Right ID and source, another question.
    WrongQuestion,
    /// From another port of the upstream's address (over TCP: as a datagram).
    WrongSource,
    /// To another of the gateway's sockets (over TCP: on another connection).
    WrongSocket,
    /// TC=1 and no records.
    Truncated,
    /// These bytes, with the sub-query's ID written over the first two.
    Malformed(Vec<u8>),
}

/// One step of a sequence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// A new client asks one question, over UDP or TCP, for A (or SRV).
    Query {
        target: Target,
        tcp: bool,
        srv: bool,
    },
    /// An upstream replies to a sub-query it received (`pick` counts back from the newest).
    Reply { pick: u8, kind: ReplyKind },
    /// The driver could not send a UDP sub-query.
    Fail { pick: u8 },
    /// A connection the gateway asked for opens.
    Open { pick: u8 },
    /// A connection ends: `ConnectFailed` one still opening, `Lost`/`Broken` an open one.
    Close { pick: u8, how: Closed },
    /// Time passes, with every deadline on the way handled when it falls due.
    Advance { ms: u16 },
    /// Time jumps to the gateway's next deadline, which is handled.
    NextTimeout,
    /// One of the configurations is loaded.
    Reconfigure { variant: u8 },
    /// The hosts file changes (to one of a few texts, one malformed), or another path does.
    UpdateFile { variant: u8 },
}

/// Steps per input at most, so that an input runs in well under a millisecond per step.
const MAX_OPS: usize = 128;

/// Decodes `data`, runs it and panics (a crash the fuzzer keeps) with the first violation.
pub fn gateway_ops(data: &[u8]) {
    let ops = decode_ops(data);
    if let Err(why) = run(&ops, encode_with_domain) {
        panic!("{why}");
    }
}

/// A byte-driven decoder: each step is a selector byte and its arguments, a missing byte
/// read as 0, so that every input is a valid sequence and nearby inputs nearby sequences.
pub fn decode_ops(data: &[u8]) -> Vec<Op> {
    let mut bytes = data.iter().copied();
    let mut ops = Vec::new();
    while let Some(selector) = bytes.next() {
        if ops.len() == MAX_OPS {
            break;
        }
        let mut arg = || bytes.next().unwrap_or(0);
        let op = match selector % 12 {
            0..=2 => {
                let a = arg();
                let target = [
                    Target::Gather,
                    Target::Proxy,
                    Target::Hosts,
                    Target::Refused,
                ];
                Op::Query {
                    target: target[usize::from(a & 3)],
                    tcp: a & 4 != 0,
                    srv: a & 0x18 == 0x18,
                }
            }
            3..=5 => {
                let (how, pick) = (arg(), arg());
                let kind = match how % 10 {
                    0..=2 => ReplyKind::Right,
                    3 => ReplyKind::ServFail,
                    4 => ReplyKind::WrongId,
                    5 => ReplyKind::WrongQuestion,
                    6 => ReplyKind::WrongSource,
                    7 => ReplyKind::WrongSocket,
                    8 => ReplyKind::Truncated,
                    _ => {
                        let len = usize::from(arg() % 32);
                        ReplyKind::Malformed((0..len).map(|_| arg()).collect())
                    }
                };
                Op::Reply { pick, kind }
            }
            6 => Op::Fail { pick: arg() },
            7 => Op::Open { pick: arg() },
            8 => {
                let (how, pick) = (arg(), arg());
                let how =
                    [Closed::ConnectFailed, Closed::Lost, Closed::Broken][usize::from(how % 3)];
                Op::Close { pick, how }
            }
            // Up to about 4 s: past every attempt's and query's deadline.
            9 => Op::Advance {
                ms: u16::from(arg()) * 16,
            },
            10 => Op::NextTimeout,
            _ => {
                let a = arg();
                if a & 1 == 0 {
                    Op::UpdateFile { variant: a >> 1 }
                } else {
                    Op::Reconfigure { variant: a >> 1 }
                }
            }
        };
        ops.push(op);
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(target: Target, tcp: bool) -> Op {
        Op::Query {
            target,
            tcp,
            srv: false,
        }
    }

    fn reply(pick: u8, kind: ReplyKind) -> Op {
        Op::Reply { pick, kind }
    }

    /// Every kind of step at least once, in an order where each has something to act on.
    #[test]
    fn a_scripted_sequence_keeps_the_invariants() {
        let ops = vec![
            query(Target::Proxy, false),
            reply(0, ReplyKind::WrongId),
            reply(0, ReplyKind::WrongQuestion),
            reply(0, ReplyKind::WrongSource),
            reply(0, ReplyKind::WrongSocket),
            reply(0, ReplyKind::Right),
            query(Target::Gather, false),
            reply(0, ReplyKind::Truncated),
            Op::Open { pick: 0 },
            reply(0, ReplyKind::Right),
            reply(1, ReplyKind::Right),
            query(Target::Hosts, false),
            Op::UpdateFile { variant: 1 },
            query(Target::Hosts, true),
            Op::UpdateFile { variant: 3 },
            Op::UpdateFile { variant: 4 },
            query(Target::Refused, false),
            query(Target::Proxy, true),
            Op::Open { pick: 0 },
            query(Target::Proxy, false),
            Op::Fail { pick: 0 },
            Op::Reconfigure { variant: 1 },
            reply(1, ReplyKind::Malformed(vec![1, 2, 3])),
            Op::Close {
                pick: 0,
                how: Closed::Lost,
            },
            Op::Advance { ms: 700 },
            Op::NextTimeout,
            query(Target::Gather, true),
            Op::Advance { ms: 4000 },
            Op::Reconfigure { variant: 2 },
            Op::Advance { ms: 4000 },
        ];
        run(&ops, encode_with_domain).unwrap();
    }

    /// Queries past `max_inflight` are refused at once, and the others still end in time.
    #[test]
    fn the_inflight_cap_refuses_at_once() {
        let mut ops: Vec<Op> = (0..10).map(|i| query(Target::Proxy, i % 2 == 0)).collect();
        ops.push(Op::Advance { ms: 3000 });
        run(&ops, encode_with_domain).unwrap();
    }

    #[test]
    fn every_input_decodes() {
        assert!(decode_ops(&[]).is_empty());
        let ops = decode_ops(&[0, 1, 3, 0, 0, 9, 200, 11, 1, 5]);
        assert_eq!(ops.len(), 5);
        assert_eq!(ops[2], Op::Advance { ms: 3200 });
        gateway_ops(&[0, 1, 3, 0, 0, 9, 200, 11, 1, 5, 4, 9, 0, 20]);
    }
}
