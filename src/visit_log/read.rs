//! Reading the log: the listing streams fixed-size chunks and the tail is found by reading
//! backwards, so nothing holds the whole file.

use super::{count_for_size, file_len, LogError, VisitLog, CHUNK_LEN};
use crate::record::{is_timestamp, TIMESTAMP_LEN};
use std::fs::File;
use std::io::{self, ErrorKind, Read, Seek, SeekFrom};

impl VisitLog {
    /// Streams the records, oldest first, or only the last `tail` of them.
    pub fn records(&self, tail: Option<u64>) -> Result<Records, LogError> {
        let path = self.path();
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(err) if err.kind() == ErrorKind::NotFound => {
                self.require_directory()?;
                return Ok(Records::empty());
            }
            Err(source) => {
                return Err(LogError::Io {
                    action: "open",
                    path,
                    source,
                })
            }
        };
        let size = file_len(&mut file, &path)?;
        let read_err = |source| LogError::Io {
            action: "read",
            path: path.clone(),
            source,
        };
        let end = end_of_last_line(&mut file, size).map_err(read_err)?;
        let start = match tail {
            None => 0,
            Some(lines) => start_of_last_lines(&mut file, end, lines).map_err(read_err)?,
        };
        file.seek(SeekFrom::Start(start)).map_err(read_err)?;
        Ok(Records {
            file: Some(file),
            count: count_for_size(size),
            remaining: end - start,
            carry: Vec::new(),
        })
    }
}

/// The offset just past the last newline at or before `size`: a torn tail is not a line.
fn end_of_last_line(file: &mut File, size: u64) -> io::Result<u64> {
    let mut end = size;
    let mut buf = vec![0u8; CHUNK_LEN.min(size as usize)];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        if let Some(at) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(start + at as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// The offset where the last `lines` lines before `end` (a line boundary) begin.
fn start_of_last_lines(file: &mut File, end: u64, lines: u64) -> io::Result<u64> {
    if lines == 0 {
        return Ok(end);
    }
    // The newline ending the last line is at end - 1; the line `lines` back starts just
    // after the newline that precedes it, so we look for `lines` newlines before end - 1.
    let mut newlines_to_find = lines;
    let mut pos = end.saturating_sub(1);
    let mut buf = vec![0u8; CHUNK_LEN];
    while pos > 0 {
        let start = pos.saturating_sub(CHUNK_LEN as u64);
        let chunk = &mut buf[..(pos - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(chunk)?;
        for (at, _) in chunk.iter().enumerate().rev().filter(|(_, &b)| b == b'\n') {
            newlines_to_find -= 1;
            if newlines_to_find == 0 {
                return Ok(start + at as u64 + 1);
            }
        }
        pos = start;
    }
    Ok(0)
}

/// The well-formed records of a range of the log, read a chunk at a time.
#[derive(Debug)]
pub struct Records {
    file: Option<File>,
    /// The log's visit count when it was opened, from the same size the range was cut by.
    count: u64,
    remaining: u64,
    /// The start of a line whose end is in the next chunk.
    carry: Vec<u8>,
}

impl Records {
    fn empty() -> Self {
        Self {
            file: None,
            count: 0,
            remaining: 0,
            carry: Vec::new(),
        }
    }

    /// The replica's total visit count, as [`VisitLog::count`] would say at opening time;
    /// saves `/visits` a second look at the file.
    pub fn visit_count(&self) -> u64 {
        self.count
    }

    /// Calls `each` with every well-formed timestamp (no newline) in the next chunk of the
    /// file; `Ok(false)` once the range is exhausted. Malformed lines are skipped.
    pub fn next_chunk(&mut self, mut each: impl FnMut(&[u8])) -> io::Result<bool> {
        let Some(file) = self.file.as_mut() else {
            return Ok(false);
        };
        if self.remaining == 0 {
            return Ok(false);
        }
        let want = CHUNK_LEN.min(self.remaining as usize);
        let mut chunk = std::mem::take(&mut self.carry);
        let carried = chunk.len();
        chunk.resize(carried + want, 0);
        file.read_exact(&mut chunk[carried..])?;
        self.remaining -= want as u64;

        // The range ends on a newline, so only a chunk in the middle can end mid-line.
        let complete = match chunk.iter().rposition(|&b| b == b'\n') {
            Some(at) => at + 1,
            None => 0,
        };
        for line in chunk[..complete].split(|&b| b == b'\n') {
            if line.len() == TIMESTAMP_LEN && is_timestamp(line) {
                each(line);
            }
        }
        chunk.drain(..complete);
        self.carry = chunk;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{all, record};
    use super::*;
    use crate::record::RECORD_LEN;
    use std::fs;

    #[test]
    fn lists_all_and_tails() {
        let dir = tempfile::tempdir().unwrap();
        let log = VisitLog::new(dir.path());
        for s in 0..50 {
            log.append(&record(s)).unwrap();
        }
        let every = all(&log, None);
        assert_eq!(every.len(), 50);
        assert_eq!(all(&log, Some(3)), every[47..].to_vec());
        assert_eq!(all(&log, Some(0)), Vec::<String>::new());
        assert_eq!(all(&log, Some(50)), every);
        assert_eq!(all(&log, Some(99_999_999_999)), every);
    }

    #[test]
    fn streams_a_log_larger_than_one_chunk_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = VisitLog::new(dir.path());
        let lines: Vec<[u8; RECORD_LEN]> = (0..5000).map(|i| record(i % 60)).collect();
        fs::write(log.path(), lines.concat()).unwrap();
        let listed = all(&log, None);
        assert_eq!(listed.len(), 5000);
        assert_eq!(all(&log, Some(4000)), listed[1000..].to_vec());
        assert_eq!(log.count().unwrap(), 5000);
    }
}
