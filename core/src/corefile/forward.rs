//! `forward FROM TO… { options }` as CoreDNS's forward plugin reads it: plain DNS upstreams
//! (`IP`, `IP:PORT`, `[v6]:PORT`, `dns://…`, or a resolv.conf), and the options we support.

use std::net::{IpAddr, SocketAddr};

use super::directives::{zone_name, Context};
use super::parser::{RawDirective, Token};
use crate::config::Forward;
use crate::error::ConfigError;

/// CoreDNS's limit on upstreams per forward.
const MAX_UPSTREAMS: usize = 15;

const SUPPORTED: &str = "force_tcp, prefer_udp";

/// CoreDNS forward options that later work may add.
const NOT_YET: &[&str] = &[
    "except",
    "expire",
    "max_idle_conns",
    "max_fails",
    "max_connect_attempts",
    "tls",
    "tls_servername",
    "policy",
    "health_check",
    "max_concurrent",
    "next",
    "next_on_nodata",
    "failfast_all_unhealthy_upstreams",
    "failover",
    "resolver",
    "doh_method",
];

/// Parses one `forward` directive.
pub(crate) fn parse(
    directive: &RawDirective,
    cx: &mut Context<'_>,
) -> Result<Forward, ConfigError> {
    let at = &directive.name;
    let (from, tos) = match directive.args.split_first() {
        Some((from, tos)) if !tos.is_empty() => (from, tos),
        _ => {
            return Err(at.error(
                "forward: expected FROM and at least one TO, e.g. \"forward . 10.0.0.1:53\"",
            ))
        }
    };
    let from = zone_name(from, "forward")?;
    let mut to = Vec::new();
    for token in tos {
        to.extend(upstream(token, cx)?);
    }
    if to.len() > MAX_UPSTREAMS {
        return Err(at.error(format!(
            "forward: at most {MAX_UPSTREAMS} upstreams per forward, found {}",
            to.len()
        )));
    }
    let mut forward = Forward {
        from,
        to,
        force_tcp: false,
        prefer_udp: false,
        location: at.location(),
    };
    for line in directive.block.iter().flat_map(|b| &b.lines) {
        let Some((option, args)) = line.split_first() else {
            continue;
        };
        let flag = match option.text.as_str() {
            "force_tcp" => &mut forward.force_tcp,
            "prefer_udp" => &mut forward.prefer_udp,
            name if NOT_YET.contains(&name) => {
                return Err(option.error(format!(
                    "forward: option {name:?} is not supported yet (supported: {SUPPORTED})"
                )))
            }
            name => {
                return Err(option.error(format!(
                    "forward: unknown option {name:?} (supported: {SUPPORTED})"
                )))
            }
        };
        if let Some(arg) = args.first() {
            return Err(arg.error(format!("forward: {} takes no arguments", option.text)));
        }
        *flag = true;
    }
    if forward.force_tcp && forward.prefer_udp {
        cx.warn(
            &forward.location,
            "forward: force_tcp and prefer_udp are both set; force_tcp wins, as in CoreDNS",
        );
        forward.prefer_udp = false;
    }
    Ok(forward)
}

/// One TO: an address, or a resolv.conf whose nameservers are all used.
fn upstream(token: &Token, cx: &Context<'_>) -> Result<Vec<SocketAddr>, ConfigError> {
    let text = &token.text;
    let lower = text.to_ascii_lowercase();
    if lower.starts_with("tls://") || lower.starts_with("https://") {
        return Err(token.error(format!(
            "forward: {text:?}: TLS and HTTPS upstreams are not supported (use IP[:PORT] or dns://IP[:PORT])"
        )));
    }
    let address = match lower.strip_prefix("dns://") {
        Some(_) => &text["dns://".len()..],
        None if text.contains("://") => {
            return Err(token.error(format!(
                "forward: {text:?}: unknown scheme (use IP[:PORT] or dns://IP[:PORT])"
            )))
        }
        None => text.as_str(),
    };
    if let Some(addr) = socket_addr(address) {
        if addr.port() == 0 {
            return Err(token.error(format!(
                "forward: {text:?}: port 0 is not a valid upstream port"
            )));
        }
        return Ok(vec![addr]);
    }
    if !address.contains('/') {
        return Err(token.error(format!(
            "forward: {text:?} is not an IP address, IP:PORT, [IPv6]:PORT or a resolv.conf path \
             (host names are not supported)"
        )));
    }
    let path = token.base_dir().join(address);
    let conf = cx
        .loader
        .read(&path)
        .map_err(|e| token.error(format!("forward: cannot read {address:?}: {e}")))?;
    let mut found = Vec::new();
    for (number, line) in conf.lines().enumerate() {
        let mut words = line.split_whitespace();
        if words.next() != Some("nameserver") {
            continue;
        }
        let value = words.next().unwrap_or_default();
        let ip = value.parse::<IpAddr>().map_err(|_| {
            token.error(format!(
                "forward: {address}:{}: nameserver {value:?} is not an IP address",
                number + 1
            ))
        })?;
        found.push(SocketAddr::new(ip, 53));
    }
    if found.is_empty() {
        return Err(token.error(format!("forward: {address:?} lists no nameserver")));
    }
    Ok(found)
}

/// `IP`, `IP:PORT`, `[v6]` or `[v6]:PORT`; port 53 when none is given.
fn socket_addr(text: &str) -> Option<SocketAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr);
    }
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    inner
        .parse::<IpAddr>()
        .ok()
        .filter(IpAddr::is_ipv6)
        .map(|ip| SocketAddr::new(ip, 53))
}
