//! Where a replica's visits are read from: the file log (`visits.txt`, both components) or a
//! store an entry point brings (the Spin component's SQLite database, `components/spin-sqlite`).
//! The handler reads through [`VisitStore`]; appends go through [`crate::Host::append`].

use crate::metrics::LogFigures;
use crate::record::RECORD_LEN;
use crate::visit_log::{LogError, Records, VisitLog};
use std::fmt;
use std::io;

/// What `/visits`, `/readyz` and `/metrics` read. Methods are synchronous: both stores answer
/// from the host at once (a file, or Spin's SQLite host calls).
pub trait VisitStore {
    /// Which store serves and where, for `/readyz` (`file /data/visits.txt`).
    fn describe(&self) -> String;
    /// Whether a visit could be recorded now, checked without recording one.
    fn check_writable(&self) -> Result<(), LogError>;
    /// The visit count and the bytes the store takes, for `/metrics`.
    /// The visits and bytes it holds (`free_bytes` is the caller's to fill).
    fn usage(&self) -> Result<LogFigures, LogError>;
    /// The visits, oldest first, or only the last `tail` of them.
    fn records(&self, tail: Option<u64>) -> Result<Box<dyn RecordSource>, LogError>;
}

/// A listing's records, a chunk at a time, so memory stays bounded whatever the store's size.
pub trait RecordSource: fmt::Debug {
    /// The replica's total, as of when the listing began.
    fn visit_count(&self) -> u64;
    /// The number of the first visit listed (above 1 after retention or with a tail).
    fn first_visit(&self) -> u64;
    /// Calls `each` with the timestamp of every record of the next chunk (without its
    /// newline); `false` once the records are exhausted.
    fn next_chunk(&mut self, each: &mut dyn FnMut(&[u8])) -> io::Result<bool>;
}

impl VisitStore for VisitLog {
    fn describe(&self) -> String {
        format!("file {}", self.path().display())
    }

    fn check_writable(&self) -> Result<(), LogError> {
        VisitLog::check_writable(self)
    }

    fn usage(&self) -> Result<LogFigures, LogError> {
        let active_bytes = self.size_bytes()?;
        let layout = self.layout()?;
        Ok(LogFigures {
            visits: layout.base() + active_bytes / RECORD_LEN as u64,
            let_go: layout.let_go(),
            active_bytes,
            sealed_bytes: layout.sealed_bytes(),
            sealed_raw_bytes: layout.sealed_records() * RECORD_LEN as u64,
            free_bytes: None,
        })
    }

    fn records(&self, tail: Option<u64>) -> Result<Box<dyn RecordSource>, LogError> {
        Ok(Box::new(VisitLog::records(self, tail)?))
    }
}

impl RecordSource for Records {
    fn visit_count(&self) -> u64 {
        Records::visit_count(self)
    }

    fn first_visit(&self) -> u64 {
        Records::first_visit(self)
    }

    fn next_chunk(&mut self, each: &mut dyn FnMut(&[u8])) -> io::Result<bool> {
        Records::next_chunk(self, each)
    }
}

/// `VISIT_STORE`: which store records visits. Kept apart from [`crate::config::Config`], like
/// `PeerService`, since only the Spin component reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreChoice {
    /// `visits.txt` in `DATA_DIR`.
    File,
    /// Spin's SQLite database `default` (the `spin_visits_sqlite.wasm` build only).
    Sqlite,
    /// The file where `DATA_DIR` is preopened writable, else SQLite where a database is
    /// granted, else the file (whose error says why nothing can be recorded).
    #[default]
    Auto,
}

impl StoreChoice {
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        Self::parse(lookup("VISIT_STORE").as_deref())
    }

    /// Unset or empty is `auto`.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value.map(str::trim).unwrap_or("") {
            "" | "auto" => Ok(StoreChoice::Auto),
            "file" => Ok(StoreChoice::File),
            "sqlite" => Ok(StoreChoice::Sqlite),
            other => Err(format!(
                "VISIT_STORE must be file, sqlite or auto, not {other:?}"
            )),
        }
    }

    /// What serves, given whether the data directory is writable and whether a database
    /// is granted (each asked only when the answer matters: `granted` is lazy).
    pub fn resolve(self, dir_writable: bool, granted: impl FnOnce() -> bool) -> Resolved {
        match self {
            StoreChoice::File => Resolved::File,
            StoreChoice::Sqlite => Resolved::Sqlite,
            StoreChoice::Auto if dir_writable => Resolved::File,
            StoreChoice::Auto if granted() => Resolved::Sqlite,
            StoreChoice::Auto => Resolved::File,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    File,
    Sqlite,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_is_one_of_three() {
        assert_eq!(StoreChoice::parse(None), Ok(StoreChoice::Auto));
        assert_eq!(StoreChoice::parse(Some(" ")), Ok(StoreChoice::Auto));
        assert_eq!(StoreChoice::parse(Some("sqlite")), Ok(StoreChoice::Sqlite));
        assert_eq!(StoreChoice::parse(Some("file")), Ok(StoreChoice::File));
        let err = StoreChoice::parse(Some("SQLite")).unwrap_err();
        assert!(err.contains("VISIT_STORE"), "{err}");
    }

    #[test]
    fn auto_prefers_a_writable_directory_then_a_granted_database() {
        let asked = std::cell::Cell::new(false);
        let granted = |answer: bool| {
            let asked = &asked;
            move || {
                asked.set(true);
                answer
            }
        };
        assert_eq!(
            StoreChoice::Auto.resolve(true, granted(true)),
            Resolved::File
        );
        assert!(!asked.get(), "a writable directory needs no database");
        assert_eq!(
            StoreChoice::Auto.resolve(false, granted(true)),
            Resolved::Sqlite
        );
        assert_eq!(
            StoreChoice::Auto.resolve(false, granted(false)),
            Resolved::File
        );
        assert_eq!(
            StoreChoice::Sqlite.resolve(true, granted(false)),
            Resolved::Sqlite
        );
        assert_eq!(
            StoreChoice::File.resolve(false, granted(true)),
            Resolved::File
        );
    }
}
