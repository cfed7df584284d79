//! Zone file parsing (RFC 1035 §5 master files) for the `file` directive: `domain`'s in-place
//! reader does the lexing, this module turns its records into ours and makes every error
//! point at the line of the entry that caused it.

use bytes::{Bytes, BytesMut};
use domain::base::iana::{Class, Rtype};
use domain::base::name::{FlattenInto, Name as DName, ParsedName, ToName};
use domain::base::rdata::{ComposeRecordData, ParseAnyRecordData};
use domain::dep::octseq::Parser;
use domain::rdata::AllRecordData;
use domain::zonefile::inplace::{Entry, ScannedRecord, Zonefile};

use super::record::Data;
use super::{Name, Record};

/// A zone file that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ZonefileError {
    /// 1-based line number, 0 if unknown.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Parses zone file text with `origin` as the initial `$ORIGIN`.
///
/// Records come back in file order. Every record must be of class IN and at or below
/// `origin`; `$INCLUDE` is refused because a zone is loaded from one file.
pub fn parse_zonefile(text: &str, origin: &Name) -> Result<Vec<Record>, ZonefileError> {
    let layout = Layout::scan(text);
    if let Some(refused) = layout.refused.clone() {
        return Err(refused);
    }
    let mut reader = Zonefile::new();
    reader.extend_from_slice(text.as_bytes());
    // `domain`'s reader rejects a last record with no line feed after it and can index
    // past its buffer when a TXT string runs into the end of the text, so every entry gets
    // its line feed (unclosed groups and strings were refused above).
    if !text.ends_with('\n') {
        reader.extend_from_slice(b"\n");
    }
    reader.set_origin(origin.dname());
    reader.set_default_class(Class::IN);

    let mut records = Vec::new();
    loop {
        let entry = match reader.next_entry() {
            Ok(Some(entry)) => entry,
            Ok(None) => return Ok(records),
            Err(err) => return Err(layout.scanner_error(records.len(), &err.to_string())),
        };
        match entry {
            Entry::Record(scanned) => {
                let line = layout.record_line(records.len());
                let record =
                    convert(scanned, origin).map_err(|message| ZonefileError { line, message })?;
                records.push(record);
            }
            Entry::Include { .. } => {
                return Err(ZonefileError {
                    line: layout.include_line(records.len()),
                    message: "$INCLUDE is not supported".into(),
                });
            }
        }
    }
}

/// Turns one scanned record into ours, checking what the reader does not.
fn convert(scanned: ScannedRecord, origin: &Name) -> Result<Record, String> {
    let owner: DName<Bytes> = scanned
        .owner()
        .try_to_name()
        .map_err(|_| "the owner name is too long".to_string())?;
    // The reader lets an empty label (`a..b`) through; checking the octets keeps such a
    // name, which `domain`'s name methods would panic on, out of the core.
    let owner = DName::from_octets(owner.into_octets())
        .map(Name::from_dname)
        .map_err(|_| "the owner name has an empty label".to_string())?;
    if scanned.class() != Class::IN {
        return Err(format!(
            "class {} is not supported, only IN",
            scanned.class()
        ));
    }
    let rtype = scanned.rtype();
    if is_meta(rtype) {
        return Err(format!("{rtype} is not a record type a zone can hold"));
    }
    if !owner.is_at_or_below(origin) {
        return Err(format!("`{owner}` is outside the zone `{origin}`"));
    }
    let data = to_all_record_data(rtype, scanned.data())?;
    Ok(Record::from_data(
        owner,
        Class::IN,
        scanned.ttl().as_secs(),
        data,
    ))
}

/// Types that only exist in messages (RFC 6895 §3.1): they have no place in a zone.
fn is_meta(rtype: Rtype) -> bool {
    [
        Rtype::OPT,
        Rtype::TKEY,
        Rtype::TSIG,
        Rtype::IXFR,
        Rtype::AXFR,
        Rtype::MAILB,
        Rtype::MAILA,
        Rtype::ANY,
    ]
    .contains(&rtype)
}

