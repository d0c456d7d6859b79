//! Configuration from the WASI environment (not Spin variables), so the same component runs
//! under `spin up`, `wasmtime serve` and runwasi alike.

use crate::visit_log::{Fsync, DEFAULT_SEGMENT_BYTES};
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_DATA_DIR: &str = "/data";
pub const DEFAULT_POD_NAME: &str = "local";
/// Longer than a healthy peer ever takes; a peer that is down should not hold up the page.
pub const DEFAULT_PEER_TIMEOUT_MILLISECONDS: u64 = 2000;
pub const MAX_PEER_TIMEOUT_MILLISECONDS: u64 = 60_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The preopened directory holding `visits.txt` (`DATA_DIR`).
    pub data_dir: PathBuf,
    /// Which replica this is (`POD_NAME`, from the downward API on Kubernetes).
    pub pod_name: String,
    /// The peers: every replica's `host:port`, this one included, for the cluster view
    /// (`PEERS`, comma-separated; on Kubernetes the headless Service's stable names).
    pub peers: Vec<String>,
    /// `PEER_TIMEOUT_MILLISECONDS`: the most the cluster view waits for a peer's whole
    /// answer before it shows the peer as down.
    pub peer_timeout: Duration,
    /// When a visit is acknowledged (`APPEND_FSYNC`: `always`, after the data is synced, or
    /// `no`, after the write). An unknown value means the safe default here; the server
    /// component refuses to start on one (see [`Config::read`]).
    pub append_fsync: Fsync,
    /// The volume's size in bytes (`VOLUME_CAPACITY`, a Kubernetes quantity such as `100Mi`:
    /// the claim's request), for `/metrics`; the log cannot see its claim's size itself.
    pub volume_capacity: Option<u64>,
    /// `SEGMENT_BYTES`: the server component seals `visits.txt` into a gzip segment once it
    /// holds this much (0: never). The Spin component never seals.
    pub segment_bytes: u64,
    /// `RETAIN_BYTES`: sealed segments are deleted, oldest first, once the data directory
    /// holds more than this (`None`: everything is kept).
    pub retain_bytes: Option<u64>,
    /// `RESERVE_BYTES`: `/readyz` answers 503 once fewer bytes than this are free
    /// (`VOLUME_CAPACITY` less what the directory holds); by default 5% of the capacity.
    pub reserve_bytes: Option<u64>,
}

impl Default for Config {
    /// What an empty environment gives.
    fn default() -> Self {
        Self::from_lookup(|_| None)
    }
}

/// A setting from the WASI environment: its last value when it is given more than once, as a
/// shell's later assignment wins (`wasmtime run --env A=1 … --env A=2` passes both, and
/// `std::env::var` would take the first), so an `--env` added to a command overrides it.
pub fn env_var(name: &str) -> Option<String> {
    last_value(std::env::vars_os(), name)
}

fn last_value(
    vars: impl IntoIterator<Item = (std::ffi::OsString, std::ffi::OsString)>,
    name: &str,
) -> Option<String> {
    vars.into_iter()
        .filter(|(key, _)| key == name)
        .last()
        .and_then(|(_, value)| value.into_string().ok())
}

impl Config {
    pub fn from_env() -> Self {
        Self::from_lookup(env_var)
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        Self::read(lookup).0
    }

