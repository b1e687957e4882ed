//! Real Spark through the whole path: a request on SQS (LocalStack), the consumer, the gateway
//! (OpenBao token), a private Kubernetes API emulator, and the operator simulator running the
//! application with `spark-submit` (pyspark 4.1.0 from the local world's tools cache, Java 17) on
//! this machine. Each application opts in with the `operator-sim.spark-gateway.io/execution: real`
//! label, as a request does.
//!
//! What each test pins of the real thing: the driver's own log (pi computed, exception text,
//! code loaded from both jars), the outcome the operator's rules derive from the driver's exit,
//! the timeout state operator 0.5.0's `AppDriverTimeoutObserver` writes, and a failed job's
//! terminal event with the real log's end read by the watcher binary through `pods/log`.
//!
//! One real driver at a time: under nextest these tests share the `real-spark` test group
//! (`.config/nextest.toml`, one thread); under `cargo test` a process-wide semaphore.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use kube::api::{DynamicObject, PostParams};
use operator_sim::real::{EXECUTION_KEY, LocalTarget};
use operator_sim::{RealConfig, Scenario, Settings, SimConfig};
use serde_json::json;
use spark_gateway_core::apache_v1::spark_app_id;
use spark_gateway_events::{
    ApplicationState, FailureCategory, FailureReason, GetJobStatusRequest, GetJobStatusResponse,
    JobRequest, Outcome, SparkApplicationType, SubmitJobRequest,
};
use spark_gateway_harness::LocalWorld;
use spark_gateway_harness::kafka::create_topic;
use tokio::sync::Semaphore;

use super::fixture::{Fixture, NAMESPACE, seed_request};
use super::functions::{Channels, handlers, spawn_sqs_consumer, sqs_client};

static ONE_DRIVER_AT_A_TIME: Semaphore = Semaphore::const_new(1);

const APP_JAR: &str = "local:///opt/spark/examples/jars/spark-gateway-two-jar-app.jar";
const LIB_JAR: &str = "local:///opt/spark/examples/jars/spark-gateway-two-jar-lib.jar";
const TWO_JAR_CLASS: &str = "io.sparkgateway.examples.app.TwoJarApp";

/// A private world whose simulator runs applications for real, with driver logs in `logs`.
struct RealWorld {
    fixture: Fixture,
    logs: tempfile::TempDir,
}

impl RealWorld {
    async fn start() -> Result<Self> {
        let world = LocalWorld::from_env()?;
        let logs = tempfile::tempdir()?;
        let spark_home = world.var("SPARK_GATEWAY_SPARK_HOME").context(
            "Spark is not installed in the local world: run infra/local/up (with SPARK_GATEWAY_SPARK unset or 1)",
        )?;
        let config = SimConfig {
            defaults: Settings {
                scenario: Scenario::Success,
                step: Duration::from_millis(100),
            },
            real: Some(RealConfig {
                spark_home: PathBuf::from(spark_home),
                python: Some(PathBuf::from(world.var("SPARK_GATEWAY_SPARK_PYTHON")?)),
                target: LocalTarget {
                    job_roots: std::env::split_paths(world.var("SPARK_GATEWAY_SPARK_JOBS")?)
                        .collect(),
                    threads: 2,
                    max_driver_memory_mib: 512,
                },
                log_dir: logs.path().to_path_buf(),
                max_submits: 1,
                run_timeout: Duration::from_secs(300),
                by_default: false,
            }),
            ..SimConfig::default()
        };
        Ok(Self {
            fixture: Fixture::start_with(Some(config)).await?,
            logs,
        })
    }

    /// Sends `request` through SQS and the consumer, then follows its status until its outcome.
    async fn run_through_sqs(&self, request: &SubmitJobRequest) -> Result<GetJobStatusResponse> {
        let sqs = sqs_client(&self.fixture).await?;
        let channels = Channels::create(&self.fixture, &sqs).await?;
        let handlers = Arc::new(handlers(&self.fixture, &channels).await?);
        let (stop, consumer) =
            spawn_sqs_consumer(handlers, sqs.clone(), channels.queue.url.clone());
        sqs.send_message()
            .queue_url(&channels.queue.url)
            .message_body(serde_json::to_string(&JobRequest::Submit(Box::new(
                request.clone(),
            )))?)
            .send()
            .await?;
        let status = self.outcome_of(&request.application_name).await;
        let _ = stop.send(true);
        consumer.await??;
        status
    }

