//! The failure paths and multi-state writes of operator 0.5.0, as the operator simulator scripts them
//! (`tests/operator-sim/src/scenario.rs`, each citing the operator class that writes it), through the
//! watcher to CloudEvents on the local world's Kafka: for each, the exact events, in history order,
//! once per id, and the outcome on the last one only.
//!
//! What they pin: a `SchedulingFailure` straight after `Submitted` (and the "Cannot build Spark spec"
//! release), `Failed` "Driver removed..." (not `DriverEvicted`), the executor-threshold states and
//! timeouts, two states appended by one status write (`DriverStarted` + `DriverReady`; `Failed` then
//! `Succeeded` when the driver finished between two checks, where the outcome is the operator's last
//! word, `Succeeded`), restarts only under a restart policy, and the realistic pace.

use std::collections::{BTreeMap, HashSet};

use kube::api::{DynamicObject, PostParams};
use operator_sim::model::messages;
use operator_sim::scenario::PACE_KEY;
use serde_json::{Value, json};
use spark_gateway_core::apache_v1::HAPPY_PATH;
use spark_gateway_events::{ApplicationState, FailureReason, Outcome};
use spark_gateway_watcher::keys::{
    MANAGED_BY_LABEL, MANAGED_BY_VALUE, REQUEST_ID_LABEL, SUBMITTED_BY_ANNOTATION,
    TRACEPARENT_ANNOTATION,
};

use super::{
    Cluster, NAMESPACE, Published, SCENARIO_KEY, STEP_MILLIS_KEY, TRACEPARENT, TopicReader,
    Watcher, kafka_sink, new_topic, read_until_complete, world_bootstrap,
};

use ApplicationState::*;

/// One application of the test and everything expected of it.
struct Case {
    name: &'static str,
    scenario: &'static str,
    step_millis: u64,
    tolerations: Value,
    /// Extra annotations (the pace).
    annotations: Vec<(&'static str, &'static str)>,
    /// `(attempt, history index, state)` of every event, in order.
    events: Vec<(u64, u64, ApplicationState)>,
    /// Messages expected on some events, by history index: `(index, prefix)`.
    messages: Vec<(u64, &'static str)>,
    /// The outcome, with the failure's message checked by prefix.
    outcome: Expected,
}

enum Expected {
    Succeeded,
    Failed(FailureReason, &'static str),
}

fn numbered(states: &[ApplicationState]) -> Vec<(u64, u64, ApplicationState)> {
    states
        .iter()
        .enumerate()
        .map(|(i, s)| (0, i as u64, *s))
        .collect()
}

fn case(name: &'static str, scenario: &'static str, states: &[ApplicationState]) -> Case {
    Case {
        name,
        scenario,
        step_millis: 100,
        tolerations: json!({}),
        annotations: Vec::new(),
        events: numbered(states),
        messages: Vec::new(),
        outcome: Expected::Succeeded,
    }
}

impl Case {
    fn tolerations(mut self, tolerations: Value) -> Self {
        self.tolerations = tolerations;
        self
    }

    fn message(mut self, index: u64, prefix: &'static str) -> Self {
        self.messages.push((index, prefix));
        self
    }

    fn failed(mut self, reason: FailureReason, prefix: &'static str) -> Self {
        self.outcome = Expected::Failed(reason, prefix);
        self
    }

    fn annotation(mut self, key: &'static str, value: &'static str) -> Self {
        self.annotations.push((key, value));
        self
    }

