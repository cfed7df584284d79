//! The Kubernetes objects `multicluster` answers from, as plain data: MCS ServiceImports and
//! the EndpointSlices an MCS controller makes for them, as the host's Kubernetes client
//! hands them over (a snapshot per source), indexed once here for the queries.
//!
//! The host builds a [`KubernetesView`] after the first full list of every watched resource
//! and after changes, and gives the same view (an `Arc`) to every gateway through
//! [`crate::Gateway::handle_kubernetes_view`]. No Kubernetes client type crosses into the core.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::config::{Config, KubernetesSource, Location};

/// `spec.type` of a ServiceImport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportType {
    /// `ClusterSetIP`: one virtual IP (per family) for the service across the clusterset.
    ClusterSetIp,
    /// `Headless`: the names resolve to the endpoints themselves.
    Headless,
}

/// A port of a ServiceImport (`spec.ports[]`) or of an EndpointSlice (`ports[]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServicePort {
    /// `name`, empty when unnamed.
    pub name: String,
    /// `protocol` (`TCP`, `UDP`, `SCTP`).
    pub protocol: String,
    /// `port`.
    pub port: u16,
}

/// A `multicluster.x-k8s.io/v1alpha1` ServiceImport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceImport {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`: the service name.
    pub name: String,
    /// `spec.type`.
    pub kind: ImportType,
    /// `spec.ips`: the ClusterSetIP(s), one per family for a dual-stack import.
    pub ips: Vec<IpAddr>,
    /// `spec.ports`.
    pub ports: Vec<ServicePort>,
}

/// One endpoint of an EndpointSlice (`endpoints[]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `addresses` (of the slice's address family).
    pub addresses: Vec<IpAddr>,
    /// `hostname`, if set.
    pub hostname: Option<String>,
    /// `conditions.ready`; an unset condition counts as ready, as in Kubernetes.
    pub ready: bool,
}

/// A `discovery.k8s.io/v1` EndpointSlice labelled `multicluster.kubernetes.io/service-name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointSlice {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name` (orders the slices of a service).
    pub name: String,
    /// The `multicluster.kubernetes.io/service-name` label: the ServiceImport it serves.
    pub service: String,
    /// The `multicluster.kubernetes.io/source-cluster` label: the cluster ID of its endpoints.
    pub cluster: String,
    /// `ports`.
    pub ports: Vec<ServicePort>,
    /// `endpoints`.
    pub endpoints: Vec<Endpoint>,
}

/// What one import is, indexed.
#[derive(Clone, Debug)]
pub(crate) struct Import {
    pub(crate) kind: ImportType,
    pub(crate) ips: Vec<IpAddr>,
    pub(crate) ports: Vec<ServicePort>,
}

/// A ready address of a service's endpoint, with the labels that name it:
/// `<hostname>.<cluster-id>` below the service.
#[derive(Clone, Debug)]
pub(crate) struct Address {
    pub(crate) ip: IpAddr,
    /// The endpoint's hostname, else the address with `.`/`:` turned into `-` (as
    /// coredns/multicluster names them), lower-cased.
    pub(crate) hostname: String,
    /// The slice's source cluster, lower-cased.
    pub(crate) cluster: String,
}

/// The ready addresses of one EndpointSlice and its ports.
#[derive(Clone, Debug)]
pub(crate) struct Slice {
    pub(crate) ports: Vec<ServicePort>,
    pub(crate) addresses: Vec<Address>,
}

/// Everything one Kubernetes source knows, indexed by `(namespace, service)`.
#[derive(Clone, Debug)]
pub struct KubernetesView {
    source: KubernetesSource,
    serial: u32,
    endpoints: bool,
    pub(crate) imports: BTreeMap<(String, String), Import>,
    pub(crate) namespaces: BTreeSet<String>,
    pub(crate) slices: BTreeMap<(String, String), Vec<Slice>>,
}

impl KubernetesView {
    /// The view of `source` from its objects. `serial` becomes the serial of the zone's SOA
    /// (coredns/multicluster uses the Unix time of the last change). `slices` is `None` when
    /// EndpointSlices are not watched (every directive of the source has `noendpoints`).
    /// Not-ready endpoints are left out here, once.
    pub fn new(
        source: KubernetesSource,
        serial: u32,
        imports: Vec<ServiceImport>,
        slices: Option<Vec<EndpointSlice>>,
    ) -> KubernetesView {
        let mut view = KubernetesView {
            source,
            serial,
            endpoints: slices.is_some(),
            imports: BTreeMap::new(),
            namespaces: BTreeSet::new(),
            slices: BTreeMap::new(),
        };
        for import in imports {
            let key = (import.namespace.to_lowercase(), import.name.to_lowercase());
            view.namespaces.insert(key.0.clone());
            view.imports.insert(
                key,
                Import {
                    kind: import.kind,
                    ips: dedup(import.ips),
                    ports: import.ports,
                },
            );
        }
        let mut slices = slices.unwrap_or_default();
        // The API lists in no order we may rely on: answers come in the order of
        // (namespace, service, cluster, slice name) whatever order the objects arrived in.
        slices.sort_by(|a, b| {
            (&a.namespace, &a.service, &a.cluster, &a.name).cmp(&(
                &b.namespace,
                &b.service,
                &b.cluster,
                &b.name,
            ))
        });
        for slice in slices {
            let cluster = slice.cluster.to_lowercase();
            let addresses = slice
                .endpoints
                .iter()
                .filter(|e| e.ready)
                .flat_map(|e| {
                    e.addresses.iter().map(|ip| Address {
                        ip: *ip,
                        hostname: e
                            .hostname
                            .as_deref()
                            .filter(|h| !h.is_empty())
                            .map_or_else(|| derived_hostname(ip), str::to_lowercase),
                        cluster: cluster.clone(),
                    })
                })
                .collect();
            let key = (slice.namespace.to_lowercase(), slice.service.to_lowercase());
            view.slices.entry(key).or_default().push(Slice {
                ports: slice.ports,
                addresses,
            });
        }
        view
    }

