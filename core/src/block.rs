//! Server blocks in the form the gateway uses them: zones loaded, each cluster bound to the
//! `forward` or `file` that answers its suffix, synthesised records prepared once.

use std::time::Duration;

use crate::config::{Gather, ServerBlock};
use crate::error::ConfigError;
use crate::routing::ClusterNames;
use crate::upstream::Pool;
use crate::wire::{Name, Record, SoaFields};
use crate::zone::Zone;

/// Where a cluster's answers come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// Index into the block's forwards.
    Forward(usize),
    /// Index into the block's zones.
    Zone(usize),
}

pub(crate) struct ClusterRt {
    pub(crate) suffix: Name,
    pub(crate) prefix: Vec<u8>,
    pub(crate) source: Source,
}

pub(crate) struct GatherRt {
    pub(crate) domain: Name,
    pub(crate) clusters: Vec<ClusterRt>,
    pub(crate) timeout: Duration,
    pub(crate) cluster_timeout: Duration,
    /// SOA for negative answers and apex SOA queries.
    pub(crate) soa: Record,
    /// NS for apex NS queries.
    pub(crate) ns: Record,
}

impl GatherRt {
    pub(crate) fn cluster_names(&self) -> Vec<ClusterNames<'_>> {
        self.clusters
            .iter()
            .map(|c| ClusterNames {
                suffix: &c.suffix,
                prefix: &c.prefix,
            })
            .collect()
    }
}

/// A `forward` of the block: its zone and its pool in the gateway's pool table.
pub(crate) struct ForwardRt {
    pub(crate) from: Name,
    pub(crate) pool: usize,
}

pub(crate) struct Block {
    pub(crate) gather: Option<GatherRt>,
    pub(crate) zones: Vec<Zone>,
    pub(crate) forwards: Vec<ForwardRt>,
    pub(crate) log: bool,
    pub(crate) errors: bool,
    /// The EDNS UDP size we advertise and the cap on UDP replies (`bufsize`).
    pub(crate) bufsize: u16,
}

impl Block {
    /// Builds the block; its forwards' pools are appended to `pools`.
    pub(crate) fn new(
        config: &ServerBlock,
        serial: u32,
        pools: &mut Vec<Pool>,
    ) -> Result<Block, ConfigError> {
        let mut zones = Vec::with_capacity(config.files.len());
        for file in &config.files {
            let zone = Zone::new(file.origin.clone(), file.records.clone()).map_err(|e| {
                ConfigError::at(&file.location, format!("file: {}: {e}", file.path))
            })?;
            zones.push(zone);
        }
        let forwards: Vec<ForwardRt> = config
            .forwards
            .iter()
            .map(|f| {
                pools.push(Pool::new(f));
                ForwardRt {
                    from: f.from.clone(),
                    pool: pools.len() - 1,
                }
            })
            .collect();
        let mut block = Block {
            gather: None,
            zones,
            forwards,
            log: config.log,
            errors: config.errors,
            bufsize: config.bufsize,
        };
        if let Some(g) = config.gathers.first() {
            block.gather = Some(block.gather_rt(g, serial)?);
        }
        Ok(block)
    }

    fn gather_rt(&self, g: &Gather, serial: u32) -> Result<GatherRt, ConfigError> {
        let mut clusters = Vec::with_capacity(g.clusters.len());
        for c in &g.clusters {
            let source = self.source_for(&c.suffix).ok_or_else(|| {
                ConfigError::at(
                    &g.location,
                    format!(
                        "gathersrv: cluster {} has no forward or file in this server block that covers it \
                         (add `forward {} IP[:PORT]`)",
                        c.suffix, c.suffix
                    ),
                )
            })?;
            clusters.push(ClusterRt {
                suffix: c.suffix.clone(),
                prefix: c.prefix.as_bytes().to_vec(),
                source,
            });
        }
        let label = |l: &str| {
            Name::from_labels([l.as_bytes()], &g.domain)
                .map_err(|e| ConfigError::at(&g.location, format!("gathersrv: {e}")))
        };
        let mname = Name::from_labels([b"ns".as_slice(), b"dns".as_slice()], &g.domain)
            .map_err(|e| ConfigError::at(&g.location, format!("gathersrv: {e}")))?;
        let soa = SoaFields {
            mname: mname.clone(),
            rname: label("hostmaster")?,
            serial,
            refresh: 7200,
            retry: 1800,
            expire: 86400,
            minimum: g.negative_ttl,
        };
        Ok(GatherRt {
            domain: g.domain.clone(),
            clusters,
            timeout: g.timeout,
            cluster_timeout: g.cluster_timeout,
            soa: Record::soa(g.domain.clone(), g.negative_ttl, &soa),
            ns: Record::ns(g.domain.clone(), g.negative_ttl, mname),
        })
    }

    /// A zone covering `name`, else the forward covering it: CoreDNS runs `file` before
    /// `forward`, so a zone in the block shadows a forward for its names.
    fn source_for(&self, name: &Name) -> Option<Source> {
        self.zone_for(name)
            .map(Source::Zone)
            .or_else(|| self.forward_for(name).map(Source::Forward))
    }

    /// The zone with the longest origin covering `name`.
    pub(crate) fn zone_for(&self, name: &Name) -> Option<usize> {
        self.zones
            .iter()
            .enumerate()
            .filter(|(_, z)| name.is_at_or_below(z.origin()))
            .max_by_key(|(_, z)| z.origin().label_count())
            .map(|(i, _)| i)
    }

    /// The forward with the longest FROM covering `name`.
    pub(crate) fn forward_for(&self, name: &Name) -> Option<usize> {
        self.forwards
            .iter()
            .enumerate()
            .filter(|(_, f)| name.is_at_or_below(&f.from))
            .max_by_key(|(_, f)| f.from.label_count())
            .map(|(i, _)| i)
    }

    /// RA is set on replies of blocks that can recurse through a forward.
    pub(crate) fn recursion_available(&self) -> bool {
        !self.forwards.is_empty()
    }
}
