//! Server blocks in the form the gateway uses them: zones loaded, each cluster bound to the
//! `forward` or `file` that answers its suffix, the local answerers (`hosts`,
//! `multicluster_gw`) built, synthesised records prepared once.

use std::net::IpAddr;
use std::time::Duration;

use crate::answer::synthesised_soa_ns;
use crate::cache::response::ResponseCache;
use crate::config::{defaults, AnswerOptions, Gather, Location, Multicluster, ServerBlock};
use crate::distributed_domain::{CompiledCluster, CompiledGather, GatherSet, NameServer, Source};
use crate::error::ConfigError;
use crate::hosts::CompiledHosts;
use crate::loop_detect::LoopCheck;
use crate::mcs::CompiledMulticluster;
use crate::multicluster_gw::CompiledMulticlusterGw;
use crate::policy::CompiledAnswers;
use crate::routing::Naming;
use crate::upstream_pool::Pool;
use crate::wire::Name;
use crate::zone::Zone;

/// A gathering directive in the shape both `gathersrv` and `multicluster` give.
struct GatherSpec<'a> {
    directive: &'static str,
    naming: Naming,
    domain: &'a Name,
    /// (suffix, mark) per cluster.
    clusters: Vec<(&'a Name, &'a [u8])>,
    timeout: Duration,
    cluster_timeout: Duration,
    negative_ttl: u32,
    /// The addresses of the domain's name server.
    ns_ips: &'a [IpAddr],
    /// gathersrv's answer options (multicluster has none: the union).
    answers: Option<&'a AnswerOptions>,
    location: &'a Location,
}

/// A `forward` of the block: its zone and its pool in the gateway's pool table.
pub(crate) struct CompiledForward {
    pub(crate) from: Name,
    pub(crate) pool: usize,
}

pub(crate) struct Block {
    pub(crate) gather: Option<CompiledGather>,
    pub(crate) hosts: Option<CompiledHosts>,
    pub(crate) multicluster_gw: Option<CompiledMulticlusterGw>,
    pub(crate) multicluster: Option<CompiledMulticluster>,
    pub(crate) zones: Vec<Zone>,
    pub(crate) forwards: Vec<CompiledForward>,
    pub(crate) log: bool,
    pub(crate) errors: bool,
    /// The EDNS UDP size we advertise and the cap on UDP replies (`bufsize`).
    pub(crate) bufsize: u16,
    /// `prometheus`: the block's queries count in `coredns_dns_*`.
    pub(crate) prometheus: bool,
    /// `cache`.
    pub(crate) cache: Option<ResponseCache>,
    /// `loadbalance`.
    pub(crate) loadbalance: bool,
    /// `loop`.
    pub(crate) loop_check: Option<LoopCheck>,
}

