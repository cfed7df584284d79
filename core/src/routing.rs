//! Which server block answers a query (longest matching zone on the listener it came in on),
//! and which clusters a gathered query goes to (prefixed host or fan-out).

use std::net::SocketAddr;

use smallvec::SmallVec;

use crate::config::ServerBlock;
use crate::transmit::ListenerId;
use crate::wire::{Name, NameArena, NameError, Relative, Splice};

/// Listeners and the server blocks reachable through each.
pub(crate) struct Router {
    listeners: Vec<SocketAddr>,
    /// The id of each listener: its index at startup; kept by a reload for an address that
    /// stays, and never reused (a new address gets the next unused number).
    ids: Vec<ListenerId>,
    next_id: usize,
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
        Router {
            ids: (0..listeners.len()).map(ListenerId).collect(),
            next_id: listeners.len(),
            listeners,
            zones,
        }
    }

    /// The router of a new configuration: listeners whose address stays keep their id.
    pub(crate) fn successor(&self, blocks: &[ServerBlock]) -> Router {
        let mut next = Router::new(blocks);
        next.next_id = self.next_id;
        for (slot, addr) in next.listeners.iter().enumerate() {
            next.ids[slot] = match self.listeners.iter().position(|a| a == addr) {
                Some(old) => self.ids[old],
                None => {
                    next.next_id += 1;
                    ListenerId(next.next_id - 1)
                }
            };
        }
        next
    }

    pub(crate) fn listeners(&self) -> &[SocketAddr] {
        &self.listeners
    }

    pub(crate) fn ids(&self) -> &[ListenerId] {
        &self.ids
    }

    /// The zone [`Router::block_for`] matches `qname` with (the `zone` label of metrics).
    pub(crate) fn zone_for(&self, listener: ListenerId, qname: &Name) -> Option<&Name> {
        let slot = match self.ids.get(listener.0) {
            Some(id) if *id == listener => listener.0,
            _ => self.ids.iter().position(|id| *id == listener)?,
        };
        self.zones[slot]
            .iter()
            .map(|(zone, _)| zone)
            .find(|zone| qname.is_at_or_below(zone))
    }

    /// The block whose zone is the longest match for `qname` on `listener`.
    pub(crate) fn block_for(&self, listener: ListenerId, qname: &Name) -> Option<usize> {
        // Ids equal positions until a reload removes a listener; then a short search.
        let slot = match self.ids.get(listener.0) {
            Some(id) if *id == listener => listener.0,
            _ => self.ids.iter().position(|id| *id == listener)?,
        };
        self.zones[slot]
            .iter()
            .find(|(zone, _)| qname.is_at_or_below(zone))
            .map(|(_, block)| *block)
    }
}

/// How a gathering directive names a cluster's hosts in its own domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Naming {
    /// gathersrv: the cluster's prefix on the first host label, so a host stays a direct
    /// child of its service's parent (`a-demo-0.ns.svc.DOMAIN`).
    Prefix,
    /// The MCS DNS specification (KEP-1645): the cluster ID is a label of its own between
    /// the host and the service (`demo-0.CLUSTER_ID.demo.ns.svc.ZONE`).
    ClusterLabel,
}

/// The clusters of a gathered query, each with the name to ask it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct GatherPlan {
    /// (cluster index in configuration order, sub-query name), inline for up to eight.
    pub(crate) targets: SmallVec<[(usize, Name); 8]>,
    /// True if the query named one cluster's host and goes to that cluster only.
    pub(crate) prefixed: bool,
}

/// The cluster side of routing: each cluster's suffix and its mark in distributed names —
/// the host-label prefix ([`Naming::Prefix`]) or the cluster ID ([`Naming::ClusterLabel`]).
#[derive(Clone)]
pub(crate) struct ClusterNames<'a> {
    pub(crate) suffix: &'a Name,
    pub(crate) mark: &'a [u8],
}

/// What routing needs of a cluster, so that a domain's compiled clusters are routed over as
/// they are, without a list of their names made for every query.
pub(crate) trait ClusterSide {
    fn names(&self) -> ClusterNames<'_>;
}

impl ClusterSide for ClusterNames<'_> {
    fn names(&self) -> ClusterNames<'_> {
        self.clone()
    }
}

/// A name that addresses one cluster's host: the cluster (`None` when the name's mark is no
/// configured cluster's) and the name to ask it, below its suffix.
type Single<'l> = Option<(Option<usize>, Asked<'l>)>;

/// The labels of a sub-query name before the cluster suffix: labels, an optional label in
/// parts, more labels.
type Asked<'l> = (Relative<'l>, Option<[&'l [u8]; 2]>, Relative<'l>);

