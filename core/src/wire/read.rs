//! Reading messages without `domain`'s general parser: names (with the same compression
//! rules — pointers only backwards, at most 255 of them, 255 octets in all) and record
//! frames. Uncompressed names stay slices of the message; compressed ones are copied once.

use bytes::Bytes;
use domain::base::iana::Rtype;
use domain::base::name::{FlattenInto, ParsedName};
use domain::base::rdata::ParseAnyRecordData;
use domain::dep::octseq::Parser;
use domain::rdata::AllRecordData;

use super::name::NameArena;
use super::record::{named_head, Data, Rdata};
use super::{Name, MAX_NAME_LEN};

/// Where a name read from a message is.
pub(super) enum NameAt {
    /// Contiguous in the message: `len` octets from `start`, root label included.
    Flat { start: usize, len: usize },
    /// Spread over several places by compression; `len` octets once decompressed.
    Compressed { start: usize, len: usize },
}

/// Reads the name at `pos`; returns where it is and the position after it.
pub(super) fn name_at(msg: &[u8], mut pos: usize) -> Result<(NameAt, usize), ()> {
    let mut start = pos;
    let mut len = 0;
    let mut after = None;
    let mut pointers = 0;
    let mut flat = true;
    loop {
        let octet = *msg.get(pos).ok_or(())?;
        match octet & 0xc0 {
            0x00 if octet == 0 => {
                len += 1;
                let at = if flat {
                    NameAt::Flat { start, len }
                } else {
                    NameAt::Compressed { start, len }
                };
                return Ok((at, after.unwrap_or(pos + 1)));
            }
            0x00 => {
                let label = usize::from(octet);
                len += 1 + label;
                // With the root label still to come: at most 255 octets in all.
                if len >= MAX_NAME_LEN {
                    return Err(());
                }
                pos += 1 + label;
            }
            0xc0 => {
                let low = *msg.get(pos + 1).ok_or(())?;
                let target = usize::from(u16::from_be_bytes([octet & 0x3f, low]));
                // Backwards only, and at most 255 jumps: with the length limit on labels,
                // no loop survives (as in `domain`'s parser).
                pointers += 1;
                if target >= pos || pointers > 255 {
                    return Err(());
                }
                after.get_or_insert(pos + 2);
                if len == 0 {
                    // Nothing read yet: the name simply starts there.
                    start = target;
                } else {
                    flat = false;
                }
                pos = target;
            }
            // Extended and binary labels (RFC 6891 §5, RFC 2673) are not allowed.
            _ => return Err(()),
        }
    }
}

/// The position after the name at `pos`, without following its pointer.
pub(super) fn skip_name(msg: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let octet = *msg.get(pos)?;
        match octet & 0xc0 {
            0x00 if octet == 0 => return Some(pos + 1),
            0x00 => pos += 1 + usize::from(octet),
            0xc0 => return Some(pos + 2),
            _ => return None,
        }
    }
}

/// The [`Name`] read by [`name_at`]: a slice of `bytes` when flat, else decompressed into
/// `arena`.
pub(super) fn name_from(bytes: &Bytes, at: &NameAt, arena: &mut NameArena) -> Name {
    match *at {
        NameAt::Flat { start, len } => Name::from_checked_wire(bytes.slice(start..start + len)),
        NameAt::Compressed { start, len } => arena.copy(len, |buf| {
            let mut pos = start;
            loop {
                let octet = bytes[pos];
                if octet & 0xc0 == 0xc0 {
                    pos = usize::from(u16::from_be_bytes([octet, bytes[pos + 1]]) & 0x3fff);
                    continue;
                }
                let end = pos + 1 + usize::from(octet);
                buf.extend_from_slice(&bytes[pos..end]);
                if octet == 0 {
                    return;
                }
                pos = end;
            }
        }),
    }
}

/// The fixed part of a record after its owner.
pub(super) struct Frame {
    pub(super) rtype: u16,
    pub(super) class: u16,
    pub(super) ttl: u32,
    /// Where the RDATA starts and ends.
    pub(super) rdata: std::ops::Range<usize>,
}

/// Reads the ten octets after an owner at `pos` and checks that the RDATA is inside `msg`.
pub(super) fn frame_at(msg: &[u8], pos: usize) -> Result<Frame, ()> {
    let fixed = msg.get(pos..pos + 10).ok_or(())?;
    let u16_at = |i: usize| u16::from_be_bytes([fixed[i], fixed[i + 1]]);
    let start = pos + 10;
    let end = start + usize::from(u16_at(8));
    if end > msg.len() {
        return Err(());
    }
    Ok(Frame {
        rtype: u16_at(0),
        class: u16_at(2),
        ttl: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
        rdata: start..end,
    })
}

/// The section counts of a message's header (which must be at least 12 octets).
pub(super) fn counts(msg: &[u8]) -> [u16; 4] {
    let at = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]);
    [at(4), at(6), at(8), at(10)]
}

/// Decodes one record's RDATA, which must fill its length exactly: by hand for the types
/// gathered answers are made of, through `domain` for every other type (which also knows
/// the compressed names of the rare RFC 1035 types).
pub(super) fn rdata(
    msg: &Bytes,
    rtype: Rtype,
    frame: &Frame,
    arena: &mut NameArena,
) -> Option<Rdata> {
    let range = frame.rdata.clone();
    let len = range.len();
    match rtype {
        Rtype::A | Rtype::AAAA => {
            let want = if rtype == Rtype::A { 4 } else { 16 };
            if len != want {
                return None;
            }
            let mut octets = [0; 16];
            octets[..len].copy_from_slice(&msg[range]);
            Some(Rdata::Addr {
                len: len as u8,
                octets,
            })
        }
        _ => match named_head(rtype) {
            Some(fixed) => {
                let name_start = range.start + fixed;
                if name_start >= range.end {
                    return None;
                }
                // Names inside RDATA may point anywhere before them in the message, but
                // must end where the RDATA does.
                let (at, end) = name_at(&msg[..range.end], name_start).ok()?;
                if end != range.end {
                    return None;
                }
                let mut head = [0; 6];
                head[..fixed].copy_from_slice(&msg[range.start..name_start]);
                let name = name_from(msg, &at, arena);
                Some(Rdata::Named { head, name })
            }
            None => other_rdata(msg, rtype, frame).map(Rdata::from_data),
        },
    }
}

fn other_rdata(msg: &Bytes, rtype: Rtype, frame: &Frame) -> Option<Data> {
    let mut parser = Parser::from_ref(msg);
    parser.seek(frame.rdata.start).ok()?;
    let mut limited = parser.parse_parser(frame.rdata.len()).ok()?;
    let parsed =
        AllRecordData::<Bytes, ParsedName<Bytes>>::parse_any_rdata(rtype, &mut limited).ok()?;
    if limited.remaining() != 0 {
        return None;
    }
    parsed.try_flatten_into().ok()
}
