//! The watcher against real servers: the project's Kubernetes API emulator with the operator simulator
//! (both in-process, one pair per test), Kafka from the local world (Tansu, `KAFKA_BOOTSTRAP_SERVERS`),
//! and a real Kafka consumer reading the topic back. The broker-pause test starts a Tansu of its own,
//! because pausing the shared one would stall other tests.
//!
//! These tests need the local world (`infra/local/up`) and the `tansu` binary; without them they fail
//! with a message saying so.
//!
//! "Killing" a watcher aborts its task: nothing is flushed, checkpointed or released, like a crashed
//! pod.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube_emulator::EmulatorConfig;
use operator_sim::{SCENARIO_KEY, STEP_MILLIS_KEY, Scenario};
use serde_json::{Value, json};
use spark_gateway_core::apache_v1::HAPPY_PATH;
use spark_gateway_core::links::LinkTemplates;
use spark_gateway_events::{
    ApplicationState, ApplicationStateChanged, CloudEvent, CompletionEvent, FailureReason, Outcome,
    Phase, decode_completion_event,
};
use spark_gateway_harness::kafka::{Record, TopicReader, create_topic};
use spark_gateway_harness::{LocalWorld, SimDefaults, TestCluster, WATCHER_ACCOUNT, deployed_rbac};
use spark_gateway_records::{JobRecordStore, MemoryRecords};
use spark_gateway_watcher::envelope::OutgoingRecord;
use spark_gateway_watcher::keys::{
    CHECKPOINT_ANNOTATION, FINALIZER, MANAGED_BY_LABEL, MANAGED_BY_VALUE, REQUEST_ID_LABEL,
    SUBMITTED_BY_ANNOTATION, TRACEPARENT_ANNOTATION,
};
use spark_gateway_watcher::{
    EventSink, KafkaSettings, KafkaSink, LeaseSettings, Metrics, PublisherSettings, SinkError,
    WatcherSettings,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use ApplicationState::*;

/// Operator 0.5.0's failure paths and multi-state writes, scripted by the simulator.
mod operator_paths;
/// The realistic watch preset: compactions, 410s and dropped watches with 500 applications.
mod realistic;
/// Job records in LocalStack's S3.
mod records;

const NAMESPACE: &str = "spark-jobs";
const CLUSTER: &str = "it";
const LEASE: &str = "spark-gateway-watcher";
/// The watcher's own namespace, where `infra/k8s/base/rbac.yaml` lets it hold its Lease.
const LEASE_NAMESPACE: &str = WATCHER_ACCOUNT.0;
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const OPERATOR_FINALIZER: &str = operator_sim::FINALIZER;
/// Upper bound of every wait; lifecycles here take a few seconds.
const WAIT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------------
// The world
// ---------------------------------------------------------------------------------------------------

/// An emulated cluster with the operator simulator running against it.
struct Cluster {
    cluster: TestCluster,
    /// The admin client: the test's own setup and checks (the operator simulator has its own).
    client: Client,
    /// The watcher's ServiceAccount token: exactly what the deployed RBAC grants it.
    watcher_token: String,
    watcher_client: Client,
    apps: Api<DynamicObject>,
}

/// The emulator of these tests: [`NAMESPACE`], [`LEASE_NAMESPACE`] and the deployed RBAC.
fn emulator_config() -> EmulatorConfig {
    spark_gateway_harness::emulator_config(&[NAMESPACE, LEASE_NAMESPACE], deployed_rbac())
}

impl Cluster {
    async fn start() -> Self {
        Self::start_with(emulator_config()).await
    }

    /// Like [`Cluster::start`] with an emulator configured by the caller (from [`emulator_config`]).
    async fn start_with(config: EmulatorConfig) -> Self {
        spark_gateway_harness::init_tracing();
        let sim = SimDefaults {
            scenario: Scenario::Success,
            step: Duration::from_millis(300),
        };
        let cluster = TestCluster::start_on(config, sim.into())
            .await
            .expect("the Kubernetes emulator starts and the operator simulator lists applications");
        let client = cluster.client().await.expect("an admin client");
        let watcher_token = cluster.service_account_token(WATCHER_ACCOUNT);
        let watcher_client = cluster
            .client_with_token(&watcher_token)
            .expect("the watcher's client");
        let apps = Api::namespaced_with(client.clone(), NAMESPACE, &operator_sim::api_resource());
        Self {
            cluster,
            client,
            watcher_token,
            watcher_client,
            apps,
        }
    }

    async fn shutdown(self) {
        self.cluster.shutdown().await;
    }

    /// Fault controls and statistics of the emulator.
    fn control(&self) -> kube_emulator::Control {
        self.cluster.control()
    }

    /// Creates a managed application; returns its uid.
    async fn create(
        &self,
        name: &str,
        scenario: &str,
        step_millis: u64,
        tolerations: Value,
    ) -> String {
        self.create_with_labels(name, scenario, step_millis, tolerations, true)
            .await
    }

    async fn create_with_labels(
        &self,
        name: &str,
        scenario: &str,
        step_millis: u64,
        tolerations: Value,
        managed: bool,
    ) -> String {
        let mut labels = BTreeMap::from([(REQUEST_ID_LABEL.to_string(), format!("req-{name}"))]);
        if managed {
            labels.insert(MANAGED_BY_LABEL.to_string(), MANAGED_BY_VALUE.to_string());
        }
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "spark.apache.org/v1",
            "kind": "SparkApplication",
            "metadata": {
                "name": name,
                "namespace": NAMESPACE,
                "labels": labels,
                "annotations": {
                    SCENARIO_KEY: scenario,
                    STEP_MILLIS_KEY: step_millis.to_string(),
                    TRACEPARENT_ANNOTATION: TRACEPARENT,
                    SUBMITTED_BY_ANNOTATION: "integration-test",
                },
            },
            "spec": {
                "pyFiles": "local:///opt/spark/examples/src/main/python/pi.py",
                "runtimeVersions": {"sparkVersion": "4.1.0"},
                "sparkConf": {"spark.kubernetes.container.image": "apache/spark:4.1.0-python3"},
                "applicationTolerations": tolerations,
            },
        }))
        .expect("a SparkApplication");
        let created = self
            .apps
            .create(&PostParams::default(), &object)
            .await
            .expect("create the application");
        created.metadata.uid.expect("the API server assigns a uid")
    }

    async fn get(&self, name: &str) -> Option<DynamicObject> {
        self.apps.get_opt(name).await.expect("read the application")
    }

    async fn lease_holder(&self) -> Option<String> {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), LEASE_NAMESPACE);
        leases
            .get_opt(LEASE)
            .await
            .expect("read the lease")
            .and_then(|lease| lease.spec)
            .and_then(|spec| spec.holder_identity)
    }

    /// A kubeconfig file with the watcher's token (for the binary).
    fn kubeconfig_file(&self) -> PathBuf {
        self.cluster
            .write_kubeconfig(&self.watcher_token)
            .expect("write kubeconfig")
    }
}

