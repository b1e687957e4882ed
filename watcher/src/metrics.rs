//! Prometheus metrics, served as text at `/metrics`.
//!
//! All metrics are prefixed `spark_gateway_watcher_`. Publish latency is measured twice: from handing a
//! record to the producer to the broker's acknowledgement (the broker's share), and from the
//! transition's `lastTransitionTime` to that acknowledgement (how far behind the cluster subscribers
//! are).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Where an error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EncodeLabelValue)]
pub enum Operation {
    /// Handing an event to the broker.
    Publish,
    /// Writing a checkpoint or finalizer, or re-reading an application.
    Kubernetes,
    /// The watch stream.
    Watch,
    /// Reading an application's status.
    Status,
    /// Writing a job record.
    Record,
}

/// The label set of the error counter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Where.
    pub operation: Operation,
    /// `true` for transient errors.
    pub transient: bool,
}

struct Inner {
    registry: Registry,
    transitions_seen: Counter,
    events_published: Counter,
    publish_seconds: Histogram,
    transition_to_ack_seconds: Histogram,
    errors: Family<ErrorLabels, Counter>,
    lost_transitions: Counter,
    skipped_unknown_states: Counter,
    records_written: Counter,
    applications_tracked: Gauge,
    leader: Gauge,
}

/// The watcher's metrics; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("spark_gateway_watcher");
        let transitions_seen = Counter::default();
        let events_published = Counter::default();
        // 1 ms .. ~33 s
        let publish_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        // 10 ms .. ~5.5 min
        let transition_to_ack_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 16));
        let errors = Family::<ErrorLabels, Counter>::default();
        let lost_transitions = Counter::default();
        let skipped_unknown_states = Counter::default();
        let records_written = Counter::default();
        let applications_tracked = Gauge::default();
        let leader = Gauge::default();
        registry.register(
            "transitions_seen",
            "History entries observed for the first time",
            transitions_seen.clone(),
        );
        registry.register(
            "events_published",
            "State-change events acknowledged by the broker",
            events_published.clone(),
        );
        registry.register(
            "publish_seconds",
            "Time from handing an event to the producer to the broker's acknowledgement",
            publish_seconds.clone(),
        );
        registry.register(
            "transition_to_ack_seconds",
            "Time from a transition's lastTransitionTime to the broker's acknowledgement of its event",
            transition_to_ack_seconds.clone(),
        );
        registry.register(
            "errors",
            "Errors by operation (each retried)",
            errors.clone(),
        );
        registry.register(
            "lost_transitions",
            "History entries the status no longer had when they were due (trimmed by restarts)",
            lost_transitions.clone(),
        );
        registry.register(
            "skipped_unknown_states",
            "History entries with a state the event contract does not know",
            skipped_unknown_states.clone(),
        );
        registry.register(
            "records_written",
            "Job records written to the record store (a record that already covered as much is not counted)",
            records_written.clone(),
        );
        registry.register(
            "applications_tracked",
            "Applications the publishing replica keeps state for",
            applications_tracked.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the lease and publishes",
            leader.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry,
                transitions_seen,
                events_published,
                publish_seconds,
                transition_to_ack_seconds,
                errors,
                lost_transitions,
                skipped_unknown_states,
                records_written,
                applications_tracked,
                leader,
            }),
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// Counts newly observed history entries.
    pub fn transitions_seen(&self, count: u64) {
        self.inner.transitions_seen.inc_by(count);
    }

    /// Records an acknowledged event.
    pub fn published(&self, publish_time: Duration, since_transition: Option<Duration>) {
        self.inner.events_published.inc();
        self.inner
            .publish_seconds
            .observe(publish_time.as_secs_f64());
        if let Some(lag) = since_transition {
            self.inner
                .transition_to_ack_seconds
                .observe(lag.as_secs_f64());
        }
    }

    /// Counts an error.
    pub fn error(&self, operation: Operation, transient: bool) {
        self.inner
            .errors
            .get_or_create(&ErrorLabels {
                operation,
                transient,
            })
            .inc();
    }

    /// Counts history entries lost before publishing.
    pub fn lost_transitions(&self, count: u64) {
        self.inner.lost_transitions.inc_by(count);
    }

    /// Counts a skipped entry of unknown state.
    pub fn skipped_unknown_state(&self) {
        self.inner.skipped_unknown_states.inc();
    }

    /// Counts a job record written.
    pub fn record_written(&self) {
        self.inner.records_written.inc();
    }

    /// Sets the number of applications tracked.
    pub fn set_applications_tracked(&self, count: usize) {
        self.inner
            .applications_tracked
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Sets whether this replica leads.
    pub fn set_leader(&self, leading: bool) {
        self.inner.leader.set(i64::from(leading));
    }

    /// Events acknowledged so far.
    pub fn events_published_total(&self) -> u64 {
        self.inner.events_published.get()
    }

    /// History entries observed so far.
    pub fn transitions_seen_total(&self) -> u64 {
        self.inner.transitions_seen.get()
    }

    /// Errors of `operation` so far, transient or not.
    pub fn errors_total(&self, operation: Operation) -> u64 {
        [true, false]
            .into_iter()
            .map(|transient| {
                self.inner
                    .errors
                    .get_or_create(&ErrorLabels {
                        operation,
                        transient,
                    })
                    .get()
            })
            .sum()
    }

    /// Job records written so far.
    pub fn records_written_total(&self) -> u64 {
        self.inner.records_written.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_metric() {
        let metrics = Metrics::new();
        metrics.transitions_seen(3);
        metrics.published(Duration::from_millis(4), Some(Duration::from_millis(900)));
        metrics.error(Operation::Publish, true);
        metrics.set_applications_tracked(2);
        metrics.set_leader(true);
        let text = metrics.encode();
        for line in [
            "spark_gateway_watcher_transitions_seen_total 3",
            "spark_gateway_watcher_events_published_total 1",
            "spark_gateway_watcher_publish_seconds_count 1",
            "spark_gateway_watcher_transition_to_ack_seconds_count 1",
            "spark_gateway_watcher_errors_total{operation=\"Publish\",transient=\"true\"} 1",
            "spark_gateway_watcher_applications_tracked 2",
            "spark_gateway_watcher_leader 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert_eq!(metrics.events_published_total(), 1);
    }
}
