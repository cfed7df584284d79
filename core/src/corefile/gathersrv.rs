//! `gathersrv DOMAIN { SUFFIX PREFIX … options }`: parsed as ziollek/gathersrv's `setup.go`
//! does, then validated far more strictly, because the configurations gathersrv silently
//! accepts (duplicate, nested or overlapping clusters) give wrong answers later.

use std::time::Duration;

use super::answers;
use super::directives::{fqdn, parse_go_duration, Context};
use super::options::ns_ips;
use super::parser::{RawDirective, Token};
use crate::config::{defaults, Cluster, Gather, Location, ServerBlock};
use crate::error::ConfigError;

const OPTIONS: &str =
    "timeout, cluster_timeout, negative_ttl, ns_ip, policy, srv_priority, serve_stale";

/// The longest TTL RFC 2181 §8 allows.
const MAX_TTL: u64 = 0x7fff_ffff;

/// Parses one `gathersrv` directive.
pub(crate) fn parse(directive: &RawDirective, cx: &mut Context<'_>) -> Result<Gather, ConfigError> {
    let at = &directive.name;
    let domain_token = match directive.args.as_slice() {
        [one] => one,
        [] => {
            return Err(at.error(
                "gathersrv: expected one argument, the distributed domain, e.g. \"gathersrv distributed.local. {\"",
            ))
        }
        [_, extra, ..] => {
            return Err(extra.error(format!(
                "gathersrv: expected one argument, the distributed domain, but {:?} follows it",
                extra.text
            )))
        }
    };
    let domain = fqdn(domain_token, "gathersrv")?;
    if !cx.zones.iter().any(|zone| domain.is_at_or_below(zone)) {
        return Err(domain_token.error(format!(
            "gathersrv: {domain} is not inside this server block's zones ({}), so no query for it \
             would reach gathersrv; use the block's zone or a name below it",
            cx.zone_list()
        )));
    }
    let Some(block) = &directive.block else {
        return Err(at.error(
            "gathersrv: the cluster list must follow in a block opened on this line, e.g. \
             \"gathersrv distributed.local. {\" then lines like \"cluster-a.local. a-\"",
        ));
    };

    let mut clusters: Vec<(Cluster, Location)> = Vec::new();
    let mut timeout: Option<(Duration, Location)> = None;
    let mut cluster_timeout: Option<(Duration, Location)> = None;
    let mut negative_ttl: Option<(u32, Location)> = None;
    let mut ns_ip: Option<(Vec<std::net::IpAddr>, Location)> = None;
    let mut answer_options = answers::Pending::default();
    for line in &block.lines {
        let Some((first, rest)) = line.split_first() else {
            continue;
        };
        if first.text.ends_with('.') {
            let cluster = cluster_line(first, rest, &domain)?;
            check_against_others(&cluster, first, &clusters)?;
            clusters.push((cluster, first.location()));
            continue;
        }
        match first.text.as_str() {
            "timeout" => set_once(&mut timeout, positive_duration(first, rest)?, first)?,
            "cluster_timeout" => set_once(&mut cluster_timeout, positive_duration(first, rest)?, first)?,
            "negative_ttl" => set_once(&mut negative_ttl, ttl(first, rest)?, first)?,
            "ns_ip" => set_once(&mut ns_ip, ns_ips(first, rest, "gathersrv")?, first)?,
            option if answers::takes(option) => answers::parse(first, rest, &mut answer_options)?,
            other => {
                return Err(first.error(format!(
                    "gathersrv: {other:?} is neither an option ({OPTIONS}) nor a cluster domain \
                     (a cluster line is \"SUFFIX PREFIX\" and SUFFIX must end with a dot, e.g. \"{other}.\")"
                )))
            }
        }
    }
    if clusters.is_empty() {
        return Err(at.error(
            "gathersrv: at least one cluster line \"SUFFIX PREFIX\" is required, e.g. \"cluster-a.local. a-\"",
        ));
    }
    warn_overlapping_prefixes(&clusters, cx);
    let answers = answers::finish(answer_options, &clusters)?;

    let timeout_value = timeout.as_ref().map_or(defaults::TIMEOUT, |(d, _)| *d);
    let cluster_timeout_value = cluster_timeout
        .as_ref()
        .map_or(defaults::CLUSTER_TIMEOUT, |(d, _)| *d);
    if cluster_timeout_value > timeout_value {
        let location = cluster_timeout
            .as_ref()
            .or(timeout.as_ref())
            .map_or_else(|| at.location(), |(_, l)| l.clone());
        return Err(ConfigError::at(
            &location,
            format!(
                "gathersrv: cluster_timeout ({cluster_timeout_value:?}) must not exceed timeout ({timeout_value:?})"
            ),
        ));
    }
    Ok(Gather {
        domain,
        clusters: clusters.into_iter().map(|(c, _)| c).collect(),
        timeout: timeout_value,
        cluster_timeout: cluster_timeout_value,
        negative_ttl: negative_ttl.map_or(defaults::NEGATIVE_TTL, |(t, _)| t),
        ns_ip: ns_ip.map(|(ips, _)| ips).unwrap_or_default(),
        answers,
        location: at.location(),
    })
}

