//! The log's layout on disk (docs/storage.md): `visits.txt`, the active segment that visits
//! are appended to, and beside it the sealed segments, `visits.<first>-<last>.txt.gz`, each a
//! gzip of whole records numbered `first` to `last` (1-based, counted since the log began, so
//! the names alone give every count: the newest sealed segment's `last` is the number of
//! visits before `visits.txt`, and the oldest one's `first - 1` the number let go by retention).
//! `zcat visits.*.txt.gz; cat visits.txt` prints every retained visit in order.

use super::{LogError, VisitLog};
use std::fs;
use std::io::ErrorKind;
use std::path::PathBuf;

const SEALED_PREFIX: &str = "visits.";
const SEALED_SUFFIX: &str = ".txt.gz";
/// A seal's output before it is complete; a crash leaves it, the next start removes it.
pub(super) const SEALING_NAME: &str = ".visits.sealing.gz";
/// The active segment's successor while a seal cuts it; same fate after a crash.
pub(super) const NEXT_NAME: &str = ".visits.txt.next";
/// Filesystems allocate whole blocks; sizes are counted in these for free space.
const BLOCK: u64 = 4096;

/// A sealed segment: visits `first` to `last`, `bytes` on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub first: u64,
    pub last: u64,
    pub bytes: u64,
}

impl Sealed {
    pub fn file_name(first: u64, last: u64) -> String {
        // Zero-padded so that a shell's sorted glob lists them in order.
        format!("{SEALED_PREFIX}{first:012}-{last:012}{SEALED_SUFFIX}")
    }

    pub fn name(&self) -> String {
        Self::file_name(self.first, self.last)
    }

    /// Visits in the segment.
    pub fn records(&self) -> u64 {
        self.last + 1 - self.first
    }

    fn parse(name: &str) -> Option<(u64, u64)> {
        let range = name
            .strip_prefix(SEALED_PREFIX)?
            .strip_suffix(SEALED_SUFFIX)?;
        let (first, last) = range.split_once('-')?;
        let digits = |text: &str| {
            (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then_some(())?;
            text.parse::<u64>().ok()
        };
        let (first, last) = (digits(first)?, digits(last)?);
        (first >= 1 && last >= first).then_some((first, last))
    }
}

/// What the data directory holds, read in one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// Oldest first.
    pub sealed: Vec<Sealed>,
    /// Every file in the directory, each rounded up to whole blocks.
    pub disk_bytes: u64,
}

impl Layout {
    /// Visits before `visits.txt`: the newest sealed segment's last.
    pub fn base(&self) -> u64 {
        self.sealed.last().map_or(0, |newest| newest.last)
    }

    /// Visits let go by retention: those before the oldest sealed segment.
    pub fn let_go(&self) -> u64 {
        self.sealed.first().map_or(0, |oldest| oldest.first - 1)
    }

    /// Compressed bytes of the sealed segments.
    pub fn sealed_bytes(&self) -> u64 {
        self.sealed.iter().map(|sealed| sealed.bytes).sum()
    }

    /// Visits in the sealed segments.
    pub fn sealed_records(&self) -> u64 {
        self.sealed.iter().map(Sealed::records).sum()
    }
}

impl VisitLog {
    /// The sealed segments and the directory's size on disk: one `readdir` and a `stat` a file.
    pub fn layout(&self) -> Result<Layout, LogError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == ErrorKind::NotFound => {
                return Err(LogError::MissingDirectory(self.dir.clone()))
            }
            Err(source) => {
                return Err(LogError::Io {
                    action: "list",
                    path: self.dir.clone(),
                    source,
                })
            }
        };
        let mut layout = Layout::default();
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            layout.disk_bytes += meta.len().div_ceil(BLOCK) * BLOCK;
            let name = entry.file_name();
            if let Some((first, last)) = name.to_str().and_then(Sealed::parse) {
                layout.sealed.push(Sealed {
                    first,
                    last,
                    bytes: meta.len(),
                });
            }
        }
        layout.sealed.sort_by_key(|sealed| sealed.first);
        Ok(layout)
    }

    /// Visits before `visits.txt` (the newest sealed segment's last), from the names alone:
    /// one `readdir`, no `stat`, for the visit path of a writer that does not hold the log.
    pub(super) fn base(&self) -> Result<u64, LogError> {
        let entries = fs::read_dir(&self.dir).map_err(|source| match source.kind() {
            ErrorKind::NotFound => LogError::MissingDirectory(self.dir.clone()),
            _ => LogError::Io {
                action: "list",
                path: self.dir.clone(),
                source,
            },
        })?;
        Ok(entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str().and_then(Sealed::parse))
            .map(|(_, last)| last)
            .max()
            .unwrap_or(0))
    }

    pub(super) fn sealed_path(&self, sealed: &Sealed) -> PathBuf {
        self.dir.join(sealed.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_range_and_sort_in_order() {
        assert_eq!(
            Sealed::file_name(1, 127_100),
            "visits.000000000001-000000127100.txt.gz"
        );
        assert_eq!(
            Sealed::parse("visits.000000000001-000000127100.txt.gz"),
            Some((1, 127_100))
        );
        for bad in [
            "visits.txt",
            "visits.0-5.txt.gz",
            "visits.9-5.txt.gz",
            "visits.1-x.txt.gz",
            "visits.1-5.txt.gz.tmp",
            "visits.-5.txt.gz",
            ".visits.sealing.gz",
        ] {
            assert_eq!(Sealed::parse(bad), None, "{bad}");
        }
        let mut names = [
            Sealed::file_name(127_101, 254_200),
            Sealed::file_name(1, 127_100),
        ];
        names.sort();
        assert_eq!(names[0], Sealed::file_name(1, 127_100));
    }

    #[test]
    fn the_layout_gives_base_and_let_go() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(Sealed::file_name(11, 20)), b"x").unwrap();
        fs::write(dir.path().join(Sealed::file_name(21, 35)), b"xy").unwrap();
        fs::write(dir.path().join("visits.txt"), b"").unwrap();
        let layout = VisitLog::new(dir.path()).layout().unwrap();
        assert_eq!(layout.base(), 35);
        assert_eq!(layout.let_go(), 10);
        assert_eq!(layout.sealed_records(), 25);
        assert_eq!(layout.sealed_bytes(), 3);
        assert_eq!(layout.disk_bytes, 2 * BLOCK);
    }
}
