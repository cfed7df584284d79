//! `forward FROM TO… { options }` as CoreDNS's forward plugin reads it: plain DNS upstreams
//! (`IP`, `IP:PORT`, `[v6]:PORT`, `dns://…`, or a resolv.conf), and the options we support.

use std::net::{IpAddr, SocketAddr};

use super::directives::{fqdn, parse_go_duration, zone_name, Context};
use super::parser::{RawDirective, Token};
use crate::concurrency::SharedCount;
use crate::config::{defaults, Forward, HealthCheck, Policy};
use crate::error::ConfigError;
use crate::wire::Name;

/// CoreDNS's limit on upstreams per forward.
const MAX_UPSTREAMS: usize = 15;

const SUPPORTED: &str =
    "force_tcp, prefer_udp, policy, max_fails, health_check, expire, max_concurrent";

/// CoreDNS forward options that later work may add.
const NOT_YET: &[&str] = &[
    "except",
    "max_idle_conns",
    "max_connect_attempts",
    "tls",
    "tls_servername",
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
        policy: Policy::default(),
        max_fails: defaults::MAX_FAILS,
        health_check: HealthCheck {
            interval: defaults::HEALTH_CHECK,
            recursion_desired: true,
            domain: Name::root(),
        },
        expire: defaults::EXPIRE,
        max_concurrent: None,
        in_flight: SharedCount::default(),
        location: at.location(),
    };
    for line in directive.block.iter().flat_map(|b| &b.lines) {
        let Some((option, args)) = line.split_first() else {
            continue;
        };
        option_line(&mut forward, option, args, cx)?;
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

/// One line of the option block.
fn option_line(
    forward: &mut Forward,
    option: &Token,
    args: &[Token],
    cx: &mut Context<'_>,
) -> Result<(), ConfigError> {
    let name = option.text.as_str();
    let one_arg = |what: &str| -> Result<&Token, ConfigError> {
        match args {
            [arg] => Ok(arg),
            _ => Err(option.error(format!("forward: {name} takes one argument ({what})"))),
        }
    };
    let no_args = || -> Result<(), ConfigError> {
        match args.first() {
            Some(arg) => Err(arg.error(format!("forward: {name} takes no arguments"))),
            None => Ok(()),
        }
    };
    let duration = |arg: &Token| -> Result<std::time::Duration, ConfigError> {
        parse_go_duration(&arg.text).ok_or_else(|| {
            arg.error(format!(
                "forward: {name}: {:?} is not a duration (e.g. 500ms, 10s, 1m)",
                arg.text
            ))
        })
    };
    match name {
        "force_tcp" => {
            no_args()?;
            forward.force_tcp = true;
        }
        "prefer_udp" => {
            no_args()?;
            forward.prefer_udp = true;
        }
        "policy" => {
            let arg = one_arg("random, round_robin or sequential")?;
            forward.policy = match arg.text.as_str() {
                "random" => Policy::Random,
                "round_robin" => Policy::RoundRobin,
                "sequential" => Policy::Sequential,
                other => {
                    return Err(arg.error(format!(
                    "forward: unknown policy {other:?} (accepted: random, round_robin, sequential)"
                )))
                }
            };
        }
        "max_fails" => {
            let arg = one_arg("a whole number; 0 never marks an upstream down")?;
            forward.max_fails = arg.text.parse().map_err(|_| {
                arg.error(format!(
                    "forward: max_fails: {:?} is not a whole number (0 never marks an upstream down)",
                    arg.text
                ))
            })?;
        }
        "health_check" => {
            let Some((interval, rest)) = args.split_first() else {
                return Err(option.error(
                    "forward: health_check takes DURATION [no_rec] [domain FQDN], e.g. \"health_check 0.5s\"",
                ));
            };
            forward.health_check.interval = duration(interval)?;
            let mut rest = rest.iter();
            while let Some(word) = rest.next() {
                match word.text.as_str() {
                    "no_rec" => forward.health_check.recursion_desired = false,
                    "domain" => {
                        let Some(domain) = rest.next() else {
                            return Err(word.error("forward: health_check: domain needs an FQDN"));
                        };
                        forward.health_check.domain = fqdn(domain, "forward")?;
                    }
                    other => {
                        return Err(word.error(format!(
                            "forward: health_check: unknown word {other:?} (accepted: no_rec, domain FQDN)"
                        )))
                    }
                }
            }
        }
        "expire" => {
            let arg = one_arg("a duration, e.g. 10s")?;
            forward.expire = duration(arg)?;
            // Accepted so that CoreDNS Corefiles load, but the pool does not read it.
            cx.warn(
                &option.location(),
                format_args!(
                    "forward: expire {} is ignored: pooled upstream TCP connections close after \
                     10s idle (CoreDNS's default)",
                    arg.text
                ),
            );
        }
        "max_concurrent" => {
            let arg = one_arg("a whole number above 0")?;
            let max: u32 = arg.text.parse().ok().filter(|m| *m > 0).ok_or_else(|| {
                arg.error(format!(
                    "forward: max_concurrent: {:?} is not a whole number above 0",
                    arg.text
                ))
            })?;
            forward.max_concurrent = Some(max);
        }
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
    }
    Ok(())
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
