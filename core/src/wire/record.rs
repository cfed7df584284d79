//! Resource records held by the core. RDATA stays in wire form with its embedded name split
//! out (SRV, MX, CNAME, NS, PTR, DNAME), so that renaming between zones swaps a name without
//! re-encoding and the writer can compress the names RFC 1035 allows; rarer types are kept
//! as `domain` decodes them.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use bytes::Bytes;
use domain::base::iana::{Class, Rtype};
use domain::base::name::Name as DName;
use domain::base::rdata::RecordData;
use domain::base::{CharStr, Serial, Ttl};
use domain::rdata::{Aaaa, AllRecordData, Cname, Dname, Hinfo, Mx, Ns, Ptr, Soa, Srv, Txt, A};

use super::Name;

pub(super) type Data = AllRecordData<Bytes, DName<Bytes>>;

/// One resource record (never OPT: the boundary strips it).
#[derive(Clone)]
pub struct Record {
    pub(super) owner: Name,
    pub(super) rtype: Rtype,
    pub(super) class: Class,
    pub(super) ttl: u32,
    pub(super) data: Rdata,
}

/// The RDATA of a record.
#[derive(Clone)]
pub(super) enum Rdata {
    /// A (4 octets) or AAAA (16).
    Addr { len: u8, octets: [u8; 16] },
    /// [`named_head`] fixed octets (zero-padded to six), then one name.
    Named { head: [u8; 6], name: Name },
    /// Every other type (SOA, TXT, HINFO, unknown types…), decoded by `domain`.
    Other(Arc<Data>),
}

/// The number of fixed octets before the name of the types held as [`Rdata::Named`].
pub(super) fn named_head(rtype: Rtype) -> Option<usize> {
    match rtype {
        Rtype::CNAME | Rtype::NS | Rtype::PTR | Rtype::DNAME => Some(0),
        Rtype::MX => Some(2),
        Rtype::SRV => Some(6),
        _ => None,
    }
}

impl Rdata {
    pub(super) fn from_data(data: Data) -> Rdata {
        let named = |head: &[u8], name: &DName<Bytes>| {
            let mut fixed = [0; 6];
            fixed[..head.len()].copy_from_slice(head);
            Rdata::Named {
                head: fixed,
                name: Name::from_dname(name.clone()),
            }
        };
        let addr = |octets: &[u8]| {
            let mut fixed = [0; 16];
            fixed[..octets.len()].copy_from_slice(octets);
            Rdata::Addr {
                len: octets.len() as u8,
                octets: fixed,
            }
        };
        match &data {
            AllRecordData::A(a) => addr(&a.addr().octets()),
            AllRecordData::Aaaa(a) => addr(&a.addr().octets()),
            AllRecordData::Cname(c) => named(&[], c.cname()),
            AllRecordData::Ns(n) => named(&[], n.nsdname()),
            AllRecordData::Ptr(p) => named(&[], p.ptrdname()),
            AllRecordData::Dname(d) => named(&[], d.dname()),
            AllRecordData::Mx(m) => named(&m.preference().to_be_bytes(), m.exchange()),
            AllRecordData::Srv(s) => {
                let mut head = [0; 6];
                head[..2].copy_from_slice(&s.priority().to_be_bytes());
                head[2..4].copy_from_slice(&s.weight().to_be_bytes());
                head[4..].copy_from_slice(&s.port().to_be_bytes());
                named(&head, s.target())
            }
            _ => Rdata::Other(Arc::new(data)),
        }
    }

