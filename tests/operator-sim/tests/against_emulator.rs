//! The simulator against the project's Kubernetes API emulator (HTTPS, bearer token, the real
//! Apache Spark CRD with its status subresource and schema): lifecycles per scenario, delete
//! handling, TTL, conflicts, a restarted simulator, and a few hundred applications at once.
//!
//! Each test starts its own emulator and simulator in-process on a free port (the harness's
//! `TestCluster`).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DeleteParams, DynamicObject, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube_emulator::{EmulatorConfig, ErrorRule};
use operator_sim::model::{ApplicationStatus, StateSummary, messages};
use operator_sim::{FINALIZER, SCENARIO_KEY, STEP_MILLIS_KEY, Scenario, SimConfig};
use serde_json::{Value, json};
use spark_gateway_harness::{SimDefaults, TestCluster};

const NAMESPACE: &str = "spark-jobs";
const WAIT: Duration = Duration::from_secs(20);

use StateSummary::*;

use spark_gateway_core::apache_v1::HAPPY_PATH;

struct World {
    cluster: TestCluster,
    apps: Api<DynamicObject>,
}

/// The simulator of these tests: a 40 ms default step.
fn sim_config() -> SimConfig {
    SimDefaults {
        scenario: Scenario::Success,
        step: Duration::from_millis(40),
    }
    .into()
}

impl World {
    /// Starts an emulator and a simulator against it, and waits until the simulator is ready.
    async fn start() -> Self {
        // RUST_LOG=operator_sim=debug shows the simulator's decisions in failing tests.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let cluster = TestCluster::start_on(
            EmulatorConfig::for_tests().with_namespace(NAMESPACE),
            sim_config(),
        )
        .await
        .expect("emulator starts, simulator ready in time");
        let client = cluster.client().await.expect("client builds");
        let apps = Api::namespaced_with(client, NAMESPACE, &operator_sim::api_resource());
        Self { cluster, apps }
    }

    /// Stops the simulator, which must end cleanly.
    async fn stop_simulator(&mut self) {
        self.cluster
            .finish_simulator()
            .await
            .expect("simulator ends cleanly");
    }

    /// Starts a new simulator and waits until it is ready.
    async fn start_simulator(&mut self) {
        self.cluster
            .start_simulator_with(sim_config())
            .await
            .expect("simulator ready in time");
    }

    /// Stops the simulator (cleanly) and the emulator.
    async fn shutdown(mut self) {
        self.stop_simulator().await;
        self.cluster.shutdown().await;
    }

    async fn create(&self, name: &str, annotations: &[(&str, &str)], tolerations: Value) {
        let annotations: BTreeMap<&str, &str> = annotations.iter().copied().collect();
        let mut object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "spark.apache.org/v1",
            "kind": "SparkApplication",
            "metadata": {"name": name, "namespace": NAMESPACE, "annotations": annotations},
            "spec": {
                "pyFiles": "local:///opt/spark/examples/src/main/python/pi.py",
                "runtimeVersions": {"sparkVersion": "4.1.0"},
                "sparkConf": {"spark.kubernetes.container.image": "apache/spark:4.1.0-python3"},
                "applicationTolerations": tolerations,
            },
        }))
        .expect("object");
        object.metadata.namespace = Some(NAMESPACE.to_owned());
        self.apps
            .create(&PostParams::default(), &object)
            .await
            .expect("create");
    }

    async fn status(&self, name: &str) -> Option<ApplicationStatus> {
        let object = self.apps.get_opt(name).await.expect("get")?;
        ApplicationStatus::from_status_value(object.data.get("status"))
    }

    /// Polls until the application's current state is `state`.
    async fn wait_for(&self, name: &str, state: StateSummary) -> ApplicationStatus {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = self.status(name).await
                && status.current_state.current_state_summary == state
            {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} never reached {state}: {:?}",
                self.status(name).await
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_gone(&self, name: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.apps.get_opt(name).await.expect("get").is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} was never deleted"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn history(status: &ApplicationStatus) -> Vec<StateSummary> {
    status
        .state_transition_history
        .values()
        .map(|s| s.current_state_summary)
        .collect()
}

fn keys(status: &ApplicationStatus) -> Vec<u64> {
    status.state_transition_history.keys().copied().collect()
}

