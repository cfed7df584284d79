//! Answers of `multicluster` from the Kubernetes API's objects, as coredns/multicluster gives
//! them: ClusterSetIP imports by their `spec.ips`, headless imports by their ready endpoints,
//! `<hostname>.<cluster-id>` names per endpoint, SRV per port with CoreDNS's weights. The
//! name grammar above the service (apex, `dns-version`, `svc`) is `mcs.rs`'s.

use std::net::IpAddr;

use crate::answer::Answer;
use crate::kube_view::{Address, ImportType, KubernetesView, ServicePort};
use crate::wire::{Name, Rcode, Record, Rtype};

/// coredns/multicluster's TTL for every record it answers.
const TTL: u32 = 5;

/// What a query below `<svc>.<ns>.svc` asks for.
enum Below<'a> {
    /// The service itself.
    Service,
    /// `_<port>._<proto>`, underscores removed (an empty one matches any).
    Port(&'a str, &'a str),
    /// `<hostname>.<cluster-id>`.
    Endpoint(&'a str, &'a str),
}

/// One address a name resolves to, with the port it serves (`None`: the object has no
/// ports, so there is an address but no SRV) and the name SRV records point at.
struct Entry {
    /// `None` for an endpoint that cannot be named (it still answers A/AAAA).
    target: Option<Name>,
    ip: IpAddr,
    port: Option<u16>,
}

/// The answer for `qname` (below `zone`; `labels` are those left of the zone, leftmost
/// first, and are neither empty, `dns-version` nor `svc`/`pod` alone). `soa` goes with every
/// negative answer.
pub(crate) fn answer(
    view: &KubernetesView,
    zone: &Name,
    soa: &Record,
    qname: &Name,
    qtype: Rtype,
    labels: &[&[u8]],
    noendpoints: bool,
) -> Answer {
    let lower: Option<Vec<String>> = labels
        .iter()
        .map(|l| std::str::from_utf8(l).ok().map(str::to_ascii_lowercase))
        .collect();
    let Some(lower) = lower else {
        return Answer::negative(false, soa);
    };
    let words: Vec<&str> = lower.iter().map(String::as_str).collect();
    // `<ns>.svc`: an empty non-terminal when the namespace has an import.
    let (service, namespace, below) = match words.as_slice() {
        [ns, "svc"] => return Answer::negative(view.namespaces.contains(*ns), soa),
        [svc, ns, "svc"] => (*svc, *ns, Below::Service),
        [port, proto, svc, ns, "svc"] if proto.starts_with('_') => (
            *svc,
            *ns,
            Below::Port(strip_underscore(port), strip_underscore(proto)),
        ),
        [host, cluster, svc, ns, "svc"] => (*svc, *ns, Below::Endpoint(host, cluster)),
        // `<cluster-id>.<svc>.<ns>.svc` (the specification forbids cluster-level names), the
        // `pod` tree (no pod names in a clusterset), other top labels, anything deeper.
        _ => return Answer::negative(false, soa),
    };
    let entries = entries(view, zone, namespace, service, &below, noendpoints);
    if entries.is_empty() {
        return Answer::negative(false, soa);
    }
    let mut answer = Answer::empty(Rcode::NOERROR, true);
    match qtype {
        Rtype::A | Rtype::AAAA => {
            let mut seen: Vec<IpAddr> = Vec::new();
            for entry in &entries {
                if !seen.contains(&entry.ip) {
                    seen.push(entry.ip);
                    answer
                        .answer
                        .extend(address(qname.clone(), entry.ip, qtype));
                }
            }
        }
        Rtype::SRV => srv(&mut answer, qname, &entries),
        // Other types (and TXT, for which only dns-version has data): NODATA for a name that
        // exists, as coredns/multicluster decides with an A lookup.
        _ => {}
    }
    if answer.answer.is_empty() {
        return Answer::negative(true, soa);
    }
    answer
}

