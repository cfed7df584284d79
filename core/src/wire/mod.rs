//! The wire boundary: the only module that uses `domain`. Messages are parsed and validated
//! in full here, so the rest of the core works with checked values and never sees raw bytes.

mod compact;
mod compress;
mod name;
mod query;
mod read;
mod record;
mod reply;
mod upstream;
mod zonefile;

pub(crate) use compact::compact;
pub use domain::base::iana::{Class, Opcode, Rcode, Rtype};
pub use name::{Name, NameArena, NameError, Relative, Splice, MAX_NAME_LEN};
pub use query::{ClientQuery, Edns, QueryError};
pub(crate) use record::avalanche;
pub use record::{Record, SoaFields};
pub use reply::{
    kept_fits, write_query, write_reply, write_reply_kept, Ede, Kept, ReplyHeader, SubQuery,
};
pub use upstream::{UpstreamHead, UpstreamReply};
pub use zonefile::{parse_zonefile, ZonefileError};

/// The UDP payload size we advertise and the largest UDP reply we send (DNS flag day 2020).
pub const EDNS_UDP_SIZE: u16 = 1232;

/// The UDP reply limit for clients without EDNS (RFC 1035 §4.2.1).
pub const PLAIN_UDP_LIMIT: usize = 512;

/// The largest DNS message (TCP length prefix is 16 bits).
pub const MAX_MESSAGE_LEN: usize = 65535;

/// The extended RCODE BADVERS (RFC 6891 §6.1.3).
pub const RCODE_BADVERS: u16 = 16;

/// Extended DNS Error codes we emit (RFC 8914 §4).
pub mod ede {
    /// Other Error.
    pub const OTHER: u16 = 0;
    /// Not Ready.
    pub const NOT_READY: u16 = 14;
    /// Not Authoritative.
    pub const NOT_AUTHORITATIVE: u16 = 20;
    /// No Reachable Authority.
    pub const NO_REACHABLE_AUTHORITY: u16 = 22;
    /// Network Error.
    pub const NETWORK_ERROR: u16 = 23;
    /// Stale Answer (RFC 8914 §4.4): data served past its time, from an earlier answer.
    pub const STALE_ANSWER: u16 = 3;
}
