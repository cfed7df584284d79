//! Option parsers shared by the directives that answer names themselves (`hosts`,
//! `multicluster`, `multicluster_gw`): their zones, `fallthrough`, and options that may be
//! given once or take no value.

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
