//! A method that answers with one message (unary, client streaming) gets
//! exactly one: an answer with a second message, or ending `ok` with none,
//! breaks the call's cardinality and is `unimplemented` (gRPC's status
//! codes document), not its first message taken and the rest dropped, nor
//! tonic's `internal` "missing message". The messages are counted by their
//! envelopes' prefixes as the body's bytes pass, without reading ahead.

use tonic::{Code, Status};

/// The status of an answer whose count of messages is wrong.
pub(super) fn broken(messages: &str) -> Status {
    Status::new(
        Code::Unimplemented,
        format!("the answer to a call of one answer had {messages}"),
    )
}

/// Counts the messages of a gRPC body as its bytes pass.
#[derive(Debug, Default)]
pub(super) struct Envelopes {
    /// Messages begun.
    count: u32,
    /// Bytes of the current prefix (flag and length) read: 0 to 4.
    prefix_read: u8,
    /// The current prefix's length, as far as read.
    length: u32,
    /// Bytes of the current message still to pass.
    remaining: u32,
}

/// An envelope's prefix: a flag byte and a big-endian length.
const PREFIX: u8 = 5;

impl Envelopes {
    pub(super) fn count(&self) -> u32 {
        self.count
    }

    /// Takes the next bytes of the body; where in them a second message
    /// begins, if one does.
    pub(super) fn pass(&mut self, mut data: &[u8]) -> Option<usize> {
        let len = data.len();
        while !data.is_empty() {
            if self.remaining > 0 {
                let skipped = data.len().min(self.remaining as usize);
                // At most `remaining`, a u32.
                self.remaining -= skipped as u32;
                data = &data[skipped..];
                continue;
            }
            if self.prefix_read == 0 {
                if self.count == 1 {
                    return Some(len - data.len());
                }
                self.count += 1;
            } else {
                // Bytes 1 to 4 of the prefix: the length.
                self.length = self.length << 8 | u32::from(data[0]);
            }
            self.prefix_read += 1;
            data = &data[1..];
            if self.prefix_read == PREFIX {
                self.remaining = std::mem::take(&mut self.length);
                self.prefix_read = 0;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&u32::try_from(payload.len()).expect("short").to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    #[test]
    fn one_message_in_any_chunks_is_one() {
        let whole = envelope(b"hello, world");
        for size in 1..whole.len() {
            let mut envelopes = Envelopes::default();
            for chunk in whole.chunks(size) {
                assert_eq!(envelopes.pass(chunk), None, "chunks of {size}");
            }
            assert_eq!(envelopes.count(), 1);
        }
    }

    #[test]
    fn an_empty_message_counts_and_a_second_is_found_where_it_begins() {
        let mut two = envelope(b"");
        let second_at = two.len();
        two.extend(envelope(b"again"));
        for size in 1..two.len() {
            let mut envelopes = Envelopes::default();
            let found = two
                .chunks(size)
                .enumerate()
                .find_map(|(nth, chunk)| envelopes.pass(chunk).map(|at| nth * size + at));
            assert_eq!(found, Some(second_at), "chunks of {size}");
        }
    }

    #[test]
    fn no_bytes_no_message() {
        let mut envelopes = Envelopes::default();
        assert_eq!(envelopes.pass(&[]), None);
        assert_eq!(envelopes.count(), 0);
    }
}
