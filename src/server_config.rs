//! The server component's settings: the handler's [`Config`] and the server's own, where it
//! listens and the bounds that keep one replica in service. Unlike the Spin component, the
//! server refuses to start on a bad value and says which variable to fix.

use crate::config::{Config, PeerService};
use std::net::SocketAddrV4;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// What the handler reads (`DATA_DIR`, `POD_NAME`, `PEERS`, `PEER_TIMEOUT_MILLISECONDS`,
    /// `APPEND_FSYNC`, the log's sizes).
    pub app: Config,
    /// `LISTEN_ADDR`.
    pub listen_addr: SocketAddrV4,
    /// `ADMIN_ADDR`: the listener for `/drain`, which no Service exposes.
    pub admin_addr: SocketAddrV4,
    /// `MAX_CONNECTIONS`: connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// `LISTEN_BACKLOG`: connections the kernel holds before they are accepted.
    pub listen_backlog: u64,
    /// `IDLE_TIMEOUT_SECONDS`: a connection with no request and no answer in flight for this
    /// long is closed.
    pub idle_timeout: Duration,
    /// `HEADER_READ_TIMEOUT_SECONDS`: a request head not complete this long after its first
    /// byte closes the connection.
    pub header_read_timeout: Duration,
    /// `WRITE_TIMEOUT_SECONDS`: a client that takes no bytes of an answer for this long is
    /// disconnected.
    pub write_timeout: Duration,
    /// `PEER_CACHE_MILLISECONDS`: how long one round of the peers' answers serves the cluster
    /// view.
    pub peer_cache: Duration,
    /// `DRAIN_DELAY_SECONDS`: how long a drain keeps serving new connections before it
    /// closes any, while the endpoint leaves the Service.
    pub drain_delay: Duration,
    /// `DRAIN_TIMEOUT_SECONDS`: the most a drain waits for in-flight requests.
    pub drain_timeout: Duration,
    /// `PEER_SERVICE`: the headless Service whose addresses `/visits/all` asks when `PEERS`
    /// is empty.
    pub peer_service: Option<PeerService>,
    /// `MIN_RATE_BYTES_PER_SECOND` and `MIN_RATE_WINDOW_SECONDS`: at the cap, with clients
    /// waiting, a connection sending its request head or taking its answer slower than this
    /// over the window may be closed for a newcomer (Apache's `mod_reqtimeout` `MinRate`).
    pub min_rate: MinRate,
}

/// The least progress a connection must make not to yield its slot under pressure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinRate {
    pub bytes_per_second: u64,
    pub window: Duration,
}

impl MinRate {
    /// The bytes a connection must move within one window.
    pub fn bytes_per_window(&self) -> u64 {
        self.bytes_per_second
            .saturating_mul(self.window.as_secs().max(1))
    }
}

pub const DEFAULT_LISTEN_ADDR: &str = "0.0.0.0:8080";
/// Loopback: a local run's `/drain` is reachable from this machine only. The manifests set
/// the pod-wide address the kubelet's preStop hook needs.
pub const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:9090";
/// Under the 1 024 descriptors a pod gets by default, with room for the log, the listeners,
/// the peer requests, stdio and the runtime's own (see the README's known limits).
pub const DEFAULT_MAX_CONNECTIONS: u64 = 900;
pub const DEFAULT_LISTEN_BACKLOG: u64 = 1024;
pub const DEFAULT_IDLE_TIMEOUT_SECONDS: u64 = 60;
pub const DEFAULT_HEADER_READ_TIMEOUT_SECONDS: u64 = 10;
pub const DEFAULT_WRITE_TIMEOUT_SECONDS: u64 = 30;
pub const DEFAULT_PEER_CACHE_MILLISECONDS: u64 = 500;
pub const MAX_PEER_CACHE_MILLISECONDS: u64 = 1000;
pub const DEFAULT_DRAIN_DELAY_SECONDS: u64 = 2;
pub const DEFAULT_DRAIN_TIMEOUT_SECONDS: u64 = 20;
/// `mod_reqtimeout`'s `MinRate`; a browser on a 2G link (some 5 000 bytes/s) clears it tenfold.
pub const DEFAULT_MIN_RATE_BYTES_PER_SECOND: u64 = 500;
/// Long enough for a mobile link's stall of a few seconds; short enough that a slow-client
/// attack frees its slots within seconds.
pub const DEFAULT_MIN_RATE_WINDOW_SECONDS: u64 = 5;

