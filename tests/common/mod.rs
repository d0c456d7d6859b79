//! Drives the built components on the real runtime: builds them once, starts `wasmtime` on a
//! free loopback port with a real data directory, and kills it on drop.
#![allow(dead_code, unused_macros)] // each test binary uses its own part of the harness

mod claim;
mod client;
pub mod raw;

// Re-exported whole so tests name them `common::…`; a test binary may use neither.
#[allow(unused_imports)]
pub use claim::*;
#[allow(unused_imports)]
pub use client::*;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Generates `spin::<test>` and `server::<test>` for each `fn <test>(Artefact)`.
macro_rules! for_each_artefact {
    ($($test:ident),* $(,)?) => {
        mod spin {
            $( #[test] fn $test() { super::$test(super::Artefact::Spin) } )*
        }
        mod server {
            $( #[test] fn $test() { super::$test(super::Artefact::Server) } )*
        }
    };
}

/// The two artefacts built from this repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Artefact {
    /// The Spin component (wasi:http/incoming-handler), on `wasmtime serve`.
    Spin,
    /// The server component (wasi:cli/run over wasi:sockets), on `wasmtime run`.
    Server,
}

impl Artefact {
    pub const ALL: [Artefact; 2] = [Artefact::Spin, Artefact::Server];

    /// The built artefact; `SPIN_VISITS_SERVER_WASM` / `SPIN_VISITS_SPIN_WASM` point the
    /// tests at another build (an older commit's, say) and skip building this one.
    pub fn wasm(self) -> PathBuf {
        let override_var = match self {
            Artefact::Spin => "SPIN_VISITS_SPIN_WASM",
            Artefact::Server => "SPIN_VISITS_SERVER_WASM",
        };
        if let Some(path) = std::env::var_os(override_var) {
            return PathBuf::from(path);
        }
        build_components();
        let name = match self {
            Artefact::Spin => "spin_visits_http.wasm",
            Artefact::Server => "spin-visits-server.wasm",
        };
        target_dir().join("wasm32-wasip2/release").join(name)
    }
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
}

/// `cargo build` of the components (both Spin builds and the server), once per test binary (a no-op when they are fresh).
pub fn build_components() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .args(["-p", "spin-visits-http", "-p", "spin-visits-server"])
            .args(["-p", "spin-visits-sqlite"])
            .current_dir(repo_root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the components failed");
    });
}

/// A loopback port for replicas that must know each other's address before they start.
///
/// Taken below the kernel's ephemeral range: a port found by binding port 0 is one the kernel
/// hands out again to the next socket bound to port 0 or the next outgoing connection (these
/// tests open thousands), and CI once saw a peer's port taken before its replica bound it.
/// Below the range only another explicit choice can collide: a counter and the process id keep
/// this process's choices apart, and a bind checks the port is free now.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOWEST: u32 = 10_000;
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let span = ephemeral_low.saturating_sub(LOWEST).max(1);
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let port = (LOWEST + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between {LOWEST} and {ephemeral_low}");
}

/// A tool the test script installs (`scripts/tools.sh`); found through $NAME or PATH.
pub fn tool(env_var: &str, name: &str) -> PathBuf {
    std::env::var_os(env_var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(name))
}

pub fn wasmtime() -> PathBuf {
    tool("WASMTIME", "wasmtime")
}

/// How a replica is started: the runtime's view of the pod.
#[derive(Debug, Clone)]
pub struct ReplicaSpec {
    pub artefact: Artefact,
    /// The host directory preopened as the guest's `/data` (the claim).
    pub claim: PathBuf,
    pub pod_name: String,
    /// Overrides `DATA_DIR` (the guest path).
    pub data_dir: Option<String>,
    /// Extra `--env` pairs.
    pub env: Vec<(String, String)>,
    /// The guest path the claim is mounted at.
    pub mount_path: String,
    /// Where to listen; port 0 picks a free one.
    pub listen: String,
    /// Runs the runtime under `prlimit --nofile=SOFT:HARD`, as a pod's open-file limit.
    pub nofile: Option<(u64, u64)>,
}

impl ReplicaSpec {
    pub fn new(artefact: Artefact, claim: &Path, pod_name: &str) -> Self {
        Self {
            artefact,
            claim: claim.to_owned(),
            pod_name: pod_name.into(),
            data_dir: None,
            env: Vec::new(),
            mount_path: "/data".into(),
            listen: "127.0.0.1:0".into(),
            nofile: None,
        }
    }

    pub fn start(&self) -> Replica {
        Replica::start(self)
    }

