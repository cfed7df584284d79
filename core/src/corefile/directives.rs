//! Turns one raw server block into a validated [`ServerBlock`]: dispatches each directive to
//! its parser (here for the small ones; `gathersrv.rs` and `forward.rs` for the big ones) and
//! rejects what we do not support with a message that says what is.

use std::net::IpAddr;
use std::time::Duration;

use super::parser::{RawBlock, RawDirective, RawServerBlock, Token};
use super::{cache, forward, gathersrv, hosts, multicluster, ops, plugins, reload, unserved};
use crate::config::{defaults, FileZone, Location, ServerBlock};
use crate::error::ConfigError;
use crate::loader::Loader;
use crate::wire::{parse_zonefile, Name};

/// Directives this build understands, in the order `-plugins` lists them.
pub const SUPPORTED_DIRECTIVES: &[&str] = &[
    "gathersrv",
    "forward",
    "file",
    "hosts",
    "multicluster",
    "multicluster_gw",
    "bind",
    "bufsize",
    "log",
    "errors",
    "reload",
    "prometheus",
    "health",
    "ready",
    "cache",
    "loadbalance",
    "loop",
];

/// Everything a directive parser may need besides its own tokens.
pub(crate) struct Context<'a> {
    /// The zones of the server block.
    pub(crate) zones: &'a [Name],
    /// Files named by directives are read through it.
    pub(crate) loader: &'a dyn Loader,
    /// Where accepted-but-suspicious things are reported.
    pub(crate) warnings: &'a mut Vec<String>,
    /// Directives refused without ending the parse (CoreDNS plugins gatherdns does not
    /// serve), so that every one of them is reported.
    pub(crate) refused: &'a mut Vec<ConfigError>,
}