impl ServerConfig {
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(crate::config::env_var)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let (app, refused) = Config::read(&lookup);
        if let Some(reason) = refused {
            return Err(reason);
        }
        let set = |name: &str| lookup(name).filter(|value: &String| !value.is_empty());
        let address = |name: &str, default: &str| {
            let value = set(name).unwrap_or_else(|| default.into());
            value
                .parse::<SocketAddrV4>()
                .map_err(|_| format!("{name}={value} is not an IPv4 address and port"))
        };
        let number =
            |name: &str, default: u64, range: std::ops::RangeInclusive<u64>| match set(name) {
                None => Ok(default),
                Some(value) => value
                    .parse::<u64>()
                    .ok()
                    .filter(|n| range.contains(n))
                    .ok_or_else(|| {
                        format!(
                            "{name}={value} is not a whole number from {} to {}",
                            range.start(),
                            range.end()
                        )
                    }),
            };
        let positive = |name: &str, default: u64| number(name, default, 1..=u64::MAX);
        let seconds = |name: &str, default: u64| positive(name, default).map(Duration::from_secs);
        Ok(Self {
            app,
            listen_addr: address("LISTEN_ADDR", DEFAULT_LISTEN_ADDR)?,
            admin_addr: address("ADMIN_ADDR", DEFAULT_ADMIN_ADDR)?,
            max_connections: number("MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS, 1..=1 << 20)?
                as usize,
            listen_backlog: positive("LISTEN_BACKLOG", DEFAULT_LISTEN_BACKLOG)?,
            idle_timeout: seconds("IDLE_TIMEOUT_SECONDS", DEFAULT_IDLE_TIMEOUT_SECONDS)?,
            header_read_timeout: seconds(
                "HEADER_READ_TIMEOUT_SECONDS",
                DEFAULT_HEADER_READ_TIMEOUT_SECONDS,
            )?,
            write_timeout: seconds("WRITE_TIMEOUT_SECONDS", DEFAULT_WRITE_TIMEOUT_SECONDS)?,
            peer_cache: Duration::from_millis(number(
                "PEER_CACHE_MILLISECONDS",
                DEFAULT_PEER_CACHE_MILLISECONDS,
                0..=MAX_PEER_CACHE_MILLISECONDS,
            )?),
            drain_delay: Duration::from_secs(number(
                "DRAIN_DELAY_SECONDS",
                DEFAULT_DRAIN_DELAY_SECONDS,
                0..=3600,
            )?),
            drain_timeout: seconds("DRAIN_TIMEOUT_SECONDS", DEFAULT_DRAIN_TIMEOUT_SECONDS)?,
            peer_service: PeerService::from_lookup(&lookup)?,
            min_rate: MinRate {
                bytes_per_second: positive(
                    "MIN_RATE_BYTES_PER_SECOND",
                    DEFAULT_MIN_RATE_BYTES_PER_SECOND,
                )?,
                window: Duration::from_secs(number(
                    "MIN_RATE_WINDOW_SECONDS",
                    DEFAULT_MIN_RATE_WINDOW_SECONDS,
                    1..=3600,
                )?),
            },
        })
    }
}