    /// The runtime's command line for this replica, as [`ReplicaSpec::start`] runs it.
    pub fn command(&self) -> Command {
        // prlimit sets the limit and execs the runtime, so the child is still the runtime.
        let mut command = match self.nofile {
            Some((soft, hard)) => {
                let mut command = Command::new("prlimit");
                command.arg(format!("--nofile={soft}:{hard}")).arg("--");
                command.arg(wasmtime());
                command
            }
            None => Command::new(wasmtime()),
        };
        let dir = format!("{}::{}", self.claim.display(), self.mount_path);
        match self.artefact {
            Artefact::Spin => {
                command.args([
                    "serve",
                    "-S",
                    "cli=y",
                    "--addr",
                    &self.listen,
                    "--dir",
                    &dir,
                ]);
            }
            Artefact::Server => {
                // Peers are names on Kubernetes; runwasi allows name lookup, wasmtime asks.
                command.args([
                    "run",
                    "-S",
                    "inherit-network=y",
                    "-S",
                    "tcp=y",
                    "-S",
                    "cli=y",
                ]);
                command.args(["-S", "allow-ip-name-lookup=y", "--dir", &dir]);
                command.args(["--env", &format!("LISTEN_ADDR={}", self.listen)]);
                // Replicas share this machine's ports: the admin listener takes a free one
                // unless the test names it.
                if !self.env.iter().any(|(key, _)| key == "ADMIN_ADDR") {
                    command.args(["--env", "ADMIN_ADDR=127.0.0.1:0"]);
                }
            }
        }
        command.args(["--env", &format!("POD_NAME={}", self.pod_name)]);
        if let Some(data_dir) = &self.data_dir {
            command.args(["--env", &format!("DATA_DIR={data_dir}")]);
        }
        for (key, value) in &self.env {
            command.args(["--env", &format!("{key}={value}")]);
        }
        command.arg(self.artefact.wasm());
        command
    }
}

/// A running runtime process serving one replica.
pub struct Replica {
    child: Child,
    pub base_url: String,
    pub addr: String,
    /// Everything the runtime printed, for failure messages and trap checks.
    pub output: Arc<Mutex<String>>,
}

impl Replica {
    pub fn start(spec: &ReplicaSpec) -> Replica {
        let mut command = spec.command();
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot start {:?}: {err} (run scripts/test.sh, which installs wasmtime)",
                    wasmtime()
                )
            });

        let output = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            let addr_tx = addr_tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(addr) = bound_address(&line) {
                        let _ = addr_tx.send(addr);
                    }
                    let mut all = output.lock().unwrap();
                    all.push_str(&line);
                    all.push('\n');
                }
            });
        }
        let addr = match addr_rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("runtime did not start: {}", output.lock().unwrap());
            }
        };
        Replica {
            child,
            base_url: format!("http://{addr}"),
            addr,
            output,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub fn get(&self, path: &str) -> Reply {
        http_request("GET", &self.url(path), &[])
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        http_request(method, &self.url(path), headers)
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// kill -9, as a node losing the pod would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `wasmtime serve` says "Serving HTTP on http://127.0.0.1:PORT/"; the server says
/// "... on http://127.0.0.1:PORT".
fn bound_address(line: &str) -> Option<String> {
    let rest = &line[line.find("http://127.0.0.1:")? + "http://".len()..];
    Some(
        rest.trim_end_matches('/')
            .split_whitespace()
            .next()?
            .to_string(),
    )
}

/// The test process's own open-file limit, (soft, hard), from /proc/self/limits.
pub fn own_nofile() -> (u64, u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("an open-file limit");
    let mut values = line["Max open files".len()..]
        .split_whitespace()
        .map(|value| value.parse().unwrap_or(u64::MAX)); // "unlimited"
    (values.next().unwrap(), values.next().unwrap())
}

/// Makes sure this test process may open `wanted` descriptors: raises its own soft limit
/// (and the hard one, which needs root, as CI has) with `prlimit --pid`, or fails saying so.
pub fn ensure_own_nofile(wanted: u64) {
    let (soft, hard) = own_nofile();
    if soft >= wanted {
        return;
    }
    let output = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={wanted}:{}", hard.max(wanted)))
        .output();
    let (now, _) = own_nofile();
    assert!(
        now >= wanted,
        "this test opens about {wanted} descriptors but may open {soft} (hard limit {hard}), \
         and `prlimit --pid` could not raise it ({output:?}): run it as root, as CI does, or \
         with `ulimit -n {wanted}`"
    );
}
