//! `/metrics` in the Prometheus text exposition format (version 0.0.4).

use crate::record::RECORD_LEN;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The replica's visit count and log size, labelled with the pod. Both come from the file's
/// size, so a scrape costs one `stat` whatever the log's length. Pod names are sanitized to
/// [A-Za-z0-9._-], so they need no escaping inside the label's quotes.
pub fn render(pod: &str, log_size_bytes: u64) -> String {
    let visits = log_size_bytes / RECORD_LEN as u64;
    format!(
        "# HELP visits_total Visits recorded in this replica's log.\n\
         # TYPE visits_total counter\n\
         visits_total{{pod=\"{pod}\"}} {visits}\n\
         # HELP visits_log_size_bytes Size of this replica's visits.txt.\n\
         # TYPE visits_log_size_bytes gauge\n\
         visits_log_size_bytes{{pod=\"{pod}\"}} {log_size_bytes}\n"
    )
}
