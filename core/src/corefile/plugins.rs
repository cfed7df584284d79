//! The two small plugins of CoreDNS's default Corefile: `loadbalance [round_robin]` and
//! `loop`, read as CoreDNS reads them.

use super::parser::RawDirective;
use crate::error::ConfigError;

/// `loadbalance [round_robin]`: the only policy gatherdns has is CoreDNS's default one.
pub(crate) fn loadbalance(directive: &RawDirective) -> Result<(), ConfigError> {
    match directive.args.as_slice() {
        [] => {}
        [policy] if policy.text == "round_robin" => {}
        [policy, ..] if policy.text == "weighted" => {
            return Err(policy.error(
                "loadbalance: the weighted policy is not supported; use \"loadbalance\" \
                 (round_robin: A, AAAA and MX records shuffled)",
            ))
        }
        [policy] => {
            return Err(policy.error(format!(
                "loadbalance: unknown policy {:?} (loadbalance takes round_robin)",
                policy.text
            )))
        }
        [_, extra, ..] => {
            return Err(extra.error(format!(
                "loadbalance: unknown property for round_robin: {:?} (loadbalance takes round_robin and nothing after it)",
                extra.text
            )))
        }
    }
    if let Some(block) = &directive.block {
        if let Some(option) = block.lines.first().and_then(|l| l.first()) {
            return Err(option.error(format!(
                "loadbalance: option {:?} is not supported (loadbalance takes no options here)",
                option.text
            )));
        }
    }
    Ok(())
}

/// `loop`: no arguments, no options.
pub(crate) fn loop_check(directive: &RawDirective) -> Result<(), ConfigError> {
    if let Some(extra) = directive.args.first() {
        return Err(extra.error(format!(
            "loop takes no arguments, but {:?} follows it",
            extra.text
        )));
    }
    if let Some(block) = &directive.block {
        return Err(block.open.error("loop takes no option block"));
    }
    Ok(())
}
