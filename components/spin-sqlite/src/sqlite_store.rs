//! The visits in Spin's SQLite database `default`: table `visits`, one row a visit, its
//! `id` (the rowid) the visit's number. Rows are only ever inserted one statement at a time,
//! so ids run 1..=n without gaps (SQLite gives a new row max(rowid) + 1 under its write lock,
//! and a failed insert leaves none): the count is `max(id)`, an index lookup, and each visit's
//! count is its own id, exact across concurrent instances.
//!
//! Every call is one statement, never a transaction spanning calls: the host may share one
//! connection among instances, and a `BEGIN` of one would capture another's statements.

use spin_sdk::sqlite::{Connection, Error, Value};
use spin_visits::metrics::LogFigures;
use spin_visits::store::{RecordSource, VisitStore};
use spin_visits::visit_log::{Fsync, LogError};
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::rc::Rc;

const DATABASE: &str = "default";
/// Rows a `/visits` page reads: about 64 KiB of text, as the file log's chunk.
const PAGE_ROWS: i64 = 2000;

/// Whether `spin.toml` grants this component the database (`sqlite_databases`).
pub fn is_granted() -> bool {
    Connection::open(DATABASE).is_ok()
}

pub struct SqliteStore {
    connection: Rc<Connection>,
}

impl SqliteStore {
    /// `APPEND_FSYNC=no` lets a commit return before SQLite syncs the WAL (`synchronous =
    /// NORMAL`: a committed visit survives the process, not the node losing power), at one
    /// more host call per request; `always` keeps SQLite's default, a sync per commit.
    pub fn open(fsync: Fsync) -> Result<Self, LogError> {
        let connection = Connection::open(DATABASE).map_err(|err| failed("open", err))?;
        if fsync == Fsync::No {
            connection
                .execute("PRAGMA synchronous = NORMAL", &[])
                .map_err(|err| failed("configure", err))?;
        }
        Ok(Self {
            connection: Rc::new(connection),
        })
    }

    /// Records one visit; its count is its row's id.
    pub fn append(&self, timestamp: &str) -> Result<u64, LogError> {
        let insert = || {
            self.connection.execute(
                "INSERT INTO visits (at) VALUES (?) RETURNING id",
                &[Value::Text(timestamp.into())],
            )
        };
        let inserted = match insert() {
            Err(err) if is_missing_table(&err) => {
                self.create_schema()?;
                insert()
            }
            other => other,
        }
        .map_err(|err| failed("record a visit in", err))?;
        match inserted.rows.first().and_then(|row| row.values.first()) {
            Some(Value::Integer(id)) => Ok(*id as u64),
            other => Err(failed_with(
                "record a visit in",
                format!("no id back: {other:?}"),
            )),
        }
    }

    /// WAL: readers (`/visits`) never block the writer, and a commit syncs one file. The
    /// setting is stored in the database, so it is made once, with the table.
    fn create_schema(&self) -> Result<(), LogError> {
        for statement in [
            "PRAGMA journal_mode = WAL",
            "CREATE TABLE IF NOT EXISTS visits (id INTEGER PRIMARY KEY, at TEXT NOT NULL)",
        ] {
            self.connection
                .execute(statement, &[])
                .map_err(|err| failed("create the visits table in", err))?;
        }
        Ok(())
    }

    fn count(&self) -> Result<u64, LogError> {
        match self.single_integer("SELECT coalesce(max(id), 0) FROM visits") {
            Err(err) if is_missing_table(&err) => Ok(0),
            other => other
                .map(|count| count as u64)
                .map_err(|err| failed("count the visits in", err)),
        }
    }

    fn single_integer(&self, query: &str) -> Result<i64, Error> {
        let result = self.connection.execute(query, &[])?;
        match result.rows.first().and_then(|row| row.values.first()) {
            Some(Value::Integer(value)) => Ok(*value),
            other => Err(Error::Io(format!("{query}: not an integer: {other:?}"))),
        }
    }
}

