//! Which server block answers a query (longest matching zone on the listener it came in on),
//! and which clusters a gathered query goes to (prefixed host or fan-out).

use std::net::SocketAddr;

use crate::config::ServerBlock;
use crate::transmit::ListenerId;
use crate::wire::{Name, NameError};

/// Listeners and the server blocks reachable through each.
pub(crate) struct Router {
    listeners: Vec<SocketAddr>,
    /// For each listener: (zone, block index), longest zone first.
    zones: Vec<Vec<(Name, usize)>>,
}

impl Router {
    pub(crate) fn new(blocks: &[ServerBlock]) -> Router {
        let mut listeners: Vec<SocketAddr> = Vec::new();
        let mut zones: Vec<Vec<(Name, usize)>> = Vec::new();
        for (index, block) in blocks.iter().enumerate() {
            for addr in block.listen_addrs() {
                let slot = match listeners.iter().position(|a| *a == addr) {
                    Some(slot) => slot,
                    None => {
                        listeners.push(addr);
                        zones.push(Vec::new());
                        listeners.len() - 1
                    }
                };
                zones[slot].extend(block.zones.iter().map(|z| (z.clone(), index)));
            }
        }
        for list in &mut zones {
            // Stable sort keeps file order among equal zones; the parser rejects duplicates.
            list.sort_by_key(|(zone, _)| std::cmp::Reverse(zone.label_count()));
        }
        Router { listeners, zones }
    }

    pub(crate) fn listeners(&self) -> &[SocketAddr] {
        &self.listeners
    }

    /// The block whose zone is the longest match for `qname` on `listener`.
    pub(crate) fn block_for(&self, listener: ListenerId, qname: &Name) -> Option<usize> {
        self.zones
            .get(listener.0)?
            .iter()
            .find(|(zone, _)| qname.is_at_or_below(zone))
            .map(|(_, block)| *block)
    }
}

/// The clusters of a gathered query, each with the name to ask it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct GatherPlan {
    /// (cluster index in configuration order, sub-query name).
    pub(crate) targets: Vec<(usize, Name)>,
    /// True if the query named a prefixed host and goes to one cluster only.
    pub(crate) prefixed: bool,
}

/// The cluster side of routing: suffix and prefix of each cluster.
#[derive(Clone)]
pub(crate) struct ClusterNames<'a> {
    pub(crate) suffix: &'a Name,
    pub(crate) prefix: &'a [u8],
}

/// Routes `qname` (at or below `domain`). Leading `_` labels are skipped; if the next label
/// starts with a cluster's prefix (ASCII case-insensitive, longest prefix wins) and is longer
/// than it, only that cluster is asked, with the prefix removed. Otherwise every cluster is.
pub(crate) fn plan_gather(
    domain: &Name,
    clusters: &[ClusterNames<'_>],
    qname: &Name,
) -> GatherPlan {
    let labels = qname.labels_below(domain).unwrap_or_default();
    let host = labels.iter().position(|l| !l.starts_with(b"_"));
    if let Some(host) = host {
        let label = labels[host];
        let best = clusters
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                label.len() > c.prefix.len()
                    && label[..c.prefix.len()].eq_ignore_ascii_case(c.prefix)
            })
            .max_by_key(|(i, c)| (c.prefix.len(), std::cmp::Reverse(*i)));
        if let Some((index, cluster)) = best {
            let stripped = &label[cluster.prefix.len()..];
            let renamed = labels
                .iter()
                .enumerate()
                .map(|(i, l)| if i == host { stripped } else { *l });
            let targets = Name::from_labels(renamed, cluster.suffix)
                .map(|n| vec![(index, n)])
                .unwrap_or_default();
            return GatherPlan {
                targets,
                prefixed: true,
            };
        }
    }
    let targets = clusters
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            Name::from_labels(labels.iter().copied(), c.suffix)
                .ok()
                .map(|n| (i, n))
        })
        .collect();
    GatherPlan {
        targets,
        prefixed: false,
    }
}