/// Converts the reader's data into the type the core stores. `domain` has no direct
/// conversion between the two enums, so the data goes through its wire form; that also
/// checks generic `\# len hex` data of known types, which the reader takes on trust, and
/// names with empty labels, which it lets through (their wire form does not read back
/// the same).
fn to_all_record_data(rtype: Rtype, data: &impl ComposeRecordData) -> Result<Data, String> {
    let mut wire = BytesMut::new();
    match data.compose_rdata(&mut wire) {
        Ok(()) => {}
        Err(never) => match never {},
    }
    if wire.len() > usize::from(u16::MAX) {
        return Err(format!("the {rtype} data is longer than 65535 bytes"));
    }
    let wire = wire.freeze();
    let mut parser = Parser::from_ref(&wire);
    let parsed = AllRecordData::<Bytes, ParsedName<Bytes>>::parse_any_rdata(rtype, &mut parser)
        .map_err(|_| format!("malformed {rtype} data"))?;
    if parser.remaining() != 0 {
        return Err(format!("malformed {rtype} data: trailing bytes"));
    }
    let data: Data = parsed
        .try_flatten_into()
        .map_err(|_| format!("malformed {rtype} data"))?;
    let mut again = BytesMut::new();
    match data.compose_rdata(&mut again) {
        Ok(()) => {}
        Err(never) => match never {},
    }
    if again != wire {
        return Err(format!("malformed {rtype} data"));
    }
    Ok(data)
}

/// Where the entries of a zone file are, found by a small scan that follows the same
/// lexical rules as `domain`'s reader (quotes, escapes, comments, parentheses). `domain`
/// reports only the position its scanner had reached when it failed, which for a
/// missing field is already the next line, and gives no position at all for records it
/// accepted; this map turns both into the line of the entry at fault.
struct Layout {
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
    /// Every non-empty entry, in file order.
    entries: Vec<EntrySpan>,
    /// Indexes into `entries` of the entries that are records (not `$` directives).
    records: Vec<usize>,
    /// Input refused before `domain` sees it: a parenthesis or quoted string still open at
    /// the end of the text, or a quoted string with another token glued to it. `domain`'s
    /// reader indexes out of bounds or trips an assertion on these.
    refused: Option<ZonefileError>,
}

/// One entry of the file.
struct EntrySpan {
    /// Offset just past its terminating line feed (or the end of the text).
    end: usize,
    /// 1-based line of its first token.
    first_line: usize,
    /// 1-based line of its terminating line feed (or of the end of the text).
    last_line: usize,
    /// The directive is `$INCLUDE`.
    include: bool,
}

/// `domain` errors raised on the first token of an entry; at an entry boundary these belong
/// to the entry that starts there, every other error to the one that ended there.
const ERRORS_AT_TOKEN_START: [&str; 3] = ["bad symbol", "unbalanced parens", "short buffer"];

