//! Option parsers shared by the directives that answer names themselves (`hosts`,
//! `multicluster`, `multicluster_gw`, `gathersrv`): their zones, `fallthrough`, `ns_ip`, and
//! options that may be given once or take no value.

use std::net::IpAddr;

use super::directives::{zone_name, Context};
use super::parser::Token;
use crate::config::{Fallthrough, Location};
use crate::error::ConfigError;
use crate::wire::Name;

/// The zones of a directive that answers names itself: its arguments, else the block's.
/// Each must be inside the block's zones, or no query for it would reach the directive.
pub(crate) fn own_zones(
    args: &[Token],
    cx: &Context<'_>,
    directive: &str,
) -> Result<Vec<Name>, ConfigError> {
    if args.is_empty() {
        return Ok(cx.zones.to_vec());
    }
    args.iter()
        .map(|arg| {
            let zone = zone_name(arg, directive)?;
            if cx.zones.iter().any(|z| zone.is_at_or_below(z)) {
                Ok(zone)
            } else {
                Err(arg.error(format!(
                    "{directive}: {zone} is not inside this server block's zones ({}), so no query for it \
                     would reach {directive}; use the block's zone or a name below it",
                    cx.zone_list()
                )))
            }
        })
        .collect()
}

/// `fallthrough [ZONES…]`: an NXDOMAIN for a name in ZONES (any name without them) goes on
/// to the next plugin.
pub(crate) fn fallthrough(args: &[Token], directive: &str) -> Result<Fallthrough, ConfigError> {
    let zones = args
        .iter()
        .map(|arg| zone_name(arg, directive))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Fallthrough { zones })
}

/// Fills an option slot that may be set once per directive.
pub(crate) fn set_once<T>(
    slot: &mut Option<(T, Location)>,
    value: T,
    at: &Token,
    directive: &str,
) -> Result<(), ConfigError> {
    if let Some((_, first)) = slot {
        return Err(at.error(format!(
            "{directive}: {} is set twice (first at {first})",
            at.text
        )));
    }
    *slot = Some((value, at.location()));
    Ok(())
}

/// An option that takes no value.
pub(crate) fn flag(option: &Token, args: &[Token], directive: &str) -> Result<(), ConfigError> {
    match args.first() {
        None => Ok(()),
        Some(extra) => Err(extra.error(format!(
            "{directive}: {} takes no value, but {:?} follows it",
            option.text, extra.text
        ))),
    }
}

/// `ns_ip IP…`: the addresses `ns.dns.ZONE`, the name server the zone's NS record names,
/// answers with: where a parent zone's glue for a delegation points. Each must be an address
/// a resolver can send queries to.
pub(crate) fn ns_ips(
    option: &Token,
    args: &[Token],
    directive: &str,
) -> Result<Vec<IpAddr>, ConfigError> {
    if args.is_empty() {
        return Err(option.error(format!(
            "{directive}: ns_ip expects at least one IP address, the address a delegation's glue \
             points at, e.g. \"ns_ip 192.0.2.53 2001:db8::53\""
        )));
    }
    let mut ips: Vec<IpAddr> = Vec::with_capacity(args.len());
    for arg in args {
        let ip = arg.text.parse::<IpAddr>().map_err(|_| {
            arg.error(format!(
                "{directive}: ns_ip {:?} is not an IP address (e.g. \"192.0.2.53\" or \"2001:db8::53\")",
                arg.text
            ))
        })?;
        if ip.is_unspecified() || ip.is_multicast() {
            return Err(arg.error(format!(
                "{directive}: ns_ip {ip} cannot receive queries; give the unicast address clients \
                 reach this server at"
            )));
        }
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    Ok(ips)
}
