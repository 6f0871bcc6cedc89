//! The runner's framing: each message preceded by its length, four bytes
//! big-endian, on stdin (what to do) and stdout (what happened).

use std::io::{Read, Write};

use prost::Message;

/// The next message on `from`, or `None` at its end.
pub fn read<M: Message + Default>(mut from: impl Read) -> std::io::Result<Option<M>> {
    let mut length = [0u8; 4];
    match from.read_exact(&mut length) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) => return Err(error),
    }
    let mut message = vec![0u8; u32::from_be_bytes(length) as usize];
    from.read_exact(&mut message)?;
    M::decode(message.as_slice())
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// Writes `message` to `to`, framed, and flushes it.
pub fn write(message: &impl Message, mut to: impl Write) -> std::io::Result<()> {
    let bytes = message.encode_to_vec();
    let length = u32::try_from(bytes.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "message too long"))?;
    to.write_all(&length.to_be_bytes())?;
    to.write_all(&bytes)?;
    to.flush()
}
