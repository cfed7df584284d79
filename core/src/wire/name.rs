//! Domain names as the rest of the core sees them: absolute, compared without regard to
//! ASCII case, and built label by label when names are renamed between zones.

use std::fmt;

use bytes::{Bytes, BytesMut};
use domain::base::name::{Label, Name as DName, NameBuilder, ToLabelIter, ToName};

/// The longest a domain name may be on the wire (RFC 1035 §3.1).
pub const MAX_NAME_LEN: usize = 255;

/// An absolute domain name. Equality and ordering ignore ASCII case; [`Name::as_wire`] keeps
/// the bytes exactly as received, which is what the question echo needs.
#[derive(Clone)]
pub struct Name(pub(super) DName<Bytes>);

/// A name that could not be parsed from text or built from labels.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NameError(pub(crate) String);

impl Name {
    /// The root name `.`.
    pub fn root() -> Self {
        Self(DName::root_bytes())
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
            .map(Self)
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
            .append_origin(&suffix.0)
            .map(Self)
            .map_err(|_| NameError("the name is longer than 255 bytes".into()))
    }

    /// The wire form, exactly as received or built (case preserved).
    pub fn as_wire(&self) -> &[u8] {
        self.0.as_slice()
    }

    /// Number of labels, not counting the root.
    pub fn label_count(&self) -> usize {
        self.0.label_count() - 1
    }

    /// The labels from the leftmost on, without the root label.
    pub fn labels(&self) -> impl DoubleEndedIterator<Item = &[u8]> + '_ {
        self.0.iter().filter(|l| !l.is_root()).map(Label::as_slice)
    }

    /// True if `self` is `zone` or below it, label-aware and ignoring ASCII case.
    pub fn is_at_or_below(&self, zone: &Name) -> bool {
        self.0.ends_with(&zone.0)
    }

    /// The labels of `self` to the left of `zone`, leftmost first; `None` unless
    /// `self` is at or below `zone`.
    pub fn labels_below<'a>(&'a self, zone: &Name) -> Option<Vec<&'a [u8]>> {
        if !self.is_at_or_below(zone) {
            return None;
        }
        let keep = self.label_count() - zone.label_count();
        Some(self.labels().take(keep).collect())
    }

    /// The name one label up, or `None` for the root.
    pub fn parent(&self) -> Option<Name> {
        let parent = self.0.parent()?;
        Some(Self(parent))
    }

    /// The same name in lower case, for use as a lookup key.
    pub fn to_lowercase(&self) -> Name {
        let mut canonical = self.0.clone();
        if self.0.as_slice().iter().any(u8::is_ascii_uppercase) {
            let mut bytes = BytesMut::from(self.0.as_slice());
            bytes.make_ascii_lowercase();
            if let Ok(n) = DName::from_octets(bytes.freeze()) {
                canonical = n;
            }
        }
        Self(canonical)
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
        self.0.name_eq(&other.0)
    }
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
        let mut a = self.0.iter_labels().rev();
        let mut b = other.0.iter_labels().rev();
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
        for byte in self.0.as_slice() {
            state.write_u8(byte.to_ascii_lowercase());
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.fmt_with_dot())
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
