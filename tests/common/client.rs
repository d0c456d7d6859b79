//! Requests from the tests and their answers, through ureq; what a visit page showed.

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::Duration;

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

/// The value of the sample `name{labels…}` in a /metrics text: the sample named `name` whose
/// labels include every one of `labels` (`pod="visits-0"`, say).
pub fn metric(metrics: &str, name: &str, labels: &[&str]) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix('{')?;
        let (found, value) = rest.split_once("} ")?;
        let found: BTreeSet<&str> = found.split(',').collect();
        labels
            .iter()
            .all(|label| found.contains(label))
            .then(|| value.trim().parse().ok())?
    })
}
