//! What the server counts for `/metrics`: requests by route and status with their durations,
//! connections against the cap, failed accepts, and group commits (batch sizes and how long
//! each write and sync took), in Prometheus' naming conventions.

use crate::registry::Registry;
use spin_visits::metrics::{sample, Histogram};
use spin_visits::visit_log::Sealed;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

/// Seconds: from well under a millisecond (a cached answer) to the drain timeout.
const DURATION_BOUNDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Visits per group commit.
const BATCH_BOUNDS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

#[derive(Default)]
pub struct Stats {
    requests: RefCell<BTreeMap<(&'static str, u16), u64>>,
    durations: RefCell<BTreeMap<&'static str, Histogram>>,
    accept_failures: Cell<u64>,
    turns_ended: Cell<u64>,
    batch_sizes: RefCell<Option<Histogram>>,
    commit_durations: RefCell<Option<Histogram>>,
    segments_sealed: Cell<u64>,
    seal_steps: RefCell<Option<Histogram>>,
}

impl Stats {
    /// A request answered with `status` after `took` (until its head was ready; a streamed
    /// body's time is not in it).
    pub fn request(&self, route: &'static str, status: u16, took: Duration) {
        *self
            .requests
            .borrow_mut()
            .entry((route, status))
            .or_default() += 1;
        self.durations
            .borrow_mut()
            .entry(route)
            .or_insert_with(|| Histogram::new(DURATION_BOUNDS))
            .observe(took.as_secs_f64());
    }

    /// One step of a seal, which held the thread (and so the visits) for `took`.
    pub fn seal_step(&self, took: Duration) {
        self.seal_steps
            .borrow_mut()
            .get_or_insert_with(|| Histogram::new(DURATION_BOUNDS))
            .observe(took.as_secs_f64());
    }

    pub fn sealed(&self, _segment: &Sealed) {
        self.segments_sealed.set(self.segments_sealed.get() + 1);
    }

    pub fn accept_failed(&self) {
        self.accept_failures.set(self.accept_failures.get() + 1);
    }

    /// A connection that had its turn at the cap ends with this answer, for a waiting client.
    pub fn turn_ended(&self) {
        self.turns_ended.set(self.turns_ended.get() + 1);
    }

    /// A group commit of `visits`, whose write (and sync) took `took`.
    pub fn commit(&self, visits: usize, took: Duration) {
        self.batch_sizes
            .borrow_mut()
            .get_or_insert_with(|| Histogram::new(BATCH_BOUNDS))
            .observe(visits as f64);
        self.commit_durations
            .borrow_mut()
            .get_or_insert_with(|| Histogram::new(DURATION_BOUNDS))
            .observe(took.as_secs_f64());
    }

    pub fn render(&self, out: &mut String, pod: &str, registry: &Registry) {
        let (open, cap) = (registry.open(), registry.cap());
        let pod_label = format!("pod=\"{pod}\"");
        let requests: Vec<(String, u64)> = self
            .requests
            .borrow()
            .iter()
            .map(|((route, code), n)| {
                (format!("{pod_label},route=\"{route}\",code=\"{code}\""), *n)
            })
            .collect();
        let samples: Vec<(&str, u64)> = requests.iter().map(|(l, n)| (l.as_str(), *n)).collect();
        sample(
            out,
            "visits_http_requests_total",
            "counter",
            "HTTP requests answered, by route and status code.",
            &samples,
        );
        histogram_family(
            out,
            "visits_http_request_duration_seconds",
            "Time to answer a request's head, by route.",
        );
        for (route, histogram) in self.durations.borrow().iter() {
            histogram.render(
                out,
                "visits_http_request_duration_seconds",
                &format!("{pod_label},route=\"{route}\""),
            );
        }
        sample(
            out,
            "visits_open_connections",
            "gauge",
            "Connections being served.",
            &[(&pod_label, open as u64)],
        );
        sample(out, "visits_max_connections", "gauge", "Connections served at most now: MAX_CONNECTIONS, lowered after running out of descriptors.", &[(&pod_label, cap as u64)]);
        let shed: Vec<(String, u64)> = registry
            .shed()
            .map(|(reason, n)| (format!("{pod_label},reason=\"{}\"", reason.label()), n))
            .collect();
        let shed: Vec<(&str, u64)> = shed.iter().map(|(l, n)| (l.as_str(), *n)).collect();
        sample(
            out,
            "visits_connections_shed_total",
            "counter",
            "Connections closed at the cap for a waiting client: idle, or sending their request head (slow_head) or taking their answer (slow_reader) under the minimum rate.",
            &shed,
        );
        sample(
            out,
            "visits_connections_turns_ended_total",
            "counter",
            "Connections answered with Connection: close at the cap, their turn (4 answers) had, so a waiting client gets the slot.",
            &[(&pod_label, self.turns_ended.get())],
        );
        sample(
            out,
            "visits_accept_failures_total",
            "counter",
            "Accepts that failed (out of descriptors, typically).",
            &[(&pod_label, self.accept_failures.get())],
        );
        histogram_family(
            out,
            "visits_commit_batch_size",
            "Visits written together by one group commit.",
        );
        if let Some(histogram) = self.batch_sizes.borrow().as_ref() {
            histogram.render(out, "visits_commit_batch_size", &pod_label);
        }
        histogram_family(
            out,
            "visits_commit_duration_seconds",
            "Time of one group commit's write and, with APPEND_FSYNC=always, its sync.",
        );
        if let Some(histogram) = self.commit_durations.borrow().as_ref() {
            histogram.render(out, "visits_commit_duration_seconds", &pod_label);
        }
        histogram_family(
            out,
            "visits_seal_step_duration_seconds",
            "Time one step of a seal held the server's thread: visits wait at most this long.",
        );
        if let Some(histogram) = self.seal_steps.borrow().as_ref() {
            histogram.render(out, "visits_seal_step_duration_seconds", &pod_label);
        }
        sample(
            out,
            "visits_segments_sealed_total",
            "counter",
            "Segments this process sealed (SEGMENT_BYTES).",
            &[(&pod_label, self.segments_sealed.get())],
        );
    }
}

fn histogram_family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
}
