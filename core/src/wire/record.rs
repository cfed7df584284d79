//! Resource records held by the core: parsed once at the boundary, with every embedded name
//! reachable so that rewriting between zones never touches raw RDATA bytes.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use domain::base::iana::{Class, Rtype};
use domain::base::name::Name as DName;
use domain::base::rdata::RecordData;
use domain::base::{CharStr, Serial, Ttl};
use domain::rdata::{Aaaa, AllRecordData, Cname, Dname, Hinfo, Mx, Ns, Ptr, Soa, Srv, Txt, A};

use super::Name;

pub(super) type Data = AllRecordData<Bytes, DName<Bytes>>;

/// One resource record (never OPT: the boundary strips it).
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub(super) owner: Name,
    pub(super) class: Class,
    pub(super) ttl: u32,
    pub(super) data: Data,
}

/// SOA fields, for synthesising negative answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SoaFields {
    /// Primary server name.
    pub mname: Name,
    /// Responsible mailbox.
    pub rname: Name,
    /// Zone serial.
    pub serial: u32,
    /// Refresh interval, seconds.
    pub refresh: u32,
    /// Retry interval, seconds.
    pub retry: u32,
    /// Expiry, seconds.
    pub expire: u32,
    /// Negative-caching TTL, seconds.
    pub minimum: u32,
}

impl Record {
    /// The owner name.
    pub fn owner(&self) -> &Name {
        &self.owner
    }

    /// The record type.
    pub fn rtype(&self) -> Rtype {
        self.data.rtype()
    }

    /// The class (IN for everything the core creates).
    pub fn class(&self) -> Class {
        self.class
    }

    /// TTL in seconds.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// The same record with another owner.
    pub fn with_owner(&self, owner: Name) -> Record {
        Record {
            owner,
            ..self.clone()
        }
    }

    /// The same record with another TTL.
    pub fn with_ttl(mut self, ttl: u32) -> Record {
        self.ttl = ttl;
        self
    }

    /// The target of a CNAME record.
    pub fn cname_target(&self) -> Option<Name> {
        match &self.data {
            AllRecordData::Cname(c) => Some(Name(c.cname().clone())),
            _ => None,
        }
    }

    /// The SOA minimum field, for SOA records.
    pub fn soa_minimum(&self) -> Option<u32> {
        match &self.data {
            AllRecordData::Soa(s) => Some(s.minimum().as_secs()),
            _ => None,
        }
    }

    /// The names a resolver would want addresses for in the additional section
    /// (SRV targets, MX exchanges, NS hosts).
    pub fn additional_target(&self) -> Option<Name> {
        match &self.data {
            AllRecordData::Srv(s) => Some(Name(s.target().clone())),
            AllRecordData::Mx(m) => Some(Name(m.exchange().clone())),
            AllRecordData::Ns(n) => Some(Name(n.nsdname().clone())),
            _ => None,
        }
    }

    /// Applies `rename` to the owner and to every name inside the RDATA of the types whose
    /// RDATA holds names (SRV, CNAME, DNAME, PTR, NS, MX, SOA). `rename` returns `None` to
    /// keep a name. Returns `None` if a renamed name would not fit in 255 bytes.
    pub fn rename(
        &self,
        mut rename: impl FnMut(&Name) -> Option<Result<Name, super::NameError>>,
    ) -> Option<Record> {
        let mut apply = |n: &DName<Bytes>| -> Option<DName<Bytes>> {
            match rename(&Name(n.clone())) {
                None => Some(n.clone()),
                Some(Ok(new)) => Some(new.0),
                Some(Err(_)) => None,
            }
        };
        let owner = apply(&self.owner.0)?;
        let data = match &self.data {
            AllRecordData::Srv(s) => AllRecordData::Srv(Srv::new(
                s.priority(),
                s.weight(),
                s.port(),
                apply(s.target())?,
            )),
            AllRecordData::Cname(c) => AllRecordData::Cname(Cname::new(apply(c.cname())?)),
            AllRecordData::Dname(d) => AllRecordData::Dname(Dname::new(apply(d.dname())?)),
            AllRecordData::Ptr(p) => AllRecordData::Ptr(Ptr::new(apply(p.ptrdname())?)),
            AllRecordData::Ns(n) => AllRecordData::Ns(Ns::new(apply(n.nsdname())?)),
            AllRecordData::Mx(m) => {
                AllRecordData::Mx(Mx::new(m.preference(), apply(m.exchange())?))
            }
            AllRecordData::Soa(s) => AllRecordData::Soa(Soa::new(
                apply(s.mname())?,
                apply(s.rname())?,
                s.serial(),
                s.refresh(),
                s.retry(),
                s.expire(),
                s.minimum(),
            )),
            other => other.clone(),
        };
        Some(Record {
            owner: Name(owner),
            class: self.class,
            ttl: self.ttl,
            data,
        })
    }

