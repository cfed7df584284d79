//! The `hosts` plugin's table: names → addresses and back, looked up as CoreDNS's hosts
//! plugin does — A/AAAA by name with Tanzu XCC's `*.parent` wildcard fallback, PTR by
//! address — with an SOA on negative answers; rebuilt whole when the file changes.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use crate::answer::{synthesised_soa_ns, Answer};
use crate::config::{defaults, Fallthrough, HostEntry, Hosts};
use crate::hosts_file::{parse_hosts, HostsLineError};
use crate::wire::{Name, NameError, Rcode, Record, Rtype};

/// Names → addresses and addresses → names, built from the file's entries then the
/// inline ones (CoreDNS returns both, the file's first).
#[derive(Clone, Debug, Default)]
pub(crate) struct Table {
    names: BTreeMap<Name, (Vec<Ipv4Addr>, Vec<Ipv6Addr>)>,
    reverse: BTreeMap<IpAddr, Vec<Name>>,
}

impl Table {
    fn new<'a>(entries: impl IntoIterator<Item = &'a HostEntry>) -> Table {
        let mut table = Table::default();
        for HostEntry { name, addr } in entries {
            let (v4, v6) = table.names.entry(name.clone()).or_default();
            let fresh = match addr {
                IpAddr::V4(a) => push_new(v4, *a),
                IpAddr::V6(a) => push_new(v6, *a),
            };
            // A name under `*` stands for many names: no single name to point a PTR at.
            if fresh && !name.is_wildcard() {
                table.reverse.entry(*addr).or_default().push(name.clone());
            }
        }
        table
    }

    /// The addresses of `key` (lower-cased), else of the nearest `*.ancestor` at or below
    /// `origin`, as XCC looks names up.
    fn find(&self, key: &Name, origin: &Name) -> Option<&(Vec<Ipv4Addr>, Vec<Ipv6Addr>)> {
        if let Some(found) = self.names.get(key) {
            return Some(found);
        }
        let mut up = key.parent();
        while let Some(parent) = up.filter(|p| p.is_at_or_below(origin)) {
            let wildcard = Name::from_labels([b"*".as_slice()], &parent).ok();
            if let Some(found) = wildcard.and_then(|w| self.names.get(&w)) {
                return Some(found);
            }
            up = parent.parent();
        }
        None
    }
}

fn push_new<T: PartialEq>(list: &mut Vec<T>, item: T) -> bool {
    let fresh = !list.contains(&item);
    if fresh {
        list.push(item);
    }
    fresh
}

/// A `hosts` directive, compiled: its options and the table it answers from.
pub(crate) struct CompiledHosts {
    pub(crate) path: PathBuf,
    pub(crate) reload: Duration,
    pub(crate) fallthrough: Option<Fallthrough>,
    origins: Vec<Name>,
    ttl: u32,
    no_reverse: bool,
    inline: Vec<HostEntry>,
    table: Table,
    /// SOA for the negative answers of each origin (same order as `origins`).
    soas: Vec<Record>,
}

impl CompiledHosts {
    pub(crate) fn new(config: &Hosts, serial: u32) -> Result<CompiledHosts, NameError> {
        // Negative answers are cached briefly: the table may change at the next reload.
        let negative_ttl = config.ttl.min(defaults::NEGATIVE_TTL);
        let soas = config
            .origins
            .iter()
            .map(|o| synthesised_soa_ns(o, negative_ttl, serial).map(|(soa, _)| soa))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CompiledHosts {
            path: config.path.clone(),
            reload: config.reload,
            fallthrough: config.fallthrough.clone(),
            origins: config.origins.clone(),
            ttl: config.ttl,
            no_reverse: config.no_reverse,
            inline: config.inline.clone(),
            table: Table::new(config.file_entries.iter().chain(&config.inline)),
            soas,
        })
    }

    /// The table a new text of the file gives, with the inline entries; the table in
    /// service is untouched until [`CompiledHosts::install`].
    pub(crate) fn table_for(&self, text: &str) -> Result<Table, HostsLineError> {
        let entries = parse_hosts(text, &self.origins)?;
        Ok(Table::new(entries.iter().chain(&self.inline)))
    }

    pub(crate) fn install(&mut self, table: Table) {
        self.table = table;
    }

    /// The longest origin holding `name`.
    fn origin_of(&self, name: &Name) -> Option<usize> {
        self.origins
            .iter()
            .enumerate()
            .filter(|(_, o)| name.is_at_or_below(o))
            .max_by_key(|(_, o)| o.label_count())
            .map(|(i, _)| i)
    }

    /// True if the plugin takes `qname` at all: a name in its origins, or a reverse name
    /// (PTR zones need not be listed, as in CoreDNS).
    pub(crate) fn covers(&self, qname: &Name, qtype: Rtype) -> bool {
        self.origin_of(qname).is_some() || (qtype == Rtype::PTR && reverse_address(qname).is_some())
    }

    /// The answer from the table; `None` when the query is not the plugin's to answer (a
    /// name outside its origins, or a PTR it has no name for: CoreDNS passes both on
    /// whether or not `fallthrough` is set).
    pub(crate) fn lookup(&self, qname: &Name, qtype: Rtype) -> Option<Answer> {
        if qtype == Rtype::PTR {
            if let Some(addr) = reverse_address(qname) {
                let names = self.table.reverse.get(&addr).filter(|_| !self.no_reverse)?;
                let mut answer = Answer::empty(Rcode::NOERROR, true);
                answer.answer = names
                    .iter()
                    .map(|n| Record::ptr(qname.clone(), self.ttl, n.clone()))
                    .collect();
                return Some(answer);
            }
        }
        let origin = self.origin_of(qname)?;
        let soa = &self.soas[origin];
        let Some((v4, v6)) = self
            .table
            .find(&qname.to_lowercase(), &self.origins[origin])
        else {
            return Some(Answer::negative(false, soa));
        };
        let a = || v4.iter().map(|ip| Record::a(qname.clone(), self.ttl, *ip));
        let aaaa = || {
            v6.iter()
                .map(|ip| Record::aaaa(qname.clone(), self.ttl, *ip))
        };
        let records: Vec<Record> = match qtype {
            Rtype::A => a().collect(),
            Rtype::AAAA => aaaa().collect(),
            Rtype::ANY => a().chain(aaaa()).collect(),
            _ => Vec::new(),
        };
        Some(Answer::records_or_nodata(records, soa))
    }
}

