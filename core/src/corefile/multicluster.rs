//! `multicluster ZONE… { SUFFIX CLUSTER_ID …; kubeconfig KUBECONFIG [CONTEXT]; noendpoints;
//! fallthrough }` and `multicluster_gw ZONE… { gateway_ip IP…; fallthrough }`:
//! coredns/multicluster (from the Kubernetes API, or gathered from the clusters' DNS) and
//! itay-nakash/multicluster_gw without its Kubernetes controller.

use std::net::IpAddr;

use super::directives::{fqdn, Context};
use super::options::{fallthrough, flag, ns_ips, own_zones, set_once};
use super::parser::{RawDirective, Token};
use crate::config::{
    Fallthrough, KubernetesSource, Location, McsCluster, Multicluster, MulticlusterGw, ServerBlock,
};
use crate::error::ConfigError;
use crate::wire::Name;

const MCS_OPTIONS: &str = "kubeconfig, noendpoints, fallthrough, ns_ip";

/// Parses one `multicluster` directive. Its source: the Kubernetes API of `kubeconfig`, or
/// of the cluster it runs in when the directive lists no cluster (coredns/multicluster's
/// in-cluster default); the clusters' DNS for the `SUFFIX CLUSTER_ID` lines; both when a
/// kubeconfig and clusters are given, the API first and `fallthrough` on to the clusters.
pub(crate) fn parse(
    directive: &RawDirective,
    cx: &mut Context<'_>,
) -> Result<Multicluster, ConfigError> {
    let at = &directive.name;
    let zones = own_zones(&directive.args, cx, "multicluster")?;
    let mut clusters: Vec<(McsCluster, Location)> = Vec::new();
    let mut kubeconfig: Option<(KubernetesSource, Location)> = None;
    let mut noendpoints: Option<((), Location)> = None;
    let mut fall: Option<(Fallthrough, Location)> = None;
    let mut ns_ip: Option<(Vec<IpAddr>, Location)> = None;
    for line in directive.block.iter().flat_map(|b| &b.lines) {
        let Some((first, rest)) = line.split_first() else {
            continue;
        };
        match first.text.as_str() {
            "kubeconfig" => set_once(&mut kubeconfig, kubeconfig_line(first, rest)?, first, "multicluster")?,
            "noendpoints" => {
                flag(first, rest, "multicluster")?;
                set_once(&mut noendpoints, (), first, "multicluster")?;
            }
            "fallthrough" => set_once(&mut fall, fallthrough(rest, "multicluster")?, first, "multicluster")?,
            "ns_ip" => set_once(&mut ns_ip, ns_ips(first, rest, "multicluster")?, first, "multicluster")?,
            text if text.ends_with('.') => {
                let cluster = cluster_line(first, rest, &zones, &clusters)?;
                clusters.push((cluster, first.location()));
            }
            other => {
                return Err(first.error(format!(
                    "multicluster: {other:?} is neither an option ({MCS_OPTIONS}) nor a cluster \
                     domain (a cluster line is \"SUFFIX CLUSTER_ID\" and SUFFIX must end with a dot, e.g. \"{other}.\")"
                )))
            }
        }
    }
    let kubernetes = match (kubeconfig, clusters.first()) {
        (Some((source, _)), _) => Some(source),
        // No cluster and no kubeconfig: the API of the cluster gatherdns runs in.
        (None, None) => Some(KubernetesSource {
            kubeconfig: None,
            context: None,
        }),
        (None, Some(_)) => None,
    };
    if let (Some(source), Some((_, first_cluster))) = (&kubernetes, clusters.first()) {
        if fall.is_none() {
            return Err(ConfigError::at(
                first_cluster,
                format!(
                    "multicluster: with {source} the answers come from the Kubernetes API, and the cluster \
                     lines are asked only for names the API does not know: add \"fallthrough\" to the \
                     block to hand those on to the clusters, or remove the cluster lines"
                ),
            ));
        }
    }
    Ok(Multicluster {
        zones,
        clusters: clusters.into_iter().map(|(c, _)| c).collect(),
        kubernetes,
        noendpoints: noendpoints.is_some(),
        fallthrough: fall.map(|(f, _)| f),
        ns_ip: ns_ip.map(|(ips, _)| ips).unwrap_or_default(),
        location: at.location(),
    })
}

/// `kubeconfig KUBECONFIG [CONTEXT]`; the path is taken from the Corefile's directory.
fn kubeconfig_line(first: &Token, rest: &[Token]) -> Result<KubernetesSource, ConfigError> {
    match rest {
        [path] => Ok(KubernetesSource {
            kubeconfig: Some(path.base_dir().join(&path.text)),
            context: None,
        }),
        [path, context] => Ok(KubernetesSource {
            kubeconfig: Some(path.base_dir().join(&path.text)),
            context: Some(context.text.clone()),
        }),
        [] => Err(first.error(
            "multicluster: kubeconfig expects KUBECONFIG [CONTEXT], e.g. \"kubeconfig /etc/gatherdns/kubeconfig\" \
             (without it, the API of the cluster gatherdns runs in is used)",
        )),
        [_, _, extra, ..] => Err(extra.error(format!(
            "multicluster: kubeconfig expects KUBECONFIG [CONTEXT], but {:?} follows the context",
            extra.text
        ))),
    }
}