impl Layout {
    fn scan(text: &str) -> Layout {
        let bytes = text.as_bytes();
        let mut line_starts = vec![0];
        line_starts.extend(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        );
        let mut layout = Layout {
            line_starts,
            entries: Vec::new(),
            records: Vec::new(),
            refused: None,
        };

        // The entry being read: (start offset, is a directive, is $INCLUDE).
        let mut open: Option<(usize, bool, bool)> = None;
        let mut parens = 0usize;
        // Where the outermost open parenthesis is.
        let mut group_start = 0;
        let mut space_before = false;
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            match b {
                b' ' | b'\t' | b'\r' => {
                    space_before = true;
                    i += 1;
                }
                b'(' => {
                    if parens == 0 {
                        group_start = i;
                    }
                    parens += 1;
                    i += 1;
                }
                b')' => {
                    parens = parens.saturating_sub(1);
                    i += 1;
                }
                b';' => {
                    while bytes.get(i).is_some_and(|b| *b != b'\n') {
                        i += 1;
                    }
                }
                b'\n' => {
                    i += 1;
                    if parens == 0 {
                        if let Some((start, control, include)) = open.take() {
                            layout.push(start, i, control, include);
                        }
                        space_before = false;
                    }
                }
                _ => {
                    let start = i;
                    let closed;
                    (i, closed) = token_end(bytes, i);
                    let glued = bytes.get(start) == Some(&b'"')
                        && bytes.get(i).is_some_and(|b| !is_separator(*b));
                    if (!closed || glued) && layout.refused.is_none() {
                        let message = if closed {
                            "a quoted string must be followed by a space or the end of the line"
                        } else {
                            "a quoted string is never closed"
                        };
                        layout.refused = Some(ZonefileError {
                            line: layout.line_of(start),
                            message: message.into(),
                        });
                    }
                    if open.is_none() {
                        let token = bytes.get(start..i).unwrap_or_default();
                        let bare = token.strip_prefix(b"\"").unwrap_or(token);
                        let control = !space_before && bare.first() == Some(&b'$');
                        let include = control
                            && bare
                                .get(..8)
                                .is_some_and(|d| d.eq_ignore_ascii_case(b"$INCLUDE"));
                        open = Some((start, control, include));
                    }
                }
            }
        }
        if let Some((start, control, include)) = open {
            layout.push(start, bytes.len(), control, include);
        }
        if parens > 0 && layout.refused.is_none() {
            layout.refused = Some(ZonefileError {
                line: layout.line_of(group_start),
                message: "a `(` is never closed".into(),
            });
        }
        layout
    }

    fn push(&mut self, start: usize, end: usize, control: bool, include: bool) {
        let first_line = self.line_of(start);
        // `end` is past the line feed, so the line feed itself is at `end - 1`.
        let last_line = self.line_of(end.saturating_sub(1).max(start));
        if !control {
            self.records.push(self.entries.len());
        }
        self.entries.push(EntrySpan {
            end,
            first_line,
            last_line,
            include,
        });
    }

    /// 1-based line holding byte `offset`.
    fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= offset)
    }

    /// Line of the `index`-th record (0-based) the reader returned.
    fn record_line(&self, index: usize) -> usize {
        self.records
            .get(index)
            .and_then(|&e| self.entries.get(e))
            .map_or(0, |e| e.first_line)
    }

    /// The entries the reader may have been working on after returning `done` records:
    /// the directives after the last of those records and the next record.
    fn candidates(&self, done: usize) -> &[EntrySpan] {
        let from = match done.checked_sub(1) {
            Some(last) => self
                .records
                .get(last)
                .map_or(self.entries.len(), |&e| e + 1),
            None => 0,
        };
        let to = self
            .records
            .get(done)
            .map_or(self.entries.len(), |&e| e + 1);
        self.entries.get(from..to).unwrap_or_default()
    }

    /// Line of the `$INCLUDE` the reader returned after `done` records.
    fn include_line(&self, done: usize) -> usize {
        let candidates = self.candidates(done);
        candidates
            .iter()
            .find(|e| e.include)
            .or(candidates.first())
            .map_or(0, |e| e.first_line)
    }

    /// Our error for a failure of `domain`'s reader after it returned `done` records;
    /// `shown` is its message, `LINE:COL: MESSAGE`.
    fn scanner_error(&self, done: usize, shown: &str) -> ZonefileError {
        let (position, message) = split_position(shown);
        let message = friendly(message);
        let offset = position.and_then(|(line, col)| {
            let line_start = self.line_starts.get(line.checked_sub(1)?)?;
            line_start.checked_add(col.checked_sub(1)?)
        });
        let at_token_start = ERRORS_AT_TOKEN_START.iter().any(|p| message.starts_with(p));
        let candidates = self.candidates(done);
        let entry = match offset {
            Some(offset) => candidates
                .iter()
                .find(|e| offset < e.end || (offset == e.end && !at_token_start))
                .or(candidates.last()),
            None => candidates.last(),
        };
        let line = match (entry, position) {
            (Some(e), Some((line, _))) => line.clamp(e.first_line, e.last_line),
            (Some(e), None) => e.first_line,
            (None, Some((line, _))) => line,
            (None, None) => 0,
        };
        ZonefileError { line, message }
    }
}

