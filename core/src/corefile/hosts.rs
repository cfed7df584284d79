//! `hosts [FILE] [ZONES…] { inline lines; ttl; reload; no_reverse; fallthrough }` as CoreDNS's
//! hosts plugin reads it — except that a malformed line, in the file or inline, is an error
//! naming its line, where CoreDNS skips it in silence.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::directives::{parse_go_duration, Context};
use super::options::{fallthrough, flag, own_zones, set_once};
use super::parser::{RawDirective, Token};
use crate::config::{defaults, Fallthrough, HostEntry, Hosts, Location};
use crate::error::ConfigError;
use crate::hosts_file::{parse_hosts, parse_hosts_line};

const OPTIONS: &str = "ttl, reload, no_reverse, fallthrough";

/// Parses one `hosts` directive and reads its file.
pub(crate) fn parse(directive: &RawDirective, cx: &mut Context<'_>) -> Result<Hosts, ConfigError> {
    let at = &directive.name;
    let (path, shown, zone_args) = match directive.args.split_first() {
        Some((file, zones)) => (file.base_dir().join(&file.text), file.text.clone(), zones),
        None => (
            PathBuf::from(defaults::HOSTS_FILE),
            defaults::HOSTS_FILE.to_string(),
            &[][..],
        ),
    };
    let origins = own_zones(zone_args, cx, "hosts")?;

    let mut ttl: Option<(u32, Location)> = None;
    let mut reload: Option<(Duration, Location)> = None;
    let mut no_reverse: Option<((), Location)> = None;
    let mut fall: Option<(Fallthrough, Location)> = None;
    let mut inline = Vec::new();
    for line in directive.block.iter().flat_map(|b| &b.lines) {
        let Some((first, rest)) = line.split_first() else {
            continue;
        };
        match first.text.as_str() {
            "ttl" => set_once(&mut ttl, ttl_value(first, rest)?, first, "hosts")?,
            "reload" => set_once(&mut reload, reload_value(first, rest)?, first, "hosts")?,
            "no_reverse" => {
                flag(first, rest, "hosts")?;
                set_once(&mut no_reverse, (), first, "hosts")?;
            }
            "fallthrough" => set_once(&mut fall, fallthrough(rest, "hosts")?, first, "hosts")?,
            _ => inline.extend(inline_line(first, line, &origins, cx)?),
        }
    }

    let file_entries = match cx.loader.read(&path) {
        Ok(text) => parse_hosts(&text, &origins)
            .map_err(|e| at.error(format!("hosts: {shown}:{}: {}", e.line, e.message)))?,
        // CoreDNS only warns about a missing file: it may appear later, and is then read.
        Err(e) if is_not_found(&e) => {
            cx.warn(
                &at.location(),
                format!("hosts: {shown} does not exist; answering from the inline entries until it does"),
            );
            Vec::new()
        }
        Err(e) => return Err(at.error(format!("hosts: cannot read {shown:?}: {e}"))),
    };
    Ok(Hosts {
        path,
        file_entries,
        inline,
        origins,
        ttl: ttl.map_or(defaults::HOSTS_TTL, |(t, _)| t),
        reload: reload.map_or(defaults::HOSTS_RELOAD, |(r, _)| r),
        no_reverse: no_reverse.is_some(),
        fallthrough: fall.map(|(f, _)| f),
        location: at.location(),
    })
}

/// The loader reports errors as text; both loaders say "os error 2" for a missing file.
fn is_not_found(error: &str) -> bool {
    error.contains("os error 2")
}

/// An inline `IP NAME…` line. Names outside the plugin's zones are dropped as CoreDNS
/// does, but written in the Corefile they are surely a mistake: warn.
fn inline_line(
    first: &Token,
    line: &[Token],
    origins: &[crate::wire::Name],
    cx: &mut Context<'_>,
) -> Result<Vec<HostEntry>, ConfigError> {
    let bare = first.text.split('%').next().unwrap_or_default();
    if bare.parse::<IpAddr>().is_err() {
        return Err(first.error(format!(
            "hosts: {:?} is neither an option ({OPTIONS}) nor an IP address starting a hosts line \
             (\"IP NAME…\", e.g. \"10.0.0.1 web.example.org\")",
            first.text
        )));
    }
    let fields: Vec<&str> = line.iter().map(|t| t.text.as_str()).collect();
    let (addr, names) =
        parse_hosts_line(&fields).map_err(|e| first.error(format!("hosts: {e}")))?;
    let mut entries = Vec::with_capacity(names.len());
    for name in names {
        if origins.iter().any(|o| name.is_at_or_below(o)) {
            entries.push(HostEntry { name, addr });
        } else {
            cx.warn(
                &first.location(),
                format!("hosts: {name} is outside the plugin's zones and is never answered"),
            );
        }
    }
    Ok(entries)
}

/// `ttl N`: whole seconds from 1 to 65535, as CoreDNS accepts.
fn ttl_value(option: &Token, args: &[Token]) -> Result<u32, ConfigError> {
    let [value] = args else {
        return Err(
            option.error("hosts: ttl expects one value, seconds from 1 to 65535, e.g. \"ttl 60\"")
        );
    };
    value
        .text
        .parse::<u32>()
        .ok()
        .filter(|t| (1..=65535).contains(t))
        .ok_or_else(|| {
            value.error(format!(
                "hosts: ttl {:?} is not a number of seconds from 1 to 65535",
                value.text
            ))
        })
}

/// `reload DUR`: how often the file is checked; 0 turns checking off.
fn reload_value(option: &Token, args: &[Token]) -> Result<Duration, ConfigError> {
    let [value] = args else {
        return Err(option.error(
            "hosts: reload expects one duration, e.g. \"reload 5s\" (0 turns reloading off)",
        ));
    };
    parse_go_duration(&value.text).ok_or_else(|| {
        value.error(format!(
            "hosts: reload {:?} is not a duration (e.g. 5s, 1m; 0 turns reloading off)",
            value.text
        ))
    })
}