impl VisitStore for SqliteStore {
    fn describe(&self) -> String {
        format!("Spin's SQLite database \"{DATABASE}\"")
    }

    /// A write that changes nothing: it takes SQLite's write lock, which a read-only or
    /// unwritable database refuses; the table is created first if it is missing.
    fn check_writable(&self) -> Result<(), LogError> {
        let probe = || {
            self.connection
                .execute("UPDATE visits SET at = at WHERE 0", &[])
        };
        match probe() {
            Err(err) if is_missing_table(&err) => {
                self.create_schema()?;
                probe()
            }
            other => other,
        }
        .map(drop)
        .map_err(|err| failed("write to", err))
    }

    fn usage(&self) -> Result<LogFigures, LogError> {
        let visits = self.count()?;
        let bytes = self
            .single_integer(
                "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
            )
            .map_err(|err| failed("read the size of", err))?;
        Ok(LogFigures {
            visits,
            active_bytes: bytes as u64,
            ..LogFigures::default()
        })
    }

    fn records(&self, tail: Option<u64>) -> Result<Box<dyn RecordSource>, LogError> {
        let count = self.count()?;
        let first = tail.map_or(0, |tail| count.saturating_sub(tail));
        Ok(Box::new(Rows {
            connection: Rc::clone(&self.connection),
            count,
            first: first + 1,
            after: first as i64,
            last: count as i64,
        }))
    }
}

/// A listing as pages of ids `after+1..=last`, fixed when it began, so the body agrees with
/// `x-visit-count` whatever is recorded meanwhile.
struct Rows {
    connection: Rc<Connection>,
    count: u64,
    /// The first id listed.
    first: u64,
    after: i64,
    last: i64,
}

impl fmt::Debug for Rows {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rows")
            .field("after", &self.after)
            .field("last", &self.last)
            .finish()
    }
}

impl RecordSource for Rows {
    fn visit_count(&self) -> u64 {
        self.count
    }

    fn first_visit(&self) -> u64 {
        self.first
    }

    fn next_chunk(&mut self, each: &mut dyn FnMut(&[u8])) -> io::Result<bool> {
        if self.after >= self.last {
            return Ok(false);
        }
        let page = self
            .connection
            .execute(
                "SELECT id, at FROM visits WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
                &[
                    Value::Integer(self.after),
                    Value::Integer(self.last),
                    Value::Integer(PAGE_ROWS),
                ],
            )
            .map_err(|err| io::Error::other(describe(&err)))?;
        if page.rows.is_empty() {
            // Ids are dense, so rows up to `last` exist; none means they were removed.
            return Err(io::Error::other(format!(
                "visits {}..={} are missing from the database",
                self.after + 1,
                self.last
            )));
        }
        for row in &page.rows {
            if let [Value::Integer(id), Value::Text(at)] = row.values.as_slice() {
                each(at.as_bytes());
                self.after = *id;
            }
        }
        Ok(self.after < self.last)
    }
}

fn is_missing_table(err: &Error) -> bool {
    matches!(err, Error::Io(message) if message.contains("no such table"))
}

fn describe(err: &Error) -> String {
    match err {
        Error::NoSuchDatabase => "spin.toml grants a database \"default\" that the runtime config \
            does not define"
            .into(),
        Error::AccessDenied => "the component is not granted the database: add \
            sqlite_databases = [\"default\"] to its spin.toml"
            .into(),
        Error::InvalidConnection => "invalid connection".into(),
        Error::DatabaseFull => "the database is full".into(),
        Error::Io(message) => message.clone(),
    }
}

fn failed(action: &'static str, err: Error) -> LogError {
    match err {
        Error::DatabaseFull => {
            LogError::Full(PathBuf::from(format!("SQLite database \"{DATABASE}\"")))
        }
        err => failed_with(action, describe(&err)),
    }
}

fn failed_with(action: &'static str, reason: String) -> LogError {
    LogError::Io {
        action,
        path: PathBuf::from(format!("SQLite database \"{DATABASE}\"")),
        source: io::Error::other(reason),
    }
}