/// Renames a name from a cluster's reply into the distributed domain:
/// the sub-query name becomes the question name byte for byte; any other name under the
/// cluster suffix gets the suffix replaced by `domain` and the prefix put on its first
/// non-underscore label; names outside the suffix are left alone (`None`).
pub(crate) fn rename_from_cluster(
    name: &Name,
    subname: &Name,
    qname: &Name,
    cluster: &ClusterNames<'_>,
    domain: &Name,
) -> Option<Result<Name, NameError>> {
    if name == subname {
        return Some(Ok(qname.clone()));
    }
    let labels = name.labels_below(cluster.suffix)?;
    let Some(host) = labels.iter().position(|l| !l.starts_with(b"_")) else {
        return Some(Name::from_labels(labels, domain));
    };
    let mut prefixed = Vec::with_capacity(cluster.prefix.len() + labels[host].len());
    prefixed.extend_from_slice(cluster.prefix);
    prefixed.extend_from_slice(labels[host]);
    let renamed = labels
        .iter()
        .enumerate()
        .map(|(i, l)| if i == host { prefixed.as_slice() } else { *l });
    Some(Name::from_labels(renamed, domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::parse(s).expect("valid")
    }

    struct Fixture {
        domain: Name,
        suffixes: Vec<Name>,
        prefixes: Vec<&'static [u8]>,
    }

    impl Fixture {
        fn new(clusters: &[(&str, &'static str)]) -> Fixture {
            Fixture {
                domain: n("distributed.local."),
                suffixes: clusters.iter().map(|(s, _)| n(s)).collect(),
                prefixes: clusters.iter().map(|(_, p)| p.as_bytes()).collect(),
            }
        }
        fn names(&self) -> Vec<ClusterNames<'_>> {
            self.suffixes
                .iter()
                .zip(&self.prefixes)
                .map(|(suffix, prefix)| ClusterNames { suffix, prefix })
                .collect()
        }
        fn plan(&self, q: &str) -> (Vec<(usize, String)>, bool) {
            let plan = plan_gather(&self.domain, &self.names(), &n(q));
            (
                plan.targets
                    .into_iter()
                    .map(|(i, name)| (i, name.to_string()))
                    .collect(),
                plan.prefixed,
            )
        }
    }

    fn ab() -> Fixture {
        Fixture::new(&[("cluster-a.local.", "a-"), ("cluster-b.local.", "b-")])
    }

    #[test]
    fn fan_out_replaces_the_suffix() {
        let (targets, prefixed) =
            ab().plan("_demo._tcp.demo-service.default.svc.distributed.local.");
        assert!(!prefixed);
        assert_eq!(
            targets,
            vec![
                (
                    0,
                    "_demo._tcp.demo-service.default.svc.cluster-a.local.".to_string()
                ),
                (
                    1,
                    "_demo._tcp.demo-service.default.svc.cluster-b.local.".to_string()
                )
            ]
        );
    }

    #[test]
    fn prefixed_host_goes_to_one_cluster_case_insensitively() {
        assert_eq!(
            ab().plan("A-demo-0.ns.svc.distributed.local."),
            (vec![(0, "demo-0.ns.svc.cluster-a.local.".into())], true)
        );
        assert_eq!(
            ab().plan("_x._tcp.b-demo.svc.DISTRIBUTED.local."),
            (vec![(1, "_x._tcp.demo.svc.cluster-b.local.".into())], true)
        );
    }

    #[test]
    fn a_label_equal_to_the_prefix_is_not_a_prefixed_host() {
        let (targets, prefixed) = ab().plan("a-.svc.distributed.local.");
        assert!(!prefixed);
        assert_eq!(targets.len(), 2);
    }

    #[test]
    fn longest_prefix_wins() {
        let f = Fixture::new(&[("cluster-a.local.", "a-"), ("cluster-ab.local.", "a-b-")]);
        assert_eq!(
            f.plan("a-b-host.svc.distributed.local."),
            (vec![(1, "host.svc.cluster-ab.local.".into())], true)
        );
        assert_eq!(
            f.plan("a-host.svc.distributed.local."),
            (vec![(0, "host.svc.cluster-a.local.".into())], true)
        );
    }

    #[test]
    fn suffix_replacement_is_label_aware() {
        // gathersrv replaces the first occurrence of the text; we replace the suffix.
        let f = Fixture::new(&[("c.distributed.local.x.", "a-")]);
        let (targets, _) = f.plan("distributed.local.distributed.local.");
        assert_eq!(
            targets,
            vec![(0, "distributed.local.c.distributed.local.x.".into())]
        );
    }

    #[test]
    fn apex_fans_out_to_cluster_apexes() {
        assert_eq!(
            ab().plan("distributed.local.").0,
            vec![
                (0, "cluster-a.local.".into()),
                (1, "cluster-b.local.".into())
            ]
        );
    }

    #[test]
    fn renaming_rules() {
        let f = ab();
        let names = f.names();
        let q = n("_Demo._tcp.svc.Distributed.local.");
        let sub = n("_demo._tcp.svc.cluster-a.local.");
        let rename = |s: &str| {
            rename_from_cluster(&n(s), &sub, &q, &names[0], &f.domain)
                .map(|r| r.expect("fits").to_string())
        };
        assert_eq!(
            rename("_demo._tcp.svc.cluster-a.local."),
            Some("_Demo._tcp.svc.Distributed.local.".into())
        );
        assert_eq!(
            rename("demo-0.ns.svc.cluster-a.local."),
            Some("a-demo-0.ns.svc.distributed.local.".into())
        );
        assert_eq!(
            rename("_x.demo-0.cluster-a.local."),
            Some("_x.a-demo-0.distributed.local.".into())
        );
        assert_eq!(
            rename("cluster-a.local."),
            Some("distributed.local.".into())
        );
        assert_eq!(rename("ext.example.com."), None);
        assert_eq!(rename("demo.cluster-b.local."), None);
    }
}
