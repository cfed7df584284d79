//! `cache [TTL] [ZONES…] { success; denial; prefetch; serve_stale; servfail; disable; keepttl }`
//! as CoreDNS's cache plugin reads it (`plugin/cache/setup.go`), with its defaults, and every
//! mistake reported with what is accepted.

use std::time::Duration;

use super::directives::{parse_go_duration, zone_name, Context};
use super::options::own_zones;
use super::parser::{RawDirective, Token};
use crate::config::{cache_defaults as d, Cache, CacheKind, Prefetch, ServeStale};
use crate::error::ConfigError;
use crate::wire::Name;

const OPTIONS: &str = "success, denial, prefetch, serve_stale, servfail, disable, keepttl";

/// Parses one `cache` directive.
pub(crate) fn parse(directive: &RawDirective, cx: &mut Context<'_>) -> Result<Cache, ConfigError> {
    let at = &directive.name;
    let mut args = directive.args.as_slice();
    let mut max_ttl: Option<u32> = None;
    if let Some((first, rest)) = args.split_first() {
        // CoreDNS: a first argument that is a number is the TTL, anything else a zone.
        if let Ok(ttl) = first.text.parse::<i64>() {
            max_ttl = Some(positive_ttl(first, ttl, "TTL")?);
            args = rest;
        }
    }
    let zones = own_zones(args, cx, "cache")?;
    let kind = |max: u32| CacheKind {
        capacity: capacity(d::CAPACITY),
        max_ttl: max_ttl.unwrap_or(max),
        min_ttl: d::MIN_TTL,
    };
    let mut cache = Cache {
        zones,
        success: kind(d::SUCCESS_MAX_TTL),
        denial: kind(d::DENIAL_MAX_TTL),
        prefetch: None,
        serve_stale: None,
        servfail: d::SERVFAIL,
        disable_success: Vec::new(),
        disable_denial: Vec::new(),
        keepttl: false,
        location: at.location(),
    };
    let Some(block) = &directive.block else {
        return Ok(cache);
    };
    for line in &block.lines {
        let Some((option, rest)) = line.split_first() else {
            continue;
        };
        match option.text.as_str() {
            "success" => cache.success = kind_option(option, rest, cache.success)?,
            "denial" => cache.denial = kind_option(option, rest, cache.denial)?,
            "prefetch" => cache.prefetch = prefetch(option, rest)?,
            "serve_stale" => cache.serve_stale = Some(serve_stale(rest)?),
            "servfail" => cache.servfail = servfail(option, rest)?,
            "disable" => {
                let (which, zones) = disable(option, rest)?;
                if which == "success" {
                    cache.disable_success = zones;
                } else {
                    cache.disable_denial = zones;
                }
            }
            "keepttl" => {
                if let Some(extra) = rest.first() {
                    return Err(extra.error(format!(
                        "cache: keepttl takes no value, but {:?} follows it",
                        extra.text
                    )));
                }
                cache.keepttl = true;
            }
            "serve_stale_policy" => {
                return Err(option.error(
                    "cache: serve_stale_policy is not supported; gatherdns serves an expired \
                     entry whatever its kind (use serve_stale alone)",
                ))
            }
            other => {
                return Err(option.error(format!(
                    "cache: unknown option {other:?} (cache takes {OPTIONS})"
                )))
            }
        }
    }
    Ok(cache)
}

/// CoreDNS's capacity: 256 shards of at least four entries each, rounded down to whole
/// shards.
pub(crate) fn capacity(asked: usize) -> usize {
    d::SHARDS * (asked / d::SHARDS).max(4)
}

fn positive_ttl(token: &Token, value: i64, what: &str) -> Result<u32, ConfigError> {
    if value <= 0 {
        return Err(token.error(format!(
            "cache: {what} can not be zero or negative: {value} (a number of seconds, e.g. 30)"
        )));
    }
    u32::try_from(value)
        .ok()
        .filter(|v| *v <= 0x7fff_ffff)
        .ok_or_else(|| {
            token.error(format!(
                "cache: {what} {value} is too long (at most 2147483647 seconds)"
            ))
        })
}

