//! `/metrics` in the Prometheus text exposition format (version 0.0.4): the series both
//! components know from the log, and the pieces the server renders its own with.

use crate::store::Usage;
use std::fmt::Write as _;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The replica's visit count, log size and, when known (`VOLUME_CAPACITY`), the volume's
/// size, labelled with the pod. For the file log both come from one `stat`, whatever the
/// log's length. Pod names are sanitized to [A-Za-z0-9._-], so they
/// need no escaping inside the label's quotes.
pub fn render(pod: &str, usage: Usage, volume_capacity: Option<u64>) -> String {
    let Usage {
        visits,
        bytes: log_size_bytes,
    } = usage;
    let mut out = String::new();
    let labels = format!("pod=\"{pod}\"");
    sample(
        &mut out,
        "visits_total",
        "counter",
        "Visits recorded in this replica's log.",
        &[(&labels, visits)],
    );
    sample(
        &mut out,
        "visits_log_size_bytes",
        "gauge",
        "Size of this replica's store: visits.txt, or the SQLite database.",
        &[(&labels, log_size_bytes)],
    );
    if let Some(capacity) = volume_capacity {
        sample(
            &mut out,
            "visits_volume_capacity_bytes",
            "gauge",
            "Size of the replica's volume (VOLUME_CAPACITY).",
            &[(&labels, capacity)],
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
    fn renders_the_count_size_and_capacity() {
        let usage = Usage {
            visits: 2,
            bytes: 66,
        };
        let text = render("visits-0", usage, Some(1024));
        assert!(
            text.contains("visits_total{pod=\"visits-0\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("visits_log_size_bytes{pod=\"visits-0\"} 66\n"));
        assert!(text.contains("visits_volume_capacity_bytes{pod=\"visits-0\"} 1024\n"));
        let empty = Usage {
            visits: 0,
            bytes: 0,
        };
        assert!(!render("p", empty, None).contains("capacity"));
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