/// `SUFFIX PREFIX`, each part checked on its own.
fn cluster_line(
    first: &Token,
    rest: &[Token],
    domain: &crate::wire::Name,
) -> Result<Cluster, ConfigError> {
    let prefix_token = match rest {
        [prefix] => prefix,
        [] => {
            return Err(first.error(format!(
                "gathersrv: cluster {:?} has no prefix; a cluster line is \"SUFFIX PREFIX\", e.g. \"cluster-a.local. a-\"",
                first.text
            )))
        }
        [_, extra, ..] => {
            return Err(extra.error(format!(
                "gathersrv: a cluster line is \"SUFFIX PREFIX\", e.g. \"cluster-a.local. a-\", but {:?} follows the prefix",
                extra.text
            )))
        }
    };
    let suffix = fqdn(first, "gathersrv")?;
    if suffix == *domain {
        return Err(first.error(format!(
            "gathersrv: cluster domain {suffix} is the distributed domain itself; a cluster needs its own domain"
        )));
    }
    if suffix.is_at_or_below(domain) {
        return Err(first.error(format!(
            "gathersrv: cluster domain {suffix} is inside the distributed domain {domain}; cluster domains must lie outside it"
        )));
    }
    if domain.is_at_or_below(&suffix) {
        return Err(first.error(format!(
            "gathersrv: cluster domain {suffix} contains the distributed domain {domain}; cluster domains must lie outside it"
        )));
    }
    let prefix = &prefix_token.text;
    let bad = |why: &str| Err(prefix_token.error(format!("gathersrv: prefix {prefix:?} {why}")));
    if prefix.is_empty() {
        return bad("is empty; each cluster needs a prefix such as \"a-\"");
    }
    if prefix.contains('.') {
        return bad("contains a dot; a prefix is the start of one host label, e.g. \"a-\"");
    }
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return bad(
            "has a character that cannot be in a host label (use letters, digits, '-' and '_')",
        );
    }
    if prefix.len() >= 63 {
        return bad(
            "is too long: it must be shorter than 63 bytes so that a host label fits after it",
        );
    }
    Ok(Cluster {
        suffix,
        prefix: prefix.clone(),
    })
}

/// Duplicate and nested cluster domains, and duplicate prefixes.
fn check_against_others(
    cluster: &Cluster,
    at: &Token,
    others: &[(Cluster, Location)],
) -> Result<(), ConfigError> {
    for (other, location) in others {
        if other.suffix == cluster.suffix {
            return Err(at.error(format!(
                "gathersrv: cluster domain {} is listed twice (first at {location})",
                cluster.suffix
            )));
        }
        if cluster.suffix.is_at_or_below(&other.suffix)
            || other.suffix.is_at_or_below(&cluster.suffix)
        {
            return Err(at.error(format!(
                "gathersrv: cluster domains {} and {} (at {location}) are nested; each cluster needs a domain of its own",
                cluster.suffix, other.suffix
            )));
        }
        if other.prefix.eq_ignore_ascii_case(&cluster.prefix) {
            return Err(at.error(format!(
                "gathersrv: prefix {:?} is already used by {} (at {location}); prefixes are compared without regard to case",
                cluster.prefix, other.suffix
            )));
        }
    }
    Ok(())
}

