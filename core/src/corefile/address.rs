//! Server block keys: `[dns://]ZONE[:PORT]` and CIDR reverse zones, as CoreDNS
//! `normalizeZone`/`SplitHostPort` read them, with clear errors for what we do not serve.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::wire::Name;

/// Schemes CoreDNS knows but we do not serve.
const OTHER_SCHEMES: &[&str] = &["tls", "grpc", "https", "quic", "https3"];

/// One parsed key: the zone (lower-case FQDN) and the port if the key gives one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    /// The zone.
    pub(crate) zone: Name,
    /// `:PORT` from the key.
    pub(crate) port: Option<u16>,
}

/// Parses one key; the error says what is wrong and what is accepted.
pub(crate) fn parse_key(text: &str) -> Result<Key, String> {
    let rest = match text.split_once("://") {
        None => text,
        Some((scheme, rest)) => {
            let scheme = scheme.to_ascii_lowercase();
            if scheme == "dns" {
                rest
            } else if OTHER_SCHEMES.contains(&scheme.as_str()) {
                return Err(format!(
                    "server block key {text:?}: only dns:// is supported ({scheme}:// servers are not)"
                ));
            } else {
                return Err(format!(
                    "server block key {text:?}: unknown scheme \"{scheme}://\" (only dns:// is supported)"
                ));
            }
        }
    };
    let (host, port) = split_port(text, rest)?;
    let zone = if host.is_empty() {
        Name::root()
    } else if host.contains('/') {
        reverse_zone(host).map_err(|e| format!("server block key {text:?}: {e}"))?
    } else if host.contains(':') {
        return Err(format!(
            "server block key {text:?} is not a zone; write ZONE[:PORT], e.g. \"example.org:1053\""
        ));
    } else {
        Name::parse(host)
            .map_err(|e| format!("server block key {text:?} is not a valid zone: {e}"))?
            .to_lowercase()
    };
    Ok(Key { zone, port })
}

/// Splits off `:PORT` the CoreDNS way: the text after the last colon, if it is a number.
/// A CIDR always has `/len` before any port, so an IPv6 prefix is never cut.
fn split_port<'a>(key: &str, text: &'a str) -> Result<(&'a str, Option<u16>), String> {
    let Some(colon) = text.rfind(':') else {
        return Ok((text, None));
    };
    let after = &text[colon + 1..];
    if after.is_empty() {
        return Err(format!(
            "server block key {key:?}: expected a port after the last ':'"
        ));
    }
    if after.bytes().all(|b| b.is_ascii_digit()) {
        let port = after.parse::<u16>().map_err(|_| {
            format!("server block key {key:?}: port {after} is out of range (0-65535)")
        })?;
        return Ok((&text[..colon], Some(port)));
    }
    if text.contains('/') {
        return Ok((text, None));
    }
    Err(format!(
        "server block key {key:?}: {after:?} is not a port number"
    ))
}

