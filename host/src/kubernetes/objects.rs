//! The Kubernetes objects as the API serves them, and what the core keeps of them: the MCS
//! API's ServiceImport (`multicluster.x-k8s.io/v1alpha1`, not in k8s-openapi, so declared
//! here with the fields DNS needs) and k8s-openapi's `discovery.k8s.io/v1` EndpointSlice.

use std::borrow::Cow;
use std::net::IpAddr;

use gatherdns_core::kube_view::{self, ImportType};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// The label an MCS controller puts on the EndpointSlices it makes for an import.
pub(crate) const SERVICE_NAME_LABEL: &str = "multicluster.kubernetes.io/service-name";
/// The label that names the cluster a slice's endpoints come from.
pub(crate) const SOURCE_CLUSTER_LABEL: &str = "multicluster.kubernetes.io/source-cluster";

/// `multicluster.x-k8s.io/v1alpha1` ServiceImport (sigs.k8s.io/mcs-api).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub(crate) struct ServiceImport {
    #[serde(default)]
    pub(crate) metadata: ObjectMeta,
    #[serde(default)]
    pub(crate) spec: ServiceImportSpec,
}

/// `spec` of a ServiceImport.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServiceImportSpec {
    /// `ClusterSetIP` or `Headless`.
    #[serde(rename = "type", default)]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) ips: Vec<String>,
    #[serde(default)]
    pub(crate) ports: Vec<ServicePort>,
}

/// `spec.ports[]` of a ServiceImport.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServicePort {
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) protocol: Option<String>,
    pub(crate) port: i32,
}

impl kube::Resource for ServiceImport {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "ServiceImport".into()
    }

    fn group(_: &()) -> Cow<'_, str> {
        "multicluster.x-k8s.io".into()
    }

    fn version(_: &()) -> Cow<'_, str> {
        "v1alpha1".into()
    }

    fn plural(_: &()) -> Cow<'_, str> {
        "serviceimports".into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// `(namespace, name)`: what identifies an object in a store.
pub(crate) fn key(meta: &ObjectMeta) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// What the core keeps of an import; `None` for a type this version does not know.
pub(crate) fn import(object: &ServiceImport) -> Option<kube_view::ServiceImport> {
    let kind = match object.spec.kind.as_str() {
        "ClusterSetIP" => ImportType::ClusterSetIp,
        "Headless" => ImportType::Headless,
        _ => return None,
    };
    let (namespace, name) = key(&object.metadata);
    Some(kube_view::ServiceImport {
        namespace,
        name,
        kind,
        ips: object
            .spec
            .ips
            .iter()
            .filter_map(|ip| ip.parse::<IpAddr>().ok())
            .collect(),
        ports: object
            .spec
            .ports
            .iter()
            .filter_map(|p| port(p.name.as_deref(), p.protocol.as_deref(), Some(p.port)))
            .collect(),
    })
}

/// A port as the core keeps it: protocol TCP when unset (the API's default), numbers outside
/// 1–65535 left out.
fn port(
    name: Option<&str>,
    protocol: Option<&str>,
    port: Option<i32>,
) -> Option<kube_view::ServicePort> {
    Some(kube_view::ServicePort {
        name: name.unwrap_or_default().to_string(),
        protocol: protocol.unwrap_or("TCP").to_string(),
        port: u16::try_from(port?).ok().filter(|p| *p > 0)?,
    })
}

/// What the core keeps of a slice: its ports and endpoints with IP addresses (an FQDN slice
/// has none), with the service and cluster from its labels.
pub(crate) fn slice(object: &EndpointSlice) -> kube_view::EndpointSlice {
    let (namespace, name) = key(&object.metadata);
    let labels = object.metadata.labels.as_ref();
    let label = |key: &str| labels.and_then(|l| l.get(key)).cloned().unwrap_or_default();
    let ip_family = matches!(object.address_type.as_str(), "IPv4" | "IPv6");
    kube_view::EndpointSlice {
        namespace,
        name,
        service: label(SERVICE_NAME_LABEL),
        cluster: label(SOURCE_CLUSTER_LABEL),
        ports: object
            .ports
            .iter()
            .flatten()
            .filter_map(|p| port(p.name.as_deref(), p.protocol.as_deref(), p.port))
            .collect(),
        endpoints: object
            .endpoints
            .iter()
            .filter(|_| ip_family)
            .map(|e| kube_view::Endpoint {
                addresses: e
                    .addresses
                    .iter()
                    .filter_map(|a| a.parse::<IpAddr>().ok())
                    .collect(),
                hostname: e.hostname.clone(),
                // An unset condition is ready, as the API defines it.
                ready: e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_read_as_the_api_writes_them() {
        let json = r#"{"apiVersion":"multicluster.x-k8s.io/v1alpha1","kind":"ServiceImport",
            "metadata":{"name":"web","namespace":"default","resourceVersion":"12"},
            "spec":{"type":"ClusterSetIP","ips":["10.42.0.10","fd00::10","bogus"],
                    "ports":[{"name":"http","protocol":"TCP","port":80},{"port":70000}]},
            "status":{"clusters":[{"cluster":"east"}]}}"#;
        let object: ServiceImport = serde_json::from_str(json).expect("ServiceImport");
        let import = import(&object).expect("known type");
        assert_eq!(
            (import.namespace.as_str(), import.name.as_str()),
            ("default", "web")
        );
        assert_eq!(import.kind, ImportType::ClusterSetIp);
        assert_eq!(import.ips.len(), 2);
        assert_eq!(import.ports.len(), 1);
        let json = r#"{"apiVersion":"discovery.k8s.io/v1","kind":"EndpointSlice",
            "metadata":{"name":"db-east-1","namespace":"default",
              "labels":{"multicluster.kubernetes.io/service-name":"db",
                        "multicluster.kubernetes.io/source-cluster":"east"}},
            "addressType":"IPv4",
            "ports":[{"name":"postgres","protocol":"TCP","port":5432}],
            "endpoints":[{"addresses":["10.8.1.1"],"hostname":"db-0","conditions":{"ready":true}},
                         {"addresses":["10.8.1.2"],"conditions":{"ready":false}},
                         {"addresses":["10.8.1.3"]}]}"#;
        let object: EndpointSlice = serde_json::from_str(json).expect("EndpointSlice");
        let slice = slice(&object);
        assert_eq!(
            (slice.service.as_str(), slice.cluster.as_str()),
            ("db", "east")
        );
        let ready: Vec<bool> = slice.endpoints.iter().map(|e| e.ready).collect();
        assert_eq!(ready, vec![true, false, true]);
        assert_eq!(slice.endpoints[0].hostname.as_deref(), Some("db-0"));
    }
}