    /// The settings, and the reason a value was refused and replaced by its default, if one
    /// was: the Spin component carries on with the safe default, the server stops.
    pub fn read(lookup: impl Fn(&str) -> Option<String>) -> (Self, Option<String>) {
        let set = |name: &str| lookup(name).filter(|value: &String| !value.is_empty());
        let append_fsync = set("APPEND_FSYNC").map(|value| Fsync::parse(&value));
        let volume_capacity = set("VOLUME_CAPACITY").map(|value| {
            parse_quantity(&value).ok_or_else(|| {
                format!("VOLUME_CAPACITY={value} is not a size such as 100Mi or 2Gi")
            })
        });
        let size = |name: &str| {
            set(name).map(|value| {
                parse_quantity(&value)
                    .ok_or_else(|| format!("{name}={value} is not a size such as 4Mi or 2Gi"))
            })
        };
        let segment_bytes = size("SEGMENT_BYTES");
        // A share of the claim ("80%") follows VOLUME_CAPACITY, so a chart sizes it once.
        let retain_bytes = set("RETAIN_BYTES").map(|value| match value.strip_suffix('%') {
            Some(percent) => percent
                .parse::<u64>()
                .ok()
                .filter(|percent| (1..=100).contains(percent))
                .zip(volume_capacity.clone().and_then(Result::ok))
                .map(|(percent, capacity)| capacity / 100 * percent)
                .ok_or_else(|| {
                    format!(
                        "RETAIN_BYTES={value} is not a share of VOLUME_CAPACITY from 1% to 100% \
                             (or VOLUME_CAPACITY is unset)"
                    )
                }),
            None => parse_quantity(&value)
                .ok_or_else(|| format!("RETAIN_BYTES={value} is not a size such as 80Mi or 80%")),
        });
        let reserve_bytes = size("RESERVE_BYTES");
        let peer_timeout = set("PEER_TIMEOUT_MILLISECONDS").map(|value| {
            value
                .parse::<u64>()
                .ok()
                .filter(|ms| (1..=MAX_PEER_TIMEOUT_MILLISECONDS).contains(ms))
                .map(Duration::from_millis)
                .ok_or_else(|| {
                    format!(
                        "PEER_TIMEOUT_MILLISECONDS={value} is not a whole number from 1 to \
                         {MAX_PEER_TIMEOUT_MILLISECONDS}"
                    )
                })
        });
        let refused = append_fsync
            .clone()
            .and_then(Result::err)
            .or_else(|| volume_capacity.clone().and_then(Result::err))
            .or_else(|| segment_bytes.clone().and_then(Result::err))
            .or_else(|| retain_bytes.clone().and_then(Result::err))
            .or_else(|| reserve_bytes.clone().and_then(Result::err))
            .or_else(|| peer_timeout.clone().and_then(Result::err));
        let volume_capacity = volume_capacity.and_then(Result::ok);
        let config = Self {
            data_dir: set("DATA_DIR")
                .unwrap_or_else(|| DEFAULT_DATA_DIR.into())
                .into(),
            pod_name: set("POD_NAME")
                .map(|name| sanitize_pod_name(&name))
                .unwrap_or_else(|| DEFAULT_POD_NAME.into()),
            peers: set("PEERS")
                .map(|peers| {
                    peers
                        .split(',')
                        .map(str::trim)
                        .filter(|peer| !peer.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            peer_timeout: peer_timeout
                .and_then(Result::ok)
                .unwrap_or(Duration::from_millis(DEFAULT_PEER_TIMEOUT_MILLISECONDS)),
            append_fsync: append_fsync.and_then(Result::ok).unwrap_or_default(),
            volume_capacity,
            segment_bytes: segment_bytes
                .and_then(Result::ok)
                .unwrap_or(DEFAULT_SEGMENT_BYTES),
            retain_bytes: retain_bytes.and_then(Result::ok),
            reserve_bytes: reserve_bytes
                .and_then(Result::ok)
                .or_else(|| volume_capacity.map(|capacity| capacity / 20)),
        };
        (config, refused)
    }
}

/// `PEER_SERVICE`: the headless Service's `name:port`, resolved on every `/visits/all` so
/// the view follows `kubectl scale` without a manifest edit (the server component only;
/// `PEERS`, when set, overrides it). Kept apart from [`Config`] so it adds no field that every
/// `Config` literal would have to name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerService {
    pub host: String,
    pub port: u16,
}

impl PeerService {
    /// `Ok(None)` when unset or empty; `Err` with the reason when it is not `name:port`.
    /// Read once, by [`crate::server_config::ServerConfig`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let Some(value) = lookup("PEER_SERVICE").filter(|v| !v.trim().is_empty()) else {
            return Ok(None);
        };
        let value = value.trim();
        value
            .rsplit_once(':')
            .and_then(|(host, port)| {
                let port = port.parse().ok().filter(|port| *port != 0)?;
                let host_ok = !host.is_empty()
                    && host
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
                host_ok.then(|| Self {
                    host: host.to_owned(),
                    port,
                })
            })
            .map(Some)
            .ok_or_else(|| format!("PEER_SERVICE={value} is not a name:port"))
    }
}

/// A Kubernetes quantity in bytes: a whole number with an optional binary (`Ki`…`Ei`) or
/// decimal (`k`…`E`) suffix, as storage requests are written.
pub fn parse_quantity(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(digits);
    let unit: u64 = match suffix {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        _ => return None,
    };
    number.parse::<u64>().ok()?.checked_mul(unit)
}

/// Pod names are DNS subdomains; anything else is replaced so the name is always safe in a
/// header value, in HTML and in JSON without escaping.
fn sanitize_pod_name(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => c,
            _ => '-',
        })
        .collect()
}

