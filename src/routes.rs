//! The one HTTP handler both artefacts call: plain `http` requests in, responses out.
//! It knows nothing of Spin or sockets; each entry point only converts types and pumps the
//! body.

use crate::cluster::{self, PeerReport};
use crate::config::Config;
use crate::listing::{ListFormat, Listing};
use crate::metrics;
use crate::page::{self, VisitView};
use crate::record::{self, RECORD_LEN};
use crate::visit_log::{LogError, VisitLog};
use chrono::{DateTime, FixedOffset};
use http::header::{HeaderValue, ACCEPT, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};

pub const SERVED_BY: &str = "x-served-by";

/// A response body: small ones whole, the log streamed, or the cluster view, which the
/// entry point completes by asking the peers with its own outbound HTTP.
#[derive(Debug)]
pub enum Body {
    Full(Vec<u8>),
    Listing(Listing),
    Cluster(ClusterView),
}

impl Body {
    /// The whole body; for tests and small responses. A cluster view must be rendered with
    /// its peers' answers first.
    pub fn into_bytes(self) -> std::io::Result<Vec<u8>> {
        match self {
            Body::Full(bytes) => Ok(bytes),
            Body::Listing(listing) => listing.collect(),
            Body::Cluster(_) => Err(std::io::Error::other("the cluster view needs its peers")),
        }
    }
}

/// `/visits/all`, waiting for the peers' answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    pod: String,
    peers: Vec<String>,
    format: ListFormat,
}

impl ClusterView {
    /// The peers to ask for [`cluster::PEER_PATH`], as `host:port`.
    pub fn peers(&self) -> &[String] {
        &self.peers
    }

    /// The body, from one report per peer, in the order of [`ClusterView::peers`].
    pub fn render(&self, reports: &[PeerReport]) -> Vec<u8> {
        match self.format {
            ListFormat::Json => cluster::render_json(&self.pod, reports),
            ListFormat::Text => cluster::render_html(&self.pod, reports),
        }
        .into_bytes()
    }
}

/// Whether the request came with a body. No route takes one, and a body on `GET /` must
/// not slip through as a visit, so each entry point says what its host saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestBody {
    #[default]
    Empty,
    Present,
}

impl RequestBody {
    /// From a host that knows when a request body has ended (hyper's `is_end_stream`).
    pub fn from_end_of_stream(ended: bool) -> Self {
        if ended {
            RequestBody::Empty
        } else {
            RequestBody::Present
        }
    }
}

/// What a request needs from the outside world.
#[derive(Debug, Clone)]
pub struct App {
    pub config: Config,
    pub log: VisitLog,
    /// Injected so tests can pin the time.
    pub clock: fn() -> DateTime<FixedOffset>,
}

impl App {
    pub fn new(config: Config) -> Self {
        Self {
            log: VisitLog::new(config.data_dir.clone()),
            config,
            clock: record::moscow_now,
        }
    }

    pub fn from_env() -> Self {
        Self::new(Config::from_env())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Visit,
    Visits,
    Health,
    Ready,
    Metrics,
    Cluster,
}

impl Route {
    fn find(path: &str) -> Option<Self> {
        match path {
            "/" => Some(Route::Visit),
            "/visits" => Some(Route::Visits),
            "/healthz" => Some(Route::Health),
            "/readyz" => Some(Route::Ready),
            "/metrics" => Some(Route::Metrics),
            "/visits/all" => Some(Route::Cluster),
            _ => None,
        }
    }

    /// `/` records a visit, so it is GET only; the rest are safe to HEAD.
    fn allow(self) -> &'static str {
        match self {
            Route::Visit => "GET",
            _ => "GET, HEAD",
        }
    }

    fn allows(self, method: &Method) -> bool {
        method == Method::GET || (method == Method::HEAD && self != Route::Visit)
    }
}

