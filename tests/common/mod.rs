//! Drives the built components on the real runtime: builds them once, starts `wasmtime` on a
//! free loopback port with a real data directory, and kills it on drop.
#![allow(dead_code, unused_macros)] // each test binary uses its own part of the harness

pub mod raw;

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

/// An HTTP answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    }

    /// README's promise for every answer: `x-served-by: <pod>` and `Cache-Control: no-store`.
    pub fn assert_promised_headers(&self, what: &str, pod: &str) {
        assert_eq!(self.header("x-served-by"), pod, "{what}: {self:?}");
        assert_eq!(self.header("cache-control"), "no-store", "{what}: {self:?}");
    }
}

pub fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::new_with_config(
            ureq::config::Config::builder()
                .http_status_as_error(false)
                .allow_non_standard_methods(true)
                .timeout_global(Some(Duration::from_secs(60)))
                .build(),
        )
    })
}

pub fn http_request(method: &str, url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let mut response = agent()
        .run(request.body(()).unwrap())
        .unwrap_or_else(|err| panic!("{method} {url}: {err}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_string()
        .unwrap_or_else(|err| panic!("{method} {url}: reading the body: {err}"));
    Reply {
        status,
        headers,
        body,
    }
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

/// Like [`http_request`], but a refused or reset connection is an `Err`, not a panic (for
/// runtimes that are being killed).
pub fn try_request(agent: &ureq::Agent, url: &str) -> Result<Reply, String> {
    let mut response = agent.get(url).call().map_err(|err| err.to_string())?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|err| err.to_string())?;
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// An agent of its own: one connection per host, as one load-generator connection.
pub fn own_agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::config::Config::builder()
            .http_status_as_error(false)
            .max_idle_connections_per_host(1)
            .timeout_global(Some(Duration::from_secs(60)))
            .build(),
    )
}

/// The count a visit page showed.
pub fn shown_count(page: &str) -> u64 {
    let start = page
        .find(r#"id="visit-count">"#)
        .expect("the page shows a count")
        + 17;
    let end = start + page[start..].find('<').unwrap();
    page[start..end].parse().unwrap()
}

/// The Moscow time a visit page showed.
pub fn shown_time(page: &str) -> String {
    let start = page.find(r#"datetime=""#).expect("the page shows a time") + 10;
    page[start..start + 32].to_string()
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