/// `SUFFIX CLUSTER_ID`, checked on its own and against the zones and earlier clusters.
fn cluster_line(
    first: &Token,
    rest: &[Token],
    zones: &[Name],
    others: &[(McsCluster, Location)],
) -> Result<McsCluster, ConfigError> {
    let id_token = match rest {
        [id] => id,
        [] => {
            return Err(first.error(format!(
                "multicluster: cluster {:?} has no cluster ID; a cluster line is \"SUFFIX CLUSTER_ID\", e.g. \"cluster-a.local. cluster-a\"",
                first.text
            )))
        }
        [_, extra, ..] => {
            return Err(extra.error(format!(
                "multicluster: a cluster line is \"SUFFIX CLUSTER_ID\", but {:?} follows the cluster ID",
                extra.text
            )))
        }
    };
    let suffix = fqdn(first, "multicluster")?;
    for zone in zones {
        if suffix.is_at_or_below(zone) || zone.is_at_or_below(&suffix) {
            return Err(first.error(format!(
                "multicluster: cluster domain {suffix} and the clusterset zone {zone} overlap; cluster domains must lie outside it"
            )));
        }
    }
    let id = &id_token.text;
    let label = id.len() <= 63
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-');
    if id.is_empty() || !label {
        return Err(id_token.error(format!(
            "multicluster: cluster ID {id:?} is not a DNS label (letters, digits and '-', at most 63, \
             not starting or ending with '-'), e.g. \"cluster-a\""
        )));
    }
    for (other, location) in others {
        if suffix.is_at_or_below(&other.suffix) || other.suffix.is_at_or_below(&suffix) {
            return Err(first.error(format!(
                "multicluster: cluster domains {suffix} and {} (at {location}) are the same or nested; each cluster needs a domain of its own",
                other.suffix
            )));
        }
        if other.id.eq_ignore_ascii_case(id) {
            return Err(id_token.error(format!(
                "multicluster: cluster ID {id:?} is already used by {} (at {location}); IDs are compared without regard to case",
                other.suffix
            )));
        }
    }
    Ok(McsCluster {
        suffix,
        id: id.clone(),
    })
}

/// Every cluster needs something in its block that can answer for its domain.
pub(crate) fn check_sources(block: &ServerBlock) -> Result<(), ConfigError> {
    let Some(m) = &block.multicluster else {
        return Ok(());
    };
    for cluster in &m.clusters {
        let forwarded = block
            .forwards
            .iter()
            .any(|f| cluster.suffix.is_at_or_below(&f.from));
        let served = block
            .files
            .iter()
            .any(|z| cluster.suffix.is_at_or_below(&z.origin));
        if !forwarded && !served {
            return Err(ConfigError::at(
                &m.location,
                format!(
                    "multicluster: nothing in this server block answers for cluster {suffix}; add \
                     \"forward {suffix} IP[:PORT]\" (the cluster's DNS) or a file zone for it",
                    suffix = cluster.suffix
                ),
            ));
        }
    }
    Ok(())
}

/// Parses one `multicluster_gw` directive.
pub(crate) fn parse_multicluster_gw(
    directive: &RawDirective,
    cx: &mut Context<'_>,
) -> Result<MulticlusterGw, ConfigError> {
    let at = &directive.name;
    let zones = own_zones(&directive.args, cx, "multicluster_gw")?;
    let mut ips: Option<(Vec<IpAddr>, Location)> = None;
    let mut fall: Option<(Fallthrough, Location)> = None;
    for line in directive.block.iter().flat_map(|b| &b.lines) {
        let Some((first, rest)) = line.split_first() else {
            continue;
        };
        match first.text.as_str() {
            "kubeconfig" => {
                return Err(first.error(
                    "multicluster_gw: kubeconfig is not supported: gatherdns answers every <svc>.<ns> name of \
                     the zone with the gateway_ip addresses, without a ServiceImport list; remove the kubeconfig \
                     line (ServiceImports from the Kubernetes API are multicluster's source)",
                ))
            }
            "gateway_ip" => set_once(
                &mut ips,
                gateway_ips(first, rest)?,
                first,
                "multicluster_gw",
            )?,
            "fallthrough" => set_once(
                &mut fall,
                fallthrough(rest, "multicluster_gw")?,
                first,
                "multicluster_gw",
            )?,
            other => {
                return Err(first.error(format!(
                    "multicluster_gw: unknown option {other:?} (supported: gateway_ip, fallthrough)"
                )))
            }
        }
    }
    let Some((ips, _)) = ips else {
        return Err(at.error(
            "multicluster_gw: gateway_ip is required: add a block with a line like \"gateway_ip 10.0.0.1\" \
             (the original plugin's default, 1.2.3.4, is a placeholder)",
        ));
    };
    Ok(MulticlusterGw {
        zones,
        ips,
        fallthrough: fall.map(|(f, _)| f),
        location: at.location(),
    })
}

/// `gateway_ip IP…`: IPv4 addresses answer A queries, IPv6 ones AAAA.
fn gateway_ips(option: &Token, args: &[Token]) -> Result<Vec<IpAddr>, ConfigError> {
    if args.is_empty() {
        return Err(option.error("multicluster_gw: gateway_ip expects at least one IP address, e.g. \"gateway_ip 10.0.0.1 fd00::1\""));
    }
    let mut ips: Vec<IpAddr> = Vec::with_capacity(args.len());
    for arg in args {
        let ip = arg.text.parse::<IpAddr>().map_err(|_| {
            arg.error(format!(
                "multicluster_gw: gateway_ip {:?} is not an IP address",
                arg.text
            ))
        })?;
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    Ok(ips)
}