    fn step(mut self, millis: u64) -> Self {
        self.step_millis = millis;
        self
    }
}

fn cases() -> Vec<Case> {
    const RUNNING: [ApplicationState; 5] = [
        Submitted,
        DriverRequested,
        DriverStarted,
        DriverReady,
        RunningHealthy,
    ];
    let running_then = |tail: &[ApplicationState]| [&RUNNING[..], tail].concat();
    let on_failure = json!({"restartConfig": {"restartPolicy": "OnFailure"}});
    vec![
        case(
            "sched-fail",
            "scheduling-failure",
            &[Submitted, SchedulingFailure, ResourceReleased],
        )
        .message(1, messages::SCHEDULE_FAILURE)
        .failed(
            FailureReason::SchedulingFailure,
            "Failed to request driver from scheduler backend. StackTrace: ",
        ),
        case(
            "unbuildable",
            "unbuildable-spec",
            &[Submitted, SchedulingFailure, ResourceReleased],
        )
        // AppCleanUpStep's release skips terminateOrRestart: even Always does not restart.
        .tolerations(json!({"restartConfig": {"restartPolicy": "Always"}}))
        .message(2, messages::CANNOT_BUILD_SPEC)
        .failed(FailureReason::SchedulingFailure, messages::SCHEDULE_FAILURE),
        case(
            "removed",
            "driver-removed",
            &running_then(&[Failed, ResourceReleased]),
        )
        .failed(FailureReason::Failed, "Driver removed. "),
        case(
            "not-ready",
            "driver-ready-timeout",
            &[
                Submitted,
                DriverRequested,
                DriverStarted,
                DriverReadyTimedOut,
                ResourceReleased,
            ],
        )
        .tolerations(json!({"applicationTimeoutConfig": {"driverReadyTimeoutMillis": 2000}}))
        .failed(
            FailureReason::DriverReadyTimedOut,
            messages::DRIVER_READY_TIMEOUT,
        ),
        case(
            "few-executors",
            "executors-start-timeout",
            &[
                Submitted,
                DriverRequested,
                DriverStarted,
                DriverReady,
                InitializedBelowThresholdExecutors,
                ExecutorsStartTimedOut,
                ResourceReleased,
            ],
        )
        .tolerations(json!({
            "instanceConfig": {"initExecutors": 2, "minExecutors": 1},
            "applicationTimeoutConfig": {"executorStartTimeoutMillis": 1000}
        }))
        .message(4, messages::INITIALIZED_WITH_BELOW_THRESHOLD_EXECUTORS)
        .failed(
            FailureReason::ExecutorsStartTimedOut,
            messages::EXECUTOR_LAUNCH_TIMEOUT,
        ),
        case(
            "lost-executors",
            "executors-lost",
            &running_then(&[
                RunningWithBelowThresholdExecutors,
                Succeeded,
                ResourceReleased,
            ]),
        )
        .tolerations(json!({"instanceConfig": {"initExecutors": 2, "minExecutors": 1}}))
        .message(5, messages::RUNNING_WITH_BELOW_THRESHOLD_EXECUTORS),
        // DriverStarted and DriverReady arrive in one status write.
        case(
            "fast",
            "fast-start",
            &running_then(&[Succeeded, ResourceReleased]),
        )
        .message(2, messages::DRIVER_RUNNING)
        .message(3, messages::DRIVER_READY),
        // Failed then Succeeded in one write: the outcome is the last stopping state.
        case(
            "between-checks",
            "finished-between-checks",
            &[
                Submitted,
                DriverRequested,
                Failed,
                Succeeded,
                ResourceReleased,
            ],
        )
        .tolerations(on_failure.clone())
        .message(2, messages::DRIVER_TERMINATED_BEFORE_INITIALIZATION)
        .message(3, messages::DRIVER_COMPLETED),
        // The operator's default restart policy is Never.
        case(
            "no-policy",
            "restart-then-success",
            &running_then(&[Failed, ResourceReleased]),
        )
        .failed(FailureReason::Failed, messages::DRIVER_FAILED),
        {
            let mut restarted = case(
                "with-policy",
                "restart-then-success",
                &running_then(&[Failed]),
            )
            .tolerations(on_failure);
            restarted.events.push((1, 6, ScheduledToRestart));
            // A new attempt starts at the driver request: its Submitted is the restart entry.
            restarted.events.extend(
                HAPPY_PATH[1..]
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (1, 7 + i as u64, *s)),
            );
            restarted
        },
        // Realistic pace at 1/100 of real time: the default 300 s start timeout is noticed at the
        // third 120 s reconcile, 3.6 s after DriverRequested.
        case(
            "realistic-timeout",
            "driver-start-timeout",
            &[
                Submitted,
                DriverRequested,
                DriverStartTimedOut,
                ResourceReleased,
            ],
        )
        .annotation(PACE_KEY, "realistic")
        .step(10)
        .failed(
            FailureReason::DriverStartTimedOut,
            messages::DRIVER_LAUNCH_TIMEOUT,
        ),
    ]
}

async fn create(cluster: &Cluster, case: &Case) -> String {
    let mut annotations = BTreeMap::from([
        (SCENARIO_KEY.to_string(), case.scenario.to_string()),
        (STEP_MILLIS_KEY.to_string(), case.step_millis.to_string()),
        (TRACEPARENT_ANNOTATION.to_string(), TRACEPARENT.to_string()),
        (
            SUBMITTED_BY_ANNOTATION.to_string(),
            "integration-test".to_string(),
        ),
    ]);
    for (key, value) in &case.annotations {
        annotations.insert((*key).to_string(), (*value).to_string());
    }
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "spark.apache.org/v1",
        "kind": "SparkApplication",
        "metadata": {
            "name": case.name,
            "namespace": NAMESPACE,
            "labels": {
                REQUEST_ID_LABEL: format!("req-{}", case.name),
                MANAGED_BY_LABEL: MANAGED_BY_VALUE,
            },
            "annotations": annotations,
        },
        "spec": {
            "pyFiles": "local:///opt/spark/examples/src/main/python/pi.py",
            "runtimeVersions": {"sparkVersion": "4.1.0"},
            "sparkConf": {"spark.kubernetes.container.image": "apache/spark:4.1.0-python3"},
            "applicationTolerations": case.tolerations,
        },
    }))
    .expect("a SparkApplication");
    cluster
        .apps
        .create(&PostParams::default(), &object)
        .await
        .expect("create the application")
        .metadata
        .uid
        .expect("a uid")
}