impl Context<'_> {
    /// Records a warning at `location`.
    pub(crate) fn warn(&mut self, location: &Location, text: impl std::fmt::Display) {
        self.warnings.push(format!("{location}: {text}"));
    }

    /// The block's zones as `a.org., b.org.` for messages.
    pub(crate) fn zone_list(&self) -> String {
        self.zones
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Builds one server block; `location` is that of its first key.
pub(crate) fn server_block(
    raw: RawServerBlock,
    zones: Vec<Name>,
    port: u16,
    loader: &dyn Loader,
    warnings: &mut Vec<String>,
    refused: &mut Vec<ConfigError>,
) -> Result<ServerBlock, ConfigError> {
    let location = raw.keys.first().map(Token::location).unwrap_or_default();
    let mut block = ServerBlock {
        zones,
        port,
        bind: Vec::new(),
        gathers: Vec::new(),
        forwards: Vec::new(),
        files: Vec::new(),
        hosts: None,
        multicluster: None,
        multicluster_gw: None,
        log: false,
        errors: false,
        bufsize: defaults::BUFSIZE,
        ops: Default::default(),
        reload: None,
        cache: None,
        loadbalance: false,
        loop_check: false,
        location,
    };
    let zones = block.zones.clone();
    let mut cx = Context {
        zones: &zones,
        loader,
        warnings,
        refused,
    };
    let mut errors_at: Option<Location> = None;
    for directive in &raw.directives {
        let name = &directive.name;
        match name.text.as_str() {
            "gathersrv" => {
                if let Some(first) = block.gathers.first() {
                    return Err(name.error(format!(
                        "gathersrv can be used only once per server block (first at {}); \
                         put the clusters of one domain in one gathersrv block",
                        first.location
                    )));
                }
                block.gathers.push(gathersrv::parse(directive, &mut cx)?);
            }
            "forward" => {
                let forward = forward::parse(directive, &mut cx)?;
                if let Some(same) = block.forwards.iter().find(|f| f.from == forward.from) {
                    return Err(name.error(format!(
                        "forward: {} is already forwarded at {}; list all its upstreams in one forward line",
                        forward.from, same.location
                    )));
                }
                block.forwards.push(forward);
            }
            "file" => {
                for zone in file(directive, &mut cx)? {
                    if let Some(same) = block.files.iter().find(|f| f.origin == zone.origin) {
                        return Err(name.error(format!(
                            "file: zone {} is already served by the file directive at {}",
                            zone.origin, same.location
                        )));
                    }
                    block.files.push(zone);
                }
            }
            "hosts" => {
                let hosts = hosts::parse(directive, &mut cx)?;
                once(name, &block.hosts.as_ref().map(|h| &h.location))?;
                block.hosts = Some(hosts);
            }
            "multicluster" => {
                let mc = multicluster::parse(directive, &mut cx)?;
                once(name, &block.multicluster.as_ref().map(|m| &m.location))?;
                block.multicluster = Some(mc);
            }
            "multicluster_gw" => {
                let gw = multicluster::parse_multicluster_gw(directive, &mut cx)?;
                once(name, &block.multicluster_gw.as_ref().map(|g| &g.location))?;
                block.multicluster_gw = Some(gw);
            }
            "bind" => {
                for ip in bind(directive)? {
                    if !block.bind.contains(&ip) {
                        block.bind.push(ip);
                    }
                }
            }
            "log" => {
                no_arguments(directive)?;
                block.log = true;
            }
            "bufsize" => block.bufsize = bufsize(directive)?,
            "reload" => {
                let settings = reload::parse(directive)?;
                once(name, &block.reload.as_ref().map(|r| &r.location))?;
                block.reload = Some(settings);
            }
            "prometheus" | "health" | "ready" => ops::parse(directive, &mut block.ops, &mut cx)?,
            "errors" => {
                no_arguments(directive)?;
                if let Some(first) = &errors_at {
                    return Err(name.error(format!(
                        "errors can be used only once per server block (first at {first})"
                    )));
                }
                errors_at = Some(name.location());
                block.errors = true;
            }
            "cache" => {
                let settings = cache::parse(directive, &mut cx)?;
                once(name, &block.cache.as_ref().map(|c| &c.location))?;
                block.cache = Some(settings);
            }
            "loadbalance" => {
                plugins::loadbalance(directive)?;
                block.loadbalance = true;
            }
            "loop" => {
                plugins::loop_check(directive)?;
                if block.loop_check {
                    return Err(name.error("loop can be used only once per server block"));
                }
                block.loop_check = true;
            }
            other => match unserved::refusal(other) {
                Some(why) => cx.refused.push(name.error(why)),
                None => {
                    return Err(name.error(format!(
                        "unknown directive {other:?} (supported here: {})",
                        SUPPORTED_DIRECTIVES.join(", ")
                    )))
                }
            },
        }
    }
    if !cx.refused.is_empty() {
        // The checks below would only report what the refused lines leave missing.
        return Ok(block);
    }
    check_file_zones_reachable(&block, &cx)?;
    gathersrv::check_sources(&block)?;
    multicluster::check_sources(&block)?;
    Ok(block)
}

/// A directive that may appear once per block, as CoreDNS's `plugin.ErrOnce` says.
fn once(name: &Token, first: &Option<&Location>) -> Result<(), ConfigError> {
    match first {
        Some(first) => Err(name.error(format!(
            "{} can be used only once per server block (first at {first})",
            name.text
        ))),
        None => Ok(()),
    }
}

/// `log` and `errors` take nothing for now.
fn no_arguments(directive: &RawDirective) -> Result<(), ConfigError> {
    let name = &directive.name.text;
    if let Some(first) = directive.args.first() {
        return Err(first.error(format!(
            "{name}: arguments are not supported yet (\"{name}\" takes none for now)"
        )));
    }
    if let Some(block) = &directive.block {
        return Err(block.open.error(format!(
            "{name}: options are not supported yet (\"{name}\" takes none for now)"
        )));
    }
    Ok(())
}

/// `bind ADDR…`: IP addresses only.
/// `bufsize SIZE`: CoreDNS accepts 512 to 4096.
fn bufsize(directive: &RawDirective) -> Result<u16, ConfigError> {
    let at = &directive.name;
    if directive.block.is_some() {
        return Err(at.error("bufsize takes no option block"));
    }
    match directive.args.as_slice() {
        [size] => size
            .text
            .parse::<u16>()
            .ok()
            .filter(|s| (512..=4096).contains(s))
            .ok_or_else(|| {
                size.error(format!(
                    "bufsize: {:?} is not a size from 512 to 4096",
                    size.text
                ))
            }),
        _ => Err(
            at.error("bufsize takes one argument, a size from 512 to 4096 (e.g. \"bufsize 1232\")")
        ),
    }
}

fn bind(directive: &RawDirective) -> Result<Vec<IpAddr>, ConfigError> {
    if directive.args.is_empty() {
        return Err(directive
            .name
            .error("bind: expected at least one IP address, e.g. \"bind 127.0.0.1 ::1\""));
    }
    if let Some(block) = &directive.block {
        return Err(block
            .open
            .error("bind: options (except) are not supported yet"));
    }
    directive
        .args
        .iter()
        .map(|arg| {
            arg.text.parse::<IpAddr>().map_err(|_| {
                arg.error(format!(
                    "bind: {:?} is not an IP address (interface names are not supported yet)",
                    arg.text
                ))
            })
        })
        .collect()
}

/// `file DBFILE [ZONES…]`: one loaded zone per zone.
/// A `file` zone must be inside the block's zones, or be where a `gathersrv` cluster of the
/// block is answered from (its sub-queries reach the zone without passing the block keys).
fn check_file_zones_reachable(block: &ServerBlock, cx: &Context<'_>) -> Result<(), ConfigError> {
    for file in &block.files {
        let inside = block.zones.iter().any(|z| file.origin.is_at_or_below(z));
        let gathered = block
            .gathers
            .iter()
            .flat_map(|g| &g.clusters)
            .map(|c| &c.suffix);
        let mcs = block
            .multicluster
            .iter()
            .flat_map(|m| &m.clusters)
            .map(|c| &c.suffix);
        let cluster_source = gathered
            .chain(mcs)
            .any(|suffix| suffix.is_at_or_below(&file.origin));
        if !inside && !cluster_source {
            return Err(ConfigError::at(
                &file.location,
                format!(
                    "file: zone {} is not inside this server block's zones ({}) and no gathersrv cluster of the block \
                     is under it, so no query for it would reach this block",
                    file.origin,
                    cx.zone_list()
                ),
            ));
        }
    }
    Ok(())
}

fn file(directive: &RawDirective, cx: &mut Context<'_>) -> Result<Vec<FileZone>, ConfigError> {
    let at = &directive.name;
    let Some((db, zone_args)) = directive.args.split_first() else {
        return Err(at.error("file: expected DBFILE [ZONES...], e.g. \"file db.example.org\""));
    };
    if let Some(block) = &directive.block {
        reject_file_options(block)?;
    }
    let zones = if zone_args.is_empty() {
        cx.zones.to_vec()
    } else {
        let mut zones = Vec::with_capacity(zone_args.len());
        for arg in zone_args {
            zones.push(zone_name(arg, "file")?);
        }
        zones
    };
    let path = db.base_dir().join(&db.text);
    let text = cx
        .loader
        .read(&path)
        .map_err(|e| at.error(format!("file: cannot read {:?}: {e}", db.text)))?;
    zones
        .into_iter()
        .map(|origin| {
            let records = parse_zonefile(&text, &origin).map_err(|e| {
                if e.line > 0 {
                    at.error(format!("file: {}:{}: {}", db.text, e.line, e.message))
                } else {
                    at.error(format!("file: {}: {}", db.text, e.message))
                }
            })?;
            Ok(FileZone {
                origin,
                records,
                path: path.display().to_string(),
                location: at.location(),
            })
        })
        .collect()
}

fn reject_file_options(block: &RawBlock) -> Result<(), ConfigError> {
    match block.lines.first().and_then(|line| line.first()) {
        None => Ok(()),
        Some(option) if option.text == "reload" => Err(option.error(
            "file: option \"reload\" is not supported yet (zone files are read once, at startup)",
        )),
        Some(option) => Err(option.error(format!(
            "file: unknown option {:?} (file takes no options yet)",
            option.text
        ))),
    }
}

/// A zone argument (`example.org` or `example.org.`, `.` for the root), lower-cased.
pub(crate) fn zone_name(token: &Token, directive: &str) -> Result<Name, ConfigError> {
    Name::parse(&token.text)
        .map(|n| n.to_lowercase())
        .map_err(|e| {
            token.error(format!(
                "{directive}: {:?} is not a valid zone: {e}",
                token.text
            ))
        })
}

/// A domain that must be written fully qualified (gathersrv's rule), lower-cased.
pub(crate) fn fqdn(token: &Token, directive: &str) -> Result<Name, ConfigError> {
    let text = &token.text;
    if !text.ends_with('.') {
        return Err(token.error(format!(
            "{directive}: {text:?} is not a fully qualified domain (it must end with a dot, e.g. \"{text}.\")"
        )));
    }
    zone_name(token, directive)
}

/// A Go duration (`500ms`, `2s`, `1m30s`, `1.5s`, `0`); `None` if malformed or negative.
pub(crate) fn parse_go_duration(text: &str) -> Option<Duration> {
    let text = text.strip_prefix('+').unwrap_or(text);
    if text == "0" {
        return Some(Duration::ZERO);
    }
    if text.is_empty() {
        return None;
    }
    let mut rest = text;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(after) => {
                let len = after.bytes().take_while(u8::is_ascii_digit).count();
                after.split_at(len)
            }
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        // Digits beyond 1 ns precision cannot matter; bounding them keeps the sums small.
        let int: u128 = if int.is_empty() {
            0
        } else {
            int.parse().ok().filter(|v| *v < 1 << 64)?
        };
        let frac = &frac[..frac.len().min(18)];
        let frac_value: u128 = if frac.is_empty() {
            0
        } else {
            frac.parse().ok()?
        };
        let frac_nanos = frac_value * scale / 10u128.pow(u32::try_from(frac.len()).ok()?);
        total = total
            .checked_add(int.checked_mul(scale)?)?
            .checked_add(frac_nanos)?;
        if total > u128::from(u64::MAX) {
            return None;
        }
        rest = after;
    }
    Some(Duration::from_nanos(u64::try_from(total).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ms = |v: u64| Some(Duration::from_millis(v));
        assert_eq!(parse_go_duration("500ms"), ms(500));
        assert_eq!(parse_go_duration("2s"), ms(2000));
        assert_eq!(parse_go_duration("1m30s"), ms(90_000));
        assert_eq!(parse_go_duration("1.5s"), ms(1500));
        assert_eq!(parse_go_duration(".5s"), ms(500));
        assert_eq!(parse_go_duration("1h"), ms(3_600_000));
        assert_eq!(parse_go_duration("+3s"), ms(3000));
        assert_eq!(parse_go_duration("250us"), Some(Duration::from_micros(250)));
        assert_eq!(parse_go_duration("250µs"), Some(Duration::from_micros(250)));
        assert_eq!(parse_go_duration("7ns"), Some(Duration::from_nanos(7)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("0s"), Some(Duration::ZERO));
        for bad in [
            "",
            "5",
            "s",
            "-1s",
            "1x",
            "1.s.",
            "1s5",
            ".s",
            "99999999999999999999h",
            "1 s",
        ] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }
}
