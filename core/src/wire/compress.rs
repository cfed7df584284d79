//! Name compression for the messages we write (RFC 1035 §4.1.4): every suffix of every name
//! written is remembered by a hash of its labels, so a later name that ends the same way is
//! written as its new labels and one pointer. Matches are checked against the message itself,
//! byte for byte (case included: a pointer must not change how a name is spelled).

use bytes::BytesMut;

/// Pointers hold 14 bits: later suffixes cannot be pointed to.
const MAX_POINTER: usize = 0x3fff;

/// The most labels of a name that is compressed.
const MAX_LABELS: usize = 32;

/// Slots on the stack, enough for replies of a few dozen records.
pub(super) const SMALL_TABLE: usize = 128;

/// An open-addressing table from suffix hash to the offset of a suffix in the message. A slot
/// is 16 bits of hash (never zero, so zero means empty) and the 16-bit offset.
pub(super) struct Compressor<'t, 'n> {
    slots: &'t mut [u32],
    used: usize,
    /// The last owner written and where it (or the name it points to) is: records of one
    /// owner come in a row, and those need no hashing at all.
    last: Option<(&'n [u8], u16)>,
    /// The latest names written, by address: the merge hands the same buffer to a host's
    /// SRV target and its A record's owner, so a repeat is found without hashing.
    recent: [Option<(&'n [u8], u16)>; RECENT],
    next: usize,
}

/// How many names [`Compressor::recent`] remembers.
const RECENT: usize = 8;

impl<'t, 'n> Compressor<'t, 'n> {
    /// `slots` must be zeroed and a power of two long.
    pub(super) fn new(slots: &'t mut [u32]) -> Compressor<'t, 'n> {
        debug_assert!(slots.len().is_power_of_two());
        Compressor {
            slots,
            used: 0,
            last: None,
            recent: [None; RECENT],
            next: 0,
        }
    }

    /// The slot count for a message of about `records` records.
    pub(super) fn slots_for(records: usize) -> usize {
        // Two new suffixes per record at most in the usual shapes, plus the question; half
        // full at most, and no more suffixes than pointers can reach.
        ((records * 2 + 16) * 2)
            .next_power_of_two()
            .clamp(SMALL_TABLE, 1 << 14)
    }

    /// Appends `name` (uncompressed wire form) to `buf`: compressed if `compress`, else in
    /// full; either way its new suffixes become targets for later names.
    pub(super) fn write_name(&mut self, buf: &mut BytesMut, name: &'n [u8], compress: bool) {
        self.write_recent(buf, name, compress);
    }

    /// [`Compressor::write_name`] for an owner: owners repeat in runs (every record of an
    /// RRset), and a repeat of the last owner needs no hashing at all.
    pub(super) fn write_owner(&mut self, buf: &mut BytesMut, name: &'n [u8]) {
        if let Some((last, offset)) = self.last {
            if last == name {
                buf.extend_from_slice(&(0xc000 | offset).to_be_bytes());
                return;
            }
        }
        self.last = self
            .write_recent(buf, name, true)
            .map(|offset| (name, offset));
    }

    /// Writes `name`, pointing to an earlier copy of the very same buffer if there is one.
    /// Only in small messages: in large ones the repeat is too far back to be remembered.
    fn write_recent(&mut self, buf: &mut BytesMut, name: &'n [u8], compress: bool) -> Option<u16> {
        if self.slots.len() > SMALL_TABLE {
            return self.write(buf, name, compress);
        }
        let seen = self.recent.iter().flatten();
        if let Some(&(_, offset)) = seen.clone().find(|(n, _)| std::ptr::eq(*n, name)) {
            match compress {
                true => buf.extend_from_slice(&(0xc000 | offset).to_be_bytes()),
                false => buf.extend_from_slice(name),
            }
            return Some(offset);
        }
        let offset = self.write(buf, name, compress)?;
        self.recent[self.next % RECENT] = Some((name, offset));
        self.next += 1;
        Some(offset)
    }

    /// Writes `name`; returns where a pointer to the whole of it may point.
    fn write(&mut self, buf: &mut BytesMut, name: &[u8], compress: bool) -> Option<u16> {
        // Label starts and suffix hashes; names of more labels than this (only possible
        // with very short labels) are written in full and not remembered.
        let mut starts = [0u8; MAX_LABELS + 1];
        let mut count = 0;
        let mut pos = 0;
        while name[pos] != 0 {
            if count == MAX_LABELS {
                buf.extend_from_slice(name);
                return None;
            }
            starts[count] = pos as u8;
            count += 1;
            pos += 1 + usize::from(name[pos]);
        }
        starts[count] = pos as u8;
        let mut hashes = [0u64; MAX_LABELS];
        let mut hash = 0x9e37_79b9_7f4a_7c15u64;
        for i in (0..count).rev() {
            hash = mix(
                hash,
                &name[usize::from(starts[i])..usize::from(starts[i + 1])],
            );
            hashes[i] = hash;
        }
        // The longest suffix already in the message.
        let mut found = None;
        for i in 0..count {
            if let Some(offset) = self.find(buf, hashes[i], &name[usize::from(starts[i])..]) {
                found = Some((i, offset));
                break;
            }
        }
        let new = found.map_or(count, |(i, _)| i);
        let at = buf.len();
        for i in 0..new {
            self.insert(hashes[i], at + usize::from(starts[i]));
        }
        match found {
            Some((i, offset)) if compress => {
                buf.extend_from_slice(&name[..usize::from(starts[i])]);
                buf.extend_from_slice(&(0xc000 | offset as u16).to_be_bytes());
            }
            _ => buf.extend_from_slice(name),
        }
        match found {
            Some((0, offset)) => Some(offset as u16),
            _ if at <= MAX_POINTER && count > 0 => Some(at as u16),
            _ => None,
        }
    }

    fn find(&self, buf: &[u8], hash: u64, suffix: &[u8]) -> Option<usize> {
        let mask = self.slots.len() - 1;
        let tag = tag(hash);
        let mut index = spread(hash) as usize & mask;
        loop {
            let slot = self.slots[index];
            if slot == 0 {
                return None;
            }
            if slot >> 16 == tag {
                let offset = (slot & 0xffff) as usize;
                if same_suffix(buf, offset, suffix) {
                    return Some(offset);
                }
            }
            index = (index + 1) & mask;
        }
    }

    fn insert(&mut self, hash: u64, offset: usize) {
        // Past half full, or out of pointer reach, names are simply written out in full.
        if offset > MAX_POINTER || self.used * 2 >= self.slots.len() {
            return;
        }
        let mask = self.slots.len() - 1;
        let mut index = spread(hash) as usize & mask;
        while self.slots[index] != 0 {
            index = (index + 1) & mask;
        }
        self.slots[index] = tag(hash) << 16 | offset as u32;
        self.used += 1;
    }
}

/// The slot index comes from all the bits: a difference in a label's last bytes only
/// reaches the high bits of a product, and names of one service differ just there.
fn spread(hash: u64) -> u64 {
    crate::wire::record::avalanche(hash)
}

fn tag(hash: u64) -> u32 {
    (hash >> 48) as u32 | 1
}

/// Hashes one label, length octet included, a word at a time (the last word overlapping
/// the one before it); shorter than a word, a half word at each end, or the bytes.
fn mix(hash: u64, label: &[u8]) -> u64 {
    let step = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    let word = |at: usize| {
        let mut w = [0; 8];
        w.copy_from_slice(&label[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let half = |at: usize| {
        let mut w = [0; 4];
        w.copy_from_slice(&label[at..at + 4]);
        u64::from(u32::from_le_bytes(w))
    };
    let len = label.len();
    if len >= 8 {
        let mut h = hash;
        let mut at = 0;
        while at + 8 < len {
            h = step(h, word(at));
            at += 8;
        }
        step(h, word(len - 8))
    } else if len >= 4 {
        step(hash, half(0) << 32 | half(len - 4))
    } else {
        let bytes = label.iter().fold(0u64, |w, &b| w << 8 | u64::from(b));
        step(hash, bytes)
    }
}

/// True if the name at `offset` in `buf` (following pointers) is exactly `suffix`.
fn same_suffix(buf: &[u8], mut offset: usize, suffix: &[u8]) -> bool {
    let mut at = 0;
    loop {
        // Compare the labels up to the next pointer (or the root) in one go.
        let mut end = offset;
        while buf[end] != 0 && buf[end] & 0xc0 != 0xc0 {
            end += 1 + usize::from(buf[end]);
        }
        let run = end - offset;
        if suffix.get(at..at + run) != Some(&buf[offset..end]) {
            return false;
        }
        at += run;
        if buf[end] == 0 {
            return suffix.len() == at + 1;
        }
        offset = usize::from(u16::from_be_bytes([buf[end] & 0x3f, buf[end + 1]]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for label in text.split('.').filter(|l| !l.is_empty()) {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out
    }

    #[test]
    fn suffixes_are_pointed_to_case_exactly() {
        let (first, host, again, upper) = (
            wire("_x._tcp.svc.example."),
            wire("host.svc.example."),
            wire("host.svc.example."),
            wire("a.SVC.example."),
        );
        let mut slots = [0u32; SMALL_TABLE];
        let mut c = Compressor::new(&mut slots);
        let mut buf = BytesMut::from(&[0u8; 12][..]);
        c.write_name(&mut buf, &first, true);
        assert_eq!(buf.len(), 12 + 21);
        c.write_name(&mut buf, &host, false);
        assert_eq!(&buf[33..], &host[..]);
        let before = buf.len();
        c.write_name(&mut buf, &again, true);
        assert_eq!(&buf[before..], &[0xc0, 33]);
        let before = buf.len();
        c.write_name(&mut buf, &upper, true);
        // `SVC` differs in case from `svc`: only `example.` is shared.
        assert_eq!(&buf[before..before + 6], &upper[..6]);
        assert_eq!(&buf[before + 6..], &[0xc0, 12 + 12]);
        // The very same buffer again is found without hashing.
        let before = buf.len();
        c.write_name(&mut buf, &upper, true);
        assert_eq!(&buf[before..], &[0xc0, 53]);
    }
}
