//! The peers: the replicas the cluster view (`/visits/all`) asks for their count and last
//! visits, this one included. Everything about asking them lives here, for both components:
//! the request, the one deadline (`PEER_TIMEOUT_MILLISECONDS`), reading an answer, and why a
//! peer is shown as down. Each component brings only a [`PeerTransport`]: the Spin
//! component's outbound HTTP (`wasi:http/outgoing-handler`), the server's own HTTP client over
//! `wasi:sockets` (runwasi gives a command component no outgoing handler).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

/// The path each peer is asked: its last visits, with its count and name in headers.
pub const PEER_PATH: &str = "/visits?tail=5";
/// A peer's whole answer is a few hundred bytes; anything longer is not one of ours.
pub const MAX_PEER_BODY: usize = 64 * 1024;
/// The header `/visits` carries with the replica's total count.
pub const COUNT_HEADER: &str = "x-visit-count";

/// What one peer said, or why it could not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReport {
    /// As configured in `PEERS` (host:port).
    pub peer: String,
    pub state: PeerState,
    /// How long ago the peer was asked: the server serves one round of answers for a while
    /// (`PEER_CACHE_MILLISECONDS`).
    pub age: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerState {
    Up {
        pod: String,
        count: u64,
        last: Vec<String>,
    },
    Down {
        reason: String,
    },
}

/// A peer's answer to [`PEER_PATH`], as a transport received it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerReply {
    pub status: u16,
    /// `x-served-by`.
    pub served_by: Option<String>,
    /// [`COUNT_HEADER`].
    pub count: Option<String>,
    /// At most [`MAX_PEER_BODY`] bytes.
    pub body: Vec<u8>,
}

/// Why a transport has no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AskError {
    /// No whole answer within the deadline.
    TimedOut,
    /// The body ran past [`MAX_PEER_BODY`].
    TooLong,
    /// Anything else, in the transport's words (refused, cannot resolve, reset…).
    Failed(String),
}

/// A peer's address, checked once for every transport: `host:port`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr<'a> {
    /// The whole `host:port`, as the request's authority (`Host` header).
    pub authority: &'a str,
    pub host: &'a str,
    pub port: u16,
}

impl<'a> PeerAddr<'a> {
    pub fn parse(peer: &'a str) -> Result<Self, String> {
        peer.rsplit_once(':')
            .and_then(|(host, port)| {
                let port = port.parse().ok().filter(|port| *port != 0)?;
                (!host.is_empty()).then_some(Self {
                    authority: peer,
                    host,
                    port,
                })
            })
            .ok_or_else(|| format!("{peer} is not host:port"))
    }
}

/// How a component reaches its peers: one `GET` of [`PEER_PATH`].
// Components are single-threaded, so the futures need not be `Send`.
#[allow(async_fn_in_trait)]
pub trait PeerTransport {
    /// A request on its way.
    type Sent;

    /// Sends the request without waiting for its answer, so that every peer is asked before
    /// any answer is awaited. The answer is due within `timeout` of this call.
    fn send(&self, peer: PeerAddr<'_>, timeout: Duration) -> Result<Self::Sent, AskError>;

    /// The whole answer, [`AskError::TimedOut`] once the deadline `send` was given has
    /// passed, or [`AskError::TooLong`] past [`MAX_PEER_BODY`].
    async fn receive(&self, sent: Self::Sent) -> Result<PeerReply, AskError>;
}

/// One report per peer, in the order given, every peer asked at once and none waited for
/// longer than `timeout`.
pub async fn ask_all<T: PeerTransport>(
    transport: &T,
    peers: &[String],
    timeout: Duration,
) -> Vec<PeerReport> {
    let sent: Vec<_> = peers
        .iter()
        .map(|peer| {
            let sent = PeerAddr::parse(peer)
                .map_err(AskError::Failed)
                .and_then(|addr| transport.send(addr, timeout));
            (peer, sent)
        })
        .collect();
    let mut reports = Vec::with_capacity(sent.len());
    for (peer, sent) in sent {
        let answer = match sent {
            Ok(sent) => transport.receive(sent).await,
            Err(err) => Err(err),
        };
        reports.push(PeerReport::from_answer(peer, timeout, answer));
    }
    reports
}

impl PeerReport {
    pub fn down(peer: &str, reason: impl Into<String>) -> Self {
        Self {
            peer: peer.to_owned(),
            state: PeerState::Down {
                reason: reason.into(),
            },
            age: Duration::ZERO,
        }
    }

