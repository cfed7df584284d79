//! CoreDNS plugins gatherdns does not serve, each with what to do instead. A Corefile written
//! for CoreDNS names them; the user gets one line per such directive (all of them, not only
//! the first) rather than a bare "unknown directive".

/// Where the deploy guide shows CoreDNS and gatherdns side by side.
pub(crate) const SIDE_BY_SIDE: &str = "deploy/README.md#next-to-the-clusters-coredns";

/// Every plugin of CoreDNS's `plugin.cfg` that gatherdns does not serve.
const PLUGINS: &[&str] = &[
    "root",
    "metadata",
    "geoip",
    "cancel",
    "proxyproto",
    "quic",
    "grpc_server",
    "https",
    "https3",
    "timeouts",
    "multisocket",
    "nsid",
    "debug",
    "trace",
    "pprof",
    "shed",
    "dnstap",
    "local",
    "dns64",
    "any",
    "chaos",
    "tsig",
    "rewrite",
    "autopath",
    "acl",
    "header",
    "dnssec",
    "tls",
    "minimal",
    "template",
    "transfer",
    "route53",
    "azure",
    "clouddns",
    "k8s_external",
    "kubernetes",
    "auto",
    "secondary",
    "etcd",
    "grpc",
    "erratic",
    "whoami",
    "on",
    "sign",
    "view",
    "nomad",
];

/// The message for a directive that is a CoreDNS plugin gatherdns does not serve, or `None`
/// when `name` is no such plugin.
pub(crate) fn refusal(name: &str) -> Option<String> {
    if !PLUGINS.contains(&name) {
        return None;
    }
    let instead = match name {
        "kubernetes" | "k8s_external" => format!(
            "gatherdns does not answer a cluster's own names; keep CoreDNS with {name} for \
             cluster.local and forward the distributed (or clusterset) zone from it to gatherdns, \
             then remove this line here (see {SIDE_BY_SIDE})"
        ),
        "template" | "auto" | "secondary" | "etcd" | "route53" | "azure" | "clouddns" | "nomad" => {
            "answer from a zone file (file) or a static table (hosts) instead, or keep CoreDNS \
             for that zone"
                .to_string()
        }
        "tls" | "quic" | "https" | "https3" | "grpc_server" | "grpc" | "proxyproto" => format!(
            "gatherdns speaks plain DNS over UDP and TCP; keep CoreDNS (or another proxy) in \
             front for this transport and forward to gatherdns (see {SIDE_BY_SIDE})"
        ),
        "cancel" | "timeouts" => "gatherdns keeps its own deadlines (gathersrv's timeout and \
             cluster_timeout); remove this line"
            .to_string(),
        "rewrite" => "gathersrv does the renaming between the clusters and the distributed \
             domain itself; remove this line, or keep CoreDNS's rewrite in front of gatherdns"
            .to_string(),
        "acl" => "restrict who reaches gatherdns's port with a firewall or a NetworkPolicy \
             instead, and remove this line"
            .to_string(),
        "dnssec" | "sign" => "gatherdns does not sign answers; remove this line".to_string(),
        "root" => "relative paths are taken from the Corefile's directory; remove this line and \
             write paths relative to the Corefile (or absolute)"
            .to_string(),
        _ => format!(
            "remove this line, or keep CoreDNS in front for what it does and forward the zone to \
             gatherdns (see {SIDE_BY_SIDE})"
        ),
    };
    Some(format!(
        "{name}: gatherdns does not serve CoreDNS's {name} plugin: {instead}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_says_what_to_do() {
        for name in PLUGINS {
            let text = refusal(name).expect("listed");
            assert!(text.starts_with(&format!("{name}: gatherdns does not serve")));
        }
        assert!(refusal("kubernetes")
            .expect("listed")
            .contains("forward the distributed (or clusterset) zone"));
        assert_eq!(refusal("cahce"), None);
        assert_eq!(refusal("cache"), None, "served");
    }
}