/// Answers one request. The request body is never read: no route takes one.
pub fn handle(request: &Request<RequestBody>, app: &App) -> Response<Body> {
    let pod = app.config.pod_name.as_str();
    let Some(route) = Route::find(request.uri().path()) else {
        return text(StatusCode::NOT_FOUND, "not found\n".into(), pod);
    };
    if !route.allows(request.method()) {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method not allowed: use {}\n", route.allow()),
            pod,
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static(route.allow()));
        return response;
    }
    if *request.body() == RequestBody::Present {
        return text(
            StatusCode::BAD_REQUEST,
            format!("{} takes no request body\n", request.uri().path()),
            pod,
        );
    }
    match route {
        Route::Visit => visit(app),
        Route::Visits => visits(request, app),
        Route::Health => text(StatusCode::OK, "ok\n".into(), pod),
        Route::Ready => match app.log.check_writable() {
            Ok(()) => text(StatusCode::OK, "ready\n".into(), pod),
            Err(err) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{err}\n"), pod),
        },
        Route::Cluster => cluster_view(request, app),
        Route::Metrics => match app.log.size_bytes() {
            Ok(size) => respond(
                StatusCode::OK,
                metrics::CONTENT_TYPE,
                Body::Full(metrics::render(pod, size).into_bytes()),
                pod,
            ),
            Err(err) => log_error(&err, pod),
        },
    }
}

fn visit(app: &App) -> Response<Body> {
    let pod = app.config.pod_name.as_str();
    let line: [u8; RECORD_LEN] = record::record_line(&(app.clock)());
    match app.log.append(&line) {
        Ok(count) => {
            let html = page::render(&VisitView {
                moscow_time: record::timestamp_text(&line),
                count,
                pod_name: pod,
            });
            respond(
                StatusCode::OK,
                "text/html; charset=utf-8",
                Body::Full(html.into_bytes()),
                pod,
            )
        }
        Err(err) => log_error(&err, pod),
    }
}

fn visits(request: &Request<RequestBody>, app: &App) -> Response<Body> {
    let pod = app.config.pod_name.as_str();
    let query = match ListQuery::parse(request.uri().query().unwrap_or("")) {
        Ok(query) => query,
        Err(reason) => return text(StatusCode::BAD_REQUEST, format!("{reason}\n"), pod),
    };
    let format = requested_format(&query, request);
    match app.log.records(query.tail) {
        Ok(records) => {
            let count = records.visit_count();
            let content_type = match format {
                ListFormat::Text => "text/plain; charset=utf-8",
                ListFormat::Json => "application/json",
            };
            let listing = Listing::new(records, format, pod, count);
            let mut response = respond(StatusCode::OK, content_type, Body::Listing(listing), pod);
            response
                .headers_mut()
                .insert(cluster::COUNT_HEADER, HeaderValue::from(count));
            response
        }
        Err(err) => log_error(&err, pod),
    }
}

fn cluster_view(request: &Request<RequestBody>, app: &App) -> Response<Body> {
    let pod = app.config.pod_name.as_str();
    let format = match ListQuery::parse(request.uri().query().unwrap_or("")) {
        Ok(query) => requested_format(&query, request),
        Err(reason) => return text(StatusCode::BAD_REQUEST, format!("{reason}\n"), pod),
    };
    let content_type = match format {
        ListFormat::Text => "text/html; charset=utf-8",
        ListFormat::Json => "application/json",
    };
    let view = ClusterView {
        pod: pod.to_owned(),
        peers: app.config.peers.clone(),
        format,
    };
    respond(StatusCode::OK, content_type, Body::Cluster(view), pod)
}

/// `?tail=N` and `?format=json|text` on `/visits`; other parameters are ignored.
#[derive(Debug, Default, PartialEq, Eq)]
struct ListQuery {
    tail: Option<u64>,
    format: Option<ListFormat>,
}

impl ListQuery {
    fn parse(query: &str) -> Result<Self, String> {
        let mut parsed = ListQuery::default();
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "tail" => {
                    let lines = value
                        .parse::<u64>()
                        .ok()
                        .filter(|_| value.bytes().all(|b| b.is_ascii_digit()))
                        .ok_or_else(|| {
                            format!("tail must be a whole number of lines, not {value:?}")
                        })?;
                    parsed.tail = Some(lines);
                }
                "format" => {
                    parsed.format = Some(match value {
                        "json" => ListFormat::Json,
                        "text" => ListFormat::Text,
                        _ => return Err(format!("format must be json or text, not {value:?}")),
                    })
                }
                _ => {}
            }
        }
        Ok(parsed)
    }
}

/// `?format=` wins; otherwise JSON when the client accepts it, else text.
fn requested_format(query: &ListQuery, request: &Request<RequestBody>) -> ListFormat {
    query.format.unwrap_or(if accepts_json(request) {
        ListFormat::Json
    } else {
        ListFormat::Text
    })
}

