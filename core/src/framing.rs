//! TCP DNS framing (RFC 1035 §4.2.2, RFC 7766 §8): every message on a stream is preceded by
//! its length as two big-endian bytes. Sans-IO and shared by both runtimes, so that the
//! runtimes only move bytes and never reason about frame boundaries.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The largest DNS message a two-byte length prefix can announce.
pub const MAX_FRAME_LEN: usize = 65535;

/// Size of the length prefix.
const PREFIX_LEN: usize = 2;

/// Why a stream cannot be decoded any further. The connection should be closed: a stream
/// cannot be resynchronised once a frame boundary is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// A length prefix of zero: no DNS message is that short, so the peer is not speaking DNS.
    #[error("zero-length DNS message on a TCP stream")]
    EmptyFrame,
}

/// Splits a byte stream into DNS messages.
///
/// Memory is bounded by construction: [`FrameDecoder::push`] stops accepting bytes once a
/// complete frame is buffered and returns how many it took, so the decoder never holds more
/// than one frame plus its prefix (65 537 bytes), whatever the peer sends. The caller's loop is
///
/// ```
/// # use gatherdns_core::framing::{FrameDecoder, FramingError};
/// # fn main() -> Result<(), FramingError> {
/// let mut decoder = FrameDecoder::new();
/// let mut chunk: &[u8] = &[0, 1, 0xAA, 0, 1, 0xBB]; // what one read returned
/// let mut messages = Vec::new();
/// while !chunk.is_empty() {
///     let used = decoder.push(chunk);
///     chunk = &chunk[used..];
///     while let Some(msg) = decoder.next_message()? {
///         messages.push(msg);
///     }
/// }
/// assert_eq!(messages.len(), 2);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: BytesMut,
    failed: Option<FramingError>,
}

impl FrameDecoder {
    /// An empty decoder.
    pub fn new() -> FrameDecoder {
        FrameDecoder::default()
    }

    /// Offers bytes read from the stream and returns how many were taken. Fewer than offered
    /// are taken only when a complete frame is waiting: pull it with
    /// [`FrameDecoder::next_message`] and offer the rest again. After an error every byte is
    /// taken and discarded, so a caller's loop always ends.
    #[must_use = "bytes that were not taken must be offered again"]
    pub fn push(&mut self, data: &[u8]) -> usize {
        if self.failed.is_some() {
            return data.len();
        }
        let mut taken = 0;
        // Twice at most: first the rest of the prefix, then (once it is known) the body.
        while taken < data.len() {
            let take = self.wanted().min(data.len() - taken);
            if take == 0 {
                break;
            }
            self.buf.extend_from_slice(&data[taken..taken + take]);
            taken += take;
        }
        taken
    }

    /// How many more bytes complete the frame being buffered (or its prefix). Zero when a
    /// complete frame is waiting to be pulled. A runtime may read exactly this many bytes.
    pub fn wanted(&self) -> usize {
        if self.failed.is_some() {
            return 0;
        }
        match self.announced_len() {
            None => PREFIX_LEN - self.buf.len(),
            // A zero length is reported by next_message; until then ask for nothing more.
            Some(0) => 0,
            Some(len) => PREFIX_LEN + len - self.buf.len(),
        }
    }

    /// The next complete message, without its prefix; `Ok(None)` until one is complete.
    pub fn next_message(&mut self) -> Result<Option<Bytes>, FramingError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        let Some(len) = self.announced_len() else {
            return Ok(None);
        };
        if len == 0 {
            self.buf.clear();
            self.failed = Some(FramingError::EmptyFrame);
            return Err(FramingError::EmptyFrame);
        }
        if self.buf.len() < PREFIX_LEN + len {
            return Ok(None);
        }
        self.buf.advance(PREFIX_LEN);
        // `split_to` hands out the frame without copying; push never buffers past it.
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// The messages of `data` (what one read returned), in order, as they complete: the
    /// caller's push-and-pull loop above as an iterator, so that a reader can await between
    /// messages. An error ends the connection's messages.
    pub fn messages<'a>(&'a mut self, data: &'a [u8]) -> Messages<'a> {
        Messages {
            decoder: self,
            rest: data,
        }
    }

    /// Bytes buffered and not yet pulled, prefix included.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// True if a frame has been started but not completed: a peer closing now cut a
    /// message short.
    pub fn is_mid_frame(&self) -> bool {
        !self.buf.is_empty()
    }

    fn announced_len(&self) -> Option<usize> {
        match self.buf.get(..PREFIX_LEN) {
            Some(&[hi, lo]) => Some(usize::from(u16::from_be_bytes([hi, lo]))),
            _ => None,
        }
    }
}

