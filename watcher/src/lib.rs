//! Spark Gateway's watcher: publishes every state transition of every SparkApplication the gateway
//! manages, and its outcome, as CloudEvents on a Kafka topic, in order per application, at least once
//! with a stable id, across restarts, broker outages and deletions.
//!
//! ```text
//!             Lease (one replica publishes)
//!                       │
//! SparkApplications ──watch──▶ publisher ──plan (pure)──▶ Kafka (key = uid, acks=all)
//!        ▲                        │                          │ ack
//!        └── checkpoint annotation + finalizer ◀─────────────┘
//! ```
//!
//! # Guarantees and how they are kept
//! - **Every transition**: events are planned from the whole `stateTransitionHistory` (and
//!   `previousAttemptSummary` after a restart), not from `currentState`, so transitions that happened
//!   between two observations, or while no watcher ran, are all published ([`transitions`]).
//! - **None lost across restarts**: after the broker acknowledges, the id of the last published event
//!   (`<uid>/<attempt>/<index>`) is written to the annotation [`keys::CHECKPOINT_ANNOTATION`]; a
//!   starting leader lists every application and publishes what lies after each checkpoint
//!   ([`checkpoint`], [`publisher`]).
//! - **None lost to deletion**: the finalizer [`keys::FINALIZER`] keeps a deleted application (explicit
//!   delete or the operator's TTL) until its last events are out ([`finalizer`]). `--no-finalizer`
//!   disables adding it; `spark-gateway-watcher remove-finalizers` strips it when the watcher is retired.
//! - **A record for every ending**: with a record store (`--records-bucket`), the job record
//!   (`spark_gateway_records`) is written before the event that ends an application is published and
//!   before the finalizer is removed, so it outlives the object and every terminal event has one.
//! - **Stable ids**: an event's id is `<uid>/<attempt>/<history index>`, so a republished event (after a
//!   crash between publish and checkpoint, or two leaders briefly overlapping) is a recognisable
//!   duplicate.
//! - **One publisher**: a `coordination.k8s.io/v1` Lease elects it ([`lease`]); the others stay ready
//!   and idle, and a new leader continues from the checkpoints.
//!
//! # Layout
//! - Pure core, no I/O: [`checkpoint`], [`transitions`] (what to publish from the status the
//!   operator target reads, `spark_gateway_core::apache_v1::StatusView`), [`finalizer`] (when to
//!   hold or release), [`observation`] (what is read from an
//!   object), [`envelope`] (CloudEvent and Kafka record), [`schedule`] (which application is synced
//!   next).
//! - Adapters: [`sink`] (the [`EventSink`] trait) and [`kafka`] (its rdkafka implementation),
//!   [`cluster`] (watch and metadata writes), [`lease`] (leader election).
//! - The loop: [`publisher`] (the I/O around [`schedule`]); operations: [`metrics`], [`http`]; [`config`] (CLI and environment);
//!   [`run`] ties election and publishing together.

pub mod checkpoint;
pub mod cluster;
pub mod config;
pub mod envelope;
pub mod finalizer;
pub mod http;
pub mod kafka;
pub mod keys;
pub mod lease;
pub mod metrics;
pub mod observation;
pub mod publisher;
pub mod schedule;
pub mod sink;
pub mod transitions;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use spark_gateway_records::JobRecordStore;
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

pub use checkpoint::Checkpoint;
pub use cluster::Applications;
pub use kafka::{KafkaSettings, KafkaSink};
pub use lease::LeaseSettings;
pub use metrics::Metrics;
pub use publisher::{Publisher, PublisherSettings};
pub use sink::{EventSink, SinkError};

/// Everything [`run`] needs besides its clients.
#[derive(Debug, Clone)]
pub struct WatcherSettings {
    /// Namespaces to watch; empty means all.
    pub namespaces: Vec<String>,
    /// Label selector of the applications to watch; `None` means all.
    pub label_selector: Option<String>,
    /// The publishing loop's settings.
    pub publisher: PublisherSettings,
    /// Leader election.
    pub lease: LeaseSettings,
    /// How long shutdown waits for the producer to deliver what it holds.
    pub flush_timeout: Duration,
}

/// Runs one replica until `shutdown` completes: campaigns for the Lease and publishes while leading.
///
/// On shutdown it stops publishing, flushes `sink`, and only then releases the Lease, so the next
/// leader starts from checkpoints that include everything this replica got acknowledged.
pub async fn run<S: EventSink, R: JobRecordStore>(
    client: Client,
    sink: Arc<S>,
    records: Option<Arc<R>>,
    settings: WatcherSettings,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) {
    let applications = Applications::new(
        client.clone(),
        &settings.namespaces,
        settings.label_selector.clone(),
    );
    let publisher = Publisher::new(
        applications,
        Arc::clone(&sink),
        records,
        settings.publisher,
        metrics.clone(),
    );
    let (leading_sender, mut leading) = watch::channel(false);
    let (stop_election, election_stopped) = oneshot::channel::<()>();
    let election = lease::Elector::new(client, settings.lease).run(leading_sender, async {
        let _ = election_stopped.await;
    });

    let publishing = async {
        tokio::pin!(shutdown);
        let mut shutting_down = false;
        while !shutting_down {
            tokio::select! {
                () = &mut shutdown => break,
                changed = leading.wait_for(|leads| *leads) => if changed.is_err() { break },
            }
            metrics.set_leader(true);
            let mut lost = leading.clone();
            publisher
                .run(async {
                    tokio::select! {
                        () = &mut shutdown => shutting_down = true,
                        _ = lost.wait_for(|leads| !*leads) => info!("lost the lease"),
                    }
                })
                .await;
            metrics.set_leader(false);
        }
        if let Err(error) = sink.flush(settings.flush_timeout).await {
            warn!(error = %spark_gateway_core::error_chain(&error), "the producer did not deliver everything before shutdown");
        }
        let _ = stop_election.send(());
    };
    tokio::join!(election, publishing);
}