    /// An IN A record.
    pub fn a(owner: Name, ttl: u32, addr: Ipv4Addr) -> Record {
        Self::new_in(owner, ttl, AllRecordData::A(A::new(addr)))
    }

    /// An IN AAAA record.
    pub fn aaaa(owner: Name, ttl: u32, addr: Ipv6Addr) -> Record {
        Self::new_in(owner, ttl, AllRecordData::Aaaa(Aaaa::new(addr)))
    }

    /// An IN NS record.
    pub fn ns(owner: Name, ttl: u32, host: Name) -> Record {
        Self::new_in(owner, ttl, AllRecordData::Ns(Ns::new(host.0)))
    }

    /// An IN PTR record.
    pub fn ptr(owner: Name, ttl: u32, target: Name) -> Record {
        Self::new_in(owner, ttl, AllRecordData::Ptr(Ptr::new(target.0)))
    }

    /// An IN CNAME record.
    pub fn cname(owner: Name, ttl: u32, target: Name) -> Record {
        Self::new_in(owner, ttl, AllRecordData::Cname(Cname::new(target.0)))
    }

    /// An IN SRV record.
    pub fn srv(
        owner: Name,
        ttl: u32,
        priority: u16,
        weight: u16,
        port: u16,
        target: Name,
    ) -> Record {
        Self::new_in(
            owner,
            ttl,
            AllRecordData::Srv(Srv::new(priority, weight, port, target.0)),
        )
    }

    /// An IN SOA record.
    pub fn soa(owner: Name, ttl: u32, soa: &SoaFields) -> Record {
        let data = Soa::new(
            soa.mname.0.clone(),
            soa.rname.0.clone(),
            Serial(soa.serial),
            Ttl::from_secs(soa.refresh),
            Ttl::from_secs(soa.retry),
            Ttl::from_secs(soa.expire),
            Ttl::from_secs(soa.minimum),
        );
        Self::new_in(owner, ttl, AllRecordData::Soa(data))
    }

    /// An IN TXT record holding one string (at most 255 bytes, longer text is split).
    pub fn txt(owner: Name, ttl: u32, text: &str) -> Record {
        let data = Txt::build_from_slice(text.as_bytes()).unwrap_or_else(|_| {
            Txt::from_octets(Bytes::from_static(b"\0")).expect("an empty string is a valid TXT")
        });
        Self::new_in(owner, ttl, AllRecordData::Txt(data))
    }

    /// The RFC 8482 minimal answer to ANY: `HINFO "RFC8482" ""`.
    pub fn rfc8482_hinfo(owner: Name, ttl: u32) -> Record {
        let cpu = CharStr::from_octets(Bytes::from_static(b"RFC8482")).expect("short string");
        let os = CharStr::from_octets(Bytes::new()).expect("empty string");
        Self::new_in(owner, ttl, AllRecordData::Hinfo(Hinfo::new(cpu, os)))
    }

    fn new_in(owner: Name, ttl: u32, data: Data) -> Record {
        Record {
            owner,
            class: Class::IN,
            ttl,
            data,
        }
    }

    /// True if both records are the same RR apart from TTL: owner (ignoring case), type,
    /// class and RDATA.
    pub fn same_rr(&self, other: &Record) -> bool {
        self.owner == other.owner && self.class == other.class && same_data(&self.data, &other.data)
    }

    /// The RDATA in presentation format, for logs and test failure messages.
    pub fn data_text(&self) -> String {
        self.data.to_string()
    }
}

/// RDATA equality. `AllRecordData`'s `PartialEq` in domain 0.12.3 has no arm for unknown
/// types, so two identical records of an unknown type would never compare equal.
fn same_data(a: &Data, b: &Data) -> bool {
    match (a, b) {
        (AllRecordData::Unknown(x), AllRecordData::Unknown(y)) => {
            x.rtype() == y.rtype() && x.data().as_ref() == y.data().as_ref()
        }
        _ => a == b,
    }
}

impl std::fmt::Display for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} {} {}",
            self.owner,
            self.ttl,
            self.class,
            self.rtype(),
            self.data
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_unknown_type_records_are_the_same_rr() {
        let owner = Name::parse("x.example.").expect("valid");
        let data = |bytes: &'static [u8]| {
            AllRecordData::Unknown(
                domain::base::rdata::UnknownRecordData::from_octets(
                    Rtype::from_int(65280),
                    Bytes::from_static(bytes),
                )
                .expect("short data"),
            )
        };
        let a = Record {
            owner: owner.clone(),
            class: Class::IN,
            ttl: 30,
            data: data(b"\x01\x02"),
        };
        let b = Record {
            owner: owner.clone(),
            class: Class::IN,
            ttl: 60,
            data: data(b"\x01\x02"),
        };
        let c = Record {
            owner,
            class: Class::IN,
            ttl: 30,
            data: data(b"\x01\x03"),
        };
        assert!(a.same_rr(&b));
        assert!(!a.same_rr(&c));
    }
}