    /// The `domain` form, for presentation format.
    fn to_data(&self, rtype: Rtype) -> Data {
        let u16_at = |head: &[u8; 6], i: usize| u16::from_be_bytes([head[i], head[i + 1]]);
        match self {
            Rdata::Addr { len: 4, octets } => AllRecordData::A(A::new(Ipv4Addr::new(
                octets[0], octets[1], octets[2], octets[3],
            ))),
            Rdata::Addr { octets, .. } => AllRecordData::Aaaa(Aaaa::new(Ipv6Addr::from(*octets))),
            Rdata::Named { head, name } => {
                let name = name.dname();
                match rtype {
                    Rtype::MX => AllRecordData::Mx(Mx::new(u16_at(head, 0), name)),
                    Rtype::SRV => AllRecordData::Srv(Srv::new(
                        u16_at(head, 0),
                        u16_at(head, 2),
                        u16_at(head, 4),
                        name,
                    )),
                    Rtype::NS => AllRecordData::Ns(Ns::new(name)),
                    Rtype::PTR => AllRecordData::Ptr(Ptr::new(name)),
                    Rtype::DNAME => AllRecordData::Dname(Dname::new(name)),
                    _ => AllRecordData::Cname(Cname::new(name)),
                }
            }
            Rdata::Other(data) => Data::clone(data),
        }
    }

    /// RDATA equality, names compared without regard to case.
    fn same(&self, other: &Rdata) -> bool {
        match (self, other) {
            (Rdata::Addr { len: a, octets: x }, Rdata::Addr { len: b, octets: y }) => {
                a == b && x == y
            }
            (Rdata::Named { head: h, name: n }, Rdata::Named { head: g, name: m }) => {
                h == g && n == m
            }
            (Rdata::Other(a), Rdata::Other(b)) => same_data(a, b),
            _ => false,
        }
    }
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
        self.rtype
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

    /// An SRV record with `add` added to its priority (saturating); other records unchanged.
    pub fn with_srv_priority_added(mut self, add: u16) -> Record {
        if let (Rtype::SRV, Rdata::Named { head, .. }) = (self.rtype, &mut self.data) {
            let priority = u16::from_be_bytes([head[0], head[1]]).saturating_add(add);
            head[..2].copy_from_slice(&priority.to_be_bytes());
        }
        self
    }

    /// The target of a CNAME record.
    pub fn cname_target(&self) -> Option<Name> {
        match &self.data {
            Rdata::Named { name, .. } if self.rtype == Rtype::CNAME => Some(name.clone()),
            _ => None,
        }
    }

    /// The SOA minimum field, for SOA records.
    pub fn soa_minimum(&self) -> Option<u32> {
        match &self.data {
            Rdata::Other(data) => match &**data {
                AllRecordData::Soa(s) => Some(s.minimum().as_secs()),
                _ => None,
            },
            _ => None,
        }
    }

    /// The names a resolver would want addresses for in the additional section
    /// (SRV targets, MX exchanges, NS hosts).
    pub fn additional_target(&self) -> Option<Name> {
        match &self.data {
            Rdata::Named { name, .. }
                if matches!(self.rtype, Rtype::SRV | Rtype::MX | Rtype::NS) =>
            {
                Some(name.clone())
            }
            _ => None,
        }
    }

    /// Applies `rename` to the owner and to every name inside the RDATA of the types whose
    /// RDATA holds names (SRV, CNAME, DNAME, PTR, NS, MX, SOA). `rename` returns `None` to
    /// keep a name. Returns `None` if a renamed name would not fit in 255 bytes.
    pub fn rename(
        &self,
        rename: impl FnMut(&Name) -> Option<Result<Name, super::NameError>>,
    ) -> Option<Record> {
        self.clone().renamed(rename)
    }

    /// [`Record::rename`] of an owned record, reusing it.
    pub fn renamed(
        mut self,
        mut rename: impl FnMut(&Name) -> Option<Result<Name, super::NameError>>,
    ) -> Option<Record> {
        let mut apply = |n: &mut Name| -> Option<()> {
            match rename(n) {
                None => Some(()),
                Some(Ok(new)) => {
                    *n = new;
                    Some(())
                }
                Some(Err(_)) => None,
            }
        };
        apply(&mut self.owner)?;
        match &mut self.data {
            Rdata::Named { name, .. } => apply(name)?,
            Rdata::Other(data) => {
                if let AllRecordData::Soa(s) = &**data {
                    let mut mname = Name::from_dname(s.mname().clone());
                    let mut rname = Name::from_dname(s.rname().clone());
                    apply(&mut mname)?;
                    apply(&mut rname)?;
                    let soa = Soa::new(
                        mname.dname(),
                        rname.dname(),
                        s.serial(),
                        s.refresh(),
                        s.retry(),
                        s.expire(),
                        s.minimum(),
                    );
                    *data = Arc::new(AllRecordData::Soa(soa));
                }
            }
            Rdata::Addr { .. } => {}
        }
        Some(self)
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
        Self::new_in(owner, ttl, AllRecordData::Ns(Ns::new(host.dname())))
    }

