//! Reading the log across its segments, oldest first: each sealed segment decompressed on
//! the fly, then `visits.txt`; a chunk at a time, so memory stays bounded whatever the
//! log's size. The tail is found by reading `visits.txt` backwards and by the sealed
//! segments' line counts (their names), so only the segment where it starts is decompressed
//! (and its head skipped).

use super::chunks::Carry;
use super::{count_for_size, file_len, LogError, VisitLog, CHUNK_LEN};
use crate::record::{is_timestamp, TIMESTAMP_LEN};
use flate2::read::GzDecoder;
use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Seek, SeekFrom};
use std::path::PathBuf;

impl VisitLog {
    /// Streams the records, oldest first, or only the last `tail` of them.
    pub fn records(&self, tail: Option<u64>) -> Result<Records, LogError> {
        // The segments first, then the active file: the server seals on the thread that
        // reads, so nothing is sealed in between there (and Spin instances never seal).
        let layout = self.layout()?;
        let path = self.path();
        let read_err = |source| LogError::Io {
            action: "read",
            path: path.clone(),
            source,
        };
        let (active, size) = match File::open(&path) {
            Ok(mut file) => {
                let size = file_len(&mut file, &path)?;
                (Some(file), size)
            }
            Err(err) if err.kind() == ErrorKind::NotFound => (None, 0),
            Err(source) => {
                return Err(LogError::Io {
                    action: "open",
                    path,
                    source,
                })
            }
        };
        let count = layout.base() + count_for_size(size);
        let retained = count - layout.let_go();
        let mut pending = VecDeque::new();
        let mut wanted = tail.unwrap_or(u64::MAX);
        if let Some(mut file) = active {
            let end = end_of_last_line(&mut file, size).map_err(read_err)?;
            let (start, found) = match tail {
                None => (0, 0),
                Some(lines) => start_of_last_lines(&mut file, end, lines).map_err(read_err)?,
            };
            wanted -= found;
            pending.push_front(Pending::Active { file, start, end });
        }
        for sealed in layout.sealed.iter().rev() {
            if wanted == 0 {
                break;
            }
            let skip = sealed.records().saturating_sub(wanted);
            wanted = wanted.saturating_sub(sealed.records());
            pending.push_front(Pending::Sealed {
                path: self.sealed_path(sealed),
                skip,
            });
        }
        let listed = tail.map_or(retained, |lines| lines.min(retained));
        Ok(Records {
            count,
            first: count + 1 - listed,
            pending,
            current: None,
            carry: Carry::default(),
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

/// The offset where the last `lines` lines before `end` (a line boundary) begin, and how
/// many lines that is (fewer when the file has fewer).
fn start_of_last_lines(file: &mut File, end: u64, lines: u64) -> io::Result<(u64, u64)> {
    if lines == 0 {
        return Ok((end, 0));
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
                return Ok((start + at as u64 + 1, lines));
            }
        }
        pos = start;
    }
    // The first line has no newline before it.
    let found = lines - newlines_to_find + u64::from(end > 0);
    Ok((0, found))
}

/// A part of the log still to read.
enum Pending {
    /// A sealed segment, of which the first `skip` lines are not wanted.
    Sealed { path: PathBuf, skip: u64 },
    /// `visits.txt` from `start` to `end`, both line boundaries.
    Active { file: File, start: u64, end: u64 },
}

/// The part being read: its bytes, and lines still to skip.
struct Source {
    reader: Box<dyn Read>,
    skip: u64,
}

/// The well-formed records of a range of the log, read a chunk at a time.
pub struct Records {
    /// The log's visit count when it was opened, from the same sizes the range was cut by.
    count: u64,
    /// The number of the first visit listed.
    first: u64,
    pending: VecDeque<Pending>,
    current: Option<Source>,
    /// The start of a line whose end is in the next chunk.
    carry: Carry,
}

impl fmt::Debug for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Records")
            .field("count", &self.count)
            .field("first", &self.first)
            .field("parts_left", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Records {
    /// The replica's total visit count, as [`VisitLog::count`] would say at opening time;
    /// saves `/visits` a second look at the file.
    pub fn visit_count(&self) -> u64 {
        self.count
    }

    /// The number of the first visit listed (the visits before it were let go by retention
    /// or left out by a tail); one past the count when nothing is listed.
    pub fn first_visit(&self) -> u64 {
        self.first
    }

    /// Calls `each` with every well-formed timestamp (no newline) in the next chunk of the
    /// log; `Ok(false)` once the range is exhausted. Malformed lines are skipped.
    pub fn next_chunk(&mut self, mut each: impl FnMut(&[u8])) -> io::Result<bool> {
        loop {
            if self.current.is_none() {
                let Some(part) = self.pending.pop_front() else {
                    return Ok(false);
                };
                self.current = open(part)?;
                self.carry.clear();
                continue;
            }
            let source = self.current.as_mut().expect("checked above");
            let read = self.carry.next(
                CHUNK_LEN,
                |buf| fill(&mut source.reader, buf),
                |record| {
                    match source.skip {
                        0 => each(record),
                        _ => source.skip -= 1,
                    }
                    Ok::<(), io::Error>(())
                },
            )?;
            if read == 0 {
                // Each part ends on a line boundary: what is carried is no whole line.
                self.current = None;
                continue;
            }
            return Ok(true);
        }
    }
}

/// Opens a part for reading; `None` for a sealed segment deleted since the listing began
/// (retention let it go).
fn open(part: Pending) -> io::Result<Option<Source>> {
    Ok(Some(match part {
        Pending::Sealed { path, skip } => match File::open(&path) {
            Ok(file) => Source {
                reader: Box::new(GzDecoder::new(file)),
                skip,
            },
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        },
        Pending::Active {
            mut file,
            start,
            end,
        } => {
            file.seek(SeekFrom::Start(start))?;
            Source {
                reader: Box::new(file.take(end - start)),
                skip: 0,
            }
        }
    }))
}

/// Reads until `buf` is full or the reader ends; the bytes read.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(filled)
}

/// Well-formed lines one at a time, from `visits.txt` or a sealed segment: for recovery's
/// comparison of the two.
pub(super) struct LineReader {
    reader: BufReader<Box<dyn Read>>,
    line: Vec<u8>,
}

impl LineReader {
    pub(super) fn plain(file: File) -> Self {
        Self::new(Box::new(file))
    }

    pub(super) fn sealed(file: File) -> Self {
        Self::new(Box::new(GzDecoder::new(file)))
    }

    fn new(reader: Box<dyn Read>) -> Self {
        Self {
            reader: BufReader::with_capacity(CHUNK_LEN, reader),
            line: Vec::with_capacity(TIMESTAMP_LEN + 1),
        }
    }

    /// The next well-formed timestamp, without its newline.
    pub(super) fn next_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        loop {
            self.line.clear();
            if self.reader.read_until(b'\n', &mut self.line)? == 0 {
                return Ok(None);
            }
            if self.line.last() != Some(&b'\n') {
                return Ok(None);
            }
            let text = &self.line[..self.line.len() - 1];
            if text.len() == TIMESTAMP_LEN && is_timestamp(text) {
                return Ok(Some(text.to_vec()));
            }
        }
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
