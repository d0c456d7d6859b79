//! The cluster view (`/visits/all`): every peer's count and last visits side by side, so a
//! user sees how the ClusterIP Service spread their visits, as HTML with a bar chart or as
//! JSON. [`crate::peers`] asks the peers; this module renders their reports. A peer that is
//! down is shown as down, not as an error.

use crate::peers::{PeerReport, PeerState};
use std::fmt::Write as _;

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
    crate::page::document(
        &format!("All replicas · {this_pod}"),
        CLUSTER_VIEW_STYLE,
        &body,
    )
}

const CLUSTER_VIEW_STYLE: &str = "  body { margin: 2rem auto; max-width: 900px; padding: 0 1rem; }
  table { border-collapse: collapse; width: 100%; margin-top: 1.5rem; }
  td, th { border-bottom: 1px solid #8884; padding: .5rem; text-align: left; vertical-align: top; }
  .count { font-weight: 600; }
  tr.down td { color: #b91c1c; }
  svg text { font-size: 13px; fill: currentColor; }
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::{up, PeerReply};
    use std::time::Duration;

    const T: &str = "2023-11-18 17:54:26.913511+03:00";

    #[test]
    fn peer_text_cannot_inject_markup() {
        let reply = PeerReply {
            status: 200,
            served_by: Some("<script>".into()),
            count: Some("1".into()),
            body: b"<b>\n".to_vec(),
        };
        let report = PeerReport::from_reply("p:1", &reply);
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
