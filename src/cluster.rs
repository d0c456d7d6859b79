//! `/visits/all`: every replica's count and last visits side by side, so a user sees how the
//! ClusterIP Service spread their visits. The peers are asked over HTTP by each entry point
//! (a Spin host's outbound HTTP, or sockets in the server); this module says what to ask and
//! renders the answers. A peer that is down is shown as down, not as an error.

use std::fmt::Write as _;
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
    /// How long ago the peer was asked: a host may serve one fan-out's answers for a while.
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

    /// Reads a peer's answer to [`PEER_PATH`].
    pub fn from_reply(
        peer: &str,
        status: u16,
        served_by: Option<&str>,
        count: Option<&str>,
        body: &[u8],
    ) -> Self {
        if status != 200 {
            return Self::down(peer, format!("answered {status}"));
        }
        let (Some(pod), Some(count)) = (served_by, count.and_then(|c| c.parse().ok())) else {
            return Self::down(peer, "answered without x-served-by and x-visit-count");
        };
        let last = String::from_utf8_lossy(body)
            .lines()
            .filter(|line| crate::record::is_timestamp(line.as_bytes()))
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

/// Discovered peers come in address order, which says nothing to a reader: show replicas in
/// pod order (`visits-2` before `visits-10`), and any that are down after them.
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

/// Reasons come from our own code and the host's error names; still, escape them for HTML.
fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn escape_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// `{"pod":…,"total":…,"replicas":[{"peer":…,"age_ms":…,"up":true,"pod":…,"count":…,"last":[…]},…]}`
pub fn render_json(this_pod: &str, reports: &[PeerReport]) -> String {
    let mut out = format!(
        r#"{{"pod":"{this_pod}","total":{},"replicas":["#,
        total(reports)
    );
    for (i, report) in reports.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let peer = escape_json(&report.peer);
        let age = report.age.as_millis();
        match &report.state {
            PeerState::Up { pod, count, last } => {
                let last: Vec<String> = last.iter().map(|t| format!(r#""{t}""#)).collect();
                let _ = write!(
                    out,
                    r#"{{"peer":"{peer}","age_ms":{age},"up":true,"pod":"{pod}","count":{count},"last":[{}]}}"#,
                    last.join(",")
                );
            }
            PeerState::Down { reason } => {
                let reason = escape_json(reason);
                let _ = write!(
                    out,
                    r#"{{"peer":"{peer}","age_ms":{age},"up":false,"reason":"{reason}"}}"#
                );
            }
        }
    }
    out.push_str("]}");
    out
}

fn total(reports: &[PeerReport]) -> u64 {
    reports
        .iter()
        .map(|report| match report.state {
            PeerState::Up { count, .. } => count,
            PeerState::Down { .. } => 0,
        })
        .sum()
}

/// A small bar chart of visits per replica, drawn inline (the page loads nothing else).
fn bar_chart(reports: &[PeerReport]) -> String {
    const BAR: u32 = 28;
    const GAP: u32 = 12;
    const LABEL: u32 = 150;
    const WIDTH: u32 = 360;
    let max = reports
        .iter()
        .filter_map(|r| match r.state {
            PeerState::Up { count, .. } => Some(count),
            PeerState::Down { .. } => None,
        })
        .max()
        .unwrap_or(0)
        .max(1);
    let height = reports.len() as u32 * (BAR + GAP);
    let mut svg = format!(
        r#"<svg id="chart" role="img" aria-label="visits per replica" width="{}" height="{height}" viewBox="0 0 {} {height}">"#,
        LABEL + WIDTH + 80,
        LABEL + WIDTH + 80
    );
    for (i, report) in reports.iter().enumerate() {
        let y = i as u32 * (BAR + GAP);
        let text_y = y + BAR / 2 + 5;
        let (name, bar) = match &report.state {
            PeerState::Up { pod, count, .. } => {
                let width = ((*count as f64 / max as f64) * WIDTH as f64).round() as u32;
                (
                    pod.clone(),
                    format!(
                        r##"<rect class="bar" data-count="{count}" x="{LABEL}" y="{y}" width="{}" height="{BAR}" rx="3" fill="#3b82f6"/><text x="{}" y="{text_y}">{count}</text>"##,
                        width.max(1),
                        LABEL + width.max(1) + 6
                    ),
                )
            }
            PeerState::Down { .. } => (
                escape_html(&report.peer),
                format!(r##"<text x="{LABEL}" y="{text_y}" fill="#b91c1c">down</text>"##),
            ),
        };
        let _ = write!(
            svg,
            r#"<text x="0" y="{text_y}" font-family="ui-monospace, monospace">{name}</text>{bar}"#
        );
    }
    svg.push_str("</svg>");
    svg
}

pub fn render_html(this_pod: &str, reports: &[PeerReport]) -> String {
    let mut rows = String::new();
    for report in reports {
        let peer = escape_html(&report.peer);
        let age = format!("asked {} ms ago", report.age.as_millis());
        match &report.state {
            PeerState::Up { pod, count, last } => {
                let last = last.join("<br>");
                let _ = write!(
                    rows,
                    r#"<tr class="up"><td><code>{pod}</code><br><small>{peer} · {age}</small></td><td class="count">{count}</td><td><code>{last}</code></td></tr>"#
                );
            }
            PeerState::Down { reason } => {
                let reason = escape_html(reason);
                let _ = write!(
                    rows,
                    r#"<tr class="down"><td><small>{peer} · {age}</small></td><td class="count">down</td><td>{reason}</td></tr>"#
                );
            }
        }
    }
    let chart = bar_chart(reports);
    let total = total(reports);
    let hint = if reports.is_empty() {
        " No peers are configured: set PEERS to every replica's host:port (the server component also takes PEER_SERVICE, the headless Service's name:port)."
    } else {
        ""
    };
    let body = format!(
        r#"<h1>Visits across replicas</h1>
<p>{total} visits in all. Asked by <code>{this_pod}</code>; each replica keeps its own log on its own volume.{hint}</p>
{chart}
<table>
<thead><tr><th>replica</th><th>visits</th><th>last visits (Moscow time)</th></tr></thead>
<tbody>{rows}</tbody>
</table>
<p><a href="/">Visit again</a> · <a href="/visits">this replica's log</a></p>
"#
    );
    crate::page::document(&format!("All replicas · {this_pod}"), CLUSTER_STYLE, &body)
}

const CLUSTER_STYLE: &str = "  body { margin: 2rem auto; max-width: 900px; padding: 0 1rem; }
  table { border-collapse: collapse; width: 100%; margin-top: 1.5rem; }
  td, th { border-bottom: 1px solid #8884; padding: .5rem; text-align: left; vertical-align: top; }
  .count { font-weight: 600; }
  tr.down td { color: #b91c1c; }
  svg text { font-size: 13px; fill: currentColor; }
";

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "2023-11-18 17:54:26.913511+03:00";

    fn up(pod: &str, count: u64) -> PeerReport {
        PeerReport::from_reply(
            &format!("{pod}.visits-headless:8080"),
            200,
            Some(pod),
            Some(&count.to_string()),
            format!("{T}\n").as_bytes(),
        )
    }

    #[test]
    fn reads_a_peer_reply() {
        let report = up("visits-1", 7);
        assert_eq!(
            report.state,
            PeerState::Up {
                pod: "visits-1".into(),
                count: 7,
                last: vec![T.into()]
            }
        );
        let broken = PeerReport::from_reply("p:1", 200, Some("x"), Some("many"), b"");
        assert!(matches!(broken.state, PeerState::Down { .. }));
        let failing = PeerReport::from_reply("p:1", 503, Some("x"), Some("1"), b"");
        assert_eq!(
            failing.state,
            PeerState::Down {
                reason: "answered 503".into()
            }
        );
    }

    #[test]
    fn discovered_peers_are_each_address_once_in_order() {
        let ip = |last| Ipv4Addr::new(127, 0, 0, last);
        assert_eq!(
            discovered_peers(&[ip(10), ip(2), ip(3), ip(2)], 8080),
            ["127.0.0.2:8080", "127.0.0.3:8080", "127.0.0.10:8080"]
        );
        assert!(discovered_peers(&[], 8080).is_empty());
    }

    #[test]
    fn replicas_are_shown_in_pod_order_down_last() {
        let mut reports = vec![
            PeerReport::down("127.0.0.9:8080", "refused"),
            up("visits-10", 1),
            up("visits-2", 1),
            up("visits-0", 1),
        ];
        sort_by_pod(&mut reports);
        let order: Vec<_> = reports
            .iter()
            .map(|r| match &r.state {
                PeerState::Up { pod, .. } => pod.as_str(),
                PeerState::Down { .. } => r.peer.as_str(),
            })
            .collect();
        assert_eq!(
            order,
            ["visits-0", "visits-2", "visits-10", "127.0.0.9:8080"]
        );
    }

    #[test]
    fn peer_text_cannot_inject_markup() {
        let report = PeerReport::from_reply("p:1", 200, Some("<script>"), Some("1"), b"<b>\n");
        let html = render_html("visits-0", &[report, PeerReport::down("<i>:1", "a <b> c")]);
        assert!(!html.contains("<script>") && !html.contains("<b>") && !html.contains("<i>"));
        assert!(html.contains("&lt;i&gt;:1") && html.contains("a &lt;b&gt; c"));
    }

    #[test]
    fn json_lists_every_replica_up_or_down() {
        let reports = [
            up("visits-0", 3),
            PeerReport::down("visits-2:8080", "refused \"x\"")
                .asked_ago(Duration::from_millis(1500)),
        ];
        assert_eq!(
            render_json("visits-0", &reports),
            format!(
                r#"{{"pod":"visits-0","total":3,"replicas":[{{"peer":"visits-0.visits-headless:8080","age_ms":0,"up":true,"pod":"visits-0","count":3,"last":["{T}"]}},{{"peer":"visits-2:8080","age_ms":1500,"up":false,"reason":"refused \"x\""}}]}}"#
            )
        );
    }

    #[test]
    fn the_chart_scales_bars_to_the_busiest_replica() {
        let html = render_html("visits-0", &[up("visits-0", 10), up("visits-1", 5)]);
        assert!(
            html.contains(r#"data-count="10" x="150" y="0" width="360""#),
            "{html}"
        );
        assert!(
            html.contains(r#"data-count="5" x="150" y="40" width="180""#),
            "{html}"
        );
        assert!(html.contains("15 visits in all"));
    }
}