fn current_state(object: &DynamicObject) -> Option<String> {
    object.data["status"]["currentState"]["currentStateSummary"]
        .as_str()
        .map(str::to_string)
}

fn finalizers(object: &DynamicObject) -> Vec<String> {
    object.metadata.finalizers.clone().unwrap_or_default()
}

fn checkpoint(object: &DynamicObject) -> Option<String> {
    object
        .metadata
        .annotations
        .as_ref()?
        .get(CHECKPOINT_ANNOTATION)
        .cloned()
}

/// Polls `probe` until it returns `Some`, failing with `what` after [`WAIT`].
async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The local world's Kafka, or a failure that says how to start it.
fn world_bootstrap() -> String {
    let world = LocalWorld::from_env()
        .expect("the watcher's integration tests need the local world's Kafka");
    world
        .kafka_bootstrap()
        .expect("KAFKA_BOOTSTRAP_SERVERS")
        .to_string()
}

async fn new_topic(bootstrap: &str) -> String {
    match tokio::time::timeout(
        Duration::from_secs(30),
        create_topic(bootstrap, "watcher-it", 3),
    )
    .await
    {
        Ok(Ok(topic)) => topic,
        Ok(Err(error)) => panic!(
            "Kafka at {bootstrap} refused a topic ({error:#}); is the local world up (infra/local/up)?"
        ),
        Err(_) => panic!(
            "Kafka at {bootstrap} is not reachable; start the local world with infra/local/up"
        ),
    }
}

fn kafka_sink(bootstrap: &str, topic: &str) -> KafkaSink {
    KafkaSink::new(&KafkaSettings {
        connection: spark_gateway_kafka::KafkaSettings::plaintext(bootstrap),
        topic: topic.to_string(),
        delivery_timeout: Duration::from_secs(30),
    })
    .expect("a Kafka producer")
}

// ---------------------------------------------------------------------------------------------------
// Watchers
// ---------------------------------------------------------------------------------------------------

struct Watcher {
    task: JoinHandle<()>,
    stop: Option<oneshot::Sender<()>>,
    metrics: Metrics,
}

impl Watcher {
    fn start<S: EventSink>(
        cluster: &Cluster,
        sink: S,
        identity: &str,
        finalizer_enabled: bool,
    ) -> Self {
        Self::start_recording(
            cluster,
            sink,
            identity,
            finalizer_enabled,
            None::<Arc<MemoryRecords>>,
            LinkTemplates::default(),
        )
    }