/// CoreDNS's SRV answer: one record per (target, port), weight `100 / N` (at least 1) for N
/// addresses behind the name, every target's addresses in the additional section.
fn srv(answer: &mut Answer, qname: &Name, entries: &[Entry]) {
    let weight = u16::try_from((100 / entries.len()).max(1)).unwrap_or(1);
    let mut records: Vec<(&Name, u16)> = Vec::new();
    let mut glue: Vec<(&Name, IpAddr)> = Vec::new();
    for entry in entries {
        let (Some(port), Some(target)) = (entry.port, &entry.target) else {
            continue;
        };
        if !records.contains(&(target, port)) {
            records.push((target, port));
            answer.answer.push(Record::srv(
                qname.clone(),
                TTL,
                0,
                weight,
                port,
                target.clone(),
            ));
        }
        if !glue.contains(&(target, entry.ip)) {
            glue.push((target, entry.ip));
            let family = if entry.ip.is_ipv4() {
                Rtype::A
            } else {
                Rtype::AAAA
            };
            answer
                .additional
                .extend(address(target.clone(), entry.ip, family));
        }
    }
}

/// An A or AAAA record of `ip` when it is of the family `qtype` asks for.
fn address(owner: Name, ip: IpAddr, qtype: Rtype) -> Option<Record> {
    match (ip, qtype) {
        (IpAddr::V4(v4), Rtype::A) => Some(Record::a(owner, TTL, v4)),
        (IpAddr::V6(v6), Rtype::AAAA) => Some(Record::aaaa(owner, TTL, v6)),
        _ => None,
    }
}

/// What the name resolves to, as coredns/multicluster's `findServices` collects it: the
/// ClusterSetIPs per matching port, or for a headless import (and for any endpoint name)
/// each ready endpoint address per matching port of its slice.
fn entries(
    view: &KubernetesView,
    zone: &Name,
    namespace: &str,
    service: &str,
    below: &Below<'_>,
    noendpoints: bool,
) -> Vec<Entry> {
    let key = (namespace.to_string(), service.to_string());
    let Some(import) = view.imports.get(&key) else {
        return Vec::new();
    };
    let (want_port, want_proto) = match below {
        Below::Port(port, proto) => (*port, *proto),
        Below::Service | Below::Endpoint(..) => ("", ""),
    };
    let matches = |p: &Option<&ServicePort>| match p {
        Some(p) => {
            (want_port.is_empty() || p.name.eq_ignore_ascii_case(want_port))
                && (want_proto.is_empty() || p.protocol.eq_ignore_ascii_case(want_proto))
        }
        // An object without ports: its addresses answer A/AAAA, and no `_port` name.
        None => want_port.is_empty() && want_proto.is_empty(),
    };
    let service_labels = [service.as_bytes(), namespace.as_bytes(), b"svc".as_slice()];
    let mut out = Vec::new();
    if import.kind == ImportType::Headless || matches!(below, Below::Endpoint(..)) {
        if noendpoints {
            return out;
        }
        for slice in view.slices.get(&key).map(Vec::as_slice).unwrap_or(&[]) {
            let ports = port_list(&slice.ports);
            for addr in &slice.addresses {
                if let Below::Endpoint(host, cluster) = below {
                    if addr.cluster != *cluster || addr.hostname != *host {
                        continue;
                    }
                }
                let target = endpoint_name(addr, &service_labels, zone);
                for port in ports.iter().filter(|p| matches(p)) {
                    out.push(Entry {
                        target: target.clone(),
                        ip: addr.ip,
                        port: port.map(|p| p.port),
                    });
                }
            }
        }
        return out;
    }
    let target = Name::from_labels(service_labels, zone).ok();
    for port in port_list(&import.ports).iter().filter(|p| matches(p)) {
        for ip in &import.ips {
            out.push(Entry {
                target: target.clone(),
                ip: *ip,
                port: port.map(|p| p.port),
            });
        }
    }
    out
}

/// The ports, or one stand-in for an object that has none.
fn port_list(ports: &[ServicePort]) -> Vec<Option<&ServicePort>> {
    if ports.is_empty() {
        vec![None]
    } else {
        ports.iter().map(Some).collect()
    }
}

/// `<hostname>.<cluster-id>.<svc>.<ns>.svc.ZONE`; `None` when the hostname or the cluster ID
/// cannot be one DNS label (such an endpoint still answers the service's A/AAAA queries).
fn endpoint_name(addr: &Address, service: &[&[u8]; 3], zone: &Name) -> Option<Name> {
    let label = |s: &str| {
        !s.is_empty() && s.len() <= 63 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !label(&addr.hostname) || !label(&addr.cluster) {
        return None;
    }
    let labels = [addr.hostname.as_bytes(), addr.cluster.as_bytes()]
        .into_iter()
        .chain(service.iter().copied());
    Name::from_labels(labels, zone).ok()
}

fn strip_underscore(label: &str) -> &str {
    label.strip_prefix('_').unwrap_or(label)
}
