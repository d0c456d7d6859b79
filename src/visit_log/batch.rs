//! One batch's write, whatever holds the file: the torn-line repair, the single write, the
//! cut of a partial write and the syncs. Both writers (`append.rs`, an instance that opens
//! the log per visit; `held.rs`, the sole writer that holds it) call this and nothing else.

use super::{Fsync, LogError, VisitLog};
use crate::record::RECORD_LEN;
use std::fs::File;
use std::io::Write;

impl VisitLog {
    /// Writes `records` at the end of `file`, which held `size_before` bytes and ended
    /// part-way through a line when `torn` (a crash's fragment: the batch then starts on a
    /// fresh line). One write call, never `write_all`: a retried remainder could land after
    /// another instance's record and tear both. A write the volume takes only in part is cut
    /// back off, so a failed batch leaves no line of its own. With [`Fsync::Always`] the data
    /// is synced before this returns, and the directory too when the log was empty (its name
    /// may have just been created). Returns the bytes written, newline repair included.
    pub(super) fn write_batch(
        &self,
        file: &mut File,
        size_before: u64,
        torn: bool,
        records: &[[u8; RECORD_LEN]],
    ) -> Result<Vec<u8>, LogError> {
        let mut written = Vec::with_capacity(records.len() * RECORD_LEN + 1);
        if torn {
            written.push(b'\n');
        }
        written.extend(records.iter().flatten());
        match file.write(&written) {
            Ok(n) if n == written.len() => {}
            Ok(_) => {
                self.cut_partial_write(file, size_before, &written);
                return Err(LogError::Full(self.dir.clone()));
            }
            Err(err) => {
                self.cut_partial_write(file, size_before, &written);
                return Err(self.diagnose_write_failure("append to", err));
            }
        }
        if self.fsync == Fsync::Always {
            file.sync_data().map_err(|source| LogError::Io {
                action: "sync",
                path: self.path(),
                source,
            })?;
            if size_before == 0 {
                self.sync_directory()?;
            }
        }
        Ok(written)
    }
}
