//! CoreDNS's `loop` for one server block: at startup a probe `<random>.<random>.ZONE. HINFO`
//! goes to the block's own listening address; each time the probe comes in as a query it is
//! counted, and a third sighting is a forwarding loop that stops the server. Once the probe
//! is answered (or after 30 s of trying) the check turns itself off. Only the state machine
//! lives here; the gateway sends, times and matches the probe.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::transmit::AttemptId;
use crate::wire::{Name, NameError};

/// How long the probe is tried at most (CoreDNS's 30 s).
pub(crate) const TRY_FOR: Duration = Duration::from_secs(30);
/// How long one probe waits for its reply (`dns.Exchange`'s default).
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The pause after a probe that failed.
pub(crate) const PAUSE: Duration = Duration::from_secs(1);

/// Where the check is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// Not started (no probe name yet).
    Idle,
    /// A probe is out.
    Waiting {
        attempt: AttemptId,
        dns_id: u16,
        until: Instant,
    },
    /// The last probe failed; the next goes at `until`.
    Pausing { until: Instant },
    /// Answered, given up, or a loop was reported: nothing is counted any more.
    Off,
}

/// The loop check of a block.
pub(crate) struct LoopCheck {
    /// The block's first zone.
    pub(crate) zone: Name,
    /// Where the probe goes: the block's first listening address (loopback for a wildcard).
    pub(crate) target: SocketAddr,
    /// The listening address as CoreDNS prints it (`:1053` when bound to every address).
    pub(crate) shown: String,
    /// `<random>.<random>.ZONE.`, once started.
    pub(crate) qname: Option<Name>,
    pub(crate) state: State,
    /// Times the probe came in since the last probe failed.
    pub(crate) seen: u32,
    /// When trying stops.
    pub(crate) deadline: Option<Instant>,
}

impl LoopCheck {
    /// The check of a block serving `zone` on `listen` (as the block's key and `bind` say).
    pub(crate) fn new(zone: Name, listen: SocketAddr) -> LoopCheck {
        let (target, shown) = match listen.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => (
                SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port()),
                format!(":{}", listen.port()),
            ),
            IpAddr::V6(ip) if ip.is_unspecified() => (
                SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port()),
                format!(":{}", listen.port()),
            ),
            _ => (listen, listen.to_string()),
        };
        LoopCheck {
            zone,
            target,
            shown,
            qname: None,
            state: State::Idle,
            seen: 0,
            deadline: None,
        }
    }

    /// Starts the check with two random numbers for the probe name.
    pub(crate) fn start(&mut self, now: Instant, a: u64, b: u64) -> Result<(), NameError> {
        // CoreDNS draws 62-bit numbers.
        let mask = (1u64 << 62) - 1;
        let (a, b) = ((a & mask).to_string(), (b & mask).to_string());
        self.qname = Some(Name::from_labels([a.as_bytes(), b.as_bytes()], &self.zone)?);
        self.deadline = Some(now + TRY_FOR);
        Ok(())
    }

    /// A query for `qname` came in. `Some(count)` when it is the probe, counted; the caller
    /// reports a loop when the count passes two.
    pub(crate) fn sighting(&mut self, qname: &Name) -> Option<u32> {
        if matches!(self.state, State::Off | State::Idle) || self.qname.as_ref() != Some(qname) {
            return None;
        }
        self.seen += 1;
        Some(self.seen)
    }

    /// The probe failed or timed out at `now`: the count starts again, and the next probe
    /// goes after a pause unless trying is over.
    pub(crate) fn failed(&mut self, now: Instant) {
        self.seen = 0;
        let until = now + PAUSE;
        self.state = match self.deadline {
            Some(deadline) if until < deadline => State::Pausing { until },
            _ => State::Off,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods)] // any epoch will do for a test
    fn counts_only_its_probe_and_gives_up_after_thirty_seconds() {
        let zone = Name::parse(".").expect("root");
        let mut check = LoopCheck::new(zone, "0.0.0.0:1053".parse().expect("addr"));
        assert_eq!(check.target, "127.0.0.1:1053".parse().expect("addr"));
        assert_eq!(check.shown, ":1053");
        let t0 = Instant::now();
        check.start(t0, 7, u64::MAX).expect("fits");
        let probe = check.qname.clone().expect("started");
        assert_eq!(probe.to_string(), "7.4611686018427387903.");
        check.state = State::Pausing { until: t0 };
        assert_eq!(check.sighting(&Name::parse("other.").expect("name")), None);
        assert_eq!(check.sighting(&probe), Some(1));
        assert_eq!(check.sighting(&probe), Some(2));
        check.failed(t0 + Duration::from_secs(3));
        assert_eq!(check.seen, 0, "a failed probe starts the count again");
        assert_eq!(
            check.state,
            State::Pausing {
                until: t0 + Duration::from_secs(4)
            }
        );
        check.failed(t0 + Duration::from_secs(29));
        assert_eq!(check.state, State::Off, "30 s of trying is enough");
        assert_eq!(check.sighting(&probe), None);
    }
}