    /// The source this view is of.
    pub fn source(&self) -> &KubernetesSource {
        &self.source
    }

    /// The SOA serial of the zones answered from it.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// Whether EndpointSlices were watched for it.
    pub fn has_endpoints(&self) -> bool {
        self.endpoints
    }

    /// ServiceImports in the view.
    pub fn import_count(&self) -> usize {
        self.imports.len()
    }
}

fn dedup(ips: Vec<IpAddr>) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::with_capacity(ips.len());
    for ip in ips {
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

/// coredns/multicluster's name for an endpoint without a hostname: its address with the
/// dots (IPv4) or colons (IPv6) turned into dashes.
fn derived_hostname(ip: &IpAddr) -> String {
    ip.to_string().replace(['.', ':'], "-")
}

/// A Kubernetes source a configuration reads, with what the host must watch of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchedSource {
    /// Where the API is.
    pub source: KubernetesSource,
    /// EndpointSlices too (unless every directive reading the source has `noendpoints`).
    pub endpoints: bool,
    /// The first directive that reads it, for messages.
    pub location: Location,
}

/// Every Kubernetes source `config` reads, once each, in configuration order.
pub fn kubernetes_sources(config: &Config) -> Vec<WatchedSource> {
    let mut sources: Vec<WatchedSource> = Vec::new();
    for m in config
        .servers
        .iter()
        .filter_map(|b| b.multicluster.as_ref())
    {
        let Some(source) = &m.kubernetes else {
            continue;
        };
        match sources.iter_mut().find(|s| &s.source == source) {
            Some(seen) => seen.endpoints |= !m.noendpoints,
            None => sources.push(WatchedSource {
                source: source.clone(),
                endpoints: !m.noendpoints,
                location: m.location.clone(),
            }),
        }
    }
    sources
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corefile::{parse_corefile_text, ParseOptions};
    use crate::loader::MemLoader;
    use std::path::Path;

    #[test]
    fn sources_are_listed_once_and_watch_slices_if_any_directive_wants_them() {
        let text = "a.local {\n  multicluster {\n    kubeconfig k.conf\n    noendpoints\n  }\n}\n\
                    b.local {\n  multicluster {\n    kubeconfig k.conf\n  }\n}\n\
                    c.local {\n  multicluster\n}\n\
                    d.local {\n  multicluster {\n    d.cluster. d\n  }\n  forward d.cluster. 10.0.0.1\n}\n";
        let config = parse_corefile_text(
            Path::new("Corefile"),
            text,
            &MemLoader::new(),
            &ParseOptions::default(),
        )
        .expect("valid");
        let sources = kubernetes_sources(&config);
        let shown: Vec<(String, bool, String)> = sources
            .iter()
            .map(|s| (s.source.to_string(), s.endpoints, s.location.to_string()))
            .collect();
        assert_eq!(
            shown,
            vec![
                (
                    "kubeconfig k.conf".to_string(),
                    true,
                    "Corefile:2".to_string()
                ),
                ("in-cluster".to_string(), true, "Corefile:13".to_string()),
            ]
        );
    }

    #[test]
    fn a_view_keeps_ready_addresses_and_names_endpoints_without_hostnames() {
        let slice = EndpointSlice {
            namespace: "NS".into(),
            name: "s".into(),
            service: "Db".into(),
            cluster: "East".into(),
            ports: Vec::new(),
            endpoints: vec![
                Endpoint {
                    addresses: vec!["fd00::1".parse().expect("ip")],
                    hostname: None,
                    ready: true,
                },
                Endpoint {
                    addresses: vec!["10.0.0.2".parse().expect("ip")],
                    hostname: Some("DB-1".into()),
                    ready: false,
                },
            ],
        };
        let source = KubernetesSource {
            kubeconfig: None,
            context: None,
        };
        let view = KubernetesView::new(source, 9, Vec::new(), Some(vec![slice]));
        let slices = &view.slices[&("ns".to_string(), "db".to_string())];
        let names: Vec<(&str, &str)> = slices[0]
            .addresses
            .iter()
            .map(|a| (a.hostname.as_str(), a.cluster.as_str()))
            .collect();
        assert_eq!(names, vec![("fd00--1", "east")]);
        assert!(view.has_endpoints() && view.serial() == 9 && view.import_count() == 0);
    }
}
