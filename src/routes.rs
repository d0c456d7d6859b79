//! The one HTTP handler both artefacts call: plain `http` requests in, responses out.
//! It knows nothing of Spin or sockets: what a request waits for (a visit's append, the
//! peers' answers) it asks of the entry point's [`Host`]; each entry point only converts
//! types and pumps the body.

use crate::body::{Body, RequestBody};
use crate::cluster_view;
use crate::config::Config;
use crate::host::{Appended, Host};
use crate::listing::{ListFormat, Listing};
use crate::metrics::{self, LogFigures};
use crate::page::{self, VisitView};
use crate::query::{requested_format, ListQuery};
use crate::record;
use crate::store::VisitStore;
use crate::visit_log::{LogError, VisitLog};
use chrono::{DateTime, FixedOffset};
use http::header::{HeaderMap, HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{Method, Request, Response, StatusCode};

pub const SERVED_BY: &str = "x-served-by";
/// On `/visits`: the number of the first visit listed (visits before it were let go by
/// retention or left out by `?tail`).
pub const FIRST_HEADER: &str = "x-visit-first";

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
            log: VisitLog::with_fsync(config.data_dir.clone(), config.append_fsync)
                .with_segments(config.segment_bytes, config.retain_bytes),
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
    ClusterView,
}

