//! The /etc/hosts format: `IP NAME…` per line, `#` comments. Pure text in, entries out; a
//! malformed line is an error with its line number (CoreDNS skips it in silence), so the
//! caller can refuse it at startup or keep the previous table at a reload.

use std::net::IpAddr;

use crate::config::HostEntry;
use crate::wire::Name;

/// A line of hosts text that is not `IP NAME…`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HostsLineError {
    /// 1-based line in the text.
    pub(crate) line: usize,
    /// What is wrong with it and what a line looks like.
    pub(crate) message: String,
}

/// Parses hosts-format text (`IP NAME…` per line, `#` starts a comment). Names outside
/// `origins` are left out, as CoreDNS does: an /etc/hosts holds `localhost` and the like.
pub(crate) fn parse_hosts(text: &str, origins: &[Name]) -> Result<Vec<HostEntry>, HostsLineError> {
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or_default();
        let fields: Vec<&str> = content.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        let (addr, names) = parse_hosts_line(&fields).map_err(|message| HostsLineError {
            line: index + 1,
            message,
        })?;
        entries.extend(
            names
                .into_iter()
                .filter(|name| origins.iter().any(|o| name.is_at_or_below(o)))
                .map(|name| HostEntry { name, addr }),
        );
    }
    Ok(entries)
}

/// One hosts line split into fields: the address and its names (lower-cased).
pub(crate) fn parse_hosts_line(fields: &[&str]) -> Result<(IpAddr, Vec<Name>), String> {
    let Some((ip, names)) = fields.split_first() else {
        return Err("an empty line".into());
    };
    // CoreDNS drops an IPv6 zone (`fe80::1%eth0`) and takes an IPv4-mapped address as IPv4.
    let bare = ip.split('%').next().unwrap_or_default();
    let addr = match bare.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        Ok(v4) => v4,
        Err(_) => {
            return Err(format!(
                "{ip:?} is not an IP address (a hosts line is \"IP NAME…\", e.g. \"10.0.0.1 web.example.org\")"
            ))
        }
    };
    if names.is_empty() {
        return Err(format!(
            "{ip:?} has no name after it (a hosts line is \"IP NAME…\", e.g. \"{ip} web.example.org\")"
        ));
    }
    let names = names
        .iter()
        .map(|n| {
            Name::parse(n)
                .map(|name| name.to_lowercase())
                .map_err(|e| format!("{n:?} is not a valid host name: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((addr, names))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::parse(s).expect("valid")
    }

    #[test]
    fn hosts_malformed_lines_are_reported_with_their_number() {
        let origins = [n("example.org.")];
        let err = parse_hosts(
            "10.0.0.1 a.example.org\n\n10.0.0.300 b.example.org\n",
            &origins,
        )
        .expect_err("bad address");
        assert_eq!(err.line, 3);
        assert!(
            err.message
                .starts_with("\"10.0.0.300\" is not an IP address"),
            "{}",
            err.message
        );
        let err = parse_hosts("10.0.0.1\n", &origins).expect_err("no name");
        assert_eq!((err.line, err.message.contains("has no name")), (1, true));
        assert!(parse_hosts("10.0.0.1 a..b\n", &origins).is_err());
        assert_eq!(
            parse_hosts("fe80::1%eth0 a.example.org\n", &origins).map(|e| e.len()),
            Ok(1)
        );
    }
}
