//! What a reply keeps when the whole answer does not fit the client's limit: records taken
//! from the clusters in turn, in proportion to what each answered and at least one of each,
//! every record with the additional addresses of the name it points at. A client that uses a
//! truncated reply as it is (musl before 1.2.4 never retries over TCP) still reaches every
//! cluster that answered. TC=1 all the same: the full answer is one TCP query away.

use bytes::{Bytes, BytesMut};

use crate::answer::Answer;
use crate::wire::{kept_fits, write_reply, write_reply_kept, Name, Record, ReplyHeader, Rtype};

/// Writes `answer` within `limit` bytes; returns the message and whether records were left
/// out (TC).
pub(crate) fn write_fitting(
    buf: &mut BytesMut,
    header: &ReplyHeader<'_>,
    answer: &Answer,
    limit: usize,
) -> (Bytes, bool) {
    let sections = [
        &answer.answer[..],
        &answer.authority[..],
        &answer.additional[..],
    ];
    let (bytes, truncated) = write_reply(buf, header, sections, limit);
    if !truncated {
        return (bytes, false);
    }
    // What fitted in section order says about how many units will: about as many records.
    let written = [6, 8, 10]
        .iter()
        .map(|&at| usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]])))
        .sum::<usize>();
    drop(bytes);
    let units = Units::of(answer);
    let records = units.records.len().max(1);
    let guess = (written * units.len() / records).min(units.len().saturating_sub(1));
    let mut kept = [
        vec![false; answer.answer.len()],
        vec![false; answer.authority.len()],
        vec![false; answer.additional.len()],
    ];
    let mut fits = |count: usize| {
        units.keep(count, &mut kept);
        let view = [&kept[0][..], &kept[1][..], &kept[2][..]];
        kept_fits(buf, header, sections, view, limit)
    };
    // Keeping fewer units never makes a reply larger (a record gives a later one at most the
    // bytes of the name it wrote itself to point at), and all of them do not fit: gallop
    // from the guess to a bracket, then bisect it.
    let all = units.len();
    let mut step = 1;
    let (mut lo, mut hi) = if fits(guess) {
        let mut lo = guess;
        while lo + step < all && fits(lo + step) {
            lo += step;
            step *= 2;
        }
        (lo, all.min(lo + step))
    } else {
        let mut hi = guess;
        while hi > step && !fits(hi - step) {
            hi -= step;
            step *= 2;
        }
        (hi.saturating_sub(step), hi)
    };
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    units.keep(lo, &mut kept);
    let view = [&kept[0][..], &kept[1][..], &kept[2][..]];
    let (bytes, _) = write_reply_kept(buf, header, sections, view, limit);
    (bytes, true)
}

/// The records of an answer in the order a truncated reply takes them, in units that are
/// kept or left out together.
struct Units {
    /// (section, index) of each record, unit after unit.
    records: Vec<(usize, usize)>,
    /// Where each unit ends in `records`.
    ends: Vec<usize>,
}

