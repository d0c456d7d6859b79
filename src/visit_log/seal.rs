//! Sealing: the sole writer turns a full `visits.txt` into a sealed segment, a slice at a
//! time, while visits keep being appended to it. Only the sole writer seals (the server
//! component): WASI 0.2 has no lock, so concurrent Spin instances could not agree on who
//! seals; they only read sealed segments and append to `visits.txt`.
//!
//! The steps, each named for the `SEAL_CRASH_AT` test hook that aborts the process right
//! after it (as `kill -9` would), and what the next start ([`VisitLog::recover`]) does:
//! 1. the whole lines of `visits.txt` up to its size when the seal began are compressed into
//!    `.visits.sealing.gz`, a slice per step, between group commits;
//!    `written`: that file is complete; `synced`: and synced. A start removes it: rolled back.
//! 2. `renamed`: it is renamed to `visits.<first>-<last>.txt.gz` and the directory synced. The
//!    same lines are still at the head of `visits.txt`; a start that finds them there removes
//!    the segment: rolled back (the next seal redoes it).
//! 3. `cut`: the lines appended since the seal began are copied into `.visits.txt.next`,
//!    synced, and that file renamed over `visits.txt`. The seal is complete; a leftover
//!    `.visits.txt.next` (a crash before the rename) is removed at start.
//!
//! Steps 2 and 3 run in one call, so no read or append of this process sees the segment and
//! its lines twice; only a crash between them does, and the start undoes it.

use super::chunks::Carry;
use super::held::{Held, State};
use super::segments::{Layout, Sealed, NEXT_NAME, SEALING_NAME};
use super::{LogError, VisitLog, CHUNK_LEN, LOG_FILE_NAME};
use crate::record::{is_timestamp, TIMESTAMP_LEN};
use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

/// Input compressed per step: about a millisecond of one core at gzip level 6, so a step
/// delays the next group commit by about as long as a commit takes.
const SLICE: u64 = CHUNK_LEN as u64;
/// After a failed seal (a full volume, say) the next try waits this long.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// gzip level: 6 (gzip's default) packs a loaded replica's lines about 9.7 to 1.
const LEVEL: u32 = 6;

/// A seal in progress.
#[derive(Debug)]
pub(super) struct Sealing {
    /// `visits.txt` as it was when the seal began (the same file the writer appends to).
    source: File,
    /// Where the sealed lines end: the log's size when the seal began, a line boundary.
    end: u64,
    /// How far compression has read.
    read: u64,
    carry: Carry,
    encoder: GzEncoder<File>,
    /// The number of the segment's first record.
    first: u64,
    /// Records compressed so far.
    records: u64,
    /// The data directory and the active file to be, opened when the seal begins: every
    /// descriptor a seal needs is taken then, so completing it needs none that a replica at
    /// its open-file limit may have just given to a new connection.
    dir: File,
    next: File,
}

/// What a step of [`VisitLog::seal_step`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealProgress {
    /// Nothing to seal.
    Idle,
    /// A slice was compressed; call again.
    Working,
    /// A segment was sealed (and retention applied).
    Sealed(Sealed),
}

impl VisitLog {
    /// Whether the sole writer has a seal to start or finish: cheap, for after each batch.
    pub fn seal_due(&self) -> bool {
        let Some(held) = &self.held else { return false };
        let state = held.lock();
        state.sealing.is_some() || self.seal_due_in(&state)
    }

    /// Does one step of sealing for the sole writer: starts a seal when `visits.txt` holds
    /// `SEGMENT_BYTES`, compresses a slice, or completes it. A failure abandons the seal
    /// (its partial output removed) and the next try waits a second; visits are not touched.
    pub fn seal_step(&self) -> Result<SealProgress, LogError> {
        let Some(held) = &self.held else {
            return Ok(SealProgress::Idle);
        };
        let mut state = held.lock();
        let result = self.seal_step_in(&mut state);
        if result.is_err() {
            state.sealing = None;
            for partial in [SEALING_NAME, NEXT_NAME] {
                let _ = fs::remove_file(self.dir.join(partial));
            }
            state.retry_at = Some(Instant::now() + RETRY_AFTER);
        }
        result
    }

    fn seal_step_in(&self, state: &mut State) -> Result<SealProgress, LogError> {
        if state.sealing.is_none() {
            if !self.seal_due_in(state) {
                return Ok(SealProgress::Idle);
            }
            state.sealing = Some(self.begin_seal(state)?);
            return Ok(SealProgress::Working);
        }
        let sealing = state.sealing.as_mut().expect("checked above");
        if sealing.read < sealing.end {
            self.compress_slice(sealing)
                .map_err(|source| self.io("seal", SEALING_NAME, source))?;
            return Ok(SealProgress::Working);
        }
        let sealing = state.sealing.take().expect("checked above");
        let (sealed, active) = self.complete_seal(sealing)?;
        // The active file is a new one now, and the writer holds it from here: reopening it
        // (and listing the directory for its base) would need descriptors that a replica at
        // its open-file limit has just given to new connections.
        state.held = Some(active);
        state.retry_at = None;
        self.retain()?;
        Ok(SealProgress::Sealed(sealed))
    }