/// The address a reverse name (`4.3.2.1.in-addr.arpa.`, 32 nibbles `.ip6.arpa.`) stands for.
pub(crate) fn reverse_address(name: &Name) -> Option<IpAddr> {
    let labels: Vec<&[u8]> = name.labels().collect();
    let lower = |l: &[u8]| l.to_ascii_lowercase();
    match labels.as_slice() {
        [d, c, b, a, inaddr, arpa] if lower(inaddr) == b"in-addr" && lower(arpa) == b"arpa" => {
            let octet = |l: &[u8]| std::str::from_utf8(l).ok()?.parse::<u8>().ok();
            Some(IpAddr::from([octet(a)?, octet(b)?, octet(c)?, octet(d)?]))
        }
        [nibbles @ .., ip6, arpa] if lower(ip6) == b"ip6" && lower(arpa) == b"arpa" => {
            if nibbles.len() != 32 {
                return None;
            }
            let mut bits: u128 = 0;
            for nibble in nibbles.iter().rev() {
                let [digit] = nibble else { return None };
                bits = bits << 4 | u128::from(char::from(*digit).to_digit(16)?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(bits)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts_file::parse_hosts_line;

    fn n(s: &str) -> Name {
        Name::parse(s).expect("valid")
    }

    fn hosts(file: &str, inline: &[&str], no_reverse: bool) -> CompiledHosts {
        let origins = vec![n("example.org.")];
        let inline = inline
            .iter()
            .flat_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let (addr, names) = parse_hosts_line(&fields).expect("valid line");
                names.into_iter().map(move |name| HostEntry { name, addr })
            })
            .collect();
        let config = Hosts {
            path: PathBuf::from("hosts"),
            file_entries: parse_hosts(file, &origins).expect("valid file"),
            inline,
            origins,
            ttl: 3600,
            reload: Duration::from_secs(5),
            no_reverse,
            fallthrough: None,
            location: Default::default(),
        };
        CompiledHosts::new(&config, 1).expect("fits")
    }

    fn ask(h: &CompiledHosts, name: &str, qtype: Rtype) -> Option<(Rcode, Vec<String>, usize)> {
        h.lookup(&n(name), qtype).map(|a| {
            let shown = a.answer.iter().map(ToString::to_string).collect();
            (a.rcode, shown, a.authority.len())
        })
    }

    const FILE: &str = "# comment\n127.0.0.1 localhost\n10.0.0.1 web.example.org www.example.org # inline comment\n\
                        fd00::1 web.example.org\n10.0.0.9 *.apps.example.org\n::ffff:10.0.0.2 mapped.example.org\n";

    #[test]
    fn hosts_a_and_aaaa_by_name_ignoring_case() {
        let h = hosts(FILE, &[], false);
        assert_eq!(
            ask(&h, "WEB.example.org.", Rtype::A),
            Some((
                Rcode::NOERROR,
                vec!["WEB.example.org. 3600 IN A 10.0.0.1".into()],
                0
            ))
        );
        assert_eq!(
            ask(&h, "web.example.org.", Rtype::AAAA).map(|a| a.1),
            Some(vec!["web.example.org. 3600 IN AAAA fd00::1".into()])
        );
        assert_eq!(
            ask(&h, "mapped.example.org.", Rtype::A).map(|a| a.1),
            Some(vec!["mapped.example.org. 3600 IN A 10.0.0.2".into()])
        );
    }

    #[test]
    fn hosts_nodata_and_nxdomain_carry_an_soa() {
        let h = hosts(FILE, &[], false);
        assert_eq!(
            ask(&h, "www.example.org.", Rtype::AAAA),
            Some((Rcode::NOERROR, vec![], 1))
        );
        assert_eq!(
            ask(&h, "www.example.org.", Rtype::MX),
            Some((Rcode::NOERROR, vec![], 1))
        );
        assert_eq!(
            ask(&h, "nope.example.org.", Rtype::A),
            Some((Rcode::NXDOMAIN, vec![], 1))
        );
        let answer = h.lookup(&n("nope.example.org."), Rtype::A).expect("ours");
        assert_eq!(
            answer.authority[0].to_string(),
            "example.org. 5 IN SOA ns.dns.example.org. hostmaster.example.org. 1 7200 1800 86400 5"
        );
    }

    #[test]
    fn hosts_names_outside_the_origins_are_not_ours() {
        let h = hosts(FILE, &[], false);
        assert_eq!(ask(&h, "localhost.", Rtype::A), None);
        assert_eq!(ask(&h, "web.example.com.", Rtype::A), None);
    }

    #[test]
    fn hosts_wildcard_fallback_walks_up_but_exact_names_win() {
        let h = hosts(FILE, &["10.0.0.10 exact.apps.example.org"], false);
        for name in ["a.apps.example.org.", "b.c.apps.example.org."] {
            assert_eq!(
                ask(&h, name, Rtype::A).map(|a| a.1),
                Some(vec![format!("{name} 3600 IN A 10.0.0.9")])
            );
        }
        assert_eq!(
            ask(&h, "exact.apps.example.org.", Rtype::A).map(|a| a.1),
            Some(vec!["exact.apps.example.org. 3600 IN A 10.0.0.10".into()])
        );
        assert_eq!(
            ask(&h, "apps.example.org.", Rtype::A).map(|a| a.0),
            Some(Rcode::NXDOMAIN)
        );
    }

    #[test]
    fn hosts_inline_entries_follow_the_file_entries() {
        let h = hosts(FILE, &["10.0.0.5 web.example.org"], false);
        assert_eq!(
            ask(&h, "web.example.org.", Rtype::A).map(|a| a.1),
            Some(vec![
                "web.example.org. 3600 IN A 10.0.0.1".into(),
                "web.example.org. 3600 IN A 10.0.0.5".into()
            ])
        );
    }

    #[test]
    fn hosts_ptr_from_the_table_unless_no_reverse() {
        let h = hosts(FILE, &[], false);
        assert_eq!(
            ask(&h, "1.0.0.10.in-addr.arpa.", Rtype::PTR).map(|a| a.1),
            Some(vec![
                "1.0.0.10.in-addr.arpa. 3600 IN PTR web.example.org.".into(),
                "1.0.0.10.in-addr.arpa. 3600 IN PTR www.example.org.".into()
            ])
        );
        let v6 = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.";
        assert_eq!(
            ask(&h, v6, Rtype::PTR).map(|a| a.1),
            Some(vec![format!("{v6} 3600 IN PTR web.example.org.")])
        );
        assert_eq!(
            ask(&h, "7.7.7.7.in-addr.arpa.", Rtype::PTR),
            None,
            "a miss passes on"
        );
        assert!(h.covers(&n("7.7.7.7.in-addr.arpa."), Rtype::PTR));
        let h = hosts(FILE, &[], true);
        assert_eq!(ask(&h, "1.0.0.10.in-addr.arpa.", Rtype::PTR), None);
    }

    #[test]
    fn hosts_replacing_the_file_keeps_the_table_on_error() {
        let mut h = hosts(FILE, &["10.0.0.5 inline.example.org"], false);
        let table = h.table_for("10.1.1.1 new.example.org\n").expect("valid");
        h.install(table);
        assert_eq!(
            ask(&h, "web.example.org.", Rtype::A).map(|a| a.0),
            Some(Rcode::NXDOMAIN)
        );
        assert_eq!(
            ask(&h, "new.example.org.", Rtype::A).map(|a| a.1.len()),
            Some(1)
        );
        assert_eq!(
            ask(&h, "inline.example.org.", Rtype::A).map(|a| a.1.len()),
            Some(1)
        );
        let err = h
            .table_for("10.2.2.2 newer.example.org\nbogus line\n")
            .expect_err("bad");
        assert_eq!(err.line, 2);
        assert_eq!(
            ask(&h, "new.example.org.", Rtype::A).map(|a| a.1.len()),
            Some(1)
        );
        assert_eq!(
            ask(&h, "newer.example.org.", Rtype::A).map(|a| a.0),
            Some(Rcode::NXDOMAIN)
        );
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_address(&n("4.3.2.1.IN-ADDR.arpa.")),
            Some(IpAddr::from([1, 2, 3, 4]))
        );
        assert_eq!(reverse_address(&n("3.2.1.in-addr.arpa.")), None);
        assert_eq!(reverse_address(&n("256.3.2.1.in-addr.arpa.")), None);
        assert_eq!(reverse_address(&n("1.ip6.arpa.")), None);
    }
}