/// Routes `qname` (at or below `domain`): a host of one cluster goes to that cluster only,
/// with the cluster's mark taken out of the name; anything else goes to every cluster. The
/// suffix `domain` is replaced by each cluster's suffix. Names are built in `names`.
pub(crate) fn plan_gather(
    naming: Naming,
    domain: &Name,
    clusters: &[impl ClusterSide],
    qname: &Name,
    names: &mut NameArena,
) -> GatherPlan {
    let relative = qname.relative_to(domain).unwrap_or(Relative::EMPTY);
    let single = match naming {
        Naming::Prefix => prefixed_host(clusters, relative),
        Naming::ClusterLabel => endpoint_host(clusters, relative),
    };
    if let Some((cluster, (before, label, after))) = single {
        let targets = cluster
            .and_then(|index| {
                let splice = Splice {
                    before,
                    label,
                    after,
                    suffix: clusters[index].names().suffix,
                };
                names
                    .splice(&splice)
                    .ok()
                    .map(|n| smallvec::smallvec![(index, n)])
            })
            .unwrap_or_default();
        return GatherPlan {
            targets,
            prefixed: true,
        };
    }
    let targets = clusters
        .iter()
        .enumerate()
        .filter_map(|(i, c)| names.join(relative, c.names().suffix).ok().map(|n| (i, n)))
        .collect();
    GatherPlan {
        targets,
        prefixed: false,
    }
}

/// The first label that does not start with `_` (gathersrv's host label).
fn host_label(relative: Relative<'_>) -> Option<usize> {
    relative.labels().position(|l| !l.starts_with(b"_"))
}

/// gathersrv: leading `_` labels are skipped; if the next label starts with a cluster's
/// prefix (ASCII case-insensitive, longest prefix wins) and is longer than it, that cluster
/// is asked, with the prefix removed.
fn prefixed_host<'l>(clusters: &[impl ClusterSide], relative: Relative<'l>) -> Single<'l> {
    let (before, label, after) = relative.split_at_label(host_label(relative)?)?;
    let (index, cluster) = clusters
        .iter()
        .map(ClusterSide::names)
        .enumerate()
        .filter(|(_, c)| {
            label.len() > c.mark.len() && label[..c.mark.len()].eq_ignore_ascii_case(c.mark)
        })
        .max_by_key(|(i, c)| (c.mark.len(), std::cmp::Reverse(*i)))?;
    let stripped = &label[cluster.mark.len()..];
    Some((Some(index), (before, Some([stripped, b""]), after)))
}

/// MCS: `<host>.<cluster-id>.<svc>.<ns>.svc` (the second label not `_`-prefixed, which
/// would make it `_<port>._<proto>`) is asked of that cluster as `<host>.<svc>.<ns>.svc`.
fn endpoint_host<'l>(clusters: &[impl ClusterSide], relative: Relative<'l>) -> Single<'l> {
    let mut labels = relative.labels();
    let (_, id, service) = (
        labels.next()?,
        labels.next()?,
        labels.collect::<Shape<'_>>(),
    );
    let shape = service.count == 3 && service.labels[2].eq_ignore_ascii_case(b"svc");
    if !shape || id.starts_with(b"_") {
        return None;
    }
    let cluster = clusters
        .iter()
        .position(|c| c.names().mark.eq_ignore_ascii_case(id));
    let (host, rest) = relative.split_at(1)?;
    let (_, service) = rest.split_at(1)?;
    Some((cluster, (host, None, service)))
}

/// The first few labels of a name and how many it has, for matching name shapes without
/// allocating.
struct Shape<'l> {
    labels: [&'l [u8]; 5],
    count: usize,
}

impl<'l> FromIterator<&'l [u8]> for Shape<'l> {
    fn from_iter<I: IntoIterator<Item = &'l [u8]>>(iter: I) -> Self {
        let mut shape = Shape {
            labels: [&[]; 5],
            count: 0,
        };
        for label in iter {
            if let Some(slot) = shape.labels.get_mut(shape.count) {
                *slot = label;
            }
            shape.count += 1;
        }
        shape
    }
}

/// Renames a name from a cluster's reply into the distributed domain: the sub-query name
/// becomes the question name byte for byte; other names under the cluster suffix are
/// renamed by `naming` (built in `names`); names outside the suffix are left alone (`None`).
pub(crate) fn rename_from_cluster(
    naming: Naming,
    name: &Name,
    subname: &Name,
    qname: &Name,
    cluster: &ClusterNames<'_>,
    domain: &Name,
    names: &mut NameArena,
) -> Option<Result<Name, NameError>> {
    if name == subname {
        return Some(Ok(qname.clone()));
    }
    let relative = name.relative_to(cluster.suffix)?;
    match naming {
        Naming::Prefix => Some(prefix_rename(relative, cluster.mark, domain, names)),
        Naming::ClusterLabel => cluster_label_rename(relative, cluster.mark, domain, names),
    }
}

/// gathersrv: SUFFIX → DOMAIN and the prefix on the first non-underscore label.
fn prefix_rename(
    relative: Relative<'_>,
    prefix: &[u8],
    domain: &Name,
    names: &mut NameArena,
) -> Result<Name, NameError> {
    let Some((before, host, after)) = host_label(relative).and_then(|h| relative.split_at_label(h))
    else {
        return names.join(relative, domain);
    };
    names.splice(&Splice {
        before,
        label: Some([prefix, host]),
        after,
        suffix: domain,
    })
}

