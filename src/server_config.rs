//! The server component's own settings: where it listens and the bounds that keep one replica
//! in service under load. Unlike [`crate::config`], a bad value is an error: the server
//! refuses to start and says which variable to fix.

use crate::visit_log::Fsync;
use std::net::SocketAddrV4;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// `LISTEN_ADDR`.
    pub listen_addr: SocketAddrV4,
    /// `MAX_CONNECTIONS`: connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// `LISTEN_BACKLOG`: connections the kernel holds before they are accepted.
    pub listen_backlog: u64,
    /// `IDLE_TIMEOUT_SECONDS`: a keep-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// `HEADER_READ_TIMEOUT_SECONDS`: a request head not complete this long after its first
    /// byte closes the connection.
    pub header_read_timeout: Duration,
}

pub const DEFAULT_LISTEN_ADDR: &str = "0.0.0.0:8080";
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
pub const DEFAULT_LISTEN_BACKLOG: u64 = 1024;
pub const DEFAULT_IDLE_TIMEOUT_SECONDS: u64 = 60;
pub const DEFAULT_HEADER_READ_TIMEOUT_SECONDS: u64 = 10;

impl ServerConfig {
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let set = |name: &str| lookup(name).filter(|value: &String| !value.is_empty());
        let listen_addr = set("LISTEN_ADDR").unwrap_or_else(|| DEFAULT_LISTEN_ADDR.into());
        let listen_addr = listen_addr
            .parse()
            .map_err(|_| format!("LISTEN_ADDR={listen_addr} is not an IPv4 address and port"))?;
        let positive = |name: &str, default: u64| match set(name) {
            None => Ok(default),
            Some(value) => value
                .parse::<u64>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{name}={value} is not a whole number above 0")),
        };
        // Checked here so a typo stops the server instead of silently meaning `always`.
        if let Some(value) = set("APPEND_FSYNC") {
            Fsync::parse(&value)?;
        }
        Ok(Self {
            listen_addr,
            max_connections: positive("MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS as u64)?
                .try_into()
                .map_err(|_| "MAX_CONNECTIONS is too large".to_owned())?,
            listen_backlog: positive("LISTEN_BACKLOG", DEFAULT_LISTEN_BACKLOG)?,
            idle_timeout: Duration::from_secs(positive(
                "IDLE_TIMEOUT_SECONDS",
                DEFAULT_IDLE_TIMEOUT_SECONDS,
            )?),
            header_read_timeout: Duration::from_secs(positive(
                "HEADER_READ_TIMEOUT_SECONDS",
                DEFAULT_HEADER_READ_TIMEOUT_SECONDS,
            )?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_config(vars: &[(&str, &str)]) -> Result<ServerConfig, String> {
        ServerConfig::from_lookup(crate::config::lookup_in(vars))
    }

    #[test]
    fn defaults() {
        let c = server_config(&[("MAX_CONNECTIONS", "")]).unwrap();
        assert_eq!(c.listen_addr, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(c.max_connections, 1024);
        assert_eq!(c.listen_backlog, 1024);
        assert_eq!(c.idle_timeout, Duration::from_secs(60));
        assert_eq!(c.header_read_timeout, Duration::from_secs(10));
    }

    #[test]
    fn reads_the_environment() {
        let c = server_config(&[
            ("LISTEN_ADDR", "127.0.0.1:0"),
            ("MAX_CONNECTIONS", "4096"),
            ("LISTEN_BACKLOG", "2048"),
            ("IDLE_TIMEOUT_SECONDS", "5"),
            ("HEADER_READ_TIMEOUT_SECONDS", "2"),
            ("APPEND_FSYNC", "no"),
        ])
        .unwrap();
        assert_eq!(c.listen_addr, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.max_connections, 4096);
        assert_eq!(c.listen_backlog, 2048);
        assert_eq!(c.idle_timeout, Duration::from_secs(5));
        assert_eq!(c.header_read_timeout, Duration::from_secs(2));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            ("LISTEN_ADDR", "localhost:80"),
            ("MAX_CONNECTIONS", "0"),
            ("LISTEN_BACKLOG", "-1"),
            ("IDLE_TIMEOUT_SECONDS", "1.5"),
            ("HEADER_READ_TIMEOUT_SECONDS", "ten"),
            ("APPEND_FSYNC", "everysec"),
        ] {
            let err = server_config(&[(name, value)]).unwrap_err();
            assert!(err.contains(name), "{err}");
        }
    }
}
