//! `prometheus [ADDR]`, `health [ADDR] { lameduck DUR }` and `ready [ADDR]` as CoreDNS reads
//! them: a Go listen address (`:9153`, `localhost:9153`, `127.0.0.1:9153`, `[::1]:9153`),
//! CoreDNS's default address when none is given, each once per server block.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::directives::{parse_go_duration, Context};
use super::parser::{RawDirective, Token};
use crate::config::{ops_defaults, HttpEndpoint, Ops};
use crate::error::ConfigError;

/// Parses one of the three directives into the block's `ops`.
pub(crate) fn parse(
    directive: &RawDirective,
    ops: &mut Ops,
    cx: &mut Context<'_>,
) -> Result<(), ConfigError> {
    let name = &directive.name;
    let (slot, default) = match name.text.as_str() {
        "prometheus" => (&mut ops.prometheus, ops_defaults::PROMETHEUS),
        "health" => (&mut ops.health, ops_defaults::HEALTH),
        _ => (&mut ops.ready, ops_defaults::READY),
    };
    if let Some(first) = slot {
        return Err(name.error(format!(
            "{} can be used only once per server block (first at {})",
            name.text, first.location
        )));
    }
    let addr = match directive.args.as_slice() {
        [] => listen_addr(default).expect("the defaults are valid addresses"),
        [addr] => listen_addr(&addr.text)
            .map_err(|why| addr.error(format!("{}: {:?} {why}", name.text, addr.text)))?,
        [_, extra, ..] => {
            return Err(extra.error(format!(
                "{} takes at most one argument, the address to listen on (e.g. \"{} {default}\")",
                name.text, name.text
            )))
        }
    };
    *slot = Some(HttpEndpoint {
        addr,
        location: name.location(),
    });
    if let Some(block) = &directive.block {
        for line in &block.lines {
            let (option, args) = line.split_first().expect("lines are not empty");
            match (name.text.as_str(), option.text.as_str()) {
                ("health", "lameduck") => ops.lameduck = lameduck(option, args)?,
                ("ready", "monitor") => monitor(option, args, cx)?,
                ("health", _) => {
                    return Err(option.error(format!(
                        "health: unknown option {:?} (health takes \"lameduck DURATION\")",
                        option.text
                    )))
                }
                ("ready", _) => {
                    return Err(option.error(format!(
                    "ready: unknown option {:?} (ready takes \"monitor until-ready|continuously\")",
                    option.text
                )))
                }
                _ => {
                    return Err(option.error(format!(
                    "prometheus: option {:?} is not supported (prometheus takes no options here)",
                    option.text
                )))
                }
            }
        }
    }
    Ok(())
}

fn lameduck(option: &Token, args: &[Token]) -> Result<std::time::Duration, ConfigError> {
    match args {
        [value] => parse_go_duration(&value.text).ok_or_else(|| {
            value.error(format!(
                "health: lameduck {:?} is not a duration (e.g. 5s)",
                value.text
            ))
        }),
        _ => Err(option.error("health: lameduck takes one duration (e.g. \"lameduck 5s\")")),
    }
}

/// `monitor until-ready|continuously`: CoreDNS stops checking plugins once ready unless told
/// to go on. gatherdns's conditions (listeners bound, upstreams tried) cannot go back, so the
/// two behave the same; both are accepted for Corefiles written for CoreDNS, and
/// `continuously` is warned about since it asks for something that does not happen.
fn monitor(option: &Token, args: &[Token], cx: &mut Context<'_>) -> Result<(), ConfigError> {
    match args {
        [mode] if mode.text == "until-ready" => Ok(()),
        [mode] if mode.text == "continuously" => {
            cx.warn(
                &option.location(),
                "ready: monitor continuously is ignored: /ready behaves as with until-ready, \
                 the default",
            );
            Ok(())
        }
        [mode] => Err(mode.error(format!(
            "ready: monitor {:?} is not until-ready or continuously",
            mode.text
        ))),
        _ => Err(option.error("ready: monitor takes one of until-ready, continuously")),
    }
}

