//! The configurations and hosts file texts the reference model runs the gateway with, and
//! what the model reads from them: the `max_concurrent` of each pool, the hosts address.

use std::net::Ipv4Addr;
use std::sync::OnceLock;

use crate::Config;

/// The cap on client queries in flight, small so that sequences reach it.
pub const MAX_INFLIGHT: usize = 6;

/// The gateway's configurations: a gathering block (cluster A over UDP behind a cap, cluster
/// B over TCP), a `forward` block with a cap, and a `hosts` block. The variants change
/// upstreams, caps and transports.
pub(super) const COREFILES: [&str; 3] = [
    "distributed.local.:53 {
    gathersrv distributed.local. {
        cluster-a.local. a-
        cluster-b.local. b-
    }
    forward cluster-a.local. 192.0.2.1:53 192.0.2.2:53 {
        max_concurrent 3
    }
    forward cluster-b.local. 198.51.100.1:53 {
        force_tcp
    }
}
fwd.test.:53 {
    forward . 203.0.113.1:53 203.0.113.2:53 {
        max_concurrent 4
        health_check 200ms
    }
}
hosts.test.:53 {
    hosts hosts.txt hosts.test.
}
",
    "distributed.local.:53 {
    gathersrv distributed.local. {
        cluster-a.local. a-
        cluster-b.local. b-
    }
    forward cluster-a.local. 192.0.2.1:53 {
        max_concurrent 2
    }
    forward cluster-b.local. 198.51.100.1:53 198.51.100.2:53
}
fwd.test.:53 {
    forward . 203.0.113.2:53 203.0.113.3:53 {
        prefer_udp
        policy sequential
        max_concurrent 2
        max_fails 1
    }
}
hosts.test.:53 {
    hosts hosts.txt hosts.test.
}
",
    "distributed.local.:53 {
    gathersrv distributed.local. {
        cluster-a.local. a-
        cluster-b.local. b-
    }
    forward cluster-a.local. 192.0.2.1:53 192.0.2.2:53
    forward cluster-b.local. 198.51.100.1:53 {
        force_tcp
        max_concurrent 3
    }
}
fwd.test.:53 {
    forward . 203.0.113.1:53 {
        force_tcp
        max_concurrent 3
        max_fails 0
    }
}
hosts.test.:53 {
    hosts hosts.txt hosts.test.
}
",
];

/// The texts the hosts file takes; the last one is malformed.
pub(super) const HOSTS_TEXTS: [&str; 4] = [
    "192.0.2.80 h.hosts.test\n",
    "192.0.2.81 h.hosts.test\n",
    "192.0.2.82 h.hosts.test other.hosts.test\n",
    "192.0.2.83 h.hosts.test\nnot-an-address h.hosts.test\n",
];

/// The address `h.hosts.test.` has after `HOSTS_TEXTS[version]`.
pub(super) fn hosts_address(version: usize) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 80 + version as u8)
}

pub(super) fn configs() -> &'static [Config; 3] {
    static CONFIGS: OnceLock<[Config; 3]> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        COREFILES.map(|text| {
            let options = crate::corefile::ParseOptions { default_port: 53 };
            let loader = crate::loader::MemLoader::new().file("hosts.txt", HOSTS_TEXTS[0]);
            let mut config =
                crate::corefile::parse_corefile_text("Corefile".as_ref(), text, &loader, &options)
                    .expect("the model's Corefiles are valid");
            config.max_inflight = MAX_INFLIGHT;
            config
        })
    })
}

/// The `max_concurrent` of each pool of a configuration, in the gateway's pool order.
pub(super) fn caps(config: &Config) -> Vec<Option<u32>> {
    config
        .servers
        .iter()
        .flat_map(|s| s.forwards.iter().map(|f| f.max_concurrent))
        .collect()
}