#[tokio::test]
async fn success_runs_the_happy_path_and_a_delete_only_drops_the_finalizer() {
    let world = World::start().await;
    world.create("pi", &[], json!({})).await;

    let status = world.wait_for("pi", ResourceReleased).await;
    assert_eq!(history(&status), HAPPY_PATH);
    assert_eq!(keys(&status), [0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(status.current_attempt_id(), 0);
    let object = world.apps.get("pi").await.unwrap();
    assert_eq!(
        object.metadata.finalizers.as_deref(),
        Some(&[FINALIZER.to_owned()][..])
    );

    world
        .apps
        .delete("pi", &DeleteParams::default())
        .await
        .unwrap();
    world.wait_gone("pi").await;

    world.shutdown().await;
}

#[tokio::test]
async fn annotations_choose_each_scenario() {
    let world = World::start().await;
    let cases: [(&str, Scenario, &[StateSummary]); 4] = [
        (
            "fails",
            Scenario::Failure,
            &[
                Submitted,
                DriverRequested,
                DriverStarted,
                DriverReady,
                RunningHealthy,
                Failed,
                ResourceReleased,
            ],
        ),
        (
            "times-out",
            Scenario::DriverStartTimeout,
            &[
                Submitted,
                DriverRequested,
                DriverStartTimedOut,
                ResourceReleased,
            ],
        ),
        (
            "evicted",
            Scenario::Eviction,
            &[
                Submitted,
                DriverRequested,
                DriverStarted,
                DriverReady,
                RunningHealthy,
                DriverEvicted,
                ResourceReleased,
            ],
        ),
        (
            "retried",
            Scenario::RestartThenSuccess,
            &[
                ScheduledToRestart,
                DriverRequested,
                DriverStarted,
                DriverReady,
                RunningHealthy,
                Succeeded,
                ResourceReleased,
            ],
        ),
    ];
    for (name, scenario, _) in &cases {
        // The operator restarts only under a restart policy (its default is Never).
        let tolerations = match scenario {
            Scenario::RestartThenSuccess => {
                json!({"restartConfig": {"restartPolicy": "OnFailure"}})
            }
            _ => json!({}),
        };
        world
            .create(
                name,
                &[(SCENARIO_KEY, scenario.as_str()), (STEP_MILLIS_KEY, "25")],
                tolerations,
            )
            .await;
    }
    for (name, _, expected) in &cases {
        let status = world.wait_for(name, ResourceReleased).await;
        assert_eq!(history(&status), *expected, "{name}");
    }

    let retried = world.status("retried").await.unwrap();
    assert_eq!(keys(&retried), [6, 7, 8, 9, 10, 11, 12]);
    assert_eq!(retried.current_attempt_id(), 1);
    let previous = retried.previous_attempt_summary.unwrap();
    assert_eq!(previous.attempt_info.id, 0);
    let previous_states: Vec<StateSummary> = previous
        .state_transition_history
        .unwrap()
        .values()
        .map(|s| s.current_state_summary)
        .collect();
    assert_eq!(previous_states.last(), Some(&Failed));

    world.shutdown().await;
}

#[tokio::test]
async fn deleting_a_running_application_records_the_shutdown() {
    let world = World::start().await;

    // Watch from before the creation to see every status the simulator writes.
    let api = world.apps.clone();
    let seen = tokio::spawn(async move {
        let mut states = Vec::new();
        let mut events = watcher(api, watcher::Config::default())
            .touched_objects()
            .boxed();
        while let Some(Ok(object)) = events.next().await {
            if let Some(status) = ApplicationStatus::from_status_value(object.data.get("status")) {
                if states.last() != Some(&status.current_state) {
                    states.push(status.current_state.clone());
                }
                if status.current_state.current_state_summary == ResourceReleased {
                    return states;
                }
            }
        }
        states
    });
    world
        .create("forever", &[(SCENARIO_KEY, "stuck")], json!({}))
        .await;
    world.wait_for("forever", RunningHealthy).await;
    world
        .apps
        .delete("forever", &DeleteParams::default())
        .await
        .unwrap();
    world.wait_gone("forever").await;

    let states = tokio::time::timeout(WAIT, seen).await.unwrap().unwrap();
    let last = states.last().unwrap();
    assert_eq!(last.current_state_summary, ResourceReleased);
    assert_eq!(last.message.as_deref(), Some(messages::APP_CANCELLED));
    let summaries: Vec<StateSummary> = states.iter().map(|s| s.current_state_summary).collect();
    assert_eq!(
        summaries,
        [
            Submitted,
            DriverRequested,
            DriverStarted,
            DriverReady,
            RunningHealthy,
            ResourceReleased
        ]
    );

    world.shutdown().await;
}

#[tokio::test]
async fn ttl_after_stop_deletes_the_application() {
    let world = World::start().await;
    world
        .create("short-lived", &[], json!({"ttlAfterStopMillis": 300}))
        .await;
    world.wait_for("short-lived", ResourceReleased).await;
    world.wait_gone("short-lived").await;

    world.shutdown().await;
}

#[tokio::test]
async fn retained_resources_stay_until_the_retain_duration() {
    let world = World::start().await;
    world
        .create(
            "kept",
            &[],
            json!({"resourceRetainPolicy": "Always", "resourceRetainDurationMillis": 300}),
        )
        .await;
    let retained = world
        .wait_for("kept", TerminatedWithoutReleaseResources)
        .await;
    assert_eq!(
        retained.current_state.message.as_deref(),
        Some(messages::TERMINATED_WITHOUT_RELEASE)
    );
    let released = world.wait_for("kept", ResourceReleased).await;
    assert_eq!(
        history(&released)[5..],
        [
            Succeeded,
            TerminatedWithoutReleaseResources,
            ResourceReleased
        ]
    );

    world.shutdown().await;
}

#[tokio::test]
async fn conflicts_and_server_errors_are_retried() {
    let world = World::start().await;
    let control = world.cluster.control();
    control.inject_errors(ErrorRule::next("update", 409, 2).for_resource("sparkapplications"));
    control.inject_errors(ErrorRule::next("patch", 500, 1).for_resource("sparkapplications"));
    world.create("bumpy", &[], json!({})).await;

    let status = world.wait_for("bumpy", ResourceReleased).await;
    assert_eq!(history(&status), HAPPY_PATH);

    world.shutdown().await;
}

#[tokio::test]
async fn a_restarted_simulator_continues_from_the_status() {
    let mut world = World::start().await;
    world
        .create("resumed", &[(STEP_MILLIS_KEY, "150")], json!({}))
        .await;
    world.wait_for("resumed", DriverStarted).await;
    world.stop_simulator().await;

    tokio::time::sleep(Duration::from_millis(400)).await;
    let frozen = world.status("resumed").await.unwrap();
    assert!(frozen.current_state.current_state_summary <= DriverReady);

    world.start_simulator().await;
    let status = world.wait_for("resumed", ResourceReleased).await;
    assert_eq!(history(&status), HAPPY_PATH);
    assert_eq!(keys(&status), [0, 1, 2, 3, 4, 5, 6]);

    world.shutdown().await;
}

#[tokio::test]
async fn hundreds_of_applications_finish() {
    // OPERATOR_SIM_BULK raises the count for a quick scale check (e.g. 10000).
    let count: usize = std::env::var("OPERATOR_SIM_BULK")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300);
    let world = World::start().await;
    let names: Vec<String> = (0..count).map(|i| format!("bulk-{i:04}")).collect();
    let creates = futures::stream::iter(
        names
            .iter()
            .map(|name| world.create(name, &[(STEP_MILLIS_KEY, "20")], json!({}))),
    )
    .buffer_unordered(16)
    .collect::<Vec<()>>();
    creates.await;

    let started = tokio::time::Instant::now();
    let deadline = started + Duration::from_secs(60 + count as u64 / 20);
    loop {
        let list = world.apps.list(&Default::default()).await.unwrap();
        let done = list
            .items
            .iter()
            .filter(|o| {
                ApplicationStatus::from_status_value(o.data.get("status")).is_some_and(|s| {
                    s.current_state.current_state_summary == ResourceReleased
                        && history(&s) == HAPPY_PATH
                })
            })
            .count();
        if done == count {
            eprintln!(
                "{count} applications finished {:?} after the last create",
                started.elapsed()
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {done} of {count} finished"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    world.shutdown().await;
}

#[tokio::test]
async fn driver_pods_follow_the_driver_and_are_kept_only_while_retained() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::LogParams;

    let world = World::start().await;
    let pods: Api<Pod> = Api::namespaced(world.cluster.client().await.unwrap(), NAMESPACE);
    let pod_phase = async |name: &str| {
        pods.get_opt(name)
            .await
            .unwrap()
            .and_then(|p| p.status)
            .and_then(|s| s.phase)
    };

    // A failure retained by `OnFailure` (the seed's policy) keeps its driver pod: the status the
    // operator recorded, and a log that ends in the driver's error (what pods/log serves).
    world
        .create(
            "fails",
            &[(SCENARIO_KEY, "failure")],
            json!({"resourceRetainPolicy": "OnFailure"}),
        )
        .await;
    world
        .wait_for("fails", TerminatedWithoutReleaseResources)
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while pod_phase("fails-0-driver").await.as_deref() != Some("Failed") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failed driver pod"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pod = pods.get("fails-0-driver").await.unwrap();
    let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("SparkApplication", "fails")
    );
    let terminated = pod.status.unwrap().container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(terminated.exit_code, 1);
    let log = pods
        .logs("fails-0-driver", &LogParams::default())
        .await
        .unwrap();
    assert!(
        log.trim_end()
            .ends_with("RuntimeError: operator-sim scripted driver failure (exit code 1)"),
        "{log}"
    );

    // A success is released (the default policy): the operator's cleanup deletes the pod.
    world.create("ok", &[], json!({})).await;
    world.wait_for("ok", ResourceReleased).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while pods.get_opt("ok-0-driver").await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the released pod stays"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Deleting the application takes its retained pod (the garbage collector's part).
    world
        .apps
        .delete("fails", &DeleteParams::default())
        .await
        .unwrap();
    world.wait_gone("fails").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while pods.get_opt("fails-0-driver").await.unwrap().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pod outlives its owner"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    world.shutdown().await;
}