    fn seal_due_in(&self, state: &State) -> bool {
        self.segment_bytes > 0
            && state.retry_at.is_none_or(|at| Instant::now() >= at)
            && state
                .held
                .as_ref()
                .is_some_and(|file| !file.torn && file.size >= self.segment_bytes)
    }

    fn begin_seal(&self, state: &State) -> Result<Sealing, LogError> {
        let end = state.held.as_ref().expect("seal_due_in checked").size;
        let base = self.layout()?.base();
        let path = self.path();
        let mut source = File::open(&path).map_err(|e| self.io("open", LOG_FILE_NAME, e))?;
        let (first_line, last_line) = edge_lines(&mut source, end)
            .map_err(|source| self.io("read", LOG_FILE_NAME, source))?;
        let output = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(self.dir.join(SEALING_NAME))
            .map_err(|err| self.diagnose_write_failure("create", err))?;
        // The first and last timestamps ride in the gzip header's comment, which zcat skips.
        let comment = format!("spin-visits segment: first {first_line}, last {last_line}");
        let encoder = GzBuilder::new()
            .comment(comment)
            .write(output, Compression::new(LEVEL));
        source
            .seek(SeekFrom::Start(0))
            .map_err(|e| self.io("read", LOG_FILE_NAME, e))?;
        let dir = File::open(&self.dir).map_err(|source| LogError::Io {
            action: "open",
            path: self.dir.clone(),
            source,
        })?;
        let next_path = self.dir.join(NEXT_NAME);
        // A crash's leftover is removed first: the new file is opened for appending (the
        // writer holds it from the cut), which cannot truncate.
        let _ = fs::remove_file(&next_path);
        let next = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(&next_path)
            .map_err(|err| self.diagnose_write_failure("create", err))?;
        Ok(Sealing {
            dir,
            next,
            source,
            end,
            read: 0,
            carry: Carry::default(),
            encoder,
            first: base + 1,
            records: 0,
        })
    }

    /// Compresses the next slice of whole, well-formed lines (a crash's fragment is left out).
    fn compress_slice(&self, sealing: &mut Sealing) -> io::Result<()> {
        let want = SLICE.min(sealing.end - sealing.read) as usize;
        sealing.carry.next(
            want,
            |buf| sealing.source.read_exact(buf).map(|()| buf.len()),
            |record| {
                sealing.encoder.write_all(record)?;
                sealing.encoder.write_all(b"\n")?;
                sealing.records += 1;
                io::Result::Ok(())
            },
        )?;
        sealing.read += want as u64;
        Ok(())
    }

    /// Steps 1 (its end) to 3 of the module's list; the segment, and the new active file,
    /// open for appending, for the writer to hold.
    fn complete_seal(&self, sealing: Sealing) -> Result<(Sealed, Held), LogError> {
        let Sealing {
            mut source,
            end,
            encoder,
            first,
            records,
            dir,
            next,
            ..
        } = sealing;
        let output = encoder
            .finish()
            .map_err(|err| self.diagnose_write_failure("write", err))?;
        crash_point("written");
        output
            .sync_all()
            .map_err(|source| self.io("sync", SEALING_NAME, source))?;
        let bytes = output
            .metadata()
            .map_err(|source| self.io("read the size of", SEALING_NAME, source))?
            .len();
        drop(output);
        crash_point("synced");
        let sealed = Sealed {
            first,
            last: first + records - 1,
            bytes,
        };
        if records > 0 {
            fs::rename(self.dir.join(SEALING_NAME), self.sealed_path(&sealed))
                .map_err(|source| self.io("rename", SEALING_NAME, source))?;
            self.sync_dir(&dir)?;
            crash_point("renamed");
        } else {
            let _ = fs::remove_file(self.dir.join(SEALING_NAME));
        }
        let (active, size, synced) = match self.cut(&mut source, end, next, &dir) {
            Ok(cut) => cut,
            Err(err) => {
                // The segment's lines are still in visits.txt: without the segment, nothing
                // is counted twice (what the next start would do after a crash here).
                if records > 0 && fs::remove_file(self.sealed_path(&sealed)).is_ok() {
                    let _ = self.sync_dir(&dir);
                }
                return Err(err);
            }
        };
        crash_point("cut");
        Ok((
            sealed,
            Held::after_seal(active, size, first - 1 + records, synced),
        ))
    }

    /// Replaces `visits.txt` by what was appended to it past `end`, copied into `next`
    /// (`NEXT_NAME`); the new file, open for appending, its size, and whether the directory
    /// was synced after the rename.
    fn cut(
        &self,
        source: &mut File,
        end: u64,
        mut next: File,
        dir: &File,
    ) -> Result<(File, u64, bool), LogError> {
        let next_path = self.dir.join(NEXT_NAME);
        let copied = source
            .seek(SeekFrom::Start(end))
            .and_then(|_| io::copy(source, &mut next));
        let size = match copied.and_then(|size| next.sync_all().map(|()| size)) {
            Ok(size) => size,
            Err(err) => {
                let _ = fs::remove_file(&next_path);
                return Err(self.diagnose_write_failure("write", err));
            }
        };
        fs::rename(&next_path, self.path())
            .map_err(|source| self.io("rename", NEXT_NAME, source))?;
        // From here the cut is done: undoing the segment now would lose its lines. A failed
        // directory sync is tried again by the writer's next synced batch.
        let synced = self.sync_dir(dir).is_ok();
        Ok((next, size, synced))
    }