/// What a `from_lookup` reads in tests instead of the environment: these pairs, nothing else.
#[cfg(test)]
pub(crate) fn lookup_in<'a>(vars: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        vars.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setting_given_twice_takes_its_last_value() {
        let vars =
            [("A", "1"), ("B", "x"), ("A", "2")].map(|(key, value)| (key.into(), value.into()));
        assert_eq!(last_value(vars.clone(), "A").as_deref(), Some("2"));
        assert_eq!(last_value(vars.clone(), "B").as_deref(), Some("x"));
        assert_eq!(last_value(vars, "C"), None);
    }

    #[test]
    fn quantities_are_bytes() {
        assert_eq!(parse_quantity("100Mi"), Some(100 << 20));
        assert_eq!(parse_quantity("2Gi"), Some(2 << 30));
        assert_eq!(parse_quantity("500M"), Some(500_000_000));
        assert_eq!(parse_quantity("4096"), Some(4096));
        for bad in ["", "Mi", "1.5Gi", "10MB", "-1Gi", "99999999999Ei"] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
        let (config, refused) = Config::read(lookup_in(&[("VOLUME_CAPACITY", "10MB")]));
        assert_eq!(config.volume_capacity, None);
        assert!(refused.unwrap().contains("VOLUME_CAPACITY"));
    }

    #[test]
    fn segment_retention_and_reserve_are_sizes() {
        let c = config(&[
            ("SEGMENT_BYTES", "256Ki"),
            ("RETAIN_BYTES", "2Mi"),
            ("VOLUME_CAPACITY", "100Mi"),
        ]);
        assert_eq!(c.segment_bytes, 256 << 10);
        assert_eq!(c.retain_bytes, Some(2 << 20));
        assert_eq!(c.reserve_bytes, Some(5 << 20), "5% of the capacity");
        let c = config(&[("SEGMENT_BYTES", "0"), ("RESERVE_BYTES", "1Mi")]);
        assert_eq!((c.segment_bytes, c.reserve_bytes), (0, Some(1 << 20)));
        let (_, refused) = Config::read(lookup_in(&[("RETAIN_BYTES", "lots")]));
        assert!(refused.unwrap().contains("RETAIN_BYTES=lots"));
        let c = config(&[("RETAIN_BYTES", "80%"), ("VOLUME_CAPACITY", "100Mi")]);
        assert_eq!(c.retain_bytes, Some(100 * (1 << 20) / 100 * 80));
        for bad in ["80%", "0%", "101%"] {
            let (_, refused) = Config::read(lookup_in(&[
                ("RETAIN_BYTES", bad),
                ("VOLUME_CAPACITY", if bad == "80%" { "" } else { "1Gi" }),
            ]));
            assert!(
                refused.unwrap().contains("share of VOLUME_CAPACITY"),
                "{bad}"
            );
        }
    }

    fn config(vars: &[(&str, &str)]) -> Config {
        Config::from_lookup(lookup_in(vars))
    }

    #[test]
    fn defaults_when_unset_or_empty() {
        let expected = Config {
            data_dir: "/data".into(),
            pod_name: "local".into(),
            peers: vec![],
            peer_timeout: Duration::from_secs(2),
            append_fsync: Fsync::Always,
            volume_capacity: None,
            segment_bytes: 4 << 20,
            retain_bytes: None,
            reserve_bytes: None,
        };
        assert_eq!(config(&[]), expected);
        assert_eq!(config(&[("DATA_DIR", ""), ("POD_NAME", "")]), expected);
    }

    #[test]
    fn reads_the_environment() {
        let c = config(&[
            ("DATA_DIR", "/mnt/claim"),
            ("POD_NAME", "visits-2"),
            ("PEERS", "visits-0.h:8080, visits-1.h:8080,,"),
            ("APPEND_FSYNC", "no"),
            ("PEER_TIMEOUT_MILLISECONDS", "750"),
        ]);
        assert_eq!(c.append_fsync, Fsync::No);
        assert_eq!(c.peer_timeout, Duration::from_millis(750));
        assert_eq!(c.data_dir, PathBuf::from("/mnt/claim"));
        assert_eq!(c.pod_name, "visits-2");
        assert_eq!(c.peers, ["visits-0.h:8080", "visits-1.h:8080"]);
    }

    fn peer_service(value: Option<&str>) -> Result<Option<PeerService>, String> {
        PeerService::from_lookup(|name| {
            assert_eq!(name, "PEER_SERVICE");
            value.map(str::to_owned)
        })
    }

    #[test]
    fn peer_service_is_a_name_and_port() {
        assert_eq!(peer_service(None), Ok(None));
        assert_eq!(peer_service(Some(" ")), Ok(None));
        assert_eq!(
            peer_service(Some(" visits-headless.default.svc.cluster.local:8080 ")),
            Ok(Some(PeerService {
                host: "visits-headless.default.svc.cluster.local".into(),
                port: 8080
            }))
        );
        for bad in [
            "visits-headless",
            ":8080",
            "h:0",
            "h:99999",
            "h:x",
            "a b:1",
            "h/x:1",
        ] {
            let err = peer_service(Some(bad)).unwrap_err();
            assert!(err.contains(bad.trim()), "{err}");
        }
    }

    #[test]
    fn pod_names_cannot_inject_markup_or_headers() {
        let c = config(&[("POD_NAME", "<b>x\"\r\ny</b>")]);
        assert_eq!(c.pod_name, "-b-x---y--b-");
    }
}
