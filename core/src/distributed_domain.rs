//! A distributed domain as a server block compiles it: the clusters it is gathered from,
//! where each cluster's answers come from (a `forward` or `file` of the block), and the SOA
//! and NS synthesised for it. `block` builds these; `mcs` and the gateway read them.

use std::time::Duration;

use crate::policy::CompiledAnswers;
use crate::routing::{ClusterNames, Naming};
use crate::wire::{Name, Record};

/// Where a cluster's answers come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// Index into the block's forwards.
    Forward(usize),
    /// Index into the block's zones.
    Zone(usize),
}

/// One cluster of the domain: the suffix its names have there, and who answers for it.
pub(crate) struct CompiledCluster {
    pub(crate) suffix: Name,
    /// The cluster's prefix (gathersrv) or cluster ID (multicluster).
    pub(crate) mark: Vec<u8>,
    pub(crate) source: Source,
}

/// One distributed domain gathered from the clusters: gathersrv's, or one zone of
/// multicluster's. The naming scheme is all that differs between the two.
pub(crate) struct CompiledGather {
    pub(crate) naming: Naming,
    pub(crate) domain: Name,
    pub(crate) clusters: Vec<CompiledCluster>,
    pub(crate) timeout: Duration,
    pub(crate) cluster_timeout: Duration,
    /// SOA for negative answers and apex SOA queries.
    pub(crate) soa: Record,
    /// NS for apex NS queries.
    pub(crate) ns: Record,
    /// Which clusters' parts a reply holds, SRV priorities, stale parts.
    pub(crate) answers: CompiledAnswers,
}

impl CompiledGather {
    pub(crate) fn cluster_names(&self) -> Vec<ClusterNames<'_>> {
        self.clusters
            .iter()
            .map(|c| ClusterNames {
                suffix: &c.suffix,
                mark: &c.mark,
            })
            .collect()
    }
}

/// Which gathering of its block a gathered query belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GatherSet {
    Gathersrv,
    /// The index of the zone in the `multicluster` directive.
    Multicluster(usize),
}
