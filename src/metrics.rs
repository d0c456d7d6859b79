//! `/metrics` in the Prometheus text exposition format (version 0.0.4): the series both
//! components know from the log, and the pieces the server renders its own with.

use std::fmt::Write as _;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What `/metrics` says about the log, from one `stat` of `visits.txt` and one listing of
/// the data directory, whatever the log's length.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogFigures {
    /// Every visit recorded, those let go by retention included.
    pub visits: u64,
    /// Visits deleted with their sealed segments (`RETAIN_BYTES`).
    pub let_go: u64,
    /// `visits.txt`'s size.
    pub active_bytes: u64,
    /// The sealed segments' compressed size, and what they hold uncompressed.
    pub sealed_bytes: u64,
    pub sealed_raw_bytes: u64,
    /// Bytes free on the volume (`VOLUME_CAPACITY` less what the directory holds), if known.
    pub free_bytes: Option<u64>,
}

/// The log's series and, when known (`VOLUME_CAPACITY`), the volume's size and free bytes,
/// labelled with the pod. Pod names are sanitized to [A-Za-z0-9._-], so they need no
/// escaping inside the label's quotes.
pub fn render(pod: &str, log: &LogFigures, volume_capacity: Option<u64>) -> String {
    let mut out = String::new();
    let labels = format!("pod=\"{pod}\"");
    let one = |value| [(labels.as_str(), value)];
    sample(
        &mut out,
        "visits_total",
        "counter",
        "Visits recorded in this replica's log, those let go by retention included.",
        &one(log.visits),
    );
    sample(
        &mut out,
        "visits_log_size_bytes",
        "gauge",
        "Size of this replica's log on disk: visits.txt and the sealed (compressed) segments.",
        &one(log.active_bytes + log.sealed_bytes),
    );
    sample(
        &mut out,
        "visits_sealed_bytes",
        "gauge",
        "Compressed size of the sealed segments.",
        &one(log.sealed_bytes),
    );
    sample(
        &mut out,
        "visits_sealed_raw_bytes",
        "gauge",
        "What the sealed segments hold uncompressed.",
        &one(log.sealed_raw_bytes),
    );
    sample(
        &mut out,
        "visits_let_go_total",
        "counter",
        "Visits deleted with the oldest sealed segments (RETAIN_BYTES).",
        &one(log.let_go),
    );
    if let Some(capacity) = volume_capacity {
        sample(
            &mut out,
            "visits_volume_capacity_bytes",
            "gauge",
            "Size of the replica's volume (VOLUME_CAPACITY).",
            &one(capacity),
        );
    }
    if let Some(free) = log.free_bytes {
        sample(
            &mut out,
            "visits_volume_free_bytes",
            "gauge",
            "VOLUME_CAPACITY less what the data directory holds, in whole 4 KiB blocks.",
            &one(free),
        );
    }
    out
}

/// One metric family with integer samples, each with its labels (`a="x",b="y"`).
pub fn sample(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(&str, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

/// A Prometheus histogram with fixed upper bounds.
#[derive(Debug, Clone)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations at or under each bound (not cumulative), then above the last.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    pub fn observe(&mut self, value: f64) {
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        self.counts[bucket] += 1;
        self.sum += value;
    }

    /// The `_bucket`, `_sum` and `_count` samples under `labels` (without the family header).
    pub fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.counts[self.bounds.len()];
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_visits_from_the_size() {
        let figures = LogFigures {
            visits: 2,
            active_bytes: 66,
            ..LogFigures::default()
        };
        let text = render("visits-0", &figures, Some(1024));
        assert!(
            text.contains("visits_total{pod=\"visits-0\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("visits_log_size_bytes{pod=\"visits-0\"} 66\n"));
        assert!(text.contains("visits_volume_capacity_bytes{pod=\"visits-0\"} 1024\n"));
        assert!(!render("p", &LogFigures::default(), None).contains("capacity"));
    }

    #[test]
    fn a_histogram_is_cumulative_with_sum_and_count() {
        let mut histogram = Histogram::new(&[0.1, 1.0]);
        for value in [0.05, 0.1, 0.5, 3.0] {
            histogram.observe(value);
        }
        let mut out = String::new();
        histogram.render(&mut out, "d", "pod=\"p\"");
        assert_eq!(
            out,
            "d_bucket{pod=\"p\",le=\"0.1\"} 2\nd_bucket{pod=\"p\",le=\"1\"} 3\n\
             d_bucket{pod=\"p\",le=\"+Inf\"} 4\nd_sum{pod=\"p\"} 3.65\nd_count{pod=\"p\"} 4\n"
        );
    }
}
