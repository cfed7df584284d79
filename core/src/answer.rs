//! The content of a reply before it is put on the wire: what zones, upstreams and the
//! merge produce, and what the reply writer serialises.

use smallvec::SmallVec;

use crate::wire::{Name, NameError, Rcode, Record, SoaFields};

/// [`Answer::sources`]: inline up to four clusters (an answer is moved by value, so it stays
/// small; more clusters than that allocate).
pub(crate) type Sources = SmallVec<[[usize; 2]; 4]>;

/// RCODE, flags and the three record sections of a reply.
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// The RCODE.
    pub rcode: Rcode,
    /// Authoritative answer.
    pub aa: bool,
    /// Answer section.
    pub answer: Vec<Record>,
    /// Authority section.
    pub authority: Vec<Record>,
    /// Additional section (never OPT).
    pub additional: Vec<Record>,
    /// Where a merged answer's clusters end: for each cluster that contributed, in
    /// configuration order, the end of its records in the answer and the additional section.
    /// Empty when the records have one source. A reply that does not fit takes records from
    /// the clusters in turn (`truncate.rs`); a change to the sections must keep or clear it.
    pub(crate) sources: Sources,
}

impl Answer {
    /// An empty answer with this RCODE.
    pub fn empty(rcode: Rcode, aa: bool) -> Answer {
        Answer {
            rcode,
            aa,
            answer: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
            sources: Sources::new(),
        }
    }
}

/// The SOA and NS records of a zone gatherdns answers without a zone file (a distributed
/// domain, a clusterset zone, a hosts or gateway zone), in coredns/multicluster's shape:
/// `ZONE TTL SOA ns.dns.ZONE hostmaster.ZONE SERIAL 7200 1800 86400 TTL` and `ZONE NS
/// ns.dns.ZONE`. The TTL is also the SOA MINIMUM, so negative answers are cached that long.
pub(crate) fn synthesised_soa_ns(
    zone: &Name,
    ttl: u32,
    serial: u32,
) -> Result<(Record, Record), NameError> {
    let mname = Name::from_labels([b"ns".as_slice(), b"dns".as_slice()], zone)?;
    let soa = SoaFields {
        mname: mname.clone(),
        rname: Name::from_labels([b"hostmaster".as_slice()], zone)?,
        serial,
        refresh: 7200,
        retry: 1800,
        expire: 86400,
        minimum: ttl,
    };
    Ok((
        Record::soa(zone.clone(), ttl, &soa),
        Record::ns(zone.clone(), ttl, mname),
    ))
}

impl Answer {
    /// A negative answer (NXDOMAIN, or NODATA when `exists`) carrying `soa` in authority,
    /// so that clients can cache it (RFC 2308).
    pub(crate) fn negative(exists: bool, soa: &Record) -> Answer {
        let rcode = if exists {
            Rcode::NOERROR
        } else {
            Rcode::NXDOMAIN
        };
        let mut answer = Answer::empty(rcode, true);
        answer.authority.push(soa.clone());
        answer
    }

    /// A positive authoritative answer holding `records`, or NODATA with `soa` if empty.
    pub(crate) fn records_or_nodata(records: Vec<Record>, soa: &Record) -> Answer {
        if records.is_empty() {
            return Answer::negative(true, soa);
        }
        let mut answer = Answer::empty(Rcode::NOERROR, true);
        answer.answer = records;
        answer
    }
}
