//! Domain names as the rest of the core sees them: absolute, compared without regard to
//! ASCII case, and built by splicing wire-form pieces when names are renamed between zones
//! (into a [`NameArena`], so that renaming a reply's names allocates once, not per name).

use std::fmt;

use bytes::{Bytes, BytesMut};
use domain::base::name::{Label, Name as DName, NameBuilder, ToLabelIter};

/// The longest a domain name may be on the wire (RFC 1035 §3.1).
pub const MAX_NAME_LEN: usize = 255;

/// An absolute domain name. Equality and ordering ignore ASCII case; [`Name::as_wire`] keeps
/// the bytes exactly as received, which is what the question echo needs.
///
/// It holds the uncompressed wire form, valid by construction: every way in checks it
/// (`domain` for text and its own names, the message reader and the splicer here for the
/// rest), so that names on the query path are not walked again just to be wrapped.
#[derive(Clone)]
pub struct Name(Bytes);

/// A name that could not be parsed from text or built from labels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(pub(crate) String);

impl Name {
    /// The root name `.`.
    pub fn root() -> Self {
        Self(Bytes::from_static(&[0]))
    }

    /// The name of a `domain` name.
    pub(super) fn from_dname(name: DName<Bytes>) -> Name {
        Name(name.into_octets())
    }

    /// As a `domain` name, for its builders and presentation format.
    pub(super) fn dname(&self) -> DName<Bytes> {
        DName::from_octets(self.0.clone()).expect("a Name holds a valid wire form")
    }

    /// Borrowed as a `domain` name, for label-wise work off the query path.
    fn dslice(&self) -> &DName<[u8]> {
        DName::from_slice(&self.0).expect("a Name holds a valid wire form")
    }

    /// Parses presentation format (`demo.svc.example.` or `demo.svc.example`); the name is
    /// always taken as absolute. Escapes (`\.`, `\065`) follow RFC 1035 §5.1.
    pub fn parse(text: &str) -> Result<Self, NameError> {
        if text.is_empty() {
            return Err(NameError("an empty name".into()));
        }
        let absolute = if text.ends_with('.') && !text.ends_with("\\.") {
            text.to_owned()
        } else {
            format!("{text}.")
        };
        if absolute == "." {
            return Ok(Self::root());
        }
        DName::bytes_from_str(&absolute)
            .map(Self::from_dname)
            .map_err(|e| NameError(format!("`{text}` is not a valid domain name: {e}")))
    }

    /// Builds `labels… . suffix`. Fails when the result would exceed 255 bytes or a label 63.
    pub fn from_labels<'a>(
        labels: impl IntoIterator<Item = &'a [u8]>,
        suffix: &Name,
    ) -> Result<Self, NameError> {
        let mut builder = NameBuilder::<BytesMut>::with_capacity(MAX_NAME_LEN);
        for label in labels {
            builder
                .append_label(label)
                .map_err(|_| NameError("a label or the name is too long".into()))?;
        }
        builder
            .append_origin(&suffix.dslice())
            .map(Self::from_dname)
            .map_err(|_| NameError("the name is longer than 255 bytes".into()))
    }

    /// A name from an uncompressed wire form the message reader has checked.
    pub(super) fn from_checked_wire(bytes: Bytes) -> Name {
        Name(bytes)
    }

    /// The wire form, exactly as received or built (case preserved).
    pub fn as_wire(&self) -> &[u8] {
        &self.0
    }

    /// Number of labels, not counting the root.
    pub fn label_count(&self) -> usize {
        Relative {
            wire: &self.0[..self.0.len() - 1],
        }
        .labels()
        .count()
    }

    /// The labels from the leftmost on, without the root label.
    pub fn labels(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        self.dslice()
            .iter()
            .filter(|l| !l.is_root())
            .map(Label::as_slice)
    }

    /// True if `self` is `zone` or below it, label-aware and ignoring ASCII case.
    pub fn is_at_or_below(&self, zone: &Name) -> bool {
        self.relative_to(zone).is_some()
    }

    /// The labels of `self` to the left of `zone`, in wire form; `None` unless `self` is at
    /// or below `zone`.
    pub fn relative_to(&self, zone: &Name) -> Option<Relative<'_>> {
        let (name, zone) = (self.as_wire(), zone.as_wire());
        let keep = name.len().checked_sub(zone.len())?;
        // Length octets are below 64, so case folding the whole wire form only folds the
        // label text; the walk then checks that the suffix starts on a label boundary.
        if !same_folded(&name[keep..], zone) {
            return None;
        }
        let mut pos = 0;
        while pos < keep {
            pos += 1 + usize::from(name[pos]);
        }
        (pos == keep).then(|| Relative {
            wire: &name[..keep],
        })
    }

    /// The labels of `self` to the left of `zone`, leftmost first; `None` unless
    /// `self` is at or below `zone`.
    pub fn labels_below<'a>(&'a self, zone: &Name) -> Option<Vec<&'a [u8]>> {
        Some(self.relative_to(zone)?.labels().collect())
    }

    /// The name one label up, or `None` for the root.
    pub fn parent(&self) -> Option<Name> {
        let first = usize::from(self.0[0]);
        (first > 0).then(|| Self(self.0.slice(1 + first..)))
    }

    /// The same name in lower case, for use as a lookup key.
    pub fn to_lowercase(&self) -> Name {
        if !self.0.iter().any(u8::is_ascii_uppercase) {
            return self.clone();
        }
        let mut bytes = BytesMut::from(&self.0[..]);
        // Length octets are below 64: only label text changes.
        bytes.make_ascii_lowercase();
        Self(bytes.freeze())
    }

    /// True if both names have exactly the same bytes, case included.
    pub fn eq_exact(&self, other: &Name) -> bool {
        self.as_wire() == other.as_wire()
    }

    /// True if the leftmost label is `*`.
    pub fn is_wildcard(&self) -> bool {
        self.labels().next() == Some(b"*".as_slice())
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        same_folded(self.as_wire(), other.as_wire())
    }
}