    /// The same report, asked `age` ago.
    pub fn asked_ago(self, age: Duration) -> Self {
        Self { age, ..self }
    }

    /// What a transport's outcome says about `peer`, asked with `timeout`.
    pub fn from_answer(peer: &str, timeout: Duration, answer: Result<PeerReply, AskError>) -> Self {
        match answer {
            Ok(reply) => Self::from_reply(peer, &reply),
            Err(AskError::TimedOut) => Self::down(peer, format!("no answer within {timeout:?}")),
            Err(AskError::TooLong) => Self::down(
                peer,
                format!("answered more than {MAX_PEER_BODY} bytes: not a replica"),
            ),
            Err(AskError::Failed(reason)) => Self::down(peer, reason),
        }
    }

    /// Reads a peer's answer to [`PEER_PATH`].
    pub fn from_reply(peer: &str, reply: &PeerReply) -> Self {
        if reply.status != 200 {
            return Self::down(peer, format!("answered {}", reply.status));
        }
        let count = reply.count.as_deref().and_then(|c| c.parse().ok());
        let (Some(pod), Some(count)) = (reply.served_by.as_deref(), count) else {
            return Self::down(peer, "answered without x-served-by and x-visit-count");
        };
        let last = String::from_utf8_lossy(&reply.body)
            .lines()
            .filter(|record| crate::record::is_timestamp(record.as_bytes()))
            .map(str::to_owned)
            .collect();
        Self {
            peer: peer.to_owned(),
            state: PeerState::Up {
                pod: sanitize(pod),
                count,
                last,
            },
            age: Duration::ZERO,
        }
    }
}

/// The peers behind a headless Service: every address its name resolves to, once each, in
/// address order, as `ip:port`. Each answer names its pod (`x-served-by`), so addresses are
/// all the view needs; a scaled StatefulSet shows up as more (or fewer) addresses.
pub fn discovered_peers(addresses: &[Ipv4Addr], port: u16) -> Vec<String> {
    let mut addresses = addresses.to_vec();
    addresses.sort_unstable();
    addresses.dedup();
    addresses
        .into_iter()
        .map(|ip| SocketAddrV4::new(ip, port).to_string())
        .collect()
}

/// Discovered peers come in address order, which says nothing to a reader: show them in pod
/// order (`visits-2` before `visits-10`), and any that are down after them.
pub fn sort_by_pod(reports: &mut [PeerReport]) {
    fn key(report: &PeerReport) -> (bool, String, u64, String) {
        match &report.state {
            PeerState::Up { pod, .. } => {
                let stem = pod.trim_end_matches(|c: char| c.is_ascii_digit());
                let ordinal = pod[stem.len()..].parse().unwrap_or(0);
                (false, stem.to_owned(), ordinal, pod.clone())
            }
            PeerState::Down { .. } => (true, String::new(), 0, report.peer.clone()),
        }
    }
    reports.sort_by_cached_key(key);
}

/// Peer-supplied text goes into HTML and JSON; keep it to the characters pod names use.
fn sanitize(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(253)
        .collect()
}

/// A peer that answered `visits-N` with `count` and one record: for tests here and in
/// [`crate::cluster_view`].
#[cfg(test)]
pub(crate) fn up(pod: &str, count: u64) -> PeerReport {
    PeerReport::from_reply(
        &format!("{pod}.visits-headless:8080"),
        &reply(200, Some(pod), Some(&count.to_string()), RECORD.as_bytes()),
    )
}

#[cfg(test)]
pub(crate) const RECORD: &str = "2023-11-18 17:54:26.913511+03:00\n";

#[cfg(test)]
fn reply(status: u16, served_by: Option<&str>, count: Option<&str>, body: &[u8]) -> PeerReply {
    PeerReply {
        status,
        served_by: served_by.map(str::to_owned),
        count: count.map(str::to_owned),
        body: body.to_vec(),
    }
}

#[cfg(test)]
mod tests;
