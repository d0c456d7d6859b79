//! A replica's claim on disk: its log, a planted big log, and filesystems mounted for a
//! test (a tmpfs to fill, a read-only view).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The log file of a claim, split into lines (the last, newline-terminated, yields no
/// empty element).
pub fn log_lines(claim: &Path) -> Vec<String> {
    match std::fs::read_to_string(claim.join("visits.txt")) {
        Ok(text) => text.lines().map(str::to_owned).collect(),
        Err(_) => Vec::new(),
    }
}

/// Lines of a planted big log: 24 MB, several times what the kernel buffers for one loopback
/// connection (a reader that stops keeps the 128 KiB default receive buffer, the sender's
/// buffer grows to at most `net.ipv4.tcp_wmem`'s 4 MiB), so a reader that stops does stall
/// the server's writes.
pub const PLANTED_LINES: usize = 727_272;

/// Writes a valid log of [`PLANTED_LINES`] distinct 33-byte records (about 12 minutes of
/// visits) into the claim's `visits.txt`, and returns its bytes.
pub fn plant_log(claim: &Path) -> Vec<u8> {
    use std::io::Write as _;
    let mut log = Vec::with_capacity(PLANTED_LINES * 33);
    for i in 0..PLANTED_LINES as u64 {
        let micros = i * 1_009;
        let (seconds, micros) = (micros / 1_000_000, micros % 1_000_000);
        writeln!(
            log,
            "2023-11-18 17:{:02}:{:02}.{micros:06}+03:00",
            seconds / 60,
            seconds % 60
        )
        .unwrap();
    }
    assert!(is_record(std::str::from_utf8(&log[..32]).unwrap()));
    assert_eq!(log.len(), PLANTED_LINES * 33);
    std::fs::write(claim.join("visits.txt"), &log).unwrap();
    log
}

/// Whether a line is a record exactly as the seed app wrote it.
pub fn is_record(line: &str) -> bool {
    chrono::DateTime::parse_from_str(line, "%Y-%m-%d %H:%M:%S%.6f%:z")
        .is_ok_and(|time| time.offset().local_minus_utc() == 3 * 3600)
        && line.len() == 32
}

/// A filesystem mounted for one test (needs root, as CI has); unmounted on drop.
pub struct Mount {
    pub path: PathBuf,
}

impl Mount {
    /// A tmpfs of `size` (e.g. "16k"): a volume that fills up.
    pub fn tmpfs(path: &Path, size: &str) -> Mount {
        std::fs::create_dir_all(path).unwrap();
        run_mount(
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"],
            path,
        );
        Mount {
            path: path.to_owned(),
        }
    }

    /// `source` seen read-only at `path`, as Spin's shim mounts files.
    pub fn read_only_view(source: &Path, path: &Path) -> Mount {
        std::fs::create_dir_all(path).unwrap();
        run_mount(&["--bind", source.to_str().unwrap()], path);
        let mount = Mount {
            path: path.to_owned(),
        };
        run_mount(&["-o", "remount,bind,ro"], path);
        mount
    }
}

fn run_mount(args: &[&str], path: &Path) {
    let output = Command::new("mount")
        .args(args)
        .arg(path)
        .output()
        .expect("mount runs");
    assert!(
        output.status.success(),
        "mount {args:?} {} failed (these tests need root, as CI runs): {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}