/// The messages of one read, from [`FrameDecoder::messages`].
#[derive(Debug)]
pub struct Messages<'a> {
    decoder: &'a mut FrameDecoder,
    rest: &'a [u8],
}

impl Iterator for Messages<'_> {
    type Item = Result<Bytes, FramingError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.decoder.next_message() {
                Ok(Some(msg)) => return Some(Ok(msg)),
                Err(error) => return Some(Err(error)),
                Ok(None) if self.rest.is_empty() => return None,
                Ok(None) => {
                    let used = self.decoder.push(self.rest);
                    self.rest = &self.rest[used..];
                }
            }
        }
    }
}

/// Appends `msg` with its length prefix to `out`. A message longer than 65 535 bytes cannot
/// be framed; the core never builds one, so it is cut at that length rather than panicking.
pub fn encode_frame(msg: &[u8], out: &mut BytesMut) {
    let msg = &msg[..msg.len().min(MAX_FRAME_LEN)];
    out.reserve(PREFIX_LEN + msg.len());
    // The cut above makes the conversion infallible.
    out.put_u16(u16::try_from(msg.len()).unwrap_or(u16::MAX));
    out.put_slice(msg);
}

/// `msg` with its length prefix, ready to write to a stream.
pub fn frame(msg: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(PREFIX_LEN + msg.len());
    encode_frame(msg, &mut out);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_of_one_read_come_out_across_reads() {
        let mut decoder = FrameDecoder::new();
        let first: Vec<Bytes> = decoder
            .messages(&[0, 1, 0xAA, 0, 2, 0xBB])
            .collect::<Result<_, _>>()
            .expect("well framed");
        assert_eq!(first, vec![Bytes::from_static(&[0xAA])]);
        let second: Vec<Bytes> = decoder
            .messages(&[0xCC, 0, 1, 0xDD])
            .collect::<Result<_, _>>()
            .expect("well framed");
        assert_eq!(
            second,
            vec![
                Bytes::from_static(&[0xBB, 0xCC]),
                Bytes::from_static(&[0xDD])
            ]
        );
        let broken: Vec<_> = decoder.messages(&[0, 0, 0, 1, 0xEE]).take(2).collect();
        assert_eq!(broken[0], Err(FramingError::EmptyFrame));
    }
    use proptest::prelude::*;

    fn drain(decoder: &mut FrameDecoder) -> Vec<Bytes> {
        let mut out = Vec::new();
        while let Some(msg) = decoder.next_message().expect("valid stream") {
            out.push(msg);
        }
        out
    }

    #[test]
    fn one_frame_in_one_push() {
        let mut decoder = FrameDecoder::new();
        let framed = frame(b"hello");
        assert_eq!(&framed[..], b"\x00\x05hello");
        assert_eq!(decoder.push(&framed), framed.len());
        assert_eq!(drain(&mut decoder), vec![Bytes::from_static(b"hello")]);
        assert_eq!(decoder.buffered(), 0);
        assert!(!decoder.is_mid_frame());
    }

    #[test]
    fn byte_by_byte() {
        let mut decoder = FrameDecoder::new();
        let mut got = Vec::new();
        for byte in frame(b"abc").iter().chain(frame(b"de").iter()) {
            assert_eq!(decoder.push(&[*byte]), 1);
            got.extend(drain(&mut decoder));
        }
        assert_eq!(
            got,
            vec![Bytes::from_static(b"abc"), Bytes::from_static(b"de")]
        );
    }

    #[test]
    fn push_stops_after_a_complete_frame() {
        let mut decoder = FrameDecoder::new();
        let mut stream = frame(b"one").to_vec();
        stream.extend_from_slice(&frame(b"two"));
        assert_eq!(decoder.push(&stream), 5);
        assert_eq!(decoder.wanted(), 0);
        assert_eq!(decoder.push(&stream[5..]), 0);
        assert_eq!(drain(&mut decoder), vec![Bytes::from_static(b"one")]);
        assert_eq!(decoder.push(&stream[5..]), 5);
        assert_eq!(drain(&mut decoder), vec![Bytes::from_static(b"two")]);
    }

    #[test]
    fn zero_length_frame_is_an_error_and_sticks() {
        let mut decoder = FrameDecoder::new();
        assert_eq!(decoder.push(&[0, 0, 0, 3]), 2);
        assert_eq!(decoder.next_message(), Err(FramingError::EmptyFrame));
        assert_eq!(
            decoder.push(&[0, 3, 1, 2, 3]),
            5,
            "a failed decoder discards everything"
        );
        assert_eq!(decoder.next_message(), Err(FramingError::EmptyFrame));
        assert_eq!(decoder.wanted(), 0);
    }

    #[test]
    fn largest_frame() {
        let msg = vec![7u8; MAX_FRAME_LEN];
        let framed = frame(&msg);
        assert_eq!(framed.len(), MAX_FRAME_LEN + 2);
        let mut decoder = FrameDecoder::new();
        assert_eq!(decoder.push(&framed), framed.len());
        assert_eq!(drain(&mut decoder), vec![Bytes::from(msg)]);
    }

    #[test]
    fn oversized_message_is_cut_not_panicking() {
        let framed = frame(&vec![1u8; MAX_FRAME_LEN + 10]);
        assert_eq!(framed.len(), MAX_FRAME_LEN + 2);
        assert_eq!(&framed[..2], &[0xff, 0xff]);
    }

    #[test]
    fn partial_frame_is_reported() {
        let mut decoder = FrameDecoder::new();
        assert_eq!(decoder.push(&[0, 4, 1]), 3);
        assert_eq!(decoder.next_message(), Ok(None));
        assert!(decoder.is_mid_frame());
        assert_eq!(decoder.wanted(), 3);
    }

    #[test]
    fn encode_appends() {
        let mut out = BytesMut::from(&b"xx"[..]);
        encode_frame(b"ab", &mut out);
        assert_eq!(&out[..], b"xx\x00\x02ab");
    }

    /// Decoding in chunks must give what decoding in one piece gives, error included, and
    /// never panic (`fuzzing::tcp_framing` runs the same check under the fuzzer).
    fn same_in_chunks(stream: &[u8], chunk: usize) {
        let whole = decode_in_chunks(stream, |_| usize::MAX);
        let chunked = decode_in_chunks(stream, |i| 1 + (i * 7 + chunk) % 700);
        assert_eq!(whole, chunked);
    }

    #[test]
    fn odd_streams() {
        same_in_chunks(&[], 1);
        same_in_chunks(&[0], 1);
        same_in_chunks(&[0, 0, 0, 0], 1);
        same_in_chunks(&[0xff, 0xff, 1, 2, 3], 2);
    }

    /// The messages of `stream` fed in chunks of `next_len(i)` bytes, then the error if any.
    fn decode_in_chunks(
        stream: &[u8],
        mut next_len: impl FnMut(usize) -> usize,
    ) -> (Vec<Bytes>, Option<FramingError>) {
        let mut decoder = FrameDecoder::new();
        let mut messages = Vec::new();
        let mut rest = stream;
        let mut i = 0;
        while !rest.is_empty() {
            let len = next_len(i).min(rest.len());
            i += 1;
            let mut chunk = &rest[..len];
            rest = &rest[len..];
            while !chunk.is_empty() {
                let used = decoder.push(chunk);
                chunk = &chunk[used..];
                assert!(
                    decoder.buffered() <= PREFIX_LEN + MAX_FRAME_LEN,
                    "decoder exceeded its bound"
                );
                loop {
                    match decoder.next_message() {
                        Ok(Some(msg)) => messages.push(msg),
                        Ok(None) => break,
                        Err(error) => return (messages, Some(error)),
                    }
                }
            }
        }
        (messages, None)
    }

    fn messages() -> impl Strategy<Value = Vec<Vec<u8>>> {
        prop::collection::vec(prop::collection::vec(any::<u8>(), 1..300), 0..12)
    }

    proptest! {
        #[test]
        fn any_chunking_gives_the_same_messages(
            msgs in messages(),
            cuts in prop::collection::vec(1usize..64, 1..40),
        ) {
            let mut stream = BytesMut::new();
            for msg in &msgs {
                encode_frame(msg, &mut stream);
            }
            let mut decoder = FrameDecoder::new();
            let mut got = Vec::new();
            let mut rest = &stream[..];
            let mut i = 0;
            while !rest.is_empty() {
                let len = cuts[i % cuts.len()].min(rest.len());
                i += 1;
                let mut chunk = &rest[..len];
                rest = &rest[len..];
                while !chunk.is_empty() {
                    let used = decoder.push(chunk);
                    chunk = &chunk[used..];
                    prop_assert!(decoder.buffered() <= PREFIX_LEN + MAX_FRAME_LEN);
                    while let Some(msg) = decoder.next_message().expect("valid stream") {
                        got.push(msg.to_vec());
                    }
                }
            }
            prop_assert_eq!(got, msgs);
            prop_assert!(!decoder.is_mid_frame());
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            data in prop::collection::vec(any::<u8>(), 0..2000),
            chunk in 0usize..64,
        ) {
            same_in_chunks(&data, chunk);
        }
    }
}
