//! The Corefile: CoreDNS's configuration language, read into a validated [`Config`]. The lexer
//! and parser mirror coredns/caddy; the directive parsers check everything up front so that a
//! mistake is a startup error naming the file and line, never a silent ignore.

mod address;
mod answers;
mod cache;
mod directives;
mod forward;
mod gathersrv;
mod hosts;
mod lexer;
mod multicluster;
mod ops;
mod options;
mod parser;
mod plugins;
mod reload;
mod token;
mod unserved;

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::{defaults, Config, Location};
use crate::error::ConfigError;
use crate::loader::Loader;
use crate::wire::Name;

pub use directives::SUPPORTED_DIRECTIVES;

/// Settings that come from the command line rather than the Corefile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseOptions {
    /// Port for server blocks whose key gives none (`-dns.port`).
    pub default_port: u16,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            default_port: defaults::PORT,
        }
    }
}

/// Reads the Corefile at `path` through `loader` and parses it.
pub fn parse_corefile(
    path: &Path,
    loader: &dyn Loader,
    options: &ParseOptions,
) -> Result<Config, ConfigError> {
    let text = loader.read(path).map_err(|e| {
        ConfigError::General(format!(
            "cannot read Corefile {:?}: {e}",
            path.display().to_string()
        ))
    })?;
    parse_corefile_text(path, &text, loader, options)
}

/// Parses Corefile `text` as if read from `path` (which names it in messages and anchors
/// relative imports and zone files); other files are read through `loader`.
pub fn parse_corefile_text(
    path: &Path,
    text: &str,
    loader: &dyn Loader,
    options: &ParseOptions,
) -> Result<Config, ConfigError> {
    let (raw_blocks, mut warnings) = parser::parse(path, text, loader)?;
    if raw_blocks.is_empty() {
        // CoreDNS falls back to `.:53 { whoami log }` only when it finds no Corefile at all;
        // a Corefile without a block would start a server that answers nothing, silently.
        return Err(ConfigError::General(format!(
            "{}: no server block: gatherdns would listen nowhere; a Corefile needs at least one, \
             e.g. \"distributed.local.:53 {{ … }}\"",
            path.display()
        )));
    }
    let mut servers = Vec::with_capacity(raw_blocks.len());
    let mut refused = Vec::new();
    let mut served: BTreeMap<(Name, u16), Location> = BTreeMap::new();
    for raw in raw_blocks {
        let (zones, port) = block_address(&raw.keys, options.default_port)?;
        let location = raw
            .keys
            .first()
            .map(parser::Token::location)
            .unwrap_or_default();
        for zone in &zones {
            if let Some(first) = served.get(&(zone.clone(), port)) {
                let message = if *first == location {
                    format!("zone {zone} is listed twice in this server block's keys")
                } else {
                    format!("zone {zone} on port {port} is already served by the server block at {first}")
                };
                return Err(ConfigError::at(&location, message));
            }
            served.insert((zone.clone(), port), location.clone());
        }
        match directives::server_block(raw, zones, port, loader, &mut warnings, &mut refused) {
            Ok(block) => servers.push(block),
            Err(e) if refused.is_empty() => return Err(e),
            Err(e) => {
                refused.push(e);
                break;
            }
        }
    }
    if !refused.is_empty() {
        return Err(ConfigError::several(refused));
    }
    Ok(Config {
        servers,
        warnings,
        max_inflight: defaults::MAX_INFLIGHT,
        fingerprint: None,
    })
}

/// The zones and the one port of a block's keys.
fn block_address(
    keys: &[parser::Token],
    default_port: u16,
) -> Result<(Vec<Name>, u16), ConfigError> {
    let mut zones = Vec::with_capacity(keys.len());
    let mut port: Option<(u16, &parser::Token)> = None;
    for token in keys {
        let key = address::parse_key(&token.text).map_err(|e| token.error(e))?;
        let this = key.port.unwrap_or(default_port);
        match port {
            Some((p, first)) if p != this => {
                return Err(token.error(format!(
                    "the keys of one server block must use one port, but {:?} is on port {p} and {:?} on port {this}; \
                     write one server block per port",
                    first.text, token.text
                )))
            }
            Some(_) => {}
            None => port = Some((this, token)),
        }
        zones.push(key.zone);
    }
    Ok((zones, port.map_or(default_port, |(p, _)| p)))
}

#[cfg(test)]
mod multicluster_tests;
#[cfg(test)]
mod plugin_tests;
#[cfg(test)]
mod tests;
