//! gathersrv's answer options: `policy union|prefer PREFIX…|first_positive`,
//! `srv_priority PREFIX N` and `serve_stale DURATION [CAPACITY]`. Prefixes name clusters of
//! the same block, so they are checked once every cluster line is read.

use super::directives::parse_go_duration;
use super::parser::Token;
use crate::config::{stale_defaults, AnswerOptions, AnswerPolicy, Cluster, Location, StaleParts};
use crate::error::ConfigError;

/// What the options said, with where, until the clusters are known.
#[derive(Default)]
pub(crate) struct Pending {
    policy: Option<(AnswerPolicy, Vec<Token>, Location)>,
    srv_priority: Vec<(Token, u16)>,
    stale: Option<(StaleParts, Location)>,
}

/// True if `option` is one of ours.
pub(crate) fn takes(option: &str) -> bool {
    matches!(option, "policy" | "srv_priority" | "serve_stale")
}

/// Reads one option line (`takes` said it is ours).
pub(crate) fn parse(
    option: &Token,
    args: &[Token],
    pending: &mut Pending,
) -> Result<(), ConfigError> {
    match option.text.as_str() {
        "policy" => {
            if let Some((_, _, first)) = &pending.policy {
                return Err(
                    option.error(format!("gathersrv: policy is set twice (first at {first})"))
                );
            }
            let usage = "gathersrv: policy takes union, prefer PREFIX… or first_positive \
                         (e.g. \"policy prefer a-\")";
            let Some((kind, rest)) = args.split_first() else {
                return Err(option.error(usage));
            };
            let policy = match kind.text.as_str() {
                "union" | "first_positive" if !rest.is_empty() => {
                    return Err(rest[0].error(format!(
                        "gathersrv: policy {} takes nothing after it, but {:?} follows",
                        kind.text, rest[0].text
                    )))
                }
                "union" => AnswerPolicy::Union,
                "first_positive" => AnswerPolicy::FirstPositive,
                "prefer" if rest.is_empty() => {
                    return Err(kind.error(
                        "gathersrv: policy prefer needs the prefixes of the preferred clusters, e.g. \"policy prefer a-\"",
                    ))
                }
                "prefer" => AnswerPolicy::Prefer(rest.iter().map(|t| t.text.clone()).collect()),
                other => {
                    return Err(kind.error(format!(
                        "gathersrv: unknown policy {other:?}; {}",
                        &usage["gathersrv: policy ".len()..]
                    )))
                }
            };
            pending.policy = Some((policy, rest.to_vec(), option.location()));
        }
        "srv_priority" => {
            let [prefix, n] = args else {
                return Err(option.error(
                    "gathersrv: srv_priority takes a cluster's prefix and a number to add to its SRV priorities, e.g. \"srv_priority b- 10\"",
                ));
            };
            let value: u16 = n.text.parse().map_err(|_| {
                n.error(format!(
                    "gathersrv: srv_priority {:?} is not a number from 0 to 65535",
                    n.text
                ))
            })?;
            if let Some((first, _)) = pending
                .srv_priority
                .iter()
                .find(|(p, _)| p.text.eq_ignore_ascii_case(&prefix.text))
            {
                return Err(prefix.error(format!(
                    "gathersrv: srv_priority for {:?} is set twice (first at {})",
                    prefix.text,
                    first.location()
                )));
            }
            pending.srv_priority.push((prefix.clone(), value));
        }
        _ => {
            if let Some((_, first)) = &pending.stale {
                return Err(option.error(format!(
                    "gathersrv: serve_stale is set twice (first at {first})"
                )));
            }
            let usage = "gathersrv: serve_stale takes how long a cluster's last answer is kept and \
                         optionally how many are kept, e.g. \"serve_stale 1h\" or \"serve_stale 1h 10000\"";
            let (age, capacity) = match args {
                [age] => (age, None),
                [age, capacity] => (age, Some(capacity)),
                _ => return Err(option.error(usage)),
            };
            let max_age = match parse_go_duration(&age.text) {
                Some(d) if !d.is_zero() => d,
                _ => {
                    return Err(age.error(format!(
                        "gathersrv: serve_stale {:?} is not a duration above 0 (e.g. 30s, 10m, 1h)",
                        age.text
                    )))
                }
            };
            let capacity = match capacity {
                None => stale_defaults::CAPACITY,
                Some(c) => c
                    .text
                    .parse::<usize>()
                    .ok()
                    .filter(|c| *c > 0)
                    .ok_or_else(|| {
                        c.error(format!(
                            "gathersrv: serve_stale capacity {:?} is not a number of parts above 0",
                            c.text
                        ))
                    })?,
            };
            pending.stale = Some((StaleParts { max_age, capacity }, option.location()));
        }
    }
    Ok(())
}

/// The options, once every prefix they name is checked against the clusters.
pub(crate) fn finish(
    pending: Pending,
    clusters: &[(Cluster, Location)],
) -> Result<AnswerOptions, ConfigError> {
    let known = |token: &Token, option: &str| -> Result<String, ConfigError> {
        clusters
            .iter()
            .find(|(c, _)| c.prefix.eq_ignore_ascii_case(&token.text))
            .map(|(c, _)| c.prefix.clone())
            .ok_or_else(|| {
                let prefixes: Vec<&str> = clusters.iter().map(|(c, _)| c.prefix.as_str()).collect();
                token.error(format!(
                    "gathersrv: {option}: {:?} is not the prefix of a cluster of this gathersrv (its prefixes: {})",
                    token.text,
                    prefixes.join(", ")
                ))
            })
    };
    let policy = match pending.policy {
        None => AnswerPolicy::Union,
        Some((AnswerPolicy::Prefer(_), tokens, _)) => {
            let mut preferred: Vec<String> = Vec::new();
            for token in &tokens {
                let prefix = known(token, "policy prefer")?;
                if !preferred.contains(&prefix) {
                    preferred.push(prefix);
                }
            }
            AnswerPolicy::Prefer(preferred)
        }
        Some((policy, _, _)) => policy,
    };
    let srv_priority = pending
        .srv_priority
        .iter()
        .map(|(token, n)| Ok((known(token, "srv_priority")?, *n)))
        .collect::<Result<Vec<_>, ConfigError>>()?;
    Ok(AnswerOptions {
        policy,
        srv_priority,
        stale_parts: pending.stale.map(|(s, _)| s),
    })
}