/// A Go listen address: `HOST:PORT` with HOST empty (every IPv4 address), `localhost`, or an
/// IP address (IPv6 in brackets).
pub(crate) fn listen_addr(text: &str) -> Result<SocketAddr, String> {
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err("is not an address with a port (e.g. \":9153\" or \"127.0.0.1:9153\")".into());
    };
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or("has no port from 1 to 65535")?;
    let ip = match host {
        "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        bracketed if bracketed.starts_with('[') && bracketed.ends_with(']') => bracketed
            [1..bracketed.len() - 1]
            .parse::<std::net::Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| "does not have an IPv6 address in its brackets")?,
        other => other
            .parse::<std::net::Ipv4Addr>()
            .map(IpAddr::V4)
            .map_err(|_| "does not name an IP address, localhost or nothing before the port")?,
    };
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::listen_addr;
    use crate::config::Config;
    use crate::corefile::{parse_corefile_text, ParseOptions};
    use crate::loader::MemLoader;

    fn parse(body: &str) -> Result<Config, String> {
        let text = format!("example.org.:1053 {{\n{body}\n}}\n");
        parse_corefile_text(
            Path::new("Corefile"),
            &text,
            &MemLoader::new(),
            &ParseOptions::default(),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn addresses_as_go_listens() {
        let ok = |t: &str| listen_addr(t).expect(t).to_string();
        assert_eq!(ok(":9153"), "0.0.0.0:9153");
        assert_eq!(ok("localhost:9153"), "127.0.0.1:9153");
        assert_eq!(ok("127.0.0.2:8080"), "127.0.0.2:8080");
        assert_eq!(ok("[::1]:8181"), "[::1]:8181");
        for bad in ["9153", ":0", ":x", "host.example:80", "[::1:80", "::1:80"] {
            assert!(listen_addr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_and_options() {
        let config = parse("prometheus\nhealth {\n lameduck 5s\n}\nready").expect("valid");
        let ops = &config.servers[0].ops;
        assert_eq!(
            ops.prometheus.as_ref().map(|e| e.addr.to_string()),
            Some("127.0.0.1:9153".into())
        );
        assert_eq!(
            ops.health.as_ref().map(|e| e.addr.to_string()),
            Some("0.0.0.0:8080".into())
        );
        assert_eq!(
            ops.ready.as_ref().map(|e| e.addr.to_string()),
            Some("0.0.0.0:8181".into())
        );
        assert_eq!(ops.lameduck, Duration::from_secs(5));
        let config = parse("prometheus :9253\nready 127.0.0.1:8282 {\n monitor continuously\n}")
            .expect("valid");
        let ops = &config.servers[0].ops;
        assert_eq!(
            ops.prometheus.as_ref().map(|e| e.addr.to_string()),
            Some("0.0.0.0:9253".into())
        );
        assert!(ops.health.is_none());
        assert_eq!(ops.lameduck, Duration::ZERO);
    }

    #[test]
    fn monitor_continuously_is_accepted_with_a_warning() {
        let config = parse("ready {\n monitor until-ready\n}").expect("valid");
        assert!(config.warnings.is_empty(), "{:?}", config.warnings);
        let config = parse("ready {\n monitor continuously\n}").expect("valid");
        assert_eq!(
            config.warnings,
            vec![
                "Corefile:3: ready: monitor continuously is ignored: /ready behaves as with \
                 until-ready, the default"
                    .to_string()
            ]
        );
    }

    #[test]
    fn mistakes_name_file_and_line() {
        let cases = [
            (
                "prometheus :9153 :9154",
                "Corefile:2: prometheus takes at most one argument",
            ),
            (
                "prometheus 9153",
                "Corefile:2: prometheus: \"9153\" is not an address",
            ),
            (
                "prometheus {\n tls x\n}",
                "Corefile:3: prometheus: option \"tls\"",
            ),
            (
                "health {\n lameduck\n}",
                "Corefile:3: health: lameduck takes one duration",
            ),
            (
                "health {\n lameduck soon\n}",
                "Corefile:3: health: lameduck \"soon\"",
            ),
            (
                "health {\n frob 1\n}",
                "Corefile:3: health: unknown option \"frob\"",
            ),
            (
                "ready {\n monitor never\n}",
                "Corefile:3: ready: monitor \"never\"",
            ),
            (
                "ready\nready",
                "Corefile:3: ready can be used only once per server block",
            ),
        ];
        for (body, expected) in cases {
            let error = parse(body).expect_err(body);
            assert!(error.starts_with(expected), "{body}: {error}");
        }
    }
}