    /// Polls the gateway's job status until it reports an outcome (bounded: a driver killed by
    /// the simulator's run timeout still ends the application).
    async fn outcome_of(&self, name: &str) -> Result<GetJobStatusResponse> {
        let gateway = self.fixture.gateway().await?;
        let request = GetJobStatusRequest::by_name(NAMESPACE, name);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(360);
        loop {
            match gateway.status(&request).await {
                Ok(status) if status.outcome.is_some() => return Ok(status),
                Ok(_) | Err(_) if tokio::time::Instant::now() < deadline => {}
                Ok(status) => bail!("{name} has no outcome after 360 s: {status:?}"),
                Err(error) => return Err(error).context(format!("status of {name}")),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The driver's log: what `kubectl logs <driver pod>` shows on a cluster.
    fn driver_log(&self, status: &GetJobStatusResponse) -> Result<String> {
        let pod = status
            .driver_pod_name
            .clone()
            .context("the status names no driver pod")?;
        let path = self.logs.path().join(NAMESPACE).join(format!("{pod}.log"));
        std::fs::read_to_string(&path).with_context(|| {
            format!(
                "no driver log at {} (logs: {:?})",
                path.display(),
                list(self.logs.path())
            )
        })
    }

    async fn shutdown(self) {
        self.fixture.cluster.shutdown().await;
    }
}

fn list(dir: &Path) -> Vec<String> {
    walk(dir)
        .into_iter()
        .map(|p| p.display().to_string())
        .collect()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

/// The seed's request, run for real.
fn real(mut request: SubmitJobRequest) -> SubmitJobRequest {
    request.labels.insert(EXECUTION_KEY.into(), "real".into());
    request
}

fn python_job(file: &str, arguments: &[&str]) -> Result<SubmitJobRequest> {
    let mut request = real(seed_request()?);
    request.py_files = vec![format!(
        "local:///opt/spark/examples/src/main/python/{file}"
    )];
    request.arguments = arguments.iter().map(|a| (*a).to_owned()).collect();
    Ok(request)
}

fn two_jar_job() -> Result<SubmitJobRequest> {
    let mut request = real(seed_request()?);
    request.application_name = spark_gateway_harness::unique_name("two-jar");
    request.spark_application_type = SparkApplicationType::Java;
    request.py_files.clear();
    request.image = Some("apache/spark:4.1.0".into());
    request.spark_conf.insert(
        "spark.kubernetes.container.image".into(),
        "apache/spark:4.1.0".into(),
    );
    request.main_application_file = Some(APP_JAR.into());
    request.main_class = Some(TWO_JAR_CLASS.into());
    request.jars = vec![LIB_JAR.into()];
    request.arguments = vec!["1000".into()];
    Ok(request)
}

fn states(status: &GetJobStatusResponse) -> Vec<ApplicationState> {
    status.history.iter().map(|t| t.state).collect()
}

/// The driver's `Task code came from:` line holds both jars' files.
fn assert_tasks_ran_both_jars(log: &str) {
    let line = log
        .lines()
        .find(|l| l.starts_with("Task code came from:"))
        .unwrap_or_else(|| panic!("no task-origin line in the driver log:\n{log}"));
    assert!(
        line.contains("app=file:") && line.contains("spark-gateway-two-jar-app.jar"),
        "{line}"
    );
    assert!(
        line.contains("lib=file:") && line.contains("spark-gateway-two-jar-lib.jar"),
        "{line}"
    );
    assert!(
        log.contains("Sum of squares of 1..1000 is 333833500"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_pi_test_from_sqs_computes_pi_on_real_spark() -> Result<()> {
    let _one = ONE_DRIVER_AT_A_TIME.acquire().await?;
    let world = RealWorld::start().await?;
    let request = real(seed_request()?);
    let status = world.run_through_sqs(&request).await?;

    assert_eq!(status.outcome, Some(Outcome::Succeeded), "{status:?}");
    // Driver process up, SparkContext up, running, exit 0; then the seed's cleanup (released).
    let seen = states(&status);
    let driver_phase: Vec<_> = seen
        .iter()
        .copied()
        .filter(|s| {
            matches!(
                s,
                ApplicationState::DriverStarted
                    | ApplicationState::DriverReady
                    | ApplicationState::RunningHealthy
                    | ApplicationState::Succeeded
            )
        })
        .collect();
    assert_eq!(
        driver_phase,
        [
            ApplicationState::DriverStarted,
            ApplicationState::DriverReady,
            ApplicationState::RunningHealthy,
            ApplicationState::Succeeded
        ],
        "{seen:?}"
    );
    assert_eq!(seen.last(), Some(&ApplicationState::ResourceReleased));
    assert_eq!(
        status.driver_pod_name.as_deref(),
        Some(format!("{}-0-driver", request.application_name).as_str())
    );
    let log = world.driver_log(&status)?;
    let pi = log
        .lines()
        .find_map(|l| l.strip_prefix("Pi is roughly "))
        .with_context(|| format!("no Pi line in the driver log:\n{log}"))?;
    let pi: f64 = pi.trim().parse()?;
    assert!((3.0..3.3).contains(&pi), "Pi is roughly {pi}");
    world.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_raises_fails_with_its_exception_text() -> Result<()> {
    let _one = ONE_DRIVER_AT_A_TIME.acquire().await?;
    let world = RealWorld::start().await?;
    // The watcher binary with the cluster's link templates, publishing to a topic of this test.
    let topic = create_topic(world.fixture.world.kafka_bootstrap()?, "real-events", 1).await?;
    let watcher_log = world.logs.path().join("watcher.log");
    let _watcher = world.fixture.spawn_watcher(
        &topic,
        "real-spark",
        &[
            "--history-url-template",
            "https://history.example.com/history/{app_id}/jobs/",
            "--logs-url-template",
            "https://logs.example.com/{namespace}/{driver_pod}",
        ],
        &[],
        &watcher_log,
    )?;
    let request = python_job("raise.py", &[])?;
    let status = world.run_through_sqs(&request).await?;

    let Some(Outcome::Failed {
        reason: FailureReason::Failed,
        message: Some(message),
    }) = &status.outcome
    else {
        bail!("expected a Failed outcome with a message, got {status:?}");
    };
    assert!(
        message
            .contains("RuntimeError: spark-gateway example job failed on purpose: a task raised"),
        "{message}"
    );
    assert!(message.contains("(task saw value 3)"), "{message}");
    // The failure detail a person starts from: the category, the driver's exit code and the end of
    // its log (the termination message FallbackToLogsOnError gives), from lastObservedDriverStatus.
    let failure = status.failure.as_ref().context("failure detail")?;
    assert_eq!(failure.category, FailureCategory::UserError);
    assert_eq!(failure.exit_code, Some(1), "{failure:?}");
    assert_eq!(failure.reason.as_deref(), Some("Error"));
    let termination = failure.termination_message.as_deref().unwrap_or_default();
    assert!(
        termination.contains("RuntimeError: spark-gateway example job failed on purpose"),
        "{termination}"
    );
    let log = world.driver_log(&status)?;
    assert!(
        log.contains("ValueError: spark-gateway example job failed on purpose (task saw value 3)"),
        "the task's own exception is in the driver log:\n{log}"
    );
    // The seed retains failed applications (resourceRetainPolicy OnFailure).
    assert_eq!(
        states(&status).last(),
        Some(&ApplicationState::TerminatedWithoutReleaseResources)
    );

    // The terminal event, as a subscriber gets it: the category, the exit code, the end of the real
    // driver log read through pods/log from the retained driver pod (the Python exception line
    // included), and the links.
    let terminal = world
        .fixture
        .terminal_event(&topic, Duration::from_secs(60), &watcher_log)
        .await?;
    let failure = terminal.data.failure.as_ref().context("failure detail")?;
    assert_eq!(failure.category, FailureCategory::UserError);
    assert_eq!(failure.exit_code, Some(1), "{failure:?}");
    let log_tail = failure
        .log_tail
        .as_deref()
        .context("the driver log's end")?;
    assert!(
        log_tail
            .contains("RuntimeError: spark-gateway example job failed on purpose: a task raised"),
        "{log_tail}"
    );
    assert!(
        log.trim_end().ends_with(log_tail),
        "the tail is the log's end"
    );
    let pod = status.driver_pod_name.as_deref().context("driver pod")?;
    let links = terminal.data.links.as_ref().context("links")?;
    assert_eq!(
        links.history_server.as_deref(),
        Some(
            format!(
                "https://history.example.com/history/{}/jobs/",
                spark_app_id(NAMESPACE, &request.application_name, 0)
            )
            .as_str()
        )
    );
    assert_eq!(
        links.logs.as_deref(),
        Some(format!("https://logs.example.com/{NAMESPACE}/{pod}").as_str())
    );
    world.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_two_jar_java_job_runs_task_code_from_both_jars() -> Result<()> {
    let _one = ONE_DRIVER_AT_A_TIME.acquire().await?;
    let world = RealWorld::start().await?;
    let request = two_jar_job()?;
    let status = world.run_through_sqs(&request).await?;

    assert_eq!(status.outcome, Some(Outcome::Succeeded), "{status:?}");
    let stored = world
        .fixture
        .apps()
        .await?
        .get(&request.application_name)
        .await?;
    assert_eq!(stored.data["spec"]["jars"], APP_JAR);
    // The mapping writes the main jar first, so the operator's setIfMissing has nothing to lose.
    assert_eq!(
        stored.data["spec"]["sparkConf"]["spark.jars"],
        format!("{APP_JAR},{LIB_JAR}").as_str()
    );
    assert_tasks_ran_both_jars(&world.driver_log(&status)?);
    world.shutdown().await;
    Ok(())
}

/// What the mapping wrote before issue 11 (`sparkConf["spark.jars"]` = the extras only): the
/// operator keeps that value (`setIfMissing`), so the main jar is not in `spark.jars`. Run for
/// real, the job still succeeds, because the driver's own spark-submit (client mode) adds its
/// primary resource to `spark.jars` again: the application jar reaches the executors by that
/// accident only. Created directly, since the gateway no longer writes such a spec.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_mapping_of_extra_jars_works_only_because_spark_submit_re_adds_the_main_jar()
-> Result<()> {
    let _one = ONE_DRIVER_AT_A_TIME.acquire().await?;
    let world = RealWorld::start().await?;
    let name = spark_gateway_harness::unique_name("old-jars");
    let app: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "spark.apache.org/v1",
        "kind": "SparkApplication",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {EXECUTION_KEY: "real"}},
        "spec": {
            "jars": APP_JAR,
            "mainClass": TWO_JAR_CLASS,
            "driverArgs": ["1000"],
            "runtimeVersions": {"sparkVersion": "4.1.0"},
            "sparkConf": {"spark.jars": LIB_JAR, "spark.driver.memory": "512m"},
        },
    }))?;
    world
        .fixture
        .apps()
        .await?
        .create(&PostParams::default(), &app)
        .await?;
    let status = world.outcome_of(&name).await?;

    assert_eq!(status.outcome, Some(Outcome::Succeeded), "{status:?}");
    let properties = std::fs::read_to_string(
        world
            .logs
            .path()
            .join(NAMESPACE)
            .join(format!("{name}-0-driver.properties")),
    )?;
    let jars_line = properties
        .lines()
        .find(|l| l.starts_with("spark.jars="))
        .context("no spark.jars in the driver's conf")?;
    assert!(
        jars_line.ends_with("spark-gateway-two-jar-lib.jar") && !jars_line.contains("-app.jar"),
        "the operator kept the request's spark.jars: {jars_line}"
    );
    let log = world.driver_log(&status)?;
    let re_added = log.lines().any(|l| {
        l.contains("SparkContext: Added JAR") && l.contains("spark-gateway-two-jar-app.jar")
    });
    assert!(re_added, "spark-submit re-added the main jar:\n{log}");
    assert_tasks_ran_both_jars(&log);
    world.shutdown().await;
    Ok(())
}

/// `slow.py` waits before it creates its SparkContext: the driver process is up
/// (`DriverStarted`) but never ready within `driverReadyTimeoutMillis`, so operator 0.5.0's
/// timeout observer writes `DriverReadyTimedOut`, and the driver is stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_slower_than_its_ready_timeout_ends_driver_ready_timed_out() -> Result<()> {
    let _one = ONE_DRIVER_AT_A_TIME.acquire().await?;
    let world = RealWorld::start().await?;
    let mut request = python_job("slow.py", &["120"])?;
    request.application_tolerations = Some(serde_json::from_value(json!({
        "resource_retain_policy": "OnFailure",
        "ttl_after_stop_millis": 300000,
        "application_timeout_config": {"driver_ready_timeout_millis": 4000},
    }))?);
    let status = world.run_through_sqs(&request).await?;

    assert!(
        matches!(
            status.outcome,
            Some(Outcome::Failed {
                reason: FailureReason::DriverReadyTimedOut,
                ..
            })
        ),
        "{status:?}"
    );
    let seen = states(&status);
    assert!(
        seen.contains(&ApplicationState::DriverStarted)
            && !seen.contains(&ApplicationState::DriverReady),
        "{seen:?}"
    );
    let log = world.driver_log(&status)?;
    // Stopped before its SparkContext came up (the job may not even have printed its first line).
    assert!(
        !log.contains(operator_sim::real::READY_LINE) && !log.contains("slow job: done"),
        "{log}"
    );
    world.shutdown().await;
    Ok(())
}