/// The reverse zone of an aligned CIDR prefix: `10.0.0.0/24` → `0.0.10.in-addr.arpa.`.
fn reverse_zone(cidr: &str) -> Result<Name, String> {
    let (addr, len) = cidr
        .split_once('/')
        .ok_or_else(|| format!("{cidr:?} is not a CIDR"))?;
    let bad_len = || format!("{cidr:?} has an invalid prefix length {len:?}");
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_len());
    }
    let len: usize = len.parse().map_err(|_| bad_len())?;
    let labels: Vec<String> = if let Ok(v4) = addr.parse::<Ipv4Addr>() {
        if len > 32 {
            return Err(bad_len());
        }
        if len % 8 != 0 {
            return Err(format!(
                "{cidr:?} is not octet-aligned; an IPv4 reverse zone needs a /0, /8, /16, /24 or /32 prefix"
            ));
        }
        let mut labels: Vec<String> = v4.octets()[..len / 8].iter().map(u8::to_string).collect();
        labels.reverse();
        labels.extend(["in-addr".to_string(), "arpa".to_string()]);
        labels
    } else if let Ok(v6) = addr.parse::<Ipv6Addr>() {
        if len > 128 {
            return Err(bad_len());
        }
        if len % 4 != 0 {
            return Err(format!(
                "{cidr:?} is not nibble-aligned; an IPv6 reverse zone needs a prefix length that is a multiple of 4"
            ));
        }
        let nibbles = v6
            .octets()
            .iter()
            .flat_map(|b| [b >> 4, b & 0xf])
            .collect::<Vec<u8>>();
        let mut labels: Vec<String> = nibbles[..len / 4]
            .iter()
            .map(|n| format!("{n:x}"))
            .collect();
        labels.reverse();
        labels.extend(["ip6".to_string(), "arpa".to_string()]);
        labels
    } else {
        return Err(format!(
            "{cidr:?} is not a valid CIDR (e.g. \"10.0.0.0/24\" or \"fd00::/64\")"
        ));
    };
    Name::parse(&format!("{}.", labels.join("."))).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> (String, Option<u16>) {
        let k = parse_key(text).expect("valid key");
        (k.zone.to_string(), k.port)
    }

    #[test]
    fn zones_are_lower_case_fqdns_with_optional_port() {
        assert_eq!(key("Example.ORG"), ("example.org.".into(), None));
        assert_eq!(key("example.org."), ("example.org.".into(), None));
        assert_eq!(key("example.org:1053"), ("example.org.".into(), Some(1053)));
        assert_eq!(
            key("dns://example.org.:53"),
            ("example.org.".into(), Some(53))
        );
        assert_eq!(key("DNS://example.org"), ("example.org.".into(), None));
        assert_eq!(key("."), (".".into(), None));
        assert_eq!(key(".:1053"), (".".into(), Some(1053)));
        assert_eq!(key(":1053"), (".".into(), Some(1053)));
    }

    #[test]
    fn cidr_keys_become_reverse_zones() {
        assert_eq!(key("10.0.0.0/24"), ("0.0.10.in-addr.arpa.".into(), None));
        assert_eq!(
            key("10.1.2.3/8:1053"),
            ("10.in-addr.arpa.".into(), Some(1053))
        );
        assert_eq!(key("10.1.2.3/32"), ("3.2.1.10.in-addr.arpa.".into(), None));
        assert_eq!(key("0.0.0.0/0"), ("in-addr.arpa.".into(), None));
        assert_eq!(key("fd00::/8"), ("d.f.ip6.arpa.".into(), None));
        assert_eq!(
            key("2001:db8::/32:53"),
            ("8.b.d.0.1.0.0.2.ip6.arpa.".into(), Some(53))
        );
    }

    #[test]
    fn bad_keys_say_why() {
        let err = |text: &str| parse_key(text).expect_err("invalid key");
        assert_eq!(
            err("tls://example.org"),
            "server block key \"tls://example.org\": only dns:// is supported (tls:// servers are not)"
        );
        assert!(err("grpc://.").contains("only dns:// is supported"));
        assert!(err("https://.").contains("only dns:// is supported"));
        assert!(err("quic://.").contains("only dns:// is supported"));
        assert!(err("ftp://.").contains("unknown scheme \"ftp://\""));
        assert_eq!(
            err("10.0.0.0/27"),
            "server block key \"10.0.0.0/27\": \"10.0.0.0/27\" is not octet-aligned; an IPv4 \
             reverse zone needs a /0, /8, /16, /24 or /32 prefix"
        );
        assert!(err("fd00::/10").contains("is not nibble-aligned"));
        assert!(err("10.0.0.0/33").contains("invalid prefix length"));
        assert!(err("10.0.0/24").contains("is not a valid CIDR"));
        assert_eq!(
            err("example.org:99999"),
            "server block key \"example.org:99999\": port 99999 is out of range (0-65535)"
        );
        assert!(err("example.org:").contains("expected a port"));
        assert!(err("example.org:dns").contains("\"dns\" is not a port number"));
        assert!(err("a..b").contains("is not a valid zone"));
    }
}
