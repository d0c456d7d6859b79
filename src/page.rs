//! The page a person sees at `/`: small, self-contained HTML (no external assets, since the
//! component has no outbound network).

/// What the page shows about the visit just recorded.
#[derive(Debug, Clone, Copy)]
pub struct VisitView<'a> {
    /// The recorded Moscow time, as stored.
    pub moscow_time: &'a str,
    pub count: u64,
    /// Sanitized to [A-Za-z0-9._-], so safe in HTML as is.
    pub pod_name: &'a str,
}

/// A complete, self-contained HTML document: no external assets, since the component has no
/// outbound network to fetch them with. `style` and `body` are inserted as they are.
pub(crate) fn document(title: &str, style: &str, body: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
  :root {{ color-scheme: light dark; font-family: system-ui, sans-serif; }}
{style}</style>
</head>
<body>
{body}</body>
</html>
"#
    )
}

const VISIT_STYLE: &str = "  body { margin: 0; min-height: 100vh; display: grid; place-items: center; }
  main { padding: 2rem 2.5rem; border-radius: 12px; box-shadow: 0 2px 16px #0002; text-align: center; }
  h1 { font-size: 1rem; font-weight: 500; margin: 0 0 .5rem; opacity: .7; }
  time { display: block; font: 600 clamp(1.2rem, 4vw, 2rem) ui-monospace, monospace; }
  p { margin: 1rem 0 0; }
  code { font-family: ui-monospace, monospace; }
";

pub fn render(visit: &VisitView<'_>) -> String {
    let VisitView {
        moscow_time,
        count,
        pod_name,
    } = visit;
    let plural = if *count == 1 { "" } else { "s" };
    let body = format!(
        r#"<main>
  <h1>Current time in Moscow</h1>
  <time id="moscow-time" datetime="{moscow_time}">{moscow_time}</time>
  <p>Replica <code id="pod-name">{pod_name}</code> has recorded
     <strong id="visit-count">{count}</strong> visit{plural}.</p>
  <p><a href="/visits">See this replica's log</a> · <a href="/visits/all">all replicas</a></p>
</main>
"#
    );
    document(&format!("Moscow time · {pod_name}"), VISIT_STYLE, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_time_count_pod_and_a_link_to_the_log() {
        let html = render(&VisitView {
            moscow_time: "2023-11-18 17:54:26.913511+03:00",
            count: 3,
            pod_name: "visits-1",
        });
        assert!(html.contains(">2023-11-18 17:54:26.913511+03:00</time>"));
        assert!(html.contains(r#"<strong id="visit-count">3</strong> visits."#));
        assert!(html.contains(r#"<code id="pod-name">visits-1</code>"#));
        assert!(html.contains(r#"href="/visits""#));
        assert!(!html.contains("http://") && !html.contains("https://"));
    }

    #[test]
    fn one_visit_is_singular() {
        let html = render(&VisitView {
            moscow_time: "t",
            count: 1,
            pod_name: "p",
        });
        assert!(html.contains("1</strong> visit."));
    }
}