fn check(events: &[Published], uid: &str, case: &Case) {
    let name = case.name;
    let mine: Vec<&Published> = events.iter().filter(|p| p.event.data.uid == uid).collect();
    let mut seen = HashSet::new();
    let first: Vec<&Published> = mine
        .iter()
        .copied()
        .filter(|p| seen.insert(p.event.id.clone()))
        .collect();
    let got: Vec<(u64, u64, ApplicationState)> = first
        .iter()
        .map(|p| {
            (
                p.event.data.attempt,
                p.event.data.history_index,
                p.event.data.state,
            )
        })
        .collect();
    assert_eq!(got, case.events, "{name}: events");
    assert_eq!(
        mine.len(),
        first.len(),
        "{name}: an event was published twice"
    );
    for (index, prefix) in &case.messages {
        let event = first
            .iter()
            .find(|p| p.event.data.history_index == *index)
            .unwrap_or_else(|| panic!("{name}: no event for entry {index}"));
        let message = event.event.data.message.as_deref().unwrap_or_default();
        assert!(
            message.starts_with(prefix),
            "{name}: message of entry {index}: {message:?}"
        );
    }
    for pair in first.windows(2) {
        let (before, after) = (&pair[0].event.data, &pair[1].event.data);
        let expected = (before.attempt == after.attempt).then_some(before.state);
        assert_eq!(
            after.previous_state, expected,
            "{name}: previous_state of {}",
            pair[1].event.id
        );
    }
    let (last, rest) = first.split_last().expect("events");
    assert!(
        rest.iter().all(|p| p.event.data.outcome.is_none()),
        "{name}: only the last event carries an outcome"
    );
    match (&case.outcome, last.event.data.outcome.as_ref()) {
        (Expected::Succeeded, Some(Outcome::Succeeded)) => {}
        (
            Expected::Failed(reason, prefix),
            Some(Outcome::Failed {
                reason: got,
                message,
            }),
        ) => {
            assert_eq!(got, reason, "{name}: failure reason");
            let message = message.as_deref().unwrap_or_default();
            assert!(
                message.starts_with(prefix),
                "{name}: outcome message {message:?}"
            );
        }
        (_, other) => panic!("{name}: unexpected outcome {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_failure_paths_and_multi_state_writes_reach_kafka_with_their_outcome() {
    let bootstrap = world_bootstrap();
    let topic = new_topic(&bootstrap).await;
    let cluster = Cluster::start().await;
    let watcher = Watcher::start(&cluster, kafka_sink(&bootstrap, &topic), "paths", true);
    let cases = cases();
    let mut uids = Vec::new();
    for case in &cases {
        uids.push(create(&cluster, case).await);
    }
    let reader = TopicReader::new(&bootstrap, &topic).expect("a consumer");
    let expected: Vec<(&str, usize)> = cases
        .iter()
        .zip(&uids)
        .map(|(case, uid)| (uid.as_str(), case.events.len()))
        .collect();
    let events = read_until_complete(&reader, &expected).await;
    for (case, uid) in cases.iter().zip(&uids) {
        check(&events, uid, case);
    }

    // The two states of one write really came in one write: same transition time.
    let fast = &uids[cases.iter().position(|c| c.name == "fast").expect("fast")];
    let times: Vec<_> = events
        .iter()
        .filter(|p| &p.event.data.uid == fast && [2, 3].contains(&p.event.data.history_index))
        .map(|p| p.event.time)
        .collect();
    assert!(
        times.len() >= 2 && times.windows(2).all(|w| w[0] == w[1]),
        "{times:?}"
    );

    watcher.stop().await;
    cluster.shutdown().await;
}
