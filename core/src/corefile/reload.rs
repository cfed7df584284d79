//! `reload [INTERVAL [JITTER]]` as CoreDNS's reload plugin reads it: interval 30s and jitter
//! 15s by default, the interval at least 2s, the jitter at least 1s and capped at half the
//! interval.

use std::time::Duration;

use super::directives::parse_go_duration;
use super::parser::{RawDirective, Token};
use crate::config::{defaults, Reload};
use crate::error::ConfigError;

const MIN_INTERVAL: Duration = Duration::from_secs(2);
const MIN_JITTER: Duration = Duration::from_secs(1);

/// Parses one `reload` directive.
pub(crate) fn parse(directive: &RawDirective) -> Result<Reload, ConfigError> {
    let at = &directive.name;
    if let Some(block) = &directive.block {
        return Err(block.open.error("reload takes no option block"));
    }
    let (interval, jitter) = match directive.args.as_slice() {
        [] => (None, None),
        [interval] => (Some(interval), None),
        [interval, jitter] => (Some(interval), Some(jitter)),
        [_, _, extra, ..] => {
            return Err(extra.error(
                "reload takes at most two arguments, an interval and a jitter (e.g. \"reload 30s 15s\")",
            ))
        }
    };
    let interval = match interval {
        Some(token) => duration(token, "interval", MIN_INTERVAL)?,
        None => defaults::RELOAD_INTERVAL,
    };
    let jitter = match jitter {
        Some(token) => duration(token, "jitter", MIN_JITTER)?,
        None => defaults::RELOAD_JITTER,
    };
    Ok(Reload {
        interval,
        // CoreDNS caps it silently, so does this.
        jitter: jitter.min(interval / 2),
        location: at.location(),
    })
}

fn duration(token: &Token, what: &str, min: Duration) -> Result<Duration, ConfigError> {
    let value = parse_go_duration(&token.text).ok_or_else(|| {
        token.error(format!(
            "reload: {what} {:?} is not a duration (e.g. 30s, 1m)",
            token.text
        ))
    })?;
    if value < min {
        return Err(token.error(format!(
            "reload: {what} value must be greater or equal to {}s",
            min.as_secs()
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;
    use crate::corefile::{parse_corefile_text, ParseOptions};
    use crate::loader::MemLoader;

    fn parse(directive: &str) -> Result<Config, String> {
        let text = format!(". {{\n  {directive}\n}}\n");
        parse_corefile_text(
            Path::new("Corefile"),
            &text,
            &MemLoader::new(),
            &ParseOptions::default(),
        )
        .map_err(|e| e.to_string())
    }

    fn settings(directive: &str) -> (u64, u64) {
        let config = parse(directive).expect("valid");
        let reload = config.servers[0].reload.clone().expect("reload set");
        (reload.interval.as_secs(), reload.jitter.as_secs())
    }

    #[test]
    fn defaults_and_arguments_follow_coredns() {
        assert_eq!(settings("reload"), (30, 15));
        assert_eq!(settings("reload 10s"), (10, 5), "jitter capped at half");
        assert_eq!(settings("reload 1m 5s"), (60, 5));
        assert_eq!(settings("reload 2s 1s"), (2, 1));
        assert!(parse("log").expect("valid").servers[0].reload.is_none());
    }

    #[test]
    fn bad_values_name_the_line() {
        for (directive, expected) in [
            (
                "reload 1s",
                "Corefile:2: reload: interval value must be greater or equal to 2s",
            ),
            (
                "reload 5s 500ms",
                "jitter value must be greater or equal to 1s",
            ),
            ("reload soon", "interval \"soon\" is not a duration"),
            ("reload 5s 1s 1s", "at most two arguments"),
            ("reload { x }", "no option block"),
            (
                "reload\n  reload",
                "reload can be used only once per server block",
            ),
        ] {
            let error = parse(directive).expect_err(directive);
            assert!(error.contains(expected), "{directive}: {error}");
        }
    }
}