    fn sync_dir(&self, dir: &File) -> Result<(), LogError> {
        dir.sync_all().map_err(|source| LogError::Io {
            action: "sync",
            path: self.dir.clone(),
            source,
        })
    }

    /// Deletes the oldest sealed segments while the directory holds more than
    /// `RETAIN_BYTES`, always keeping the newest (its name carries the count).
    pub fn retain(&self) -> Result<u64, LogError> {
        let Some(limit) = self.retain_bytes else {
            return Ok(0);
        };
        let layout = self.layout()?;
        let mut disk = layout.disk_bytes;
        let mut removed = 0;
        let keep = layout.sealed.len().saturating_sub(1);
        for sealed in &layout.sealed[..keep] {
            if disk <= limit {
                break;
            }
            fs::remove_file(self.sealed_path(sealed))
                .map_err(|source| self.io("remove", &sealed.name(), source))?;
            disk = disk.saturating_sub(sealed.bytes.div_ceil(4096) * 4096);
            removed += 1;
        }
        if removed > 0 {
            self.sync_directory()?;
        }
        Ok(removed)
    }

    /// Completes or rolls back what a crash left (see the module's list): run once at start,
    /// before the first append. Returns what it did, for the start-up line.
    pub fn recover(&self) -> Result<Vec<String>, LogError> {
        let mut done = Vec::new();
        for leftover in [SEALING_NAME, NEXT_NAME] {
            if fs::remove_file(self.dir.join(leftover)).is_ok() {
                done.push(format!("removed an unfinished seal's {leftover}"));
            }
        }
        let layout: Layout = self.layout()?;
        if let Some(newest) = layout.sealed.last() {
            let head_sealed = self
                .active_begins_with(newest)
                .map_err(|source| self.io("read", LOG_FILE_NAME, source))?;
            if head_sealed {
                fs::remove_file(self.sealed_path(newest))
                    .map_err(|source| self.io("remove", &newest.name(), source))?;
                done.push(format!(
                    "removed {}: its lines were not yet cut from {LOG_FILE_NAME}",
                    newest.name()
                ));
            }
        }
        if !done.is_empty() {
            self.sync_directory()?;
        }
        self.retain()?;
        Ok(done)
    }

    /// Whether `visits.txt` starts with every line of `sealed` (a seal renamed, not cut).
    fn active_begins_with(&self, sealed: &Sealed) -> io::Result<bool> {
        let active = match File::open(self.path()) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(err) => return Err(err),
        };
        let mut sealed_lines =
            super::read::LineReader::sealed(File::open(self.sealed_path(sealed))?);
        let mut active_lines = super::read::LineReader::plain(active);
        let mut matched = 0;
        while let Some(line) = sealed_lines.next_line()? {
            if active_lines.next_line()?.as_deref() != Some(&line[..]) {
                return Ok(false);
            }
            matched += 1;
        }
        Ok(matched == sealed.records())
    }

    fn io(&self, action: &'static str, name: &str, source: io::Error) -> LogError {
        LogError::Io {
            action,
            path: self.dir.join(name),
            source,
        }
    }
}

/// The first and last well-formed timestamps among the lines before `end` (empty when none).
fn edge_lines(file: &mut File, end: u64) -> io::Result<(String, String)> {
    let mut head = vec![0; (CHUNK_LEN as u64).min(end) as usize];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut head)?;
    let first = head
        .split(|&b| b == b'\n')
        .find(|line| line.len() == TIMESTAMP_LEN && is_timestamp(line))
        .map(|line| String::from_utf8_lossy(line).into_owned())
        .unwrap_or_default();
    let mut tail = [0; TIMESTAMP_LEN + 1];
    let last = if end > TIMESTAMP_LEN as u64 {
        file.seek(SeekFrom::Start(end - TIMESTAMP_LEN as u64 - 1))?;
        file.read_exact(&mut tail)?;
        let line = &tail[..TIMESTAMP_LEN];
        if is_timestamp(line) {
            String::from_utf8_lossy(line).into_owned()
        } else {
            String::new()
        }
    } else {
        String::new()
    };
    Ok((first, last))
}

/// The `SEAL_CRASH_AT` test hook: aborts the process after the named step, as `kill -9`
/// would (no destructor, no flush). Inert unless the variable is set.
fn crash_point(step: &str) {
    if std::env::var("SEAL_CRASH_AT").is_ok_and(|at| at == step) {
        eprintln!("spin-visits: SEAL_CRASH_AT={step}: aborting");
        std::process::abort();
    }
}

#[cfg(test)]
#[path = "seal_tests.rs"]
mod tests;