/// Offset just past the token starting at `i` (quoted or not), skipping escapes, and
/// whether it ended before the text did (a quoted token needs its closing quote).
fn token_end(bytes: &[u8], mut i: usize) -> (usize, bool) {
    if bytes.get(i) == Some(&b'"') {
        i += 1;
        while let Some(&b) = bytes.get(i) {
            i += if b == b'\\' { 2 } else { 1 };
            if b == b'"' {
                return (i, true);
            }
        }
        return (bytes.len(), false);
    } else {
        while let Some(&b) = bytes.get(i) {
            if is_separator(b) || b == b'"' {
                break;
            }
            i += if b == b'\\' { 2 } else { 1 };
        }
    }
    (i.min(bytes.len()), true)
}

/// Bytes that end an unquoted token (besides a quote, which starts a new one).
fn is_separator(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'(' | b')' | b';')
}

/// Splits `domain`'s `LINE:COL: MESSAGE` into the position and the message.
fn split_position(shown: &str) -> (Option<(usize, usize)>, &str) {
    let parsed = shown.split_once(':').and_then(|(line, rest)| {
        let (col, message) = rest.split_once(':')?;
        Some((
            (line.parse().ok()?, col.parse().ok()?),
            message.trim_start(),
        ))
    });
    match parsed {
        Some((position, message)) => (Some(position), message),
        None => (None, shown),
    }
}