/// Whether any `Accept` media range is `application/json` with a non-zero quality.
fn accepts_json(request: &Request<RequestBody>) -> bool {
    request
        .headers()
        .get_all(ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            let refused = parts.any(|param| {
                param
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case("application/json") && !refused
        })
}

fn log_error(err: &LogError, pod: &str) -> Response<Body> {
    let status = match err {
        LogError::Full(_) => StatusCode::INSUFFICIENT_STORAGE,
        LogError::MissingDirectory(_) | LogError::ReadOnly(_) => StatusCode::SERVICE_UNAVAILABLE,
        LogError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    text(status, format!("{err}\n"), pod)
}

fn text(status: StatusCode, body: String, pod: &str) -> Response<Body> {
    respond(
        status,
        "text/plain; charset=utf-8",
        Body::Full(body.into_bytes()),
        pod,
    )
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: Body,
    pod: &str,
) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    // Every answer reflects live state; `/` in particular must be a visit on each reload.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(pod) {
        headers.insert(SERVED_BY, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fixed_clock() -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339("2023-11-18T17:54:26.913511+03:00").unwrap()
    }

    fn app_in(dir: &Path) -> App {
        App {
            clock: fixed_clock,
            ..App::new(Config {
                data_dir: dir.to_owned(),
                pod_name: "visits-0".into(),
                peers: vec![],
            })
        }
    }

    fn call(
        app: &App,
        method: Method,
        uri: &str,
        accept: Option<&str>,
    ) -> (StatusCode, http::HeaderMap, String) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(accept) = accept {
            request = request.header(ACCEPT, accept);
        }
        let response = handle(&request.body(RequestBody::Empty).unwrap(), app);
        let (parts, body) = response.into_parts();
        let body = String::from_utf8(body.into_bytes().unwrap()).unwrap();
        (parts.status, parts.headers, body)
    }

    #[test]
    fn a_visit_appends_the_fixed_time_and_shows_it() {
        let dir = tempfile::tempdir().unwrap();
        let app = app_in(dir.path());
        let (status, headers, body) = call(&app, Method::GET, "/", None);
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[SERVED_BY], "visits-0");
        assert_eq!(headers[CACHE_CONTROL], "no-store");
        assert!(body.contains("2023-11-18 17:54:26.913511+03:00"));
        let file = std::fs::read_to_string(dir.path().join("visits.txt")).unwrap();
        assert_eq!(file, "2023-11-18 17:54:26.913511+03:00\n");
    }

    #[test]
    fn unknown_paths_404_and_wrong_methods_405_without_recording() {
        let dir = tempfile::tempdir().unwrap();
        let app = app_in(dir.path());
        assert_eq!(
            call(&app, Method::GET, "/nope", None).0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            call(&app, Method::GET, "/visits/", None).0,
            StatusCode::NOT_FOUND
        );
        let (status, headers, _) = call(&app, Method::POST, "/", None);
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(headers[ALLOW], "GET");
        assert_eq!(
            call(&app, Method::HEAD, "/", None).0,
            StatusCode::METHOD_NOT_ALLOWED
        );
        let (status, headers, _) = call(&app, Method::DELETE, "/visits", None);
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(headers[ALLOW], "GET, HEAD");
        assert!(!dir.path().join("visits.txt").exists());
    }

    #[test]
    fn visits_lists_text_json_and_tail() {
        let dir = tempfile::tempdir().unwrap();
        let app = app_in(dir.path());
        for _ in 0..3 {
            call(&app, Method::GET, "/", None);
        }
        let line = "2023-11-18 17:54:26.913511+03:00";
        let (_, headers, body) = call(&app, Method::GET, "/visits", None);
        assert_eq!(headers[CONTENT_TYPE], "text/plain; charset=utf-8");
        assert_eq!(body, format!("{line}\n").repeat(3));
        assert_eq!(
            call(&app, Method::GET, "/visits?tail=1", None).2,
            format!("{line}\n")
        );
        let json = format!(r#"{{"pod":"visits-0","count":3,"visits":["{line}","{line}"]}}"#);
        assert_eq!(
            call(&app, Method::GET, "/visits?tail=2&format=json", None).2,
            json
        );
        let (_, headers, body) = call(
            &app,
            Method::GET,
            "/visits?tail=2",
            Some("text/html, application/json;q=0.9"),
        );
        assert_eq!(headers[CONTENT_TYPE], "application/json");
        assert_eq!(body, json);
        let empty = r#"{"pod":"visits-0","count":3,"visits":[]}"#;
        assert_eq!(
            call(&app, Method::GET, "/visits?tail=0&format=json", None).2,
            empty
        );
    }

    #[test]
    fn a_body_is_refused_and_records_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let app = app_in(dir.path());
        let request = Request::get("/").body(RequestBody::Present).unwrap();
        let response = handle(&request, &app);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(!dir.path().join("visits.txt").exists());
        let post = Request::post("/").body(RequestBody::Present).unwrap();
        assert_eq!(handle(&post, &app).status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn metrics_count_visits_and_bytes_without_recording() {
        let dir = tempfile::tempdir().unwrap();
        let app = app_in(dir.path());
        call(&app, Method::GET, "/", None);
        call(&app, Method::GET, "/", None);
        let (status, headers, body) = call(&app, Method::GET, "/metrics", None);
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[CONTENT_TYPE], metrics::CONTENT_TYPE);
        assert!(
            body.contains("visits_total{pod=\"visits-0\"} 2\n"),
            "{body}"
        );
        assert!(
            body.contains("visits_log_size_bytes{pod=\"visits-0\"} 66\n"),
            "{body}"
        );
        assert_eq!(
            std::fs::read(dir.path().join("visits.txt")).unwrap().len(),
            66
        );
    }

    #[test]
    fn the_cluster_view_waits_for_its_peers() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = app_in(dir.path());
        app.config.peers = vec!["a:1".into(), "b:2".into()];
        let request = Request::get("/visits/all?format=json")
            .body(RequestBody::Empty)
            .unwrap();
        let (parts, body) = handle(&request, &app).into_parts();
        assert_eq!(parts.status, StatusCode::OK);
        assert_eq!(parts.headers[CONTENT_TYPE], "application/json");
        let Body::Cluster(view) = body else {
            panic!("expected a cluster view")
        };
        assert_eq!(view.peers(), ["a:1", "b:2"]);
        let reports = [
            PeerReport::down("a:1", "refused"),
            PeerReport::down("b:2", "refused"),
        ];
        let json = String::from_utf8(view.render(&reports)).unwrap();
        assert!(json.starts_with(r#"{"pod":"visits-0","total":0,"replicas":[{"peer":"a:1""#));
        assert!(!dir.path().join("visits.txt").exists(), "nothing recorded");
    }

    #[test]
    fn visits_carries_the_total_count() {
        let dir = tempfile::tempdir().unwrap();
        let app = app_in(dir.path());
        call(&app, Method::GET, "/", None);
        let (_, headers, _) = call(&app, Method::GET, "/visits?tail=0", None);
        assert_eq!(headers[cluster::COUNT_HEADER], "1");
    }

    #[test]
    fn bad_list_queries_are_400() {
        let dir = tempfile::tempdir().unwrap();
        let app = app_in(dir.path());
        for uri in [
            "/visits?tail=-1",
            "/visits?tail=abc",
            "/visits?tail=",
            "/visits?tail=+3",
            "/visits?tail=1e3",
            "/visits?format=xml",
        ] {
            assert_eq!(
                call(&app, Method::GET, uri, None).0,
                StatusCode::BAD_REQUEST,
                "{uri}"
            );
        }
        assert_eq!(
            call(&app, Method::GET, "/visits?tail=99999999999", None).0,
            StatusCode::OK
        );
    }

    #[test]
    fn accept_parsing() {
        let accepts = |value: &str| {
            let request = Request::builder().header(ACCEPT, value);
            accepts_json(&request.body(RequestBody::Empty).unwrap())
        };
        assert!(accepts("application/json"));
        assert!(accepts("text/html,Application/JSON; charset=utf-8"));
        assert!(!accepts("application/json;q=0"));
        assert!(!accepts("text/plain, */*"));
        assert!(!accepts("application/jsonx"));
    }

    #[test]
    fn probes_record_nothing_and_readiness_reports_a_missing_volume() {
        let dir = tempfile::tempdir().unwrap();
        let app = app_in(dir.path());
        assert_eq!(call(&app, Method::GET, "/healthz", None).0, StatusCode::OK);
        assert_eq!(call(&app, Method::GET, "/readyz", None).0, StatusCode::OK);
        assert_eq!(
            std::fs::metadata(dir.path().join("visits.txt"))
                .unwrap()
                .len(),
            0
        );

        let missing = app_in(&dir.path().join("gone"));
        let (status, _, body) = call(&missing, Method::GET, "/readyz", None);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("does not exist"), "{body}");
        assert_eq!(
            call(&missing, Method::GET, "/", None).0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            call(&missing, Method::GET, "/healthz", None).0,
            StatusCode::OK
        );
    }
}
