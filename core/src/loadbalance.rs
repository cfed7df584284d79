//! CoreDNS's `loadbalance round_robin` on one section of a reply: a section of addresses only
//! is shuffled as it is; otherwise CNAMEs come first, then other records in their order, then
//! the A and AAAA records shuffled, then the MX records shuffled. The random numbers come from
//! the caller (the gateway's seeded generator).

use crate::wire::{Record, Rtype};

/// Shuffles `section` in place; `below(n)` gives a random number below `n`.
pub(crate) fn round_robin(section: &mut Vec<Record>, mut below: impl FnMut(usize) -> usize) {
    if section.len() <= 1 {
        return;
    }
    let first = section[0].rtype();
    let address = |t: Rtype| t == Rtype::A || t == Rtype::AAAA;
    if address(first) && section.iter().all(|r| r.rtype() == first) {
        shuffle(section, &mut below);
        return;
    }
    let mut cname = Vec::new();
    let mut rest = Vec::new();
    let mut addresses = Vec::new();
    let mut mx = Vec::new();
    for r in section.drain(..) {
        match r.rtype() {
            Rtype::CNAME => cname.push(r),
            t if address(t) => addresses.push(r),
            Rtype::MX => mx.push(r),
            _ => rest.push(r),
        }
    }
    shuffle(&mut addresses, &mut below);
    shuffle(&mut mx, &mut below);
    section.extend(cname);
    section.extend(rest);
    section.extend(addresses);
    section.extend(mx);
}

/// Fisher–Yates.
fn shuffle(records: &mut [Record], below: &mut impl FnMut(usize) -> usize) {
    for i in (1..records.len()).rev() {
        records.swap(i, below(i + 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Name;
    use proptest::prelude::*;

    fn n(s: &str) -> Name {
        Name::parse(s).expect("valid")
    }

    fn mixed() -> Vec<Record> {
        vec![
            Record::a(n("x."), 5, [10, 0, 0, 1].into()),
            Record::cname(n("y."), 5, n("x.")),
            Record::txt(n("x."), 5, "t"),
            Record::a(n("x."), 5, [10, 0, 0, 2].into()),
        ]
    }

    #[test]
    fn cnames_first_then_others_then_addresses() {
        let mut section = mixed();
        round_robin(&mut section, |_| 0);
        let types: Vec<Rtype> = section.iter().map(Record::rtype).collect();
        assert_eq!(types, vec![Rtype::CNAME, Rtype::TXT, Rtype::A, Rtype::A]);
    }

    proptest! {
        /// Whatever the random numbers, the same records come out, and every order of an
        /// address section can come out.
        #[test]
        fn a_permutation(seed in prop::collection::vec(0usize..1000, 8)) {
            let mut section = mixed();
            let mut draws = seed.into_iter().cycle();
            round_robin(&mut section, |n| draws.next().unwrap_or(0) % n);
            let mut got: Vec<String> = section.iter().map(ToString::to_string).collect();
            let mut want: Vec<String> = mixed().iter().map(ToString::to_string).collect();
            got.sort();
            want.sort();
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn every_order_of_three_addresses_comes_out() {
        let three: Vec<Record> = (1..=3)
            .map(|i| Record::a(n("x."), 5, [10, 0, 0, i].into()))
            .collect();
        let mut seen = std::collections::BTreeSet::new();
        for a in 0..3 {
            for b in 0..2 {
                let mut section = three.clone();
                let mut draws = [a, b].into_iter();
                round_robin(&mut section, |n| draws.next().unwrap_or(0) % n);
                seen.insert(section.iter().map(Record::data_text).collect::<Vec<_>>());
            }
        }
        assert_eq!(seen.len(), 6);
    }
}