fn number(token: &Token, option: &str, what: &str) -> Result<i64, ConfigError> {
    token.text.parse::<i64>().map_err(|_| {
        token.error(format!(
            "cache: {option}: {what} {:?} is not a number",
            token.text
        ))
    })
}

/// `success|denial CAPACITY [TTL] [MINTTL]`.
fn kind_option(
    option: &Token,
    args: &[Token],
    mut kind: CacheKind,
) -> Result<CacheKind, ConfigError> {
    let name = &option.text;
    let (cap, ttl, min) = match args {
        [cap] => (cap, None, None),
        [cap, ttl] => (cap, Some(ttl), None),
        [cap, ttl, min] => (cap, Some(ttl), Some(min)),
        _ => {
            return Err(option.error(format!(
                "cache: {name} takes CAPACITY [TTL] [MINTTL], e.g. \"{name} 5000 300 5\""
            )))
        }
    };
    let asked = number(cap, name, "capacity")?;
    let asked = usize::try_from(asked).map_err(|_| {
        cap.error(format!(
            "cache: {name}: capacity {asked} is negative (a number of entries, e.g. 5000)"
        ))
    })?;
    kind.capacity = capacity(asked);
    if let Some(ttl) = ttl {
        kind.max_ttl = positive_ttl(ttl, number(ttl, name, "TTL")?, &format!("{name} TTL"))?;
    }
    if let Some(min) = min {
        let value = number(min, name, "MINTTL")?;
        kind.min_ttl = u32::try_from(value)
            .ok()
            .filter(|v| *v <= 0x7fff_ffff)
            .ok_or_else(|| {
                min.error(format!(
                    "cache: {name}: min TTL can not be negative or above 2147483647: {value}"
                ))
            })?;
    }
    Ok(kind)
}

fn duration(token: &Token, what: &str) -> Result<Duration, ConfigError> {
    parse_go_duration(&token.text).ok_or_else(|| {
        token.error(format!(
            "cache: {what} {:?} is not a duration (e.g. 30s, 1m, 1h)",
            token.text
        ))
    })
}

/// `prefetch AMOUNT [[DURATION] [PERCENTAGE%]]`.
fn prefetch(option: &Token, args: &[Token]) -> Result<Option<Prefetch>, ConfigError> {
    let usage =
        "cache: prefetch takes AMOUNT [[DURATION] [PERCENTAGE%]], e.g. \"prefetch 10 1m 10%\"";
    let Some((amount, rest)) = args.split_first() else {
        return Err(option.error(usage));
    };
    if rest.len() > 2 {
        return Err(rest[2].error(usage));
    }
    let amount = number(amount, "prefetch", "amount").and_then(|a| {
        u32::try_from(a)
            .map_err(|_| amount.error(format!("cache: prefetch amount should be positive: {a}")))
    })?;
    let mut prefetch = Prefetch {
        amount,
        window: d::PREFETCH_WINDOW,
        percentage: d::PREFETCH_PERCENTAGE,
    };
    for (i, arg) in rest.iter().enumerate() {
        if let Some(pct) = arg.text.strip_suffix('%') {
            let value: u8 = pct
                .parse()
                .ok()
                .filter(|p| (10..=90).contains(p))
                .ok_or_else(|| {
                    arg.error(format!(
                        "cache: prefetch percentage {:?} should fall in range [10, 90], e.g. \"10%\"",
                        arg.text
                    ))
                })?;
            prefetch.percentage = value;
        } else if i == 0 {
            prefetch.window = duration(arg, "prefetch duration")?;
        } else {
            return Err(arg.error(format!(
                "cache: prefetch percentage {:?} must end with '%', e.g. \"10%\"",
                arg.text
            )));
        }
    }
    // CoreDNS: an amount of 0 turns prefetching off.
    Ok((prefetch.amount > 0).then_some(prefetch))
}