/// `a-` and `a-b-`: legal, but hosts of the `a-` cluster named `b-…` become unreachable.
fn warn_overlapping_prefixes(clusters: &[(Cluster, Location)], cx: &mut Context<'_>) {
    for (short, _) in clusters {
        for (long, location) in clusters {
            let (s, l) = (
                short.prefix.to_ascii_lowercase(),
                long.prefix.to_ascii_lowercase(),
            );
            if l.len() > s.len() && l.starts_with(&s) {
                cx.warn(
                    location,
                    format!(
                        "gathersrv: prefix {:?} ({}) starts with prefix {:?} ({}); the longest prefix wins, so a host \
                         of {} whose name starts with {:?} cannot be addressed",
                        long.prefix,
                        long.suffix,
                        short.prefix,
                        short.suffix,
                        short.suffix,
                        &long.prefix[short.prefix.len()..]
                    ),
                );
            }
        }
    }
}

fn set_once<T>(slot: &mut Option<(T, Location)>, value: T, at: &Token) -> Result<(), ConfigError> {
    if let Some((_, first)) = slot {
        return Err(at.error(format!(
            "gathersrv: {} is set twice (first at {first})",
            at.text
        )));
    }
    *slot = Some((value, at.location()));
    Ok(())
}

fn one_argument<'t>(
    option: &Token,
    args: &'t [Token],
    example: &str,
) -> Result<&'t Token, ConfigError> {
    match args {
        [one] => Ok(one),
        _ => Err(option.error(format!(
            "gathersrv: {} expects one value, e.g. \"{} {example}\"",
            option.text, option.text
        ))),
    }
}

fn positive_duration(option: &Token, args: &[Token]) -> Result<Duration, ConfigError> {
    let value = one_argument(option, args, "2s")?;
    match parse_go_duration(&value.text) {
        Some(d) if !d.is_zero() => Ok(d),
        Some(_) => Err(value.error(format!("gathersrv: {} must be greater than 0", option.text))),
        None => Err(value.error(format!(
            "gathersrv: {} {:?} is not a duration (e.g. 500ms, 2s, 1m30s)",
            option.text, value.text
        ))),
    }
}

/// Seconds, written as a number (`5`) or a duration (`5s`, `1m`).
fn ttl(option: &Token, args: &[Token]) -> Result<u32, ConfigError> {
    let value = one_argument(option, args, "5s")?;
    let text = &value.text;
    let seconds = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse::<u64>().ok()
    } else {
        match parse_go_duration(text) {
            Some(d) if d.subsec_nanos() != 0 => {
                return Err(value.error(format!(
                    "gathersrv: negative_ttl {text:?} is not a whole number of seconds"
                )))
            }
            Some(d) => Some(d.as_secs()),
            None => {
                return Err(value.error(format!(
                    "gathersrv: negative_ttl {text:?} is neither seconds nor a duration (e.g. 5, 5s, 1m)"
                )))
            }
        }
    };
    match seconds
        .filter(|s| *s <= MAX_TTL)
        .and_then(|s| u32::try_from(s).ok())
    {
        Some(s) => Ok(s),
        None => Err(value.error(format!(
            "gathersrv: negative_ttl {text:?} is too long (at most {MAX_TTL} seconds)"
        ))),
    }
}

/// Every cluster needs something in its block that can answer for its domain.
pub(crate) fn check_sources(block: &ServerBlock) -> Result<(), ConfigError> {
    for gather in &block.gathers {
        for cluster in &gather.clusters {
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
                    &gather.location,
                    format!(
                        "gathersrv: nothing in this server block answers for cluster {suffix}; add \
                         \"forward {suffix} IP[:PORT]\" (the cluster's DNS) or a file zone for it",
                        suffix = cluster.suffix
                    ),
                ));
            }
        }
    }
    Ok(())
}