    /// Like [`Watcher::start`], keeping job records in `records` and linking with `links`.
    fn start_recording<S: EventSink, R: JobRecordStore>(
        cluster: &Cluster,
        sink: S,
        identity: &str,
        finalizer_enabled: bool,
        records: Option<Arc<R>>,
        links: LinkTemplates,
    ) -> Self {
        let settings = WatcherSettings {
            namespaces: vec![NAMESPACE.to_string()],
            label_selector: Some(spark_gateway_watcher::keys::DEFAULT_LABEL_SELECTOR.to_string()),
            publisher: PublisherSettings {
                cluster: CLUSTER.to_string(),
                finalizer_enabled,
                max_in_flight: 64,
                max_retry_delay: Duration::from_secs(1),
                links,
            },
            lease: LeaseSettings {
                name: LEASE.to_string(),
                namespace: LEASE_NAMESPACE.to_string(),
                identity: identity.to_string(),
                lease_duration: Duration::from_secs(3),
                renew_interval: Duration::from_secs(1),
            },
            flush_timeout: Duration::from_secs(5),
        };
        let metrics = Metrics::new();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(spark_gateway_watcher::run(
            cluster.watcher_client.clone(),
            Arc::new(sink),
            records,
            settings,
            metrics.clone(),
            async {
                let _ = stop_rx.await;
            },
        ));
        Self {
            task,
            stop: Some(stop_tx),
            metrics,
        }
    }

    fn published(&self) -> u64 {
        self.metrics.events_published_total()
    }

    /// Like a crashed pod: nothing is flushed, checkpointed or released.
    async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    /// Graceful shutdown.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the watcher stops in time")
            .expect("watcher task");
    }
}

// ---------------------------------------------------------------------------------------------------
// Reading events back
// ---------------------------------------------------------------------------------------------------

/// One record of the topic, decoded.
#[derive(Debug, Clone)]
struct Published {
    key: Option<String>,
    headers: Vec<(String, String)>,
    event: CloudEvent<ApplicationStateChanged>,
}

fn decode(record: &Record) -> Published {
    let CompletionEvent::StateChanged(event) = decode_completion_event(record.value.as_bytes())
        .expect("every record is a valid completion event")
    else {
        panic!("unexpected event type in {record:?}")
    };
    Published {
        key: record.key.clone(),
        headers: record.headers.clone(),
        event,
    }
}

fn decode_outgoing(outgoing: &OutgoingRecord) -> Published {
    let record = &outgoing.record;
    let CompletionEvent::StateChanged(event) =
        decode_completion_event(&record.payload).expect("valid event")
    else {
        panic!("unexpected event type")
    };
    let headers = record
        .headers()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Published {
        key: Some(record.key.clone()),
        headers,
        event,
    }
}

fn distinct_ids(events: &[Published], uid: &str) -> usize {
    events
        .iter()
        .filter(|p| p.event.data.uid == uid)
        .map(|p| p.event.id.as_str())
        .collect::<HashSet<_>>()
        .len()
}

/// Reads the topic until every application in `expected` has that many distinct event ids.
async fn read_until_complete(reader: &TopicReader, expected: &[(&str, usize)]) -> Vec<Published> {
    let records = reader
        .read_until(WAIT, |records| {
            let events: Vec<Published> = records.iter().map(decode).collect();
            expected
                .iter()
                .all(|(uid, count)| distinct_ids(&events, uid) >= *count)
        })
        .await
        .expect("every expected event arrives on the topic");
    records.iter().map(decode).collect()
}

/// `(attempt, history index, state)` of each scenario's history.
fn lifecycle(scenario: &str) -> Vec<(u64, u64, ApplicationState)> {
    let success = HAPPY_PATH;
    let failure = [
        Submitted,
        DriverRequested,
        DriverStarted,
        DriverReady,
        RunningHealthy,
        Failed,
        ResourceReleased,
    ];
    let numbered = |attempt: u64, first: u64, states: &[ApplicationState]| {
        states
            .iter()
            .enumerate()
            .map(move |(i, s)| (attempt, first + i as u64, *s))
            .collect::<Vec<_>>()
    };
    match scenario {
        "success" => numbered(0, 0, &success),
        "failure" => numbered(0, 0, &failure),
        "restart-then-success" => {
            let mut all = numbered(0, 0, &failure[..6]);
            all.extend(numbered(1, 6, &[ScheduledToRestart]));
            all.extend(numbered(1, 7, &success[1..]));
            all
        }
        other => panic!("no expectation for {other}"),
    }
}