/// Wire forms equal but for ASCII case. Length octets never fold, so this is label-wise
/// equality; names usually match exactly, which a plain comparison settles fastest.
fn same_folded(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && (a == b || a.eq_ignore_ascii_case(b))
}

impl Eq for Name {}

impl PartialOrd for Name {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Name {
    /// Canonical DNS order (RFC 4034 §6.1): compare labels from the right, case-insensitively.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let mut a = self.dslice().iter_labels().rev();
        let mut b = other.dslice().iter_labels().rev();
        loop {
            match (a.next(), b.next()) {
                (None, None) => return std::cmp::Ordering::Equal,
                (None, Some(_)) => return std::cmp::Ordering::Less,
                (Some(_), None) => return std::cmp::Ordering::Greater,
                (Some(x), Some(y)) => match x.lowercase_composed_cmp(y) {
                    std::cmp::Ordering::Equal => {}
                    o => return o,
                },
            }
        }
    }
}

impl std::hash::Hash for Name {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for byte in self.0.iter() {
            state.write_u8(byte.to_ascii_lowercase());
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.dslice().fmt_with_dot())
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

impl std::str::FromStr for Name {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Labels of a name below one of its ancestors, in wire form without the root label
/// (see [`Name::relative_to`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Relative<'a> {
    wire: &'a [u8],
}

impl<'a> Relative<'a> {
    /// No labels.
    pub const EMPTY: Relative<'static> = Relative { wire: &[] };

    /// The labels, leftmost first.
    pub fn labels(self) -> impl Iterator<Item = &'a [u8]> {
        let mut rest = self.wire;
        std::iter::from_fn(move || {
            let (&len, tail) = rest.split_first()?;
            let (label, tail) = tail.split_at(usize::from(len));
            rest = tail;
            Some(label)
        })
    }

    /// Splits before the label at `index`; `None` if there are not that many labels.
    pub fn split_at(self, index: usize) -> Option<(Relative<'a>, Relative<'a>)> {
        let mut pos = 0;
        for _ in 0..index {
            pos += 1 + usize::from(*self.wire.get(pos)?);
        }
        let (before, after) = self.wire.split_at(pos);
        Some((Relative { wire: before }, Relative { wire: after }))
    }

    /// Splits around the label at `index`: the labels before it, the label, the labels after.
    pub fn split_at_label(self, index: usize) -> Option<(Relative<'a>, &'a [u8], Relative<'a>)> {
        let (before, rest) = self.split_at(index)?;
        let len = usize::from(*rest.wire.first()?);
        let (label, after) = rest.wire[1..].split_at(len);
        Some((before, label, Relative { wire: after }))
    }
}

/// One name of a splice: wire-form labels, a label made of parts, more labels, the suffix.
#[derive(Clone, Copy, Debug)]
pub struct Splice<'a> {
    /// Labels before the new label.
    pub before: Relative<'a>,
    /// A label made of the concatenated parts, if any.
    pub label: Option<[&'a [u8]; 2]>,
    /// Labels after the new label.
    pub after: Relative<'a>,
    /// The name the labels end in.
    pub suffix: &'a Name,
}

/// A buffer names are built in. Each name is a slice of it, so building one costs a copy
/// and no allocation; the buffer is reused once every name built in it has been dropped.
#[derive(Debug)]
pub struct NameArena {
    buf: BytesMut,
    /// Room reserved at a time.
    chunk: usize,
}

impl Default for NameArena {
    /// An arena for a few dozen names at a time.
    fn default() -> Self {
        NameArena::with_chunk(4096)
    }
}

impl NameArena {
    /// An arena that reserves `chunk` bytes at a time (nothing until the first name).
    pub fn with_chunk(chunk: usize) -> NameArena {
        NameArena {
            buf: BytesMut::new(),
            chunk,
        }
    }