impl Units {
    /// Answer records from the clusters in turn, each with the addresses of the name it
    /// points at (SRV targets, MX exchanges, NS hosts); then authority records; then the
    /// remaining additional records, from the clusters in turn.
    fn of(answer: &Answer) -> Units {
        let spans = Spans::of(answer);
        let mut units = Units {
            records: Vec::with_capacity(
                answer.answer.len() + answer.authority.len() + answer.additional.len(),
            ),
            ends: Vec::new(),
        };
        let mut taken = vec![false; answer.additional.len()];
        let addresses = Addresses::of(&answer.additional);
        for index in interleave(&spans.answer) {
            units.records.push((0, index));
            if let Some(target) = answer.answer[index].additional_target() {
                for at in addresses.of_name(&answer.additional, &target) {
                    if !taken[at] {
                        taken[at] = true;
                        units.records.push((2, at));
                    }
                }
            }
            units.ends.push(units.records.len());
        }
        for index in 0..answer.authority.len() {
            units.records.push((1, index));
            units.ends.push(units.records.len());
        }
        for index in interleave(&spans.additional) {
            if !taken[index] {
                units.records.push((2, index));
                units.ends.push(units.records.len());
            }
        }
        units
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    /// Marks the records of the first `count` units as kept, the others as left out.
    fn keep(&self, count: usize, kept: &mut [Vec<bool>; 3]) {
        for section in kept.iter_mut() {
            section.fill(false);
        }
        let end = count.checked_sub(1).map_or(0, |last| self.ends[last]);
        for &(section, index) in &self.records[..end] {
            kept[section][index] = true;
        }
    }
}

/// Each cluster's records as ranges of the answer and additional sections.
struct Spans {
    answer: Vec<std::ops::Range<usize>>,
    additional: Vec<std::ops::Range<usize>>,
}

impl Spans {
    fn of(answer: &Answer) -> Spans {
        let ends = match answer.sources.last() {
            // Spans that do not cover the sections are stale: take the records in order.
            Some(&[a, d]) if a == answer.answer.len() && d == answer.additional.len() => {
                answer.sources.clone()
            }
            _ => smallvec::smallvec![[answer.answer.len(), answer.additional.len()]],
        };
        let mut spans = Spans {
            answer: Vec::with_capacity(ends.len()),
            additional: Vec::with_capacity(ends.len()),
        };
        let mut start = [0, 0];
        for end in ends {
            spans.answer.push(start[0]..end[0].max(start[0]));
            spans.additional.push(start[1]..end[1].max(start[1]));
            start = [end[0].max(start[0]), end[1].max(start[1])];
        }
        spans
    }
}

/// The indices of `ranges` in the order a truncated reply takes them: the first of each range,
/// in range order, so that every cluster is represented; then the rest in proportion, the
/// `j`-th of a range of `n` at (2j + 1) / 2n of the way, ties in range order.
fn interleave(ranges: &[std::ops::Range<usize>]) -> Vec<usize> {
    let total = ranges.iter().map(|r| r.len()).sum();
    let mut order = Vec::with_capacity(total);
    order.extend(ranges.iter().filter(|r| !r.is_empty()).map(|r| r.start));
    let mut rest: Vec<(usize, usize)> = ranges
        .iter()
        .enumerate()
        .flat_map(|(g, r)| (1..r.len()).map(move |j| (g, j)))
        .collect();
    rest.sort_by(|&(g, j), &(h, k)| {
        let (n, m) = (ranges[g].len() as u64, ranges[h].len() as u64);
        // (2j + 1) / 2n against (2k + 1) / 2m, in integers.
        ((2 * j as u64 + 1) * m)
            .cmp(&((2 * k as u64 + 1) * n))
            .then(g.cmp(&h))
    });
    order.extend(rest.into_iter().map(|(g, j)| ranges[g].start + j));
    order
}

/// The A and AAAA records of an additional section, ordered by a hash of their owner for
/// lookups by name (sorting by the names themselves costs several times more).
struct Addresses {
    /// (owner hash, position), sorted: a name's addresses keep their order.
    sorted: Vec<(u64, usize)>,
}

impl Addresses {
    fn of(additional: &[Record]) -> Addresses {
        let mut sorted: Vec<(u64, usize)> = additional
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r.rtype(), Rtype::A | Rtype::AAAA))
            .map(|(i, r)| (owner_hash(r.owner()), i))
            .collect();
        sorted.sort_unstable();
        Addresses { sorted }
    }

    /// The positions of `name`'s addresses in `additional`.
    fn of_name<'a>(
        &'a self,
        additional: &'a [Record],
        name: &'a Name,
    ) -> impl Iterator<Item = usize> + 'a {
        let hash = owner_hash(name);
        let first = self.sorted.partition_point(|&(h, _)| h < hash);
        self.sorted[first..]
            .iter()
            .take_while(move |&&(h, _)| h == hash)
            .map(|&(_, i)| i)
            .filter(move |&i| additional[i].owner() == name)
    }
}

/// FNV-1a over the start of the name's wire form, ASCII letters folded, and its length:
/// consistent with `Name`'s case-insensitive equality (collisions only cost a comparison),
/// and the order it gives never reaches the reply.
fn owner_hash(name: &Name) -> u64 {
    let wire = name.as_wire();
    wire[..wire.len().min(24)]
        .iter()
        .fold(0xcbf2_9ce4_8422_2325 ^ wire.len() as u64, |hash, byte| {
            (hash ^ u64::from(byte.to_ascii_lowercase())).wrapping_mul(0x0100_0000_01b3)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_represents_every_range_then_follows_proportions() {
        assert_eq!(interleave(&[0..3, 3..6]), [0, 3, 1, 4, 2, 5]);
        // 6 and 2: one of each, then the second's other at three quarters of the way.
        assert_eq!(interleave(&[0..6, 6..8]), [0, 6, 1, 2, 3, 4, 7, 5]);
        assert_eq!(interleave(&[0..0, 0..2]), [0, 1]);
        // A cluster with one record is represented at once, however large the others.
        assert_eq!(interleave(&[0..100, 100..101])[..2], [0, 100]);
    }
}
