//! The content of a reply before it is put on the wire: what zones, upstreams and the
//! merge produce, and what the reply writer serialises.

use crate::wire::{Rcode, Record};

/// RCODE, flags and the three record sections of a reply.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// The RCODE.
    pub rcode: Rcode,
    /// Authoritative answer.
    pub aa: bool,
    /// Answer section.
    pub answer: Vec<Record>,
    /// Authority section.
    pub authority: Vec<Record>,
    /// Additional section (never OPT).
    pub additional: Vec<Record>,
}

impl Answer {
    /// An empty answer with this RCODE.
    pub fn empty(rcode: Rcode, aa: bool) -> Answer {
        Answer {
            rcode,
            aa,
            answer: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
        }
    }
}