/// Rewords the reader's terser messages where the fix is not obvious from them.
fn friendly(message: &str) -> String {
    if let Some(classes) = message.strip_prefix("different class: ") {
        let found = classes.split(' ').next().unwrap_or(classes);
        return format!("class {found} is not supported, only IN");
    }
    match message {
        "unexpected end of entry" => "the record is incomplete".into(),
        "missing last owner" => "an indented record with no earlier owner name".into(),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Name {
        Name::parse(s).expect("valid name")
    }

    fn parse(text: &str) -> Result<Vec<Record>, ZonefileError> {
        parse_zonefile(text, &n("example.test."))
    }

    fn shown(records: &[Record]) -> Vec<String> {
        records.iter().map(ToString::to_string).collect()
    }

    fn error(text: &str) -> ZonefileError {
        parse(text).expect_err("the zone file is invalid")
    }

    #[test]
    fn directives_relative_names_and_record_types() {
        let text = "\
; a comment line
$ORIGIN example.test.
$TTL 300
@ 3600 IN SOA ns1 hostmaster ( 2024010101 ; serial
                               7200 3600   ; refresh, retry
                               1209600 60 )
@ IN NS ns1
ns1 A 192.0.2.1 ; trailing comment
www 60 IN A 192.0.2.10
    IN AAAA 2001:db8::10
mail IN MX 10 mx1.example.test.
_sip._tcp IN SRV 0 5 5060 sip1
txt IN TXT \"hello world\" \"second\"
alias IN CNAME www
";
        let records = parse(text).expect("valid zone file");
        assert_eq!(
            shown(&records),
            [
                "example.test. 3600 IN SOA ns1.example.test. hostmaster.example.test. 2024010101 7200 3600 1209600 60",
                "example.test. 300 IN NS ns1.example.test.",
                "ns1.example.test. 300 IN A 192.0.2.1",
                "www.example.test. 60 IN A 192.0.2.10",
                "www.example.test. 300 IN AAAA 2001:db8::10",
                "mail.example.test. 300 IN MX 10 mx1.example.test.",
                // `domain` shows SRV targets without the final dot.
                "_sip._tcp.example.test. 300 IN SRV 0 5 5060 sip1.example.test",
                "txt.example.test. 300 IN TXT \"hello world\" \"second\"",
                "alias.example.test. 300 IN CNAME www.example.test.",
            ]
        );
        assert_eq!(
            records[6].additional_target(),
            Some(n("sip1.example.test."))
        );
    }

    #[test]
    fn the_origin_argument_is_the_initial_origin_and_ttl_defaults_to_the_last() {
        let records = parse("@ 100 SOA ns hm 1 2 3 4 5\nHost A 192.0.2.7\n").expect("valid");
        assert_eq!(
            shown(&records),
            [
                "example.test. 100 IN SOA ns.example.test. hm.example.test. 1 2 3 4 5",
                "Host.example.test. 100 IN A 192.0.2.7"
            ]
        );
        // The owner keeps its case.
        assert_eq!(
            records[1].owner().as_wire(),
            b"\x04Host\x07example\x04test\x00"
        );
    }

    #[test]
    fn origin_changes_apply_to_later_relative_names() {
        let records = parse(
            "$ORIGIN sub.example.test.\nwww A 192.0.2.1\n$ORIGIN example.test.\nwww A 192.0.2.2\n",
        )
        .expect("valid");
        assert_eq!(
            shown(&records),
            [
                "www.sub.example.test. 3600 IN A 192.0.2.1",
                "www.example.test. 3600 IN A 192.0.2.2"
            ]
        );
    }

    #[test]
    fn generic_rdata_of_a_known_type_is_checked_and_converted() {
        let records = parse("a TYPE1 \\# 4 C0000201\n").expect("valid");
        assert_eq!(shown(&records), ["a.example.test. 3600 IN A 192.0.2.1"]);
        let err = error("x A 192.0.2.1\na A \\# 3 C00002\n");
        assert_eq!(
            err,
            ZonefileError {
                line: 2,
                message: "malformed A data".into()
            }
        );
    }

    #[test]
    fn a_bad_address_names_its_line() {
        let text =
            "$TTL 60\n@ SOA ns hm 1 2 3 4 5\n\n; comment\nwww A 192.0.2.300\nok A 192.0.2.1\n";
        let err = error(text);
        assert_eq!(err.line, 5);
        assert!(err.message.contains("IPv4"), "{err}");
    }

    #[test]
    fn a_missing_field_names_the_record_not_the_next_line() {
        let err = error("a A 192.0.2.1\nwww A\nnext A 192.0.2.2\n");
        assert_eq!(
            err,
            ZonefileError {
                line: 2,
                message: "the record is incomplete".into()
            }
        );
        // Also at the end of a file without a final newline.
        assert_eq!(error("a A 192.0.2.1\nwww A").line, 2);
    }

    #[test]
    fn an_error_inside_parentheses_names_the_line_it_is_on() {
        let text = "a A 192.0.2.1\n@ SOA ns hm (\n  1 2\n  x 4\n  5 )\nb A 192.0.2.2\n";
        assert_eq!(error(text).line, 4);
        // A record cut short by the closing parenthesis is its last line.
        let text = "@ SOA ns hm (\n  1 2\n  3 4 )\nb A 192.0.2.2\n";
        assert_eq!(error(text).line, 3);
    }

    #[test]
    fn lines_after_a_multi_line_record_and_blank_lines_are_counted() {
        let text =
            "$ORIGIN example.test.\n@ SOA ns hm (\n   1 2 3 4 5 )\n\n; note\nwww A 192.0.2\n";
        assert_eq!(error(text).line, 6);
        let err = error("a MX 10\n\n; c\nb A 192.0.2.1\n");
        assert_eq!(
            err,
            ZonefileError {
                line: 1,
                message: "the record is incomplete".into()
            }
        );
        let err = error("a A 192.0.2.1\nb A 192.0.2.2 extra\n");
        assert_eq!(
            err,
            ZonefileError {
                line: 2,
                message: "trailing tokens".into()
            }
        );
    }

    #[test]
    fn unclosed_groups_and_strings_are_refused() {
        let err = error("a A 192.0.2.1\n@ SOA ns hm ( 1 2\n 3 4 5\n");
        assert_eq!(
            err,
            ZonefileError {
                line: 2,
                message: "a `(` is never closed".into()
            }
        );
        let err = error("a A 192.0.2.1\nb TXT \"open\n");
        assert_eq!(
            err,
            ZonefileError {
                line: 2,
                message: "a quoted string is never closed".into()
            }
        );
        let err = error("$INCLUDE \"file\"example.test.\n");
        assert_eq!(err.line, 1);
        assert!(
            err.message.starts_with("a quoted string must be followed"),
            "{err}"
        );
    }

    #[test]
    fn errors_in_directives_name_the_directive() {
        assert_eq!(error("a A 192.0.2.1\n$TTL\nb A 192.0.2.2\n").line, 2);
        assert_eq!(error("a A 192.0.2.1\n$TTL x\nb A 192.0.2.2\n").line, 2);
        let err = error("a A 192.0.2.1\n$FOO\nb A 192.0.2.2\n");
        assert_eq!(err.line, 2);
        assert!(err.message.contains("unknown control"), "{err}");
    }

    #[test]
    fn an_unbalanced_parenthesis_names_its_line() {
        let err = error("a A 192.0.2.1\n) A 192.0.2.2\n");
        assert_eq!(
            err,
            ZonefileError {
                line: 2,
                message: "unbalanced parens".into()
            }
        );
    }

    #[test]
    fn other_classes_are_rejected() {
        let err = error("a IN A 192.0.2.1\n\nb CH A 192.0.2.2\n");
        assert_eq!(
            err,
            ZonefileError {
                line: 3,
                message: "class CH is not supported, only IN".into()
            }
        );
        assert_eq!(error("b 60 CH TXT x\n").line, 1);
    }

    #[test]
    fn records_outside_the_origin_are_rejected() {
        let err = error("a A 192.0.2.1\n\nwww.other.test. A 192.0.2.2\n");
        assert_eq!(
            err,
            ZonefileError {
                line: 3,
                message: "`www.other.test.` is outside the zone `example.test.`".into()
            }
        );
        // A multi-line record is reported at its first line.
        let err = error("$ORIGIN other.test.\n@ SOA ns hm (\n 1 2 3 4 5 )\n");
        assert_eq!(err.line, 2);
    }

    #[test]
    fn include_is_refused() {
        let err = error("a A 192.0.2.1\n$TTL 5\n$INCLUDE other.zone\nb A 192.0.2.2\n");
        assert_eq!(
            err,
            ZonefileError {
                line: 3,
                message: "$INCLUDE is not supported".into()
            }
        );
    }

    #[test]
    fn names_with_empty_labels_are_refused() {
        let err = error("a A 192.0.2.1\n_sip.._tcp A 192.0.2.2\n");
        assert_eq!(
            err,
            ZonefileError {
                line: 2,
                message: "the owner name has an empty label".into()
            }
        );
        assert_eq!(error("a A 192.0.2.1\nb CNAME x..y\n").line, 2);
        assert_eq!(error("a A 192.0.2.1\nb SOA ns..x hm 1 2 3 4 5\n").line, 2);
    }

    #[test]
    fn meta_types_are_refused() {
        assert_eq!(error("a A 192.0.2.1\nb ANY \\# 0\n").line, 2);
    }

    #[test]
    fn an_empty_file_has_no_records() {
        assert_eq!(parse("").expect("valid"), []);
        assert_eq!(parse("; only a comment\n\n   \n").expect("valid"), []);
    }
}

#[cfg(test)]
mod fuzz_tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any text gives records or an error with a line inside the text, never a panic.
        #[test]
        fn zonefile_parsing_never_panics(text in r#"([a-z0-9@$*.:;()"\\# \t\r\n]|IN|CH|A|TXT|SRV|MX|SOA|CNAME|\$ORIGIN|\$TTL|\$INCLUDE){0,60}"#) {
            let origin = Name::parse("example.test.").expect("valid name");
            if let Err(err) = parse_zonefile(&text, &origin) {
                let lines = text.split('\n').count();
                prop_assert!((1..=lines).contains(&err.line), "line {} of {lines}: {err}", err.line);
            }
        }
    }
}
