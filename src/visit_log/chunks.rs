//! The log read in chunks, by the listing (`read.rs`) and by sealing (`seal.rs`): a chunk
//! ends wherever its read did, so the start of a line cut by its end is carried into the next
//! chunk, and only whole lines are looked at; of those, only well-formed records (a crash's
//! fragment is skipped).

use crate::record::is_timestamp;
use std::io;

/// What followed the last newline of the chunk before.
#[derive(Debug, Default)]
pub(super) struct Carry(Vec<u8>);

impl Carry {
    /// Reads the next chunk, up to `len` bytes, with `read` (which fills the buffer it is given
    /// and says how much it put there) after what was carried, and calls `each` with every
    /// well-formed record among its whole lines, without the newline. Returns what `read`
    /// said: 0 at the end of the input, when what is carried is no whole line.
    pub fn next<E: From<io::Error>>(
        &mut self,
        len: usize,
        read: impl FnOnce(&mut [u8]) -> io::Result<usize>,
        mut each: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<usize, E> {
        let mut chunk = std::mem::take(&mut self.0);
        let carried = chunk.len();
        chunk.resize(carried + len, 0);
        let read = read(&mut chunk[carried..])?;
        chunk.truncate(carried + read);
        let complete = chunk
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |at| at + 1);
        for line in chunk[..complete].split(|&b| b == b'\n') {
            if is_timestamp(line) {
                each(line)?;
            }
        }
        chunk.drain(..complete);
        self.0 = chunk;
        Ok(read)
    }

    /// Forgets what was carried: the next chunk starts a new input.
    pub fn clear(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &[u8] = b"2023-11-18 17:54:26.913511+03:00\n";
    const B: &[u8] = b"2023-11-18 17:54:27.000001+03:00\n";

    #[test]
    fn a_record_cut_by_a_chunk_is_read_whole_with_the_next() {
        let input = [A, b"torn\n", B].concat();
        let mut rest = &input[..];
        let mut carry = Carry::default();
        let mut seen = Vec::new();
        let mut read = |buf: &mut [u8]| {
            let n = buf.len().min(rest.len());
            buf[..n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            Ok(n)
        };
        // 10-byte chunks cut every record; each is seen once, whole, in order.
        while carry
            .next(10, &mut read, |record| {
                seen.push(record.to_vec());
                Ok::<(), io::Error>(())
            })
            .unwrap()
            > 0
        {}
        assert_eq!(seen, [&A[..32], &B[..32]]);
    }
}