impl Route {
    /// The route's path, as `/metrics` labels requests.
    fn path(self) -> &'static str {
        match self {
            Route::Visit => "/",
            Route::Visits => "/visits",
            Route::Health => "/healthz",
            Route::Ready => "/readyz",
            Route::Metrics => "/metrics",
            Route::ClusterView => "/visits/all",
        }
    }

    fn find(path: &str) -> Option<Self> {
        match path {
            "/" => Some(Route::Visit),
            "/visits" => Some(Route::Visits),
            "/healthz" => Some(Route::Health),
            "/readyz" => Some(Route::Ready),
            "/metrics" => Some(Route::Metrics),
            "/visits/all" => Some(Route::ClusterView),
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

/// The route label of a request path for metrics: the route's path, or `other`, so that
/// scanners cannot grow the series without bound.
pub fn route_label(path: &str) -> &'static str {
    Route::find(path).map_or("other", Route::path)
}

/// Answers one request. The request body is never read: no route takes one.
pub async fn handle(request: &Request<RequestBody>, app: &App, host: &impl Host) -> Response<Body> {
    let pod = app.config.pod_name.as_str();
    let route = match checked_route(request) {
        Ok(route) => route,
        Err(refusal) => return refusal.into_response(pod),
    };
    match route {
        Route::Visit => {
            let record = record::record_at(&(app.clock)());
            let appended = host.append(record).await;
            visit_page(&record, appended, pod)
        }
        Route::Visits => visits(request, app, store_of(app, host)),
        Route::Health => text(StatusCode::OK, "ok\n".into(), pod),
        Route::Ready => match host.unready_reason() {
            Some(reason) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n"), pod),
            None => {
                let store = store_of(app, host);
                match store.check_writable().and_then(|()| room(app)) {
                    // Which store serves: the Spin component may choose (VISIT_STORE).
                    Ok(None) => text(
                        StatusCode::OK,
                        format!("ready: visits in {}\n", store.describe()),
                        pod,
                    ),
                    Ok(Some(reason)) => text(StatusCode::SERVICE_UNAVAILABLE, reason, pod),
                    Err(err) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{err}\n"), pod),
                }
            }
        },
        Route::ClusterView => serve_cluster_view(request, app, host).await,
        Route::Metrics => match log_figures(app, store_of(app, host)) {
            Ok(figures) => {
                let mut text = metrics::render(pod, &figures, app.config.volume_capacity);
                host.metrics(pod, &mut text);
                respond(
                    StatusCode::OK,
                    metrics::CONTENT_TYPE,
                    Body::Full(text.into_bytes()),
                    pod,
                )
            }
            Err(err) => log_error(&err, pod),
        },
    }
}

/// The log's figures for `/metrics`.
/// `/metrics`' figures: the store's, and the volume's free bytes (`VOLUME_CAPACITY` less what
/// the data directory holds, whichever store serves).
fn log_figures(app: &App, store: &dyn VisitStore) -> Result<LogFigures, LogError> {
    let mut figures = store.usage()?;
    if let Some(capacity) = app.config.volume_capacity {
        let used = app
            .log
            .layout()
            .map_or(figures.active_bytes, |layout| layout.disk_bytes);
        figures.free_bytes = Some(capacity.saturating_sub(used));
    }
    Ok(figures)
}

/// Why the volume is too near full for more traffic, if it is: fewer than `RESERVE_BYTES`
/// free of `VOLUME_CAPACITY`, so the Service sends visits to the other replicas while this
/// one still has room (WASI 0.2 has no `statvfs`: free is the claim's size less what the
/// data directory holds).
fn room(app: &App) -> Result<Option<String>, LogError> {
    let (Some(capacity), Some(reserve)) = (app.config.volume_capacity, app.config.reserve_bytes)
    else {
        return Ok(None);
    };
    // A store the component cannot see (Spin's SQLite, written by the host) has no layout
    // here: nothing to say then.
    let Ok(layout) = app.log.layout() else {
        return Ok(None);
    };
    let free = capacity.saturating_sub(layout.disk_bytes);
    Ok((free < reserve).then(|| {
        format!(
            "volume nearly full: {free} bytes free, under the reserve of {reserve} \
             (RESERVE_BYTES); set RETAIN_BYTES or grow the claim\n"
        )
    }))
}

/// Why a request gets no route: unknown path 404, wrong method 405 (with the methods that
/// would do), a body 400. None of these records a visit.
struct Refusal {
    status: StatusCode,
    reason: String,
    allow: Option<&'static str>,
}

impl Refusal {
    fn into_response(self, pod: &str) -> Response<Body> {
        let mut response = text(self.status, self.reason, pod);
        if let Some(allow) = self.allow {
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

fn checked_route(request: &Request<RequestBody>) -> Result<Route, Refusal> {
    let refuse = |status, reason| Refusal {
        status,
        reason,
        allow: None,
    };
    let Some(route) = Route::find(request.uri().path()) else {
        return Err(refuse(StatusCode::NOT_FOUND, "not found\n".into()));
    };
    if !route.allows(request.method()) {
        return Err(Refusal {
            allow: Some(route.allow()),
            ..refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method not allowed: use {}\n", route.allow()),
            )
        });
    }
    if *request.body() == RequestBody::Present {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            format!("{} takes no request body\n", request.uri().path()),
        ));
    }
    Ok(route)
}

/// The page for a visit once its append returned: the recorded time and its own count, or
/// the reason it was not recorded.
fn visit_page(record: &[u8; record::RECORD_LEN], appended: Appended, pod: &str) -> Response<Body> {
    match appended {
        Ok(count) => {
            let html = page::render(&VisitView {
                moscow_time: record::timestamp_text(record),
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

/// The store the host reads from, or the app's file log.
fn store_of<'a>(app: &'a App, host: &'a impl Host) -> &'a dyn VisitStore {
    host.store().unwrap_or(&app.log)
}

fn visits(request: &Request<RequestBody>, app: &App, store: &dyn VisitStore) -> Response<Body> {
    let pod = app.config.pod_name.as_str();
    let query = match ListQuery::parse(request.uri().query().unwrap_or("")) {
        Ok(query) => query,
        Err(reason) => return text(StatusCode::BAD_REQUEST, format!("{reason}\n"), pod),
    };
    let format = requested_format(&query, request);
    match store.records(query.tail) {
        Ok(records) => {
            let count = records.visit_count();
            let content_type = match format {
                ListFormat::Text => "text/plain; charset=utf-8",
                ListFormat::Json => "application/json",
            };
            let first = records.first_visit();
            let listing = Listing::new(records, format, pod, count);
            let mut response = respond(StatusCode::OK, content_type, Body::Listing(listing), pod);
            let headers = response.headers_mut();
            headers.insert(crate::peers::COUNT_HEADER, HeaderValue::from(count));
            headers.insert(FIRST_HEADER, HeaderValue::from(first));
            response
        }
        Err(err) => log_error(&err, pod),
    }
}

async fn serve_cluster_view(
    request: &Request<RequestBody>,
    app: &App,
    host: &impl Host,
) -> Response<Body> {
    let pod = app.config.pod_name.as_str();
    let format = match ListQuery::parse(request.uri().query().unwrap_or("")) {
        Ok(query) => requested_format(&query, request),
        Err(reason) => return text(StatusCode::BAD_REQUEST, format!("{reason}\n"), pod),
    };
    let reports = host
        .ask_peers(&app.config.peers, app.config.peer_timeout)
        .await;
    let (content_type, body) = match format {
        ListFormat::Text => (
            "text/html; charset=utf-8",
            cluster_view::render_html(pod, &reports),
        ),
        ListFormat::Json => ("application/json", cluster_view::render_json(pod, &reports)),
    };
    respond(
        StatusCode::OK,
        content_type,
        Body::Full(body.into_bytes()),
        pod,
    )
}

fn log_error(err: &LogError, pod: &str) -> Response<Body> {
    let status = match err {
        LogError::Full(_) => StatusCode::INSUFFICIENT_STORAGE,
        LogError::MissingDirectory(_)
        | LogError::ReadOnly(_)
        | LogError::PermissionDenied(_)
        | LogError::OutOfDescriptors(_) => StatusCode::SERVICE_UNAVAILABLE,
        LogError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    };
    text(status, format!("{err}\n"), pod)
}

/// A plain-text answer with the headers every answer carries; entry points use it for what
/// they refuse before the handler runs.
pub fn text(status: StatusCode, body: String, pod: &str) -> Response<Body> {
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
    add_promised_headers(headers, pod);
    response
}

/// The headers README promises on every answer, for the entries to add to what they answer
/// without the handler (the server's HTTP parser refusing a malformed request, its admin
/// port).
pub fn promised_headers(pod: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    add_promised_headers(&mut headers, pod);
    headers
}

/// Every answer reflects live state; `/` in particular must be a visit on each reload.
fn add_promised_headers(headers: &mut HeaderMap, pod: &str) {
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(value) = HeaderValue::from_str(pod) {
        headers.insert(SERVED_BY, value);
    }
}

#[cfg(test)]
mod tests;