impl Block {
    /// Builds the block; its forwards' pools are appended to `pools`. `seed` keys the hash
    /// tables of what it keeps between queries (its cache, stale parts).
    pub(crate) fn new(
        config: &ServerBlock,
        serial: u32,
        pools: &mut Vec<Pool>,
        seed: u64,
    ) -> Result<Block, ConfigError> {
        let mut zones = Vec::with_capacity(config.files.len());
        for file in &config.files {
            let zone = Zone::new(file.origin.clone(), file.records.clone()).map_err(|e| {
                ConfigError::at(&file.location, format!("file: {}: {e}", file.path))
            })?;
            zones.push(zone);
        }
        let forwards: Vec<CompiledForward> = config
            .forwards
            .iter()
            .map(|f| {
                pools.push(Pool::new(f));
                CompiledForward {
                    from: f.from.clone(),
                    pool: pools.len() - 1,
                }
            })
            .collect();
        let mut block = Block {
            gather: None,
            hosts: None,
            multicluster_gw: None,
            multicluster: None,
            zones,
            forwards,
            log: config.log,
            errors: config.errors,
            bufsize: config.bufsize,
            prometheus: config.ops.prometheus.is_some(),
            cache: config
                .cache
                .clone()
                .map(|c| ResponseCache::new(c, seed, config.listen_addrs().first().copied())),
            loadbalance: config.loadbalance,
            loop_check: config
                .loop_check
                .then(|| {
                    let zone = config.zones.first()?.clone();
                    Some(LoopCheck::new(zone, *config.listen_addrs().first()?))
                })
                .flatten(),
        };
        // Without `ns_ip`, the name server's addresses are the ones the block is bound to,
        // when they say where it is (as CoreDNS's kubernetes plugin answers `ns.dns.ZONE` with
        // its own addresses); `0.0.0.0` and `::` say nothing, and give none.
        let bound: Vec<IpAddr> = config
            .bind
            .iter()
            .filter(|ip| !ip.is_unspecified())
            .copied()
            .collect();
        let or_bound = |ips: &'_ [IpAddr]| -> Vec<IpAddr> {
            if ips.is_empty() {
                bound.clone()
            } else {
                ips.to_vec()
            }
        };
        if let Some(g) = config.gathers.first() {
            let ns_ips = or_bound(&g.ns_ip);
            block.gather = Some(block.compile_gather(&gathersrv_spec(g, &ns_ips), serial, seed)?);
        }
        if let Some(m) = &config.multicluster {
            let ns_ips = or_bound(&m.ns_ip);
            // Gathered from the clusters only when it lists them (else from the API alone).
            let gathered = if m.clusters.is_empty() {
                &[][..]
            } else {
                &m.zones[..]
            };
            let sets = gathered
                .iter()
                .map(|zone| {
                    block.compile_gather(&multicluster_spec(m, zone, &ns_ips), serial, seed)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let compiled = CompiledMulticluster::new(m, sets, serial)
                .map_err(|e| ConfigError::at(&m.location, format!("multicluster: {e}")))?;
            block.multicluster = Some(compiled);
        }
        if let Some(h) = &config.hosts {
            let hosts = CompiledHosts::new(h, serial)
                .map_err(|e| ConfigError::at(&h.location, format!("hosts: {e}")))?;
            block.hosts = Some(hosts);
        }
        if let Some(g) = &config.multicluster_gw {
            let multicluster_gw = CompiledMulticlusterGw::new(g, serial)
                .map_err(|e| ConfigError::at(&g.location, format!("multicluster_gw: {e}")))?;
            block.multicluster_gw = Some(multicluster_gw);
        }
        Ok(block)
    }

    fn compile_gather(
        &self,
        spec: &GatherSpec<'_>,
        serial: u32,
        seed: u64,
    ) -> Result<CompiledGather, ConfigError> {
        let directive = spec.directive;
        let mut clusters = Vec::with_capacity(spec.clusters.len());
        for (suffix, mark) in &spec.clusters {
            let source = self.source_for(suffix).ok_or_else(|| {
                ConfigError::at(
                    spec.location,
                    format!(
                        "{directive}: cluster {suffix} has no forward or file in this server block that covers it \
                         (add `forward {suffix} IP[:PORT]`)"
                    ),
                )
            })?;
            clusters.push(CompiledCluster {
                suffix: (*suffix).clone(),
                mark: mark.to_vec(),
                source,
            });
        }
        let (soa, ns) = synthesised_soa_ns(spec.domain, spec.negative_ttl, serial)
            .map_err(|e| ConfigError::at(spec.location, format!("{directive}: {e}")))?;
        let name_server = NameServer::new(spec.domain, spec.ns_ips, spec.negative_ttl)
            .map_err(|e| ConfigError::at(spec.location, format!("{directive}: {e}")))?;
        let answers = match spec.answers {
            Some(options) => {
                let prefixes: Vec<&[u8]> = spec.clusters.iter().map(|(_, mark)| *mark).collect();
                CompiledAnswers::new(options, &prefixes, seed)
            }
            None => CompiledAnswers::union(spec.clusters.len()),
        };
        Ok(CompiledGather {
            naming: spec.naming,
            domain: spec.domain.clone(),
            clusters,
            timeout: spec.timeout,
            cluster_timeout: spec.cluster_timeout,
            soa,
            ns,
            name_server,
            answers,
        })
    }

    /// The gathering a query of `set` belongs to.
    pub(crate) fn gather_set(&self, set: GatherSet) -> Option<&CompiledGather> {
        match set {
            GatherSet::Gathersrv => self.gather.as_ref(),
            GatherSet::Multicluster(zone) => self.multicluster.as_ref()?.sets.get(zone),
        }
    }

    pub(crate) fn gather_set_mut(&mut self, set: GatherSet) -> Option<&mut CompiledGather> {
        match set {
            GatherSet::Gathersrv => self.gather.as_mut(),
            GatherSet::Multicluster(zone) => self.multicluster.as_mut()?.sets.get_mut(zone),
        }
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
}

fn gathersrv_spec<'a>(g: &'a Gather, ns_ips: &'a [IpAddr]) -> GatherSpec<'a> {
    GatherSpec {
        directive: "gathersrv",
        naming: Naming::Prefix,
        domain: &g.domain,
        clusters: g
            .clusters
            .iter()
            .map(|c| (&c.suffix, c.prefix.as_bytes()))
            .collect(),
        timeout: g.timeout,
        cluster_timeout: g.cluster_timeout,
        negative_ttl: g.negative_ttl,
        ns_ips,
        answers: Some(&g.answers),
        location: &g.location,
    }
}

/// coredns/multicluster answers with TTL 5 and has no timeouts of its own: ours are
/// gathersrv's defaults.
fn multicluster_spec<'a>(
    m: &'a Multicluster,
    zone: &'a Name,
    ns_ips: &'a [IpAddr],
) -> GatherSpec<'a> {
    GatherSpec {
        directive: "multicluster",
        naming: Naming::ClusterLabel,
        domain: zone,
        clusters: m
            .clusters
            .iter()
            .map(|c| (&c.suffix, c.id.as_bytes()))
            .collect(),
        timeout: defaults::TIMEOUT,
        cluster_timeout: defaults::CLUSTER_TIMEOUT,
        negative_ttl: defaults::NEGATIVE_TTL,
        ns_ips,
        answers: None,
        location: &m.location,
    }
}