    /// The name described by `splice`. Fails when a label would exceed 63 bytes or the name
    /// 255.
    pub fn splice(&mut self, splice: &Splice<'_>) -> Result<Name, NameError> {
        let label_len = splice.label.map_or(0, |[a, b]| a.len() + b.len());
        if splice.label.is_some() && !(1..=63).contains(&label_len) {
            return Err(NameError("a label is empty or longer than 63 bytes".into()));
        }
        let total = splice.before.wire.len()
            + splice.label.map_or(0, |_| 1 + label_len)
            + splice.after.wire.len()
            + splice.suffix.as_wire().len();
        if total > MAX_NAME_LEN {
            return Err(NameError("the name is longer than 255 bytes".into()));
        }
        Ok(self.copy(total, |buf| {
            buf.extend_from_slice(splice.before.wire);
            if let Some([a, b]) = splice.label {
                buf.extend_from_slice(&[label_len as u8]);
                buf.extend_from_slice(a);
                buf.extend_from_slice(b);
            }
            buf.extend_from_slice(splice.after.wire);
            buf.extend_from_slice(splice.suffix.as_wire());
        }))
    }

    /// `relative` followed by `suffix`.
    pub fn join(&mut self, relative: Relative<'_>, suffix: &Name) -> Result<Name, NameError> {
        self.splice(&Splice {
            before: relative,
            label: None,
            after: Relative::EMPTY,
            suffix,
        })
    }

    /// A name from the `len` wire bytes `write` appends, which the caller has checked
    /// (labels of at most 63 bytes, 255 bytes in all, ending in the root label).
    pub(super) fn copy(&mut self, len: usize, write: impl FnOnce(&mut BytesMut)) -> Name {
        if self.buf.capacity() - self.buf.len() < len {
            self.buf.reserve(self.chunk.max(len));
        }
        write(&mut self.buf);
        debug_assert!(DName::from_slice(&self.buf[..]).is_ok());
        Name(self.buf.split().freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::parse(s).expect("valid name")
    }

    #[test]
    fn matching_is_label_aware_and_case_insensitive() {
        let zone = n("distributed.local.");
        assert!(n("a.DISTRIBUTED.Local.").is_at_or_below(&zone));
        assert!(n("distributed.local").is_at_or_below(&zone));
        assert!(!n("xdistributed.local.").is_at_or_below(&zone));
        assert!(!n("local.").is_at_or_below(&zone));
    }

    #[test]
    fn labels_below_a_zone() {
        let name = n("_x._tcp.Demo.ns.svc.distributed.local.");
        let labels = name.labels_below(&n("distributed.local.")).expect("below");
        assert_eq!(labels, vec![&b"_x"[..], b"_tcp", b"Demo", b"ns", b"svc"]);
    }

    #[test]
    fn building_keeps_case_and_rejects_long_names() {
        let built =
            Name::from_labels([&b"A-demo"[..], b"svc"], &n("cluster-a.local.")).expect("ok");
        assert_eq!(built.to_string(), "A-demo.svc.cluster-a.local.");
        let long: Vec<Vec<u8>> = (0..5).map(|_| b"x".repeat(60)).collect();
        assert!(Name::from_labels(long.iter().map(|l| l.as_slice()), &n("local.")).is_err());
    }

    #[test]
    fn splicing_into_an_arena() {
        let mut arena = NameArena::default();
        let name = n("_x._tcp.Demo-0.ns.cluster-a.local.");
        let rel = name.relative_to(&n("CLUSTER-A.local.")).expect("below");
        assert_eq!(rel.labels().count(), 4);
        assert!(name.relative_to(&n("a.local.")).is_none());
        let (before, host, after) = rel.split_at_label(2).expect("three labels");
        let domain = n("distributed.local.");
        let spliced = arena
            .splice(&Splice {
                before,
                label: Some([b"a-", host]),
                after,
                suffix: &domain,
            })
            .expect("fits");
        assert_eq!(
            spliced.to_string(),
            "_x._tcp.a-Demo-0.ns.distributed.local."
        );
        let joined = arena.join(rel, &domain).expect("fits");
        assert_eq!(joined.to_string(), "_x._tcp.Demo-0.ns.distributed.local.");
        let long = [0u8; 62];
        assert!(arena
            .splice(&Splice {
                before,
                label: Some([b"ab", &long]),
                after,
                suffix: &domain,
            })
            .is_err());
    }

    #[test]
    fn ordering_is_canonical() {
        let mut names = [
            n("b.example."),
            n("A.example."),
            n("example."),
            n("z.a.example."),
        ];
        names.sort();
        let shown: Vec<String> = names.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            ["example.", "A.example.", "z.a.example.", "b.example."]
        );
        assert_eq!(
            n("A.Example.").cmp(&n("a.example.")),
            std::cmp::Ordering::Equal
        );
    }

    #[test]
    fn lowercase_and_exact_equality() {
        let mixed = n("DeMo.Local.");
        assert_eq!(mixed, n("demo.local."));
        assert!(!mixed.eq_exact(&n("demo.local.")));
        assert!(mixed.to_lowercase().eq_exact(&n("demo.local.")));
    }
}