/// `serve_stale [DURATION] [immediate [RESPONSE_TTL [FAILURE_RECHECK]] | verify [0 [RESPONSE_TTL [FAILURE_RECHECK]]]]`.
fn serve_stale(args: &[Token]) -> Result<ServeStale, ConfigError> {
    let usage = "cache: serve_stale takes [DURATION] [immediate [RESPONSE_TTL [FAILURE_RECHECK]] \
                 | verify [VERIFY_TIMEOUT [RESPONSE_TTL [FAILURE_RECHECK]]]], e.g. \"serve_stale 1h immediate\"";
    if args.len() > 5 {
        return Err(args[5].error(usage));
    }
    let mut stale = ServeStale {
        up_to: d::STALE_UP_TO,
        verify: false,
        response_ttl: 0,
        failure_recheck: Duration::ZERO,
    };
    let Some((up_to, rest)) = args.split_first() else {
        return Ok(stale);
    };
    stale.up_to = duration(up_to, "serve_stale duration")?;
    let Some((mode, mut rest)) = rest.split_first() else {
        return Ok(stale);
    };
    match mode.text.to_ascii_lowercase().as_str() {
        "immediate" => {}
        "verify" => stale.verify = true,
        other => {
            return Err(mode.error(format!(
                "cache: invalid value for serve_stale refresh mode: {other:?} (immediate or verify)"
            )))
        }
    }
    if stale.verify {
        if let Some((timeout, after)) = rest.split_first() {
            let value = duration(timeout, "serve_stale verify timeout")?;
            if !value.is_zero() {
                return Err(timeout.error(
                    "cache: serve_stale verify timeout must be 0 here: gatherdns's verify waits \
                     for the query's own deadline (gathersrv's timeout, 2s by default), then \
                     serves the expired entry",
                ));
            }
            rest = after;
        }
    } else if rest.len() > 2 {
        return Err(rest[2].error(usage));
    }
    if let Some((ttl, after)) = rest.split_first() {
        let value = duration(ttl, "serve_stale response TTL")?;
        if value.subsec_nanos() != 0 {
            return Err(ttl.error(
                "cache: serve_stale response TTL must be a whole number of seconds (e.g. 30s)",
            ));
        }
        stale.response_ttl = u32::try_from(value.as_secs())
            .map_err(|_| ttl.error("cache: serve_stale response TTL exceeds the DNS TTL range"))?;
        rest = after;
    }
    if let Some(recheck) = rest.first() {
        let value = duration(recheck, "serve_stale failure recheck")?;
        if value > d::STALE_RECHECK_MAX {
            return Err(recheck.error("cache: serve_stale failure recheck cannot exceed 5 minutes"));
        }
        stale.failure_recheck = value;
    }
    Ok(stale)
}

/// `servfail DURATION`, at most 5 minutes (RFC 2308).
fn servfail(option: &Token, args: &[Token]) -> Result<Duration, ConfigError> {
    let [value] = args else {
        return Err(option
            .error("cache: servfail takes one duration, e.g. \"servfail 5s\" (0 turns it off)"));
    };
    let d = duration(value, "servfail")?;
    if d > d::SERVFAIL_MAX {
        return Err(value.error(
            "cache: caching SERVFAIL responses over 5 minutes is not permitted (RFC 2308)",
        ));
    }
    Ok(d)
}

/// `disable success|denial [ZONES…]`; no zones means the root (everything).
fn disable(option: &Token, args: &[Token]) -> Result<(&'static str, Vec<Name>), ConfigError> {
    let Some((which, zones)) = args.split_first() else {
        return Err(option.error(
            "cache: disable takes success|denial [ZONES…], e.g. \"disable denial sub.example.org\"",
        ));
    };
    let which = match which.text.as_str() {
        "success" => "success",
        "denial" => "denial",
        other => {
            return Err(which.error(format!(
                "cache: cache type for disable must be \"success\" or \"denial\", not {other:?}"
            )))
        }
    };
    let zones = if zones.is_empty() {
        vec![Name::root()]
    } else {
        zones
            .iter()
            .map(|z| zone_name(z, "cache"))
            .collect::<Result<_, _>>()?
    };
    Ok((which, zones))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacities_are_whole_shards_of_at_least_four() {
        assert_eq!(capacity(10_000), 9984, "CoreDNS's README: 256 * 39");
        assert_eq!(capacity(5000), 4864);
        assert_eq!(capacity(0), 1024);
        assert_eq!(capacity(1), 1024);
        assert_eq!(capacity(2048), 2048);
    }
}
