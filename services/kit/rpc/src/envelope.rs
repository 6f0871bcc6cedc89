//! The 5-byte message envelope gRPC, gRPC-Web and Connect streaming share:
//! one flags byte, a big-endian u32 length, then that many bytes.

use bytes::{BufMut, Bytes, BytesMut};

/// Flags: the payload is compressed.
pub const COMPRESSED: u8 = 0x01;
/// Flags: Connect's end-of-stream message.
pub const END_STREAM: u8 = 0x02;
/// Flags: gRPC-Web's trailers frame.
pub const TRAILERS: u8 = 0x80;

/// The size of an envelope's header.
pub const HEADER_LEN: usize = 5;

/// One whole envelope, borrowed from the buffer it was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Envelope<'a> {
    pub flags: u8,
    pub payload: &'a [u8],
}

/// What the front of a buffer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next<'a> {
    /// A whole envelope, and the bytes after it.
    Whole(Envelope<'a>, &'a [u8]),
    /// The start of one; more bytes must come. `needed` is its full size
    /// once the header is known.
    Partial { needed: Option<usize> },
    /// Nothing at all.
    Empty,
}

/// Reads the envelope at the front of `buf`.
pub fn next(buf: &[u8]) -> Next<'_> {
    if buf.is_empty() {
        return Next::Empty;
    }
    let Some(header) = buf.get(..HEADER_LEN) else {
        return Next::Partial { needed: None };
    };
    let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    let needed = HEADER_LEN.saturating_add(length);
    match (buf.get(HEADER_LEN..needed), buf.get(needed..)) {
        (Some(payload), Some(rest)) => Next::Whole(
            Envelope {
                flags: header[0],
                payload,
            },
            rest,
        ),
        _ => Next::Partial {
            needed: Some(needed),
        },
    }
}

/// Splits the envelope at the front of `pending` off it, header and
/// payload, if it is there whole; a partial one stays for more bytes.
pub fn split_whole(pending: &mut BytesMut) -> Option<BytesMut> {
    match next(pending) {
        Next::Whole(found, _) => Some(pending.split_to(HEADER_LEN + found.payload.len())),
        Next::Partial { .. } | Next::Empty => None,
    }
}

/// Appends `payload` to `out` as one envelope with `flags`. A payload over
/// 4 GiB cannot be framed; callers bound messages far below that.
pub fn frame(flags: u8, payload: &[u8], out: &mut impl BufMut) {
    let length = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.put_u8(flags);
    out.put_u32(length);
    out.put_slice(payload);
}

/// `payload` as one envelope with `flags`.
pub fn framed(flags: u8, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(HEADER_LEN + payload.len());
    frame(flags, payload, &mut out);
    out.freeze()
}

/// Follows the envelopes of a stream as its chunks go by (a chunk may hold
/// several envelopes, or part of one) and keeps the payload of the first
/// whose flags carry `wanted` (Connect's end-of-stream message, gRPC-Web's
/// trailers), its first `limit` bytes at most.
#[derive(Debug)]
pub struct Watch {
    wanted: u8,
    limit: usize,
    header: [u8; HEADER_LEN],
    header_filled: usize,
    /// Payload bytes of the current envelope still to come.
    remaining: usize,
    /// The wanted envelope's flags and payload so far.
    keeping: Option<(u8, BytesMut)>,
}

impl Watch {
    pub fn new(wanted: u8, limit: usize) -> Self {
        Self {
            wanted,
            limit,
            header: [0; HEADER_LEN],
            header_filled: 0,
            remaining: 0,
            keeping: None,
        }
    }

    /// Whether the chunks fed so far end where an envelope does (a watch
    /// that wants no flags, `Watch::new(0, 0)`, only follows this).
    pub fn between_envelopes(&self) -> bool {
        self.header_filled == 0 && self.remaining == 0
    }

