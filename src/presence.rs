//! Whether another server writes the same data directory. WASI 0.2 has no file lock, so each
//! server keeps a presence file of its own there (`.visits.txt.server-<id>`), rewritten every
//! [`BEAT`], and looks for others written within [`FRESH`]: two servers on one log would
//! double-count `/visits/all` and interleave their group commits, so each says so (a log
//! line, and `/readyz` fails) until the other is gone. A server that stops cleanly removes its
//! file; one that crashes leaves a file that stops counting after [`FRESH`] and is removed
//! after [`STALE`]. What this cannot see: servers whose clocks disagree by more than
//! [`FRESH`] (nodes sharing a network volume), and the Spin component, whose instances live
//! for one request and keep no file.

use std::fs;
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

const PREFIX: &str = ".visits.txt.server-";
/// How often a server rewrites its presence file.
pub const BEAT: Duration = Duration::from_secs(2);
/// A presence file rewritten this recently belongs to a running server.
pub const FRESH: Duration = Duration::from_secs(6);
/// Older than this, a presence file was left by a crash and is removed.
pub const STALE: Duration = Duration::from_secs(60);

pub struct Presence {
    path: PathBuf,
    /// What this server writes in its file: where it listens, for the other's log line.
    about: String,
}

impl Presence {
    /// A presence in `dir` under a random name, described by `about` (its address).
    pub fn new(dir: &Path, about: &str) -> Self {
        let id = RandomState::new().hash_one(SystemTime::now());
        Self {
            path: dir.join(format!("{PREFIX}{id:016x}")),
            about: about.to_owned(),
        }
    }

    /// Rewrites this server's file, removes crashed servers' files, and returns what the other
    /// running servers' files say (empty when this server is alone).
    pub fn beat(&self) -> io::Result<Vec<String>> {
        fs::write(&self.path, &self.about)?;
        let now = SystemTime::now();
        let mut others = Vec::new();
        for entry in fs::read_dir(self.path.parent().unwrap_or(Path::new(".")))?.flatten() {
            let path = entry.path();
            let ours = entry.file_name().to_string_lossy().starts_with(PREFIX);
            if !ours || path == self.path {
                continue;
            }
            let age = entry
                .metadata()
                .and_then(|meta| meta.modified())
                .map(|modified| now.duration_since(modified).unwrap_or_default());
            match age {
                Ok(age) if age <= FRESH => {
                    others.push(fs::read_to_string(&path).unwrap_or_default());
                }
                Ok(age) if age > STALE => {
                    let _ = fs::remove_file(&path);
                }
                _ => {}
            }
        }
        Ok(others)
    }

    /// Removes this server's file (a clean stop).
    pub fn leave(&self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    #[test]
    fn two_servers_each_see_the_other_until_one_leaves() {
        let dir = tempfile::tempdir().unwrap();
        let first = Presence::new(dir.path(), "10.0.0.1:8080");
        assert_eq!(first.beat().unwrap(), Vec::<String>::new());
        let second = Presence::new(dir.path(), "10.0.0.2:8080");
        assert_eq!(second.beat().unwrap(), ["10.0.0.1:8080"]);
        assert_eq!(first.beat().unwrap(), ["10.0.0.2:8080"]);
        second.leave();
        assert_eq!(first.beat().unwrap(), Vec::<String>::new());
    }

    #[test]
    fn a_crashed_servers_file_stops_counting_then_goes() {
        let dir = tempfile::tempdir().unwrap();
        let plant = |name: &str, age: Duration| {
            let file = File::create(dir.path().join(name)).unwrap();
            file.set_modified(SystemTime::now() - age).unwrap();
        };
        plant(".visits.txt.server-00000000000000aa", FRESH + BEAT);
        plant(".visits.txt.server-00000000000000bb", STALE + BEAT);
        let server = Presence::new(dir.path(), "me");
        assert_eq!(server.beat().unwrap(), Vec::<String>::new());
        let mut left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left.len(), 2, "the stale one is removed: {left:?}");
        assert!(left.contains(&".visits.txt.server-00000000000000aa".to_owned()));
    }
}