/// Tolerations for `scenario`: `restart-then-success` restarts only under a restart policy (the
/// operator's default is `Never`).
fn restart_policy_for(scenario: &str) -> Value {
    match scenario {
        "restart-then-success" => json!({"restartConfig": {"restartPolicy": "OnFailure"}}),
        _ => json!({}),
    }
}

/// Checks one application's events: every expected id, in history order (first occurrences), all
/// keyed by the uid with the CloudEvents headers, the outcome on the last one only. With
/// `exactly_once` no id may appear twice.
fn assert_lifecycle(
    events: &[Published],
    uid: &str,
    name: &str,
    scenario: &str,
    outcome: &Outcome,
    exactly_once: bool,
) {
    let mine: Vec<&Published> = events.iter().filter(|p| p.event.data.uid == uid).collect();
    let mut seen = HashSet::new();
    let first_occurrences: Vec<&Published> = mine
        .iter()
        .copied()
        .filter(|p| seen.insert(p.event.id.clone()))
        .collect();
    let expected = lifecycle(scenario);
    let got: Vec<(u64, u64, ApplicationState)> = first_occurrences
        .iter()
        .map(|p| {
            (
                p.event.data.attempt,
                p.event.data.history_index,
                p.event.data.state,
            )
        })
        .collect();
    assert_eq!(
        got, expected,
        "{name} ({scenario}): events out of order or missing"
    );
    if exactly_once {
        assert_eq!(
            mine.len(),
            expected.len(),
            "{name} ({scenario}): some event was published twice"
        );
    }
    for published in &mine {
        let event = &published.event;
        let data = &event.data;
        assert_eq!(published.key.as_deref(), Some(uid), "key is the uid");
        assert!(
            published
                .headers
                .contains(&("content-type".into(), "application/cloudevents+json".into()))
        );
        assert!(
            published
                .headers
                .contains(&("traceparent".into(), TRACEPARENT.into()))
        );
        assert_eq!(
            event.id,
            format!("{uid}/{}/{}", data.attempt, data.history_index)
        );
        assert_eq!(event.source, format!("/spark-gateway/clusters/{CLUSTER}"));
        assert_eq!(
            event.subject.as_deref(),
            Some(format!("{NAMESPACE}/{name}").as_str())
        );
        assert_eq!(event.traceparent.as_deref(), Some(TRACEPARENT));
        assert!(event.time.is_some(), "time is the transition's");
        assert_eq!(
            (
                data.application_name.as_str(),
                data.namespace.as_str(),
                data.cluster.as_str()
            ),
            (name, NAMESPACE, CLUSTER)
        );
        assert_eq!(
            data.request_id.as_deref(),
            Some(format!("req-{name}").as_str())
        );
        assert_eq!(data.submitted_by.as_deref(), Some("integration-test"));
    }
    let with_outcome: Vec<&Published> = first_occurrences
        .iter()
        .copied()
        .filter(|p| p.event.data.outcome.is_some())
        .collect();
    assert_eq!(
        with_outcome.len(),
        1,
        "{name}: exactly one event carries the outcome"
    );
    assert_eq!(
        with_outcome[0].event.id,
        first_occurrences.last().unwrap().event.id,
        "{name}: the last event ends it"
    );
    assert_eq!(
        with_outcome[0].event.data.outcome.as_ref(),
        Some(outcome),
        "{name}: outcome"
    );
    assert_eq!(
        with_outcome[0].event.data.phase,
        Some(Phase::Ended),
        "{name}: the event that ends the application is in the ended phase"
    );
    assert!(
        mine.iter().all(|p| p.event.data.phase.is_some()),
        "{name}: every event carries its phase"
    );
    // Previous states chain within an attempt.
    for pair in first_occurrences.windows(2) {
        let (before, after) = (&pair[0].event.data, &pair[1].event.data);
        let expected_previous = (before.attempt == after.attempt).then_some(before.state);
        assert_eq!(
            after.previous_state, expected_previous,
            "{name}: previous_state of {}",
            pair[1].event.id
        );
    }
}

fn failed_outcome() -> Outcome {
    Outcome::Failed {
        reason: FailureReason::Failed,
        message: Some(operator_sim::model::messages::DRIVER_FAILED.to_string()),
    }
}