/// MCS: a service (`<svc>.<ns>.svc`) and its port names keep their labels under the zone;
/// an endpoint (`<host>.<svc>.<ns>.svc`) gets the cluster ID after its host label. Other
/// names have no place in the clusterset zone and are left as the cluster wrote them.
fn cluster_label_rename(
    relative: Relative<'_>,
    id: &[u8],
    zone: &Name,
    names: &mut NameArena,
) -> Option<Result<Name, NameError>> {
    let svc = |l: &[u8]| l.eq_ignore_ascii_case(b"svc");
    let under = |p: &[u8]| p.starts_with(b"_");
    let shape: Shape<'_> = relative.labels().collect();
    let l = &shape.labels;
    match shape.count {
        3 if svc(l[2]) => Some(names.join(relative, zone)),
        5 if svc(l[4]) && under(l[0]) && under(l[1]) => Some(names.join(relative, zone)),
        4 if svc(l[3]) && !under(l[0]) => {
            let (host, service) = relative.split_at(1)?;
            Some(names.splice(&Splice {
                before: host,
                label: Some([id, b""]),
                after: service,
                suffix: zone,
            }))
        }
        _ => None,
    }
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
                .map(|(suffix, mark)| ClusterNames { suffix, mark })
                .collect()
        }
        fn plan(&self, q: &str) -> (Vec<(usize, String)>, bool) {
            let plan = plan_gather(
                Naming::Prefix,
                &self.domain,
                &self.names(),
                &n(q),
                &mut NameArena::default(),
            );
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
            rename_from_cluster(
                Naming::Prefix,
                &n(s),
                &sub,
                &q,
                &names[0],
                &f.domain,
                &mut NameArena::default(),
            )
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

    fn mcs() -> Fixture {
        let mut f = Fixture::new(&[("cluster-a.local.", "east"), ("cluster-b.local.", "west")]);
        f.domain = n("clusterset.local.");
        f
    }

    fn mcs_plan(f: &Fixture, q: &str) -> (Vec<(usize, String)>, bool) {
        let plan = plan_gather(
            Naming::ClusterLabel,
            &f.domain,
            &f.names(),
            &n(q),
            &mut NameArena::default(),
        );
        let targets = plan
            .targets
            .into_iter()
            .map(|(i, name)| (i, name.to_string()))
            .collect();
        (targets, plan.prefixed)
    }

    #[test]
    fn mcs_services_and_ports_fan_out() {
        let f = mcs();
        for q in [
            "web.default.svc.clusterset.local.",
            "_http._tcp.web.default.svc.clusterset.local.",
        ] {
            let (targets, single) = mcs_plan(&f, q);
            assert!(!single);
            let a = q.replace("clusterset", "cluster-a");
            assert_eq!(
                targets,
                vec![(0, a), (1, q.replace("clusterset", "cluster-b"))]
            );
        }
    }

    #[test]
    fn mcs_endpoint_names_go_to_their_cluster_only() {
        let f = mcs();
        assert_eq!(
            mcs_plan(&f, "web-0.WEST.web.default.svc.clusterset.local."),
            (
                vec![(1, "web-0.web.default.svc.cluster-b.local.".into())],
                true
            )
        );
        assert_eq!(
            mcs_plan(&f, "web-0.north.web.default.svc.clusterset.local."),
            (vec![], true)
        );
    }

    #[test]
    fn mcs_renaming_inserts_the_cluster_id_after_the_host() {
        let f = mcs();
        let names = f.names();
        let q = n("_HTTP._tcp.web.default.svc.clusterset.local.");
        let sub = n("_http._tcp.web.default.svc.cluster-b.local.");
        let rename = |s: &str| {
            rename_from_cluster(
                Naming::ClusterLabel,
                &n(s),
                &sub,
                &q,
                &names[1],
                &f.domain,
                &mut NameArena::default(),
            )
            .map(|r| r.expect("fits").to_string())
        };
        assert_eq!(
            rename("_http._tcp.web.default.svc.cluster-b.local."),
            Some(q.to_string())
        );
        assert_eq!(
            rename("web-0.web.default.svc.cluster-b.local."),
            Some("web-0.west.web.default.svc.clusterset.local.".into())
        );
        assert_eq!(
            rename("web.default.svc.cluster-b.local."),
            Some("web.default.svc.clusterset.local.".into())
        );
        assert_eq!(
            rename("_x._udp.web.default.svc.cluster-b.local."),
            Some("_x._udp.web.default.svc.clusterset.local.".into())
        );
        assert_eq!(rename("10-0-0-1.default.pod.cluster-b.local."), None);
        assert_eq!(rename("cluster-b.local."), None);
        assert_eq!(rename("web-0.web.default.svc.cluster-a.local."), None);
    }
}