/// A bad value of each setting the server reads, and the settings that have none (any text
/// is valid): one table for the unit test below, which checks it lists every setting, and for
/// `tests/server_limits.rs`, which starts the real server with each.
#[doc(hidden)]
pub const BAD_VALUES: &[(&str, &str)] = &[
    ("LISTEN_ADDR", "localhost:80"),
    ("ADMIN_ADDR", "9090"),
    ("MAX_CONNECTIONS", "0"),
    ("LISTEN_BACKLOG", "-1"),
    ("IDLE_TIMEOUT_SECONDS", "1.5"),
    ("HEADER_READ_TIMEOUT_SECONDS", "ten"),
    ("WRITE_TIMEOUT_SECONDS", "0"),
    ("PEER_CACHE_MILLISECONDS", "1001"),
    ("DRAIN_DELAY_SECONDS", "3601"),
    ("DRAIN_TIMEOUT_SECONDS", "0"),
    ("APPEND_FSYNC", "everysec"),
    ("VOLUME_CAPACITY", "10MB"),
    ("SEGMENT_BYTES", "4MB"),
    ("RETAIN_BYTES", "lots"),
    ("RESERVE_BYTES", "-1Mi"),
    ("PEER_SERVICE", "visits-headless"),
    ("PEER_TIMEOUT_MILLISECONDS", "60001"),
    ("MIN_RATE_BYTES_PER_SECOND", "0"),
    ("MIN_RATE_WINDOW_SECONDS", "0"),
];
#[doc(hidden)]
pub const FREE_TEXT: &[&str] = &["DATA_DIR", "POD_NAME", "PEERS"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::visit_log::Fsync;
    use std::cell::RefCell;

    fn server_config(vars: &[(&str, &str)]) -> Result<ServerConfig, String> {
        ServerConfig::from_lookup(crate::config::lookup_in(vars))
    }

    #[test]
    fn defaults() {
        let c = server_config(&[("MAX_CONNECTIONS", "")]).unwrap();
        assert_eq!(c.app, Config::default());
        assert_eq!(c.listen_addr, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(c.admin_addr, "127.0.0.1:9090".parse().unwrap());
        assert_eq!(c.max_connections, 900);
        assert_eq!(c.listen_backlog, 1024);
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.header_read_timeout, Duration::from_secs(10));
        assert_eq!(c.write_timeout, Duration::from_secs(30));
        assert_eq!(c.peer_cache, Duration::from_millis(500));
        assert_eq!(c.drain_delay, Duration::from_secs(2));
        assert_eq!(c.drain_timeout, Duration::from_secs(20));
        assert_eq!(c.peer_service, None);
        assert_eq!(
            c.min_rate,
            MinRate {
                bytes_per_second: 500,
                window: Duration::from_secs(5)
            }
        );
    }

    #[test]
    fn reads_the_environment() {
        let c = server_config(&[
            ("LISTEN_ADDR", "127.0.0.1:0"),
            ("ADMIN_ADDR", "127.0.0.1:9"),
            ("MAX_CONNECTIONS", "4096"),
            ("LISTEN_BACKLOG", "2048"),
            ("IDLE_TIMEOUT_SECONDS", "5"),
            ("HEADER_READ_TIMEOUT_SECONDS", "2"),
            ("WRITE_TIMEOUT_SECONDS", "3"),
            ("PEER_CACHE_MILLISECONDS", "0"),
            ("DRAIN_DELAY_SECONDS", "0"),
            ("DRAIN_TIMEOUT_SECONDS", "7"),
            ("APPEND_FSYNC", "no"),
            ("PEER_SERVICE", "visits-headless:8080"),
            ("MIN_RATE_BYTES_PER_SECOND", "100"),
            ("MIN_RATE_WINDOW_SECONDS", "2"),
        ])
        .unwrap();
        assert_eq!(c.listen_addr, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.admin_addr, "127.0.0.1:9".parse().unwrap());
        assert_eq!(c.max_connections, 4096);
        assert_eq!(c.listen_backlog, 2048);
        assert_eq!(c.idle_timeout, Duration::from_secs(5));
        assert_eq!(c.header_read_timeout, Duration::from_secs(2));
        assert_eq!(c.write_timeout, Duration::from_secs(3));
        assert_eq!(c.peer_cache, Duration::ZERO);
        assert_eq!(c.drain_delay, Duration::ZERO);
        assert_eq!(c.drain_timeout, Duration::from_secs(7));
        assert_eq!(c.app.append_fsync, Fsync::No);
        assert_eq!(c.peer_service.unwrap().host, "visits-headless");
        assert_eq!(c.min_rate.bytes_per_second, 100);
        assert_eq!(c.min_rate.window, Duration::from_secs(2));
    }

    #[test]
    fn bad_values_name_the_variable() {
        // Every variable the config reads is in the table or has no bad value.
        let read = RefCell::new(Vec::new());
        ServerConfig::from_lookup(|name| {
            read.borrow_mut().push(name.to_owned());
            None
        })
        .unwrap();
        let mut read = read.into_inner();
        read.sort();
        read.dedup();
        let mut known: Vec<String> = BAD_VALUES
            .iter()
            .map(|(name, _)| name.to_string())
            .chain(FREE_TEXT.iter().map(|name| name.to_string()))
            .collect();
        known.sort();
        assert_eq!(read, known, "a setting without a bad-value case");
        for (name, value) in BAD_VALUES {
            let err = server_config(&[(name, value)]).unwrap_err();
            assert!(err.contains(name), "{err}");
        }
    }
}
