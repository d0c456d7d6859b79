//! The visit log: `visits.txt` in the replica's data directory, one record a line.
//!
//! Promises:
//! - an acknowledged visit is one whole line on disk: each record goes down in a single
//!   append write (so concurrent instances never interleave), and a write that fails half-way
//!   is cut back off when that cannot touch anyone else's line;
//! - each acknowledged visit's count is its own record's number, except between twins: two
//!   instances that record the same microsecond write identical records and may both show the
//!   first one's number (both records are in the log and in the total; see `append.rs`);
//! - a fragment left by a crash never spoils the log: readers skip any line that is not a
//!   well-formed record, and the next visit starts on a fresh line;
//! - nothing reads the whole file into memory: counting is arithmetic on the file size,
//!   the tail is found by reading backwards, and listing streams fixed-size chunks.

use crate::record::RECORD_LEN;
use std::fs::{self, File};
use std::io::{ErrorKind, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub const LOG_FILE_NAME: &str = "visits.txt";
/// Bytes read from disk at a time when listing or looking for the tail.
const CHUNK_LEN: usize = 64 * 1024;

mod append;
mod batch;
mod chunks;
mod diagnosis;
mod error;
mod held;
mod read;
mod seal;
mod segments;
#[cfg(test)]
mod test_support;

pub use error::LogError;
pub use read::Records;
pub use seal::SealProgress;
pub use segments::{Layout, Sealed};

/// `SEGMENT_BYTES`' default: `visits.txt` is sealed once it holds 4 MiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 4 << 20;

/// When an append counts as done (`APPEND_FSYNC`, after Redis's `appendfsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fsync {
    /// Once the write returned: the line is in the page cache, so it survives the process
    /// and the pod, not the node losing power.
    No,
    /// Once the data is synced to the volume (`sync-data`), one sync for a whole batch: it
    /// survives power loss too.
    #[default]
    Always,
}

impl Fsync {
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "always" => Ok(Fsync::Always),
            "no" => Ok(Fsync::No),
            _ => Err(format!("APPEND_FSYNC must be always or no, not {value:?}")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Fsync::Always => "always",
            Fsync::No => "no",
        }
    }
}

/// The log of one replica.
#[derive(Debug, Clone)]
pub struct VisitLog {
    dir: PathBuf,
    fsync: Fsync,
    /// The sole writer's open log file (see `held.rs`); `None` where other processes append
    /// too (Spin: an instance per request).
    held: Option<held::HeldFile>,
    /// The sole writer seals `visits.txt` once it holds this much (`SEGMENT_BYTES`; 0: never).
    segment_bytes: u64,
    /// Sealed segments are deleted, oldest first, past this (`RETAIN_BYTES`; `None`: never).
    retain_bytes: Option<u64>,
}

impl VisitLog {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::with_fsync(dir, Fsync::default())
    }

    pub fn with_fsync(dir: impl Into<PathBuf>, fsync: Fsync) -> Self {
        Self {
            dir: dir.into(),
            fsync,
            held: None,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            retain_bytes: None,
        }
    }

    /// Sets when the sole writer seals (`segment_bytes`, 0 for never) and how much the
    /// directory keeps (`retain_bytes`).
    pub fn with_segments(self, segment_bytes: u64, retain_bytes: Option<u64>) -> Self {
        Self {
            segment_bytes,
            retain_bytes,
            ..self
        }
    }

    /// For the only process appending to this log, one batch at a time (the server
    /// component: one per replica's volume): the file is opened once and held, so appends
    /// cost fewer file calls and need no descriptor of their own (`held.rs`).
    pub fn sole_writer(self) -> Self {
        Self {
            held: Some(held::HeldFile::default()),
            ..self
        }
    }

    pub fn fsync(&self) -> Fsync {
        self.fsync
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(LOG_FILE_NAME)
    }

    /// The number of recorded visits: those in sealed segments (let go ones included) and
    /// whole record widths in `visits.txt`. A fragment from a crash is shorter than a record,
    /// so it does not count unless fragments add up to a whole record's width.
    pub fn count(&self) -> Result<u64, LogError> {
        let size = self.size_bytes()?;
        Ok(self.base()? + count_for_size(size))
    }

    /// The active segment's (`visits.txt`'s) size on disk; 0 before the first visit.
    pub fn size_bytes(&self) -> Result<u64, LogError> {
        let path = self.path();
        match fs::metadata(&path) {
            Ok(meta) => Ok(meta.len()),
            Err(err) if err.kind() == ErrorKind::NotFound => {
                self.require_directory()?;
                Ok(0)
            }
            Err(source) => Err(LogError::Io {
                action: "read the size of",
                path,
                source,
            }),
        }
    }
}

fn count_for_size(size: u64) -> u64 {
    size / RECORD_LEN as u64
}

/// The file's size, by seeking to its end (and leaving the position there): on WASI 0.2 one
/// `stat` of the descriptor, where `metadata()` adds a `metadata-hash` call for the inode
/// number, which the visit path, at two sizes a visit, would pay for nothing.
fn file_len(file: &mut File, path: &Path) -> Result<u64, LogError> {
    file.seek(SeekFrom::End(0)).map_err(|source| LogError::Io {
        action: "read the size of",
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::test_support::{all, record};
    use super::*;

    #[test]
    fn a_missing_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let log = VisitLog::new(dir.path().join("absent"));
        for err in [
            log.append(&record(1)).unwrap_err(),
            log.check_writable().unwrap_err(),
            log.count().unwrap_err(),
            log.records(None).unwrap_err(),
        ] {
            assert!(matches!(err, LogError::MissingDirectory(_)), "{err}");
        }
        assert!(!dir.path().join("absent").exists());
    }

    #[test]
    fn an_empty_directory_is_an_empty_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = VisitLog::new(dir.path());
        assert_eq!(log.count().unwrap(), 0);
        assert!(all(&log, None).is_empty());
        log.check_writable().unwrap();
        assert_eq!(log.count().unwrap(), 0, "the probe records nothing");
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(left, [LOG_FILE_NAME], "the probe removed its file");
    }
}