    /// An IN PTR record.
    pub fn ptr(owner: Name, ttl: u32, target: Name) -> Record {
        Self::new_in(owner, ttl, AllRecordData::Ptr(Ptr::new(target.dname())))
    }

    /// An IN CNAME record.
    pub fn cname(owner: Name, ttl: u32, target: Name) -> Record {
        Self::new_in(owner, ttl, AllRecordData::Cname(Cname::new(target.dname())))
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
            AllRecordData::Srv(Srv::new(priority, weight, port, target.dname())),
        )
    }

    /// An IN SOA record.
    pub fn soa(owner: Name, ttl: u32, soa: &SoaFields) -> Record {
        let data = Soa::new(
            soa.mname.dname(),
            soa.rname.dname(),
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
        Record::from_data(owner, Class::IN, ttl, data)
    }

    /// A record from `domain`'s decoded data.
    pub(super) fn from_data(owner: Name, class: Class, ttl: u32, data: Data) -> Record {
        Record {
            owner,
            rtype: data.rtype(),
            class,
            ttl,
            data: Rdata::from_data(data),
        }
    }

    /// True if both records are the same RR apart from TTL: owner (ignoring case), type,
    /// class and RDATA.
    pub fn same_rr(&self, other: &Record) -> bool {
        // RDATA first: records of one RRset share owner and type and differ there.
        self.rtype == other.rtype
            && self.data.same(&other.data)
            && self.owner == other.owner
            && self.class == other.class
    }

    /// A hash consistent with [`Record::same_rr`] (equal RRs hash equal), keyed by `seed`.
    pub fn rr_hash(&self, seed: u64) -> u64 {
        let mut h = FoldHasher(seed ^ u64::from(self.rtype.to_int()));
        h.fold(self.owner.as_wire());
        match &self.data {
            Rdata::Addr { octets, .. } => h.fold(octets),
            Rdata::Named { head, name } => {
                h.fold(head);
                h.fold(name.as_wire());
            }
            // Rare types: hashed by owner and type only; `same_rr` tells them apart.
            Rdata::Other(_) => {}
        }
        avalanche(h.0)
    }

    /// The RDATA in presentation format, for logs and test failure messages.
    pub fn data_text(&self) -> String {
        self.data.to_data(self.rtype).to_string()
    }
}

/// Spreads every input bit over the whole word (MurmurHash3's finaliser), so that tables may
/// take their index from the low bits.
pub(crate) fn avalanche(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ x >> 33
}

/// A small multiplicative hash over ASCII-case-folded bytes (`| 0x20` folds letters the
/// same way whatever their case; other collisions are settled by the equality check).
struct FoldHasher(u64);

impl FoldHasher {
    fn fold(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let mut word = [0; 8];
        let rest = chunks.remainder();
        word[..rest.len()].copy_from_slice(rest);
        self.mix(u64::from_le_bytes(word) ^ (bytes.len() as u64) << 56);
    }

    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ (word | 0x2020_2020_2020_2020))
            .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl PartialEq for Record {
    fn eq(&self, other: &Record) -> bool {
        self.same_rr(other) && self.ttl == other.ttl
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
            self.rtype,
            self.data.to_data(self.rtype)
        )
    }
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Record({self})")
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
        let a = Record::from_data(owner.clone(), Class::IN, 30, data(b"\x01\x02"));
        let b = Record::from_data(owner.clone(), Class::IN, 60, data(b"\x01\x02"));
        let c = Record::from_data(owner, Class::IN, 30, data(b"\x01\x03"));
        assert!(a.same_rr(&b));
        assert!(!a.same_rr(&c));
        assert_eq!(a.rr_hash(7), b.rr_hash(7));
    }
}
