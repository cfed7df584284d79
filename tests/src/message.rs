//! DNS messages for tests: building queries and reading replies as plain strings, so that
//! assertions read like `dig` output.

use bytes::Bytes;
use domain::base::iana::{Class, Opcode, Rtype};
use domain::base::message::Message;
use domain::base::message_builder::MessageBuilder;
use domain::base::name::Name;
use domain::base::opt::AllOptData;
use domain::base::zonefile_fmt::{DisplayKind, ZonefileFmt};
use domain::base::Question;
use domain::rdata::AllRecordData;

/// What a test query looks like.
#[derive(Clone, Debug)]
pub struct QuerySpec {
    pub id: u16,
    pub name: String,
    pub qtype: Rtype,
    /// `Some((udp_size, do_bit))` adds an OPT record.
    pub edns: Option<(u16, bool)>,
    pub rd: bool,
    pub cd: bool,
    pub opcode: Opcode,
}

impl QuerySpec {
    pub fn new(name: &str, qtype: Rtype) -> QuerySpec {
        QuerySpec {
            id: 0x1234,
            name: name.to_string(),
            qtype,
            edns: None,
            rd: true,
            cd: false,
            opcode: Opcode::QUERY,
        }
    }
    pub fn id(mut self, id: u16) -> Self {
        self.id = id;
        self
    }
    pub fn edns(mut self, size: u16, dnssec_ok: bool) -> Self {
        self.edns = Some((size, dnssec_ok));
        self
    }
    pub fn rd(mut self, rd: bool) -> Self {
        self.rd = rd;
        self
    }
    pub fn cd(mut self, cd: bool) -> Self {
        self.cd = cd;
        self
    }
    pub fn opcode(mut self, opcode: Opcode) -> Self {
        self.opcode = opcode;
        self
    }

    pub fn build(&self) -> Bytes {
        let mut msg = MessageBuilder::new_vec();
        {
            let h = msg.header_mut();
            h.set_id(self.id);
            h.set_rd(self.rd);
            h.set_cd(self.cd);
            h.set_opcode(self.opcode);
        }
        let mut q = msg.question();
        let name = Name::<Vec<u8>>::vec_from_str(&self.name).expect("test names are valid");
        q.push(Question::new(name, self.qtype, Class::IN))
            .expect("fits");
        let mut add = q.additional();
        if let Some((size, dnssec_ok)) = self.edns {
            add.opt(|o| {
                o.set_udp_payload_size(size);
                o.set_dnssec_ok(dnssec_ok);
                Ok(())
            })
            .expect("fits");
        }
        Bytes::from(add.finish())
    }
}

/// A reply, read into strings.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub id: u16,
    pub rcode: String,
    pub qr: bool,
    pub aa: bool,
    pub tc: bool,
    pub rd: bool,
    pub ra: bool,
    pub ad: bool,
    pub cd: bool,
    /// Question as `name TYPE`, case preserved.
    pub question: Vec<String>,
    /// Records as `owner ttl TYPE rdata`.
    pub answer: Vec<String>,
    pub authority: Vec<String>,
    /// Without the OPT record.
    pub additional: Vec<String>,
    /// `Some((udp_size, do_bit))` if the reply has an OPT record.
    pub edns: Option<(u16, bool)>,
    /// Extended DNS Errors: (code, text).
    pub ede: Vec<(u16, String)>,
    /// OPT records in the reply.
    pub opt_count: usize,
    pub size: usize,
}

impl Reply {
    /// Parses a reply; panics with a clear message if it is not a valid DNS message.
    pub fn parse(bytes: &[u8]) -> Reply {
        Self::try_parse(bytes)
            .unwrap_or_else(|e| panic!("reply does not parse ({e}): {bytes:02x?}"))
    }

    pub fn try_parse(bytes: &[u8]) -> Result<Reply, String> {
        let msg = Message::from_octets(bytes.to_vec()).map_err(|e| e.to_string())?;
        let h = msg.header();
        let mut reply = Reply {
            id: h.id(),
            rcode: msg.opt_rcode().to_string(),
            qr: h.qr(),
            aa: h.aa(),
            tc: h.tc(),
            rd: h.rd(),
            ra: h.ra(),
            ad: h.ad(),
            cd: h.cd(),
            question: Vec::new(),
            answer: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
            edns: None,
            ede: Vec::new(),
            opt_count: 0,
            size: bytes.len(),
        };
        for q in msg.question() {
            let q = q.map_err(|e| e.to_string())?;
            reply.question.push(format!("{} {}", q.qname(), q.qtype()));
        }
        let mut section = msg.answer().map_err(|e| e.to_string())?;
        let mut index = 0;
        loop {
            for record in &mut section {
                let record = record.map_err(|e| e.to_string())?;
                if record.rtype() == Rtype::OPT {
                    reply.opt_count += 1;
                    continue;
                }
                let r = record
                    .to_any_record::<AllRecordData<_, _>>()
                    .map_err(|e| e.to_string())?;
                let data = r.data().display_zonefile(DisplayKind::Simple).to_string();
                let text = format!(
                    "{}. {} {} {}",
                    r.owner(),
                    r.ttl().as_secs(),
                    r.rtype(),
                    data
                );
                match index {
                    0 => reply.answer.push(text),
                    1 => reply.authority.push(text),
                    _ => reply.additional.push(text),
                }
            }
            match section.next_section().map_err(|e| e.to_string())? {
                Some(next) => {
                    section = next;
                    index += 1;
                }
                None => break,
            }
        }
        if let Some(opt) = msg.opt() {
            reply.edns = Some((opt.udp_payload_size(), opt.dnssec_ok()));
            for option in opt.opt().iter::<AllOptData<_, _>>() {
                if let Ok(AllOptData::ExtendedError(e)) = option {
                    let text = match e.text() {
                        Some(Ok(t)) => t.to_string(),
                        Some(Err(b)) => String::from_utf8_lossy(b).into_owned(),
                        None => String::new(),
                    };
                    reply.ede.push((e.code().to_int(), text));
                }
            }
        }
        Ok(reply)
    }
}