    /// Takes the next chunk; the wanted envelope (flags and payload) once
    /// it is whole.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Option<(u8, Bytes)> {
        while !chunk.is_empty() {
            if self.remaining == 0 {
                let take = (HEADER_LEN - self.header_filled).min(chunk.len());
                self.header[self.header_filled..self.header_filled + take]
                    .copy_from_slice(&chunk[..take]);
                self.header_filled += take;
                chunk = &chunk[take..];
                if self.header_filled < HEADER_LEN {
                    return None;
                }
                self.header_filled = 0;
                let [flags, a, b, c, d] = self.header;
                self.remaining = u32::from_be_bytes([a, b, c, d]) as usize;
                if flags & self.wanted != 0 {
                    let kept = BytesMut::with_capacity(self.remaining.min(self.limit));
                    if self.remaining == 0 {
                        return Some((flags, kept.freeze()));
                    }
                    self.keeping = Some((flags, kept));
                }
                continue;
            }
            let take = self.remaining.min(chunk.len());
            if let Some((_, kept)) = &mut self.keeping {
                let room = self.limit.saturating_sub(kept.len()).min(take);
                kept.extend_from_slice(&chunk[..room]);
            }
            self.remaining -= take;
            chunk = &chunk[take..];
            if self.remaining == 0
                && let Some((flags, kept)) = self.keeping.take()
            {
                return Some((flags, kept.freeze()));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_finds_its_envelope_however_the_stream_is_cut() {
        let mut stream = Vec::new();
        frame(0, b"first message", &mut stream);
        frame(0, b"", &mut stream);
        frame(0, b"second", &mut stream);
        frame(END_STREAM, br#"{"error":{"code":"aborted"}}"#, &mut stream);
        // Whole in one chunk, and cut at every possible size.
        for size in 1..=stream.len() {
            let mut watch = Watch::new(END_STREAM, 1024);
            let found: Vec<_> = stream.chunks(size).filter_map(|c| watch.feed(c)).collect();
            assert_eq!(
                found,
                vec![(
                    END_STREAM,
                    Bytes::from_static(br#"{"error":{"code":"aborted"}}"#)
                )],
                "chunks of {size}"
            );
        }
        let mut bounded = Watch::new(END_STREAM, 4);
        let found = bounded.feed(&stream);
        assert_eq!(found, Some((END_STREAM, Bytes::from_static(br#"{"er"#))));
    }

    #[test]
    fn frames_and_reads_back() {
        let mut buf = Vec::new();
        frame(0, b"one", &mut buf);
        frame(END_STREAM, b"", &mut buf);
        let Next::Whole(first, rest) = next(&buf) else {
            panic!("whole")
        };
        assert_eq!((first.flags, first.payload), (0, &b"one"[..]));
        let Next::Whole(second, rest) = next(rest) else {
            panic!("whole")
        };
        assert_eq!(
            (second.flags, second.payload, rest),
            (END_STREAM, &b""[..], &b""[..])
        );
        assert_eq!(next(rest), Next::Empty);
    }

    #[test]
    fn whole_envelopes_split_off_partial_ones_stay() {
        let mut pending = BytesMut::new();
        frame(0, b"ab", &mut pending);
        pending.extend_from_slice(&[0, 0, 0]);
        let whole = split_whole(&mut pending).expect("whole");
        assert_eq!(&whole[..], &framed(0, b"ab")[..]);
        assert_eq!(split_whole(&mut pending), None);
        assert_eq!(&pending[..], &[0, 0, 0]);
    }

    #[test]
    fn partial_envelopes_wait() {
        assert_eq!(next(&[0, 0]), Next::Partial { needed: None });
        assert_eq!(
            next(&[0, 0, 0, 0, 9, 1]),
            Next::Partial { needed: Some(14) }
        );
        assert_eq!(
            next(&[0, 0xff, 0xff, 0xff, 0xff]),
            Next::Partial {
                needed: Some(5 + u32::MAX as usize)
            }
        );
    }
}
