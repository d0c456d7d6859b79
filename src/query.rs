//! The query and `Accept` header of the listing routes.

use crate::body::RequestBody;
use crate::listing::ListFormat;
use http::header::ACCEPT;
use http::Request;

/// `?tail=N` and `?format=json|text` on `/visits`; other parameters are ignored.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ListQuery {
    pub tail: Option<u64>,
    pub format: Option<ListFormat>,
}

impl ListQuery {
    pub fn parse(query: &str) -> Result<Self, String> {
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
pub(crate) fn requested_format(query: &ListQuery, request: &Request<RequestBody>) -> ListFormat {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