// ---------------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycles_arrive_in_order_once_per_id_with_the_right_outcome() {
    let bootstrap = world_bootstrap();
    let topic = new_topic(&bootstrap).await;
    let cluster = Cluster::start().await;
    let watcher = Watcher::start(&cluster, kafka_sink(&bootstrap, &topic), "solo", true);

    let cases = [
        ("ok", "success", Outcome::Succeeded),
        ("broken", "failure", failed_outcome()),
        ("retried", "restart-then-success", Outcome::Succeeded),
    ];
    let mut uids = Vec::new();
    for (name, scenario, _) in &cases {
        uids.push(
            cluster
                .create(name, scenario, 150, restart_policy_for(scenario))
                .await,
        );
    }
    let reader = TopicReader::new(&bootstrap, &topic).expect("a consumer");
    let expected: Vec<(&str, usize)> = cases
        .iter()
        .zip(&uids)
        .map(|((_, scenario, _), uid)| (uid.as_str(), lifecycle(scenario).len()))
        .collect();
    let events = read_until_complete(&reader, &expected).await;

    for ((name, scenario, outcome), uid) in cases.iter().zip(&uids) {
        assert_lifecycle(&events, uid, name, scenario, outcome, true);
        // The checkpoint reaches the last entry; the finalizer stays until the application is deleted.
        let last = lifecycle(scenario)
            .last()
            .map(|(a, i, _)| format!("{uid}/{a}/{i}"))
            .unwrap();
        let object = eventually("the final checkpoint", async || {
            cluster
                .get(name)
                .await
                .filter(|o| checkpoint(o).as_deref() == Some(last.as_str()))
        })
        .await;
        assert!(
            finalizers(&object).contains(&FINALIZER.to_string()),
            "{name} carries the watcher's finalizer"
        );
    }

    // Deleting a finished application lets it go once everything is out.
    cluster
        .apps
        .delete("ok", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("the deleted application to disappear", async || {
        cluster.get("ok").await.is_none().then_some(())
    })
    .await;

    watcher.stop().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_killed_mid_lifecycle_and_restarted_leaves_no_gap_and_no_new_ids() {
    let bootstrap = world_bootstrap();
    let topic = new_topic(&bootstrap).await;
    let cluster = Cluster::start().await;
    let first = Watcher::start(&cluster, kafka_sink(&bootstrap, &topic), "pod-a", true);
    let uid = cluster.create("killed", "success", 700, json!({})).await;

    eventually("three events published", async || {
        (first.published() >= 3).then_some(())
    })
    .await;
    first.kill().await;
    // The application moves on while no watcher runs.
    eventually("the application to finish", async || {
        cluster
            .get("killed")
            .await
            .filter(|o| current_state(o).as_deref() == Some("ResourceReleased"))
    })
    .await;

    let second = Watcher::start(&cluster, kafka_sink(&bootstrap, &topic), "pod-b", true);
    let reader = TopicReader::new(&bootstrap, &topic).expect("a consumer");
    let events = read_until_complete(&reader, &[(&uid, 7)]).await;
    // Events the killed watcher published without checkpointing may appear twice, with the same id.
    assert_lifecycle(
        &events,
        &uid,
        "killed",
        "success",
        &Outcome::Succeeded,
        false,
    );
    let ids: HashSet<&str> = events.iter().map(|p| p.event.id.as_str()).collect();
    let expected: HashSet<String> = (0..7).map(|i| format!("{uid}/0/{i}")).collect();
    assert_eq!(
        ids,
        expected.iter().map(String::as_str).collect(),
        "no ids beyond the lifecycle's"
    );
    assert!(
        second.published() >= 1,
        "the restarted watcher published the rest"
    );

    second.stop().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_held_up_by_a_paused_broker_arrive_after_it_resumes() {
    let broker = OwnBroker::start().await;
    let topic = new_topic(&broker.bootstrap).await;
    let cluster = Cluster::start().await;
    let watcher = Watcher::start(
        &cluster,
        kafka_sink(&broker.bootstrap, &topic),
        "pause",
        true,
    );
    let uid = cluster.create("paused", "success", 500, json!({})).await;

    eventually("the first event published", async || {
        (watcher.published() >= 1).then_some(())
    })
    .await;
    broker.pause();
    let finished = eventually(
        "the application to finish while the broker is paused",
        async || {
            cluster
                .get("paused")
                .await
                .filter(|o| current_state(o).as_deref() == Some("ResourceReleased"))
        },
    )
    .await;
    // Nothing the broker has not acknowledged is checkpointed.
    let last = format!("{uid}/0/6");
    assert_ne!(
        checkpoint(&finished).as_deref(),
        Some(last.as_str()),
        "checkpoint moved without an acknowledgement"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_ne!(
        checkpoint(&cluster.get("paused").await.unwrap()).as_deref(),
        Some(last.as_str())
    );
    broker.resume();

    let reader = TopicReader::new(&broker.bootstrap, &topic).expect("a consumer");
    let events = read_until_complete(&reader, &[(&uid, 7)]).await;
    assert_lifecycle(
        &events,
        &uid,
        "paused",
        "success",
        &Outcome::Succeeded,
        false,
    );
    eventually("the checkpoint after the resume", async || {
        cluster
            .get("paused")
            .await
            .filter(|o| checkpoint(o).as_deref() == Some(last.as_str()))
    })
    .await;

    watcher.stop().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_ttl_deleted_while_no_watcher_runs_still_gets_its_outcome_published_then_goes()
 {
    let bootstrap = world_bootstrap();
    let topic = new_topic(&bootstrap).await;
    let cluster = Cluster::start().await;
    let first = Watcher::start(&cluster, kafka_sink(&bootstrap, &topic), "ttl-a", true);
    let uid = cluster
        .create(
            "short-lived",
            "success",
            400,
            json!({"ttlAfterStopMillis": 500}),
        )
        .await;

    eventually("the watcher's finalizer and a first event", async || {
        let object = cluster.get("short-lived").await?;
        (finalizers(&object).contains(&FINALIZER.to_string()) && first.published() >= 1)
            .then_some(())
    })
    .await;
    first.kill().await;

    // The operator's TTL deletes it; only the watcher's finalizer keeps it.
    let held = eventually("the TTL delete", async || {
        cluster
            .get("short-lived")
            .await
            .filter(|o| o.metadata.deletion_timestamp.is_some() && finalizers(o) == [FINALIZER])
    })
    .await;
    assert_eq!(current_state(&held).as_deref(), Some("ResourceReleased"));

    let second = Watcher::start(&cluster, kafka_sink(&bootstrap, &topic), "ttl-b", true);
    let reader = TopicReader::new(&bootstrap, &topic).expect("a consumer");
    let events = read_until_complete(&reader, &[(&uid, 7)]).await;
    assert_lifecycle(
        &events,
        &uid,
        "short-lived",
        "success",
        &Outcome::Succeeded,
        false,
    );
    eventually("the application to be gone", async || {
        cluster.get("short-lived").await.is_none().then_some(())
    })
    .await;

    second.stop().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_watchers_one_publishes_and_killing_it_moves_publishing_without_gaps() {
    let bootstrap = world_bootstrap();
    let topic = new_topic(&bootstrap).await;
    let cluster = Cluster::start().await;
    let a = Watcher::start(&cluster, kafka_sink(&bootstrap, &topic), "replica-a", true);
    let b = Watcher::start(&cluster, kafka_sink(&bootstrap, &topic), "replica-b", true);

    let names = ["one", "two", "three"];
    let mut uids = Vec::new();
    for name in names {
        uids.push(cluster.create(name, "success", 600, json!({})).await);
    }
    eventually("six events published", async || {
        (a.published() + b.published() >= 6).then_some(())
    })
    .await;
    let holder = cluster
        .lease_holder()
        .await
        .expect("a replica holds the lease");
    let (leader, follower) = if holder == "replica-a" {
        (a, b)
    } else {
        (b, a)
    };
    assert!(leader.published() >= 6, "the lease holder publishes");
    assert_eq!(
        follower.published(),
        0,
        "the other replica publishes nothing while the leader lives"
    );

    leader.kill().await;
    let reader = TopicReader::new(&bootstrap, &topic).expect("a consumer");
    let expected: Vec<(&str, usize)> = uids.iter().map(|uid| (uid.as_str(), 7)).collect();
    let events = read_until_complete(&reader, &expected).await;
    for (name, uid) in names.iter().zip(&uids) {
        assert_lifecycle(&events, uid, name, "success", &Outcome::Succeeded, false);
    }
    assert!(follower.published() > 0, "the surviving replica took over");
    let new_holder = cluster.lease_holder().await;
    assert_ne!(
        new_holder.as_deref(),
        Some(holder.as_str()),
        "the lease moved"
    );

    follower.stop().await;
    cluster.shutdown().await;
}

/// A sink that fails on command: every third publish, and everything while `down`.
#[derive(Clone, Default)]
struct FlakySink {
    records: Arc<Mutex<Vec<OutgoingRecord>>>,
    calls: Arc<AtomicU64>,
    down: Arc<AtomicBool>,
}

impl EventSink for FlakySink {
    async fn publish(&self, record: &OutgoingRecord) -> Result<(), SinkError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(SinkError::Unavailable("injected outage".into()));
        }
        if call % 3 == 2 {
            return Err(SinkError::Unavailable("injected failure".into()));
        }
        self.records.lock().unwrap().push(record.clone());
        Ok(())
    }

    async fn flush(&self, _timeout: Duration) -> Result<(), SinkError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_publishes_are_retried_in_order_and_no_finalizer_mode_adds_none() {
    let cluster = Cluster::start().await;
    let sink = FlakySink::default();
    let watcher = Watcher::start(&cluster, sink.clone(), "flaky", false);
    let ok = cluster.create("flaky-ok", "success", 200, json!({})).await;
    let retried = cluster
        .create(
            "flaky-retried",
            "restart-then-success",
            200,
            restart_policy_for("restart-then-success"),
        )
        .await;

    eventually("two events through the flaky sink", async || {
        (sink.records.lock().unwrap().len() >= 2).then_some(())
    })
    .await;
    sink.down.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    sink.down.store(false, Ordering::SeqCst);

    let events = eventually("every event through the flaky sink", async || {
        let events: Vec<Published> = sink
            .records
            .lock()
            .unwrap()
            .iter()
            .map(decode_outgoing)
            .collect();
        (distinct_ids(&events, &ok) == 7 && distinct_ids(&events, &retried) == 13).then_some(events)
    })
    .await;
    assert_lifecycle(
        &events,
        &ok,
        "flaky-ok",
        "success",
        &Outcome::Succeeded,
        true,
    );
    assert_lifecycle(
        &events,
        &retried,
        "flaky-retried",
        "restart-then-success",
        &Outcome::Succeeded,
        true,
    );
    assert!(
        watcher.metrics.encode().contains("operation=\"Publish\""),
        "failures are counted"
    );
    for name in ["flaky-ok", "flaky-retried"] {
        let object = cluster.get(name).await.expect("still there");
        assert!(
            !finalizers(&object).contains(&FINALIZER.to_string()),
            "--no-finalizer adds none to {name}"
        );
    }

    watcher.stop().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_operations_endpoints_and_remove_finalizers_strips_only_its_own() {
    let bootstrap = world_bootstrap();
    let topic = new_topic(&bootstrap).await;
    let cluster = Cluster::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = cluster.kubeconfig_file();
    let listen = free_address();
    let log = dir.path().join("watcher.log");
    let mut service = tokio::process::Command::new(env!("CARGO_BIN_EXE_spark-gateway-watcher"))
        .arg("run")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args([
            "--namespace",
            NAMESPACE,
            "--cluster",
            CLUSTER,
            "--kafka-bootstrap-servers",
            &bootstrap,
        ])
        .args([
            "--topic",
            &topic,
            "--lease-namespace",
            LEASE_NAMESPACE,
            "--identity",
            "binary",
        ])
        .args([
            "--lease-duration-secs",
            "3",
            "--lease-renew-secs",
            "1",
            "--listen",
            &listen.to_string(),
        ])
        .env_remove("WATCHER_NO_FINALIZER")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .kill_on_drop(true)
        .spawn()
        .expect("the watcher binary starts");

    eventually("/healthz", async || {
        (http_get(listen, "/healthz").await?.0 == 200).then_some(())
    })
    .await;
    eventually("/readyz", async || {
        (http_get(listen, "/readyz").await?.0 == 200).then_some(())
    })
    .await;

    let running = cluster
        .create("long-running", "stuck", 150, json!({}))
        .await;
    cluster
        .create_with_labels("not-ours", "stuck", 150, json!({}), false)
        .await;
    let reader = TopicReader::new(&bootstrap, &topic).expect("a consumer");
    let events = read_until_complete(&reader, &[(&running, 5)]).await;
    assert!(
        events.iter().all(|p| p.event.data.uid == running),
        "unlabelled applications are not watched"
    );
    let metrics = eventually("metrics of five published events", async || {
        let (status, body) = http_get(listen, "/metrics").await?;
        (status == 200 && body.contains("spark_gateway_watcher_events_published_total 5"))
            .then_some(body)
    })
    .await;
    assert!(
        metrics.contains("spark_gateway_watcher_leader 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("spark_gateway_watcher_applications_tracked 1"),
        "{metrics}"
    );

    // SIGTERM: graceful shutdown gives the lease up.
    let pid = service.id().expect("pid").to_string();
    signal(&pid, "-TERM");
    let status = tokio::time::timeout(WAIT, service.wait())
        .await
        .expect("exits after SIGTERM")
        .expect("wait");
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "clean exit; logs:\n{logs}");
    assert!(
        logs.lines()
            .any(|l| l.starts_with('{') && l.contains("\"message\":\"starting\"")),
        "JSON logs:\n{logs}"
    );
    assert_eq!(cluster.lease_holder().await, None, "the lease was released");

    let object = cluster.get("long-running").await.expect("exists");
    let mut held = finalizers(&object);
    held.sort();
    assert_eq!(
        held,
        [FINALIZER, OPERATOR_FINALIZER],
        "who added first is a race"
    );
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_spark-gateway-watcher"))
        .arg("remove-finalizers")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--namespace", NAMESPACE])
        .output()
        .await
        .expect("remove-finalizers runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "remove-finalizers: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("removed finalizer from {NAMESPACE}/long-running")),
        "{stdout}"
    );
    assert!(stdout.contains("1 application(s) changed"), "{stdout}");
    assert_eq!(
        finalizers(&cluster.get("long-running").await.unwrap()),
        [OPERATOR_FINALIZER]
    );
    assert_eq!(
        finalizers(&cluster.get("not-ours").await.unwrap()),
        [OPERATOR_FINALIZER]
    );

    // Without the watcher's finalizer a delete completes as soon as the operator is done.
    cluster
        .apps
        .delete("long-running", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("the application to disappear", async || {
        cluster.get("long-running").await.is_none().then_some(())
    })
    .await;

    cluster.shutdown().await;
}

// ---------------------------------------------------------------------------------------------------
// Small tools
// ---------------------------------------------------------------------------------------------------

fn free_address() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("address")
}

fn signal(pid: &str, which: &str) {
    let status = std::process::Command::new("kill")
        .args([which, pid])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {which} {pid}");
}

/// A minimal HTTP/1.0 GET: `(status, body)`, or `None` while nothing answers.
async fn http_get(address: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Some((status, body))
}

/// The `tansu` binary the local world uses: `SPARK_GATEWAY_TANSU_BIN`, else cargo's bin directory, else
/// the `PATH`.
fn tansu_binary() -> PathBuf {
    if let Some(explicit) = std::env::var_os("SPARK_GATEWAY_TANSU_BIN") {
        return PathBuf::from(explicit);
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    cargo_home
        .map(|home| home.join("bin/tansu"))
        .filter(|path| path.exists())
        .unwrap_or_else(|| PathBuf::from("tansu"))
}

/// A Tansu broker of this test's own, so pausing it stalls nobody else.
struct OwnBroker {
    child: std::process::Child,
    bootstrap: String,
}

impl OwnBroker {
    async fn start() -> Self {
        let binary = tansu_binary();
        let address = free_address();
        let url = format!("tcp://{address}");
        let child = std::process::Command::new(&binary)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start {} ({error}); install it with infra/local/install-tools or set SPARK_GATEWAY_TANSU_BIN",
                    binary.display()
                )
            });
        let broker = Self {
            child,
            bootstrap: address.to_string(),
        };
        eventually("the test's own Tansu to listen", async || {
            tokio::net::TcpStream::connect(address).await.ok()
        })
        .await;
        broker
    }

    fn pause(&self) {
        signal(&self.child.id().to_string(), "-STOP");
    }

    fn resume(&self) {
        signal(&self.child.id().to_string(), "-CONT");
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The watcher binary configured only by the `KAFKA_*` variables of an authenticated deployment: TLS
/// with the local CA and SASL/SCRAM-SHA-256 against the local world's secure broker. Every event of an
/// application arrives there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_publishes_over_tls_with_scram() {
    let world = LocalWorld::from_env().expect("the local world");
    let kafka = world
        .secure_kafka("SCRAM-SHA-256")
        .expect("secure settings");
    let topic = spark_gateway_harness::kafka::create_topic_with(&kafka, "watcher-secure", 1)
        .await
        .expect("a topic on the secure broker");
    let cluster = Cluster::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let kubeconfig = cluster.kubeconfig_file();
    let listen = free_address();
    let log = dir.path().join("watcher.log");
    let _service = tokio::process::Command::new(env!("CARGO_BIN_EXE_spark-gateway-watcher"))
        .arg("run")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args([
            "--namespace",
            NAMESPACE,
            "--cluster",
            CLUSTER,
            "--topic",
            &topic,
        ])
        .args(["--lease-namespace", LEASE_NAMESPACE, "--identity", "secure"])
        .args(["--listen", &listen.to_string(), "--no-finalizer"])
        .envs(world.secure_kafka_vars("SCRAM-SHA-256").expect("variables"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .kill_on_drop(true)
        .spawn()
        .expect("the watcher binary starts");
    eventually(
        "/readyz (the secure broker accepted the credentials)",
        async || (http_get(listen, "/readyz").await?.0 == 200).then_some(()),
    )
    .await;
    let uid = cluster
        .create("secure-run", "success", 100, json!({}))
        .await;
    let reader = TopicReader::with_settings(&kafka, &topic).expect("a consumer");
    let events = read_until_complete(&reader, &[(&uid, 7)]).await;
    assert!(events.iter().all(|p| p.event.data.uid == uid));
    assert!(
        events
            .last()
            .is_some_and(|p| p.event.data.outcome == Some(Outcome::Succeeded)),
        "logs:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    cluster.shutdown().await;
}
