//! Real execution, the pure part: how operator 0.5.0 turns a SparkApplication into a submission,
//! what changes to run it on one machine, and how the operator reads a driver's fate into states.
//!
//! The I/O (queueing, spawning `spark-submit`, watching its log) lives in [`crate::drivers`]; this
//! module only computes. Everything below was read from apache/spark-kubernetes-operator at tag
//! 0.5.0 and apache/spark 4.x; no code of either is copied.
//!
//! # The submission (`SparkAppSubmissionWorker.buildDriverConf`, `SparkAppResourceSpecFactory`)
//! - `sparkConf` as given, then the factory's overrides: `spark.kubernetes.namespace` = the
//!   application's namespace, and `spark.app.name` = `metadata.name` *only when* `sparkConf`
//!   already sets `spark.app.name`.
//! - Primary resource: `jars` when non-empty (then `setIfMissing("spark.jars", jars)`), else
//!   `pyFiles` (then `setIfMissing("spark.submit.pyFiles", pyFiles)`), else `sparkRFiles`; with
//!   none of them, no resource (`spark-internal`). A request that sets `spark.jars` itself
//!   therefore *replaces* the main jar in that key.
//! - `setIfMissing("spark.master", "k8s://https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT")`
//!   (prefix from `spark.master.url.prefix`), `setIfMissing("spark.app.id", <name>-<attempt>)`,
//!   the id hashed when longer than 46 characters (`generateSparkAppId`).
//! - The driver pod is `spark.kubernetes.driver.pod.name` or `<spark.app.id>-driver`
//!   (Spark's `BasicDriverFeatureStep`, resource name prefix = the app id).
//! - The driver container runs `spark-submit --conf spark.driver.bindAddress=<pod ip>
//!   --deploy-mode client --properties-file <conf> --class <mainClass> <resource> <driverArgs>`
//!   (Spark's `DriverCommandFeatureStep` and the image's `entrypoint.sh`); the Java resource keeps
//!   its `local://` URI, and spark-submit in client mode adds the primary jar to the classpath
//!   and to `spark.jars` again ("app jar is also added to spark.jars by default in SparkSubmit").
//!
//! # What changes on one machine ([`localize`])
//! `spark.master` becomes `local[N]`; `local:///opt/spark/<path>` (the image's `SPARK_HOME`)
//! resolves to the first job root holding `<path>` (left as it is otherwise, so spark-submit
//! fails as a driver would on an image without the file); the driver binds to 127.0.0.1; the
//! UI is off (no port clashes between drivers); `spark.driver.memory` is capped. Nothing else is
//! touched: the `spark.kubernetes.*` keys stay (local mode ignores them).
//!
//! # Reading the driver ([`decide`]; `SparkAppReconciler.getReconcileSteps`, the observers)
//! The simulated driver pod: queued = `Pending` without container statuses; process started =
//! container ready (no readiness probe); SparkContext up (its log line [`READY_LINE`]) = pod
//! `Ready`; exit 0 / non-zero = phase `Succeeded` / `Failed`. In `DriverRequested` and
//! `DriverStarted` the operator runs the start and ready observers on the *same* status and
//! writes all they report in one status write: a driver seen ready at once gives
//! `DriverStarted`+`DriverReady`, a job that ended between two checks gives `Failed` ("terminated
//! without SparkContext") followed by `Succeeded`. Then the running observer (termination), then
//! the timeout observer (`DriverRequested` → `DriverStartTimedOut` after
//! `driverStartTimeoutMillis`, `DriverStarted` → `DriverReadyTimedOut` after
//! `driverReadyTimeoutMillis`, both carrying the launch-timeout message). From `DriverReady` on,
//! `AppRunningStep` writes `RunningHealthy` (local mode has no executor pods; the task slots of
//! `local[N]` count as enough executors), then termination is observed. A driver that should
//! exist but does not (the simulator restarted) is `Failed` "Driver removed…", as in 0.5.0.
//! After an outcome the scripted core ([`crate::plan`]) takes over: release, retain, restart, TTL.
//!
//! # Differences from the operator, on purpose
//! - `Failed` carries the driver's last error line after the operator's message (the operator
//!   writes only its constant text; the reason is in the pod's log), and the pod status's
//!   `terminated.message` holds it too (what `terminationMessagePolicy: FallbackToLogsOnError`
//!   would give).
//! - The driver is requested when `DriverRequested` is written (the operator creates the pod,
//!   then writes the state).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};
/// One implementation of the operator's `generateSparkAppId`, shared with the status function (both
/// pinned by vectors computed with the operator's Java code).
use spark_gateway_core::apache_v1::spark_app_id;

use crate::model::{ApplicationState, ApplicationStatus, StateSummary, messages};
use crate::plan::{Action, AppView, DEFAULT_RESTART_BACKOFF_MILLIS, DEFAULT_TIMEOUT_MILLIS, Step};
use crate::scenario::SCENARIO_KEY;

/// Annotation (or label) choosing how one application runs: `real` or `scripted`.
pub const EXECUTION_KEY: &str = "operator-sim.spark-gateway.io/execution";

/// The driver's log line that says its SparkContext is up: `SparkContext`'s constructor
/// initialises the block manager after the scheduler backend started (INFO, Spark's default
/// log4j2 profile).
pub const READY_LINE: &str = "Initialized BlockManager: BlockManagerId(driver";

/// Where the image keeps Spark; `local://` paths below it resolve to the job roots.
pub const IMAGE_SPARK_HOME: &str = "/opt/spark/";

const DRIVER_CONTAINER: &str = "spark-kubernetes-driver";

/// How one application runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Execution {
    /// `spark-submit` on this machine drives the status.
    Real,
    /// The scenario script drives the status.
    Scripted,
}

impl FromStr for Execution {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "real" => Ok(Self::Real),
            "scripted" => Ok(Self::Scripted),
            other => Err(format!(
                "{EXECUTION_KEY}: {other:?} is neither \"real\" nor \"scripted\""
            )),
        }
    }
}

impl Execution {
    /// The execution one application asks for: [`EXECUTION_KEY`] (annotation, then label);
    /// without it an application that names a scenario ([`SCENARIO_KEY`]) is scripted, any
    /// other gets `default`.
    pub fn resolve(
        annotations: Option<&BTreeMap<String, String>>,
        labels: Option<&BTreeMap<String, String>>,
        default: Execution,
    ) -> (Execution, Option<String>) {
        let raw = annotations
            .and_then(|a| a.get(EXECUTION_KEY))
            .or_else(|| labels.and_then(|l| l.get(EXECUTION_KEY)));
        let names_scenario = annotations.is_some_and(|a| a.contains_key(SCENARIO_KEY))
            || labels.is_some_and(|l| l.contains_key(SCENARIO_KEY));
        match raw.map(|r| r.parse()) {
            None if names_scenario => (Execution::Scripted, None),
            None => (default, None),
            Some(Ok(execution)) => (execution, None),
            Some(Err(problem)) => (default, Some(problem)),
        }
    }
}

/// The primary resource the operator chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Primary {
    /// `jars` (or none at all: `spark-internal`).
    Java(Option<String>),
    /// `pyFiles`.
    Python(String),
    /// `sparkRFiles`.
    R(String),
}

/// What the operator hands its driver: the effective conf and the driver's command arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The effective Spark conf (the driver's properties file).
    pub conf: BTreeMap<String, String>,
    /// The primary resource.
    pub primary: Primary,
    /// `spec.mainClass`.
    pub main_class: Option<String>,
    /// `spec.driverArgs`.
    pub args: Vec<String>,
}

impl Submission {
    /// Builds the submission of attempt `attempt` of the application `name` in `namespace` from
    /// its `spec`, as `SparkAppSubmissionWorker.buildDriverConf` does.
    pub fn from_spec(name: &str, namespace: &str, attempt: u64, spec: &Value) -> Self {
        let text = |key: &str| {
            spec.get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let mut conf: BTreeMap<String, String> = spec
            .get("sparkConf")
            .and_then(Value::as_object)
            .map(|map| {
                map.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        // SparkAppResourceSpecFactory.overrideDependencyConf (the label keys only matter to pods).
        if conf.contains_key("spark.app.name") {
            conf.insert("spark.app.name".to_owned(), name.to_owned());
        }
        conf.insert(
            "spark.kubernetes.namespace".to_owned(),
            namespace.to_owned(),
        );
        let primary = if let Some(jars) = text("jars") {
            conf.entry("spark.jars".to_owned())
                .or_insert_with(|| jars.clone());
            Primary::Java(Some(jars))
        } else if let Some(py) = text("pyFiles") {
            conf.entry("spark.submit.pyFiles".to_owned())
                .or_insert_with(|| py.clone());
            Primary::Python(py)
        } else if let Some(r) = text("sparkRFiles") {
            Primary::R(r)
        } else {
            Primary::Java(None)
        };
        let prefix = conf
            .get("spark.master.url.prefix")
            .cloned()
            .unwrap_or_else(|| "k8s://".to_owned());
        conf.entry("spark.master".to_owned()).or_insert_with(|| {
            format!("{prefix}https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT")
        });
        conf.entry("spark.app.id".to_owned())
            .or_insert_with(|| spark_app_id(namespace, name, attempt));
        let args = spec
            .get("driverArgs")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Self {
            conf,
            primary,
            main_class: text("mainClass"),
            args,
        }
    }

    /// The driver pod's name: `spark.kubernetes.driver.pod.name`, else `<spark.app.id>-driver`.
    pub fn driver_pod_name(&self) -> String {
        if let Some(name) = self.conf.get("spark.kubernetes.driver.pod.name") {
            return name.clone();
        }
        let id = self
            .conf
            .get("spark.app.id")
            .map_or("spark", String::as_str);
        format!("{id}-driver")
    }
}

/// How submissions run on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTarget {
    /// Directories standing in for the image's `/opt/spark`, searched in order.
    pub job_roots: Vec<PathBuf>,
    /// `N` of `local[N]`.
    pub threads: u32,
    /// Upper bound of `spark.driver.memory`, in MiB.
    pub max_driver_memory_mib: u64,
}

/// A submission ready for `spark-submit` on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalSubmission {
    /// The properties file's entries.
    pub conf: BTreeMap<String, String>,
    /// `spark-submit` arguments after `--properties-file <file>`.
    pub args: Vec<String>,
}

impl LocalSubmission {
    /// The properties file (`java.util.Properties` syntax).
    pub fn properties(&self) -> String {
        let mut out =
            String::from("# Written by operator-sim: the driver's effective Spark conf\n");
        for (key, value) in &self.conf {
            out.push_str(&escape_property(key, true));
            out.push('=');
            out.push_str(&escape_property(value, false));
            out.push('\n');
        }
        out
    }
}

/// Changes only what must change to run `submission` on one machine (see the module docs).
pub fn localize(submission: &Submission, target: &LocalTarget) -> LocalSubmission {
    let resolve = |uri: &str| resolve_local(uri, &target.job_roots);
    let mut conf = submission.conf.clone();
    conf.insert(
        "spark.master".to_owned(),
        format!("local[{}]", target.threads.max(1)),
    );
    for key in [
        "spark.jars",
        "spark.submit.pyFiles",
        "spark.files",
        "spark.archives",
    ] {
        if let Some(list) = conf.get_mut(key) {
            *list = list.split(',').map(resolve).collect::<Vec<_>>().join(",");
        }
    }
    // The image's entrypoint binds the driver to its pod IP; here that is the loopback.
    conf.insert(
        "spark.driver.bindAddress".to_owned(),
        "127.0.0.1".to_owned(),
    );
    conf.insert("spark.driver.host".to_owned(), "127.0.0.1".to_owned());
    conf.insert("spark.ui.enabled".to_owned(), "false".to_owned());
    let wanted = conf
        .get("spark.driver.memory")
        .and_then(|m| memory_mib(m))
        .unwrap_or(1024);
    conf.insert(
        "spark.driver.memory".to_owned(),
        format!("{}m", wanted.min(target.max_driver_memory_mib)),
    );

    let mut args = Vec::new();
    let resource = match &submission.primary {
        Primary::Java(jar) => {
            if let Some(class) = &submission.main_class {
                args.extend(["--class".to_owned(), class.clone()]);
            }
            jar.as_deref().map_or("spark-internal".to_owned(), resolve)
        }
        // spark-submit picks PythonRunner / RRunner itself for these resources.
        Primary::Python(file) | Primary::R(file) => resolve(file),
    };
    args.push(resource);
    args.extend(submission.args.iter().cloned());
    LocalSubmission { conf, args }
}

/// `local:///opt/spark/<path>` → `local://<root>/<path>` for the first root holding the file;
/// anything else unchanged.
pub fn resolve_local(uri: &str, roots: &[PathBuf]) -> String {
    let Some(path) = uri.trim().strip_prefix("local://") else {
        return uri.to_owned();
    };
    let Some(relative) = path.strip_prefix(IMAGE_SPARK_HOME) else {
        return uri.to_owned();
    };
    roots
        .iter()
        .map(|root| root.join(relative))
        .find(|candidate| candidate.exists())
        .map_or_else(|| uri.to_owned(), |found| local_uri(&found))
}

fn local_uri(path: &Path) -> String {
    format!("local://{}", path.display())
}

/// Spark's memory strings (`512m`, `2g`, `1024k`, plain = MiB for driver memory) in MiB.
fn memory_mib(text: &str) -> Option<u64> {
    let text = text.trim().to_ascii_lowercase();
    let text = text.strip_suffix('b').unwrap_or(&text);
    let (digits, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, ""), |at| text.split_at(at));
    let value: u64 = digits.parse().ok()?;
    Some(match unit {
        "" | "m" => value,
        "k" => value / 1024,
        "g" => value * 1024,
        "t" => value * 1024 * 1024,
        _ => return None,
    })
}

fn escape_property(text: &str, key: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for (index, c) in text.chars().enumerate() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '=' | ':' | '#' | '!' if key => {
                out.push('\\');
                out.push(c);
            }
            ' ' if key || index == 0 => out.push_str("\\ "),
            _ => out.push(c),
        }
    }
    out
}

/// The driver's last error line in its log: the last line that is neither an INFO/WARN/DEBUG
/// log line, nor indented (stack frames), nor blank — the Python exception, or Java's
/// `Exception in thread "main" …` / `Caused by: …`.
pub fn last_error_line(log: &str) -> Option<String> {
    log.lines()
        .rev()
        .map(str::trim_end)
        .find(|line| {
            !line.is_empty()
                && !line.starts_with(char::is_whitespace)
                && !is_quiet_log_line(line)
                && !line.starts_with("Traceback (most recent call last)")
        })
        .map(|line| line.chars().take(1000).collect())
}

/// `yy/MM/dd HH:mm:ss LEVEL …` with a level below ERROR (Spark's default console pattern).
fn is_quiet_log_line(line: &str) -> bool {
    let mut parts = line.splitn(4, ' ');
    let (Some(date), Some(time), Some(level)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let stamp = |s: &str, sep: char| {
        s.len() == 8
            && s.chars().enumerate().all(|(i, c)| match i {
                2 | 5 => c == sep,
                _ => c.is_ascii_digit(),
            })
    };
    stamp(date, '/') && stamp(time, ':') && matches!(level, "INFO" | "WARN" | "DEBUG" | "TRACE")
}

/// What the simulator knows of the driver process of the current attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverSeen {
    /// No driver for this attempt (never requested, or lost when the simulator restarted).
    Absent,
    /// Requested and waiting for a free slot (a pending pod).
    Queued,
    /// The process runs; its SparkContext is not up yet.
    Started {
        /// When the process started (RFC 3339).
        at: String,
    },
    /// The SparkContext is up.
    Ready {
        /// When the process started (RFC 3339).
        at: String,
    },
    /// The process ended.
    Exited {
        /// When the process started (RFC 3339).
        started: String,
        /// When it ended (RFC 3339).
        finished: String,
        /// Exit code; `None` when a signal ended it.
        code: Option<i32>,
        /// The log's last error line.
        last_error: Option<String>,
    },
}

/// The application's timeouts (`applicationTolerations.applicationTimeoutConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// `driverStartTimeoutMillis`.
    pub driver_start_millis: i64,
    /// `driverReadyTimeoutMillis`.
    pub driver_ready_millis: i64,
    /// `executorStartTimeoutMillis`.
    pub executor_start_millis: i64,
}

impl Timeouts {
    /// Reads them from a spec, each defaulting to 300 000 ms.
    pub fn from_spec(spec: Option<&Value>) -> Self {
        let config = spec
            .and_then(|s| s.pointer("/applicationTolerations/applicationTimeoutConfig"))
            .cloned()
            .unwrap_or(Value::Null);
        let read = |key: &str| {
            config
                .get(key)
                .and_then(Value::as_i64)
                .unwrap_or(DEFAULT_TIMEOUT_MILLIS)
        };
        Self {
            driver_start_millis: read("driverStartTimeoutMillis"),
            driver_ready_millis: read("driverReadyTimeoutMillis"),
            executor_start_millis: read("executorStartTimeoutMillis"),
        }
    }
}

/// What the real mode decides for one application.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The scripted core decides (finalizer, initial status, after an outcome, delete); the
    /// driver, if any, must be stopped when `stop_driver`.
    Delegate {
        /// The attempt is over (or the application is going): its driver must not run.
        stop_driver: bool,
    },
    /// Request the driver of the current attempt, then decide again.
    Launch,
    /// This step.
    Act(Step),
}

/// Decides the operator's next move for an application running for real (see the module docs).
pub fn decide(app: &AppView, timeouts: &Timeouts, driver: &DriverSeen, now: Timestamp) -> Decision {
    let Some(status) = app
        .status
        .as_ref()
        .filter(|_| app.has_finalizer && !app.deleting)
    else {
        return Decision::Delegate {
            stop_driver: app.deleting,
        };
    };
    let now_ms = now.as_millisecond();
    let stamp = stamp(now_ms);
    let current = status.current_state.current_state_summary;
    let since = parse_ms(status.current_state.last_transition_time.as_deref());
    let write = |states: Vec<ApplicationState>| {
        let next = states
            .into_iter()
            .fold(status.clone(), |status, state| status.append(state));
        Decision::Act(Step {
            action: Action::WriteStatus(Box::new(next)),
            delay: Duration::ZERO,
        })
    };
    let message = |text: &str| Some(text.to_owned());
    use StateSummary::*;
    match current {
        Submitted => write(vec![ApplicationState::new(
            DriverRequested,
            &stamp,
            message(messages::DRIVER_REQUESTED),
        )]),
        ScheduledToRestart => {
            let backoff = app
                .tolerations
                .restart_backoff_millis
                .unwrap_or(DEFAULT_RESTART_BACKOFF_MILLIS);
            let due = since.saturating_add(backoff);
            let requested = ApplicationState::new(
                DriverRequested,
                &self::stamp(due.max(now_ms)),
                message(messages::DRIVER_REQUESTED),
            );
            Decision::Act(Step {
                action: Action::WriteStatus(Box::new(status.append(requested))),
                delay: wait(due, now_ms),
            })
        }
        DriverRequested | DriverStarted => {
            if *driver == DriverSeen::Absent {
                return if current == DriverRequested {
                    Decision::Launch
                } else {
                    write(vec![removed(&stamp)])
                };
            }
            let pod = PodView::of(driver);
            // AppDriverStartObserver and AppDriverReadyObserver, both on the same status.
            let mut states = Vec::new();
            if current == DriverRequested {
                states.extend(if pod.container_started() {
                    Some(ApplicationState::new(
                        DriverStarted,
                        &stamp,
                        message(messages::DRIVER_RUNNING),
                    ))
                } else {
                    pod.termination(false, &stamp)
                });
            }
            states.extend(if pod.ready() {
                Some(ApplicationState::new(
                    DriverReady,
                    &stamp,
                    message(messages::DRIVER_READY),
                ))
            } else {
                pod.termination(true, &stamp)
            });
            if !states.is_empty() {
                return write(states);
            }
            // AppDriverTimeoutObserver.
            let (threshold, state) = if current == DriverRequested {
                (timeouts.driver_start_millis, DriverStartTimedOut)
            } else {
                (timeouts.driver_ready_millis, DriverReadyTimedOut)
            };
            timeout(status, threshold, state, since, now_ms, &pod)
        }
        DriverReady
        | InitializedBelowThresholdExecutors
        | RunningHealthy
        | RunningWithBelowThresholdExecutors => {
            if current != RunningHealthy {
                // AppRunningStep: the task slots of local[N] are all the executors there are.
                return write(vec![ApplicationState::new(
                    RunningHealthy,
                    &stamp,
                    message(messages::RUNNING_HEALTHY),
                )]);
            }
            if *driver == DriverSeen::Absent {
                return write(vec![removed(&stamp)]);
            }
            let pod = PodView::of(driver);
            match pod.termination(true, &stamp) {
                Some(state) => write(vec![state]),
                None => Decision::Act(Step {
                    action: Action::Nothing,
                    delay: Duration::ZERO,
                }),
            }
        }
        _ => Decision::Delegate { stop_driver: true },
    }
}

fn removed(stamp: &str) -> ApplicationState {
    ApplicationState::new(
        StateSummary::Failed,
        stamp,
        Some(messages::DRIVER_UNEXPECTED_REMOVED.to_owned()),
    )
}

fn timeout(
    status: &ApplicationStatus,
    threshold: i64,
    state: StateSummary,
    since: i64,
    now_ms: i64,
    pod: &PodView<'_>,
) -> Decision {
    if threshold <= 0 {
        return Decision::Act(Step {
            action: Action::Nothing,
            delay: Duration::ZERO,
        });
    }
    // The operator fires once `lastTransitionTime + threshold` is before now.
    let due = since.saturating_add(threshold).saturating_add(1);
    let at = stamp(due.max(now_ms));
    let timed_out =
        ApplicationState::new(state, &at, Some(messages::DRIVER_LAUNCH_TIMEOUT.to_owned()))
            .with_driver_status(pod.status(&at));
    Decision::Act(Step {
        action: Action::WriteStatus(Box::new(status.append(timed_out))),
        delay: wait(due, now_ms),
    })
}

/// The driver pod as the operator would see it.
struct PodView<'a>(&'a DriverSeen);

impl<'a> PodView<'a> {
    fn of(driver: &'a DriverSeen) -> Self {
        Self(driver)
    }

    /// `PodUtils.isDriverPodStarted`: the main container is ready.
    fn container_started(&self) -> bool {
        matches!(
            self.0,
            DriverSeen::Started { .. } | DriverSeen::Ready { .. }
        )
    }

    /// `PodUtils.isPodReady`.
    fn ready(&self) -> bool {
        matches!(self.0, DriverSeen::Ready { .. })
    }

    /// `BaseAppDriverObserver.observeDriverTermination`.
    fn termination(&self, driver_ready: bool, stamp: &str) -> Option<ApplicationState> {
        let DriverSeen::Exited {
            code, last_error, ..
        } = self.0
        else {
            return None;
        };
        let state = match code {
            Some(0) if driver_ready => ApplicationState::new(
                StateSummary::Succeeded,
                stamp,
                Some(messages::DRIVER_COMPLETED.to_owned()),
            ),
            Some(0) => ApplicationState::new(
                StateSummary::Failed,
                stamp,
                Some(messages::DRIVER_TERMINATED_BEFORE_INITIALIZATION.to_owned()),
            )
            .with_driver_status(self.status(stamp)),
            _ => {
                let text = match last_error {
                    Some(line) => {
                        format!("{} Driver's last error: {line}", messages::DRIVER_FAILED)
                    }
                    None => messages::DRIVER_FAILED.to_owned(),
                };
                ApplicationState::new(StateSummary::Failed, stamp, Some(text))
                    .with_driver_status(self.status(stamp))
            }
        };
        Some(state)
    }

    /// A `PodStatus` of the driver.
    fn status(&self, stamp: &str) -> Value {
        let container = |state: Value, ready: bool| {
            json!([{
                "name": DRIVER_CONTAINER,
                "image": "apache/spark",
                "imageID": "",
                "ready": ready,
                "restartCount": 0,
                "started": ready,
                "state": state,
            }])
        };
        match self.0 {
            DriverSeen::Absent | DriverSeen::Queued => json!({
                "phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": "waiting for a free spark-submit slot on this machine", "lastTransitionTime": stamp}],
            }),
            DriverSeen::Started { at } | DriverSeen::Ready { at } => json!({
                "phase": "Running",
                "containerStatuses": container(json!({"running": {"startedAt": at}}), true),
            }),
            DriverSeen::Exited {
                started,
                finished,
                code,
                last_error,
            } => {
                let exit = code.unwrap_or(137);
                let mut terminated = json!({
                    "exitCode": exit,
                    "reason": if exit == 0 { "Completed" } else { "Error" },
                    "startedAt": started,
                    "finishedAt": finished,
                });
                if let Some(line) = last_error.as_ref().filter(|_| exit != 0) {
                    terminated["message"] = json!(line);
                }
                json!({
                    "phase": if exit == 0 { "Succeeded" } else { "Failed" },
                    "containerStatuses": container(json!({"terminated": terminated}), false),
                })
            }
        }
    }
}

impl fmt::Display for DriverSeen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Absent => f.write_str("absent"),
            Self::Queued => f.write_str("queued"),
            Self::Started { .. } => f.write_str("started"),
            Self::Ready { .. } => f.write_str("ready"),
            Self::Exited { code, .. } => write!(f, "exited ({code:?})"),
        }
    }
}

/// RFC 3339 text of an instant in milliseconds (the format the scripted core writes).
pub fn stamp(ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .unwrap_or(Timestamp::MAX)
        .to_string()
}

fn parse_ms(text: Option<&str>) -> i64 {
    text.and_then(|t| t.parse::<Timestamp>().ok())
        .map_or(i64::MIN / 4, Timestamp::as_millisecond)
}

fn wait(due_ms: i64, now_ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(due_ms.saturating_sub(now_ms)).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::FINALIZER;

    const NOW: &str = "2026-12-02T10:00:00Z";

    fn now() -> Timestamp {
        NOW.parse().unwrap()
    }

    fn seed_spec() -> Value {
        json!({
            "pyFiles": "local:///opt/spark/examples/src/main/python/pi.py",
            "runtimeVersions": {"sparkVersion": "4.1.0"},
            "sparkConf": {
                "spark.kubernetes.container.image": "apache/spark:4.1.0-python3",
                "spark.driver.memory": "512m",
                "spark.executor.instances": "2",
            },
        })
    }

    /// An application in `state` since `since`, with `spec`.
    fn app(state: &str, since: &str, spec: Value) -> AppView {
        AppView::from_value(&json!({
            "metadata": {"name": "pi-test", "namespace": "ns", "finalizers": [FINALIZER]},
            "spec": spec,
            "status": {
                "currentState": {"currentStateSummary": state, "lastTransitionTime": since},
                "stateTransitionHistory": {
                    "0": {"currentStateSummary": "Submitted", "lastTransitionTime": since},
                    "1": {"currentStateSummary": state, "lastTransitionTime": since},
                },
                "currentAttemptSummary": {"attemptInfo": {"id": 0}},
            },
        }))
    }

    /// The states a decision appends to the history, and its delay.
    fn appended(
        decision: &Decision,
        before: &AppView,
    ) -> (Vec<(StateSummary, Option<String>)>, Duration) {
        let Decision::Act(Step {
            action: Action::WriteStatus(status),
            delay,
        }) = decision
        else {
            panic!("expected a status write, got {decision:?}");
        };
        let known = before
            .status
            .as_ref()
            .map_or(0, |s| s.state_transition_history.len());
        let states = status
            .state_transition_history
            .values()
            .skip(known)
            .map(|s| (s.current_state_summary, s.message.clone()))
            .collect();
        (states, *delay)
    }

    fn exited(code: i32, last_error: Option<&str>) -> DriverSeen {
        DriverSeen::Exited {
            started: NOW.to_owned(),
            finished: NOW.to_owned(),
            code: Some(code),
            last_error: last_error.map(str::to_owned),
        }
    }

    fn started() -> DriverSeen {
        DriverSeen::Started { at: NOW.to_owned() }
    }

    // SparkAppSubmissionWorker.buildDriverConf: pyFiles is the primary resource and also goes to
    // spark.submit.pyFiles; the master, namespace and app id are the operator's.
    #[test]
    fn the_seed_pi_test_submits_its_py_file_with_the_operators_conf() {
        let submission = Submission::from_spec("pi-test", "sjns-data-control", 0, &seed_spec());
        assert_eq!(
            submission.primary,
            Primary::Python("local:///opt/spark/examples/src/main/python/pi.py".into())
        );
        let conf = &submission.conf;
        assert_eq!(
            conf["spark.submit.pyFiles"],
            "local:///opt/spark/examples/src/main/python/pi.py"
        );
        assert_eq!(
            conf["spark.master"],
            "k8s://https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"
        );
        assert_eq!(conf["spark.kubernetes.namespace"], "sjns-data-control");
        assert_eq!(conf["spark.app.id"], "pi-test-0");
        assert!(!conf.contains_key("spark.jars"));
        assert!(
            !conf.contains_key("spark.app.name"),
            "only overridden when set"
        );
        assert_eq!(submission.driver_pod_name(), "pi-test-0-driver");
    }

    // setIfMissing("spark.jars", jars): a spark.jars of the request replaces the main jar.
    #[test]
    fn spark_jars_of_the_request_replace_the_main_jar() {
        let spec = |conf: Value| {
            json!({"jars": "local:///opt/spark/app.jar", "mainClass": "a.Main",
                   "driverArgs": ["10"], "sparkConf": conf})
        };
        let extras_only = Submission::from_spec(
            "j",
            "ns",
            0,
            &spec(json!({"spark.jars": "local:///opt/spark/lib.jar"})),
        );
        assert_eq!(extras_only.conf["spark.jars"], "local:///opt/spark/lib.jar");
        assert_eq!(
            extras_only.primary,
            Primary::Java(Some("local:///opt/spark/app.jar".into()))
        );
        let unset = Submission::from_spec("j", "ns", 0, &spec(json!({})));
        assert_eq!(unset.conf["spark.jars"], "local:///opt/spark/app.jar");
        assert_eq!(unset.main_class.as_deref(), Some("a.Main"));
        assert_eq!(unset.args, ["10"]);
    }

    #[test]
    fn spark_app_name_is_replaced_by_the_name_only_when_set() {
        let spec = json!({"pyFiles": "local:///x.py", "sparkConf": {"spark.app.name": "mine"}});
        let submission = Submission::from_spec("pi-test", "ns", 0, &spec);
        assert_eq!(submission.conf["spark.app.name"], "pi-test");
    }

    // generateSparkAppId; expected values computed with the operator's algorithm in Java
    // (BigInteger(1, sha256).toString(36)).
    #[test]
    fn long_names_get_the_operators_hashed_app_id() {
        let name = "a-spark-application-with-a-rather-long-name-x";
        assert_eq!(
            spark_app_id("sjns-data-control", name, 0),
            "a-spark-a-2b7i5wk5bd6lhi03w8kaqxv6knwpi84rawly"
        );
        assert_eq!(
            spark_app_id("sjns-data-control", name, 1),
            "a-spark-a-5np64jup39yyx63hy71tnm9bg3nwydj3n4kc"
        );
        assert_eq!(spark_app_id("sjns-data-control", "pi-test", 3), "pi-test-3");
        let explicit = Submission::from_spec(
            "pi",
            "ns",
            1,
            &json!({"pyFiles": "local:///x.py", "sparkConf": {"spark.app.id": "fixed"}}),
        );
        assert_eq!(
            explicit.driver_pod_name(),
            "fixed-driver",
            "every attempt collides"
        );
    }

    #[test]
    fn localize_changes_only_what_one_machine_needs() {
        let root = std::env::temp_dir().join(format!("operator-sim-real-{}", std::process::id()));
        let python = root.join("examples/src/main/python");
        std::fs::create_dir_all(&python).unwrap();
        std::fs::write(python.join("pi.py"), "").unwrap();
        let target = LocalTarget {
            job_roots: vec![PathBuf::from("/nonexistent"), root.clone()],
            threads: 2,
            max_driver_memory_mib: 384,
        };
        let submission = Submission::from_spec("pi-test", "ns", 0, &seed_spec());
        let local = localize(&submission, &target);
        let resolved = format!("local://{}", python.join("pi.py").display());
        assert_eq!(local.args, std::slice::from_ref(&resolved));
        assert_eq!(local.conf["spark.submit.pyFiles"], resolved);
        assert_eq!(local.conf["spark.master"], "local[2]");
        assert_eq!(local.conf["spark.driver.memory"], "384m");
        assert_eq!(
            local.conf["spark.kubernetes.namespace"], "ns",
            "k8s keys stay"
        );
        assert_eq!(local.conf["spark.executor.instances"], "2");

        let java = Submission::from_spec(
            "j",
            "ns",
            0,
            &json!({"jars": "local:///opt/spark/missing.jar", "mainClass": "a.Main", "driverArgs": ["5"]}),
        );
        let local = localize(&java, &target);
        assert_eq!(
            local.args,
            ["--class", "a.Main", "local:///opt/spark/missing.jar", "5"],
            "a file no root holds stays as it is, so spark-submit fails like a driver would"
        );
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn properties_are_escaped_like_java_properties() {
        let local = LocalSubmission {
            conf: BTreeMap::from([
                ("a=b".to_owned(), " lead\\ing\nx".to_owned()),
                ("k".to_owned(), "v=w:x".to_owned()),
            ]),
            args: vec![],
        };
        let text = local.properties();
        assert!(text.contains("a\\=b=\\ lead\\\\ing\\nx\n"), "{text}");
        assert!(text.contains("k=v=w:x\n"), "{text}");
    }

    #[test]
    fn the_last_error_line_skips_log_lines_and_stack_frames() {
        let log = "26/12/02 01:05:22 INFO SparkContext: Running Spark version 4.1.0\n\
            Traceback (most recent call last):\n  File \"raise.py\", line 3, in <module>\n\
            RuntimeError: spark-gateway example job failed on purpose: PythonException\n\
            26/12/02 01:05:31 INFO ShutdownHookManager: Deleting directory /tmp/x\n\n";
        assert_eq!(
            last_error_line(log).as_deref(),
            Some("RuntimeError: spark-gateway example job failed on purpose: PythonException")
        );
        let java = "Exception in thread \"main\" java.lang.NoClassDefFoundError: a/B\n\tat x.y(Z.java:1)\n\
            26/12/02 01:05:31 INFO SparkContext: Successfully stopped SparkContext\n";
        assert_eq!(
            last_error_line(java).as_deref(),
            Some("Exception in thread \"main\" java.lang.NoClassDefFoundError: a/B")
        );
        assert_eq!(last_error_line("26/12/02 01:05:31 WARN X: y\n"), None);
    }

    // AppInitStep writes DriverRequested; the driver is then requested.
    #[test]
    fn submitted_requests_the_driver() {
        let view = app("Submitted", NOW, seed_spec());
        let decision = decide(
            &view,
            &Timeouts::from_spec(None),
            &DriverSeen::Absent,
            now(),
        );
        let (states, delay) = appended(&decision, &view);
        assert_eq!(
            states,
            [(
                StateSummary::DriverRequested,
                Some(messages::DRIVER_REQUESTED.to_owned())
            )]
        );
        assert_eq!(delay, Duration::ZERO);
        let requested = app("DriverRequested", NOW, seed_spec());
        assert_eq!(
            decide(
                &requested,
                &Timeouts::from_spec(None),
                &DriverSeen::Absent,
                now()
            ),
            Decision::Launch
        );
    }

    // AppDriverTimeoutObserver: a queued driver (pending pod) times out after
    // driverStartTimeoutMillis, 300 s unless the spec says otherwise.
    #[test]
    fn a_queued_driver_times_out_after_the_start_timeout() {
        let view = app("DriverRequested", NOW, seed_spec());
        let decision = decide(
            &view,
            &Timeouts::from_spec(None),
            &DriverSeen::Queued,
            now(),
        );
        let (states, delay) = appended(&decision, &view);
        assert_eq!(states[0].0, StateSummary::DriverStartTimedOut);
        assert_eq!(delay, Duration::from_millis(300_001));

        let spec = json!({"applicationTolerations": {"applicationTimeoutConfig": {"driverStartTimeoutMillis": 2000}}});
        let decision = decide(
            &view,
            &Timeouts::from_spec(Some(&spec)),
            &DriverSeen::Queued,
            now(),
        );
        assert_eq!(appended(&decision, &view).1, Duration::from_millis(2001));
    }

    // The start and ready observers run on the same status: both states land in one write.
    #[test]
    fn a_driver_seen_ready_at_once_gets_started_and_ready_in_one_write() {
        let view = app("DriverRequested", NOW, seed_spec());
        let ready = DriverSeen::Ready { at: NOW.to_owned() };
        let decision = decide(&view, &Timeouts::from_spec(None), &ready, now());
        let states: Vec<_> = appended(&decision, &view)
            .0
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(
            states,
            [StateSummary::DriverStarted, StateSummary::DriverReady]
        );
    }

    // observeDriverTermination(driverReady=false) then (true): a job that ended between two
    // checks is first "terminated without SparkContext", then Succeeded, in one write.
    #[test]
    fn a_job_that_ended_between_two_checks_writes_failed_then_succeeded() {
        let view = app("DriverRequested", NOW, seed_spec());
        let decision = decide(&view, &Timeouts::from_spec(None), &exited(0, None), now());
        let (states, _) = appended(&decision, &view);
        assert_eq!(
            states,
            [
                (
                    StateSummary::Failed,
                    Some(messages::DRIVER_TERMINATED_BEFORE_INITIALIZATION.to_owned())
                ),
                (
                    StateSummary::Succeeded,
                    Some(messages::DRIVER_COMPLETED.to_owned())
                ),
            ]
        );
    }

    // DriverStarted → DriverReadyTimedOut after driverReadyTimeoutMillis.
    #[test]
    fn a_driver_without_spark_context_times_out_as_not_ready() {
        let spec = json!({"applicationTolerations": {"applicationTimeoutConfig": {"driverReadyTimeoutMillis": 5000}}});
        let view = app("DriverStarted", NOW, spec.clone());
        let decision = decide(&view, &Timeouts::from_spec(Some(&spec)), &started(), now());
        let (states, delay) = appended(&decision, &view);
        assert_eq!(states[0].0, StateSummary::DriverReadyTimedOut);
        assert_eq!(delay, Duration::from_millis(5001));
    }

    #[test]
    fn a_failed_driver_carries_its_last_error_line() {
        let view = app("RunningHealthy", NOW, seed_spec());
        let driver = exited(1, Some("ValueError: boom"));
        let decision = decide(&view, &Timeouts::from_spec(None), &driver, now());
        let Decision::Act(Step {
            action: Action::WriteStatus(status),
            ..
        }) = &decision
        else {
            panic!("{decision:?}");
        };
        let state = &status.current_state;
        assert_eq!(state.current_state_summary, StateSummary::Failed);
        let message = state.message.as_deref().unwrap();
        assert!(message.starts_with(messages::DRIVER_FAILED), "{message}");
        assert!(message.ends_with("ValueError: boom"), "{message}");
        let pod = state.last_observed_driver_status.as_ref().unwrap();
        assert_eq!(pod["phase"], "Failed");
        assert_eq!(
            pod["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            1
        );
    }

    #[test]
    fn running_states_become_healthy_then_follow_the_driver() {
        let timeouts = Timeouts::from_spec(None);
        let ready = app("DriverReady", NOW, seed_spec());
        let (states, _) = appended(&decide(&ready, &timeouts, &started(), now()), &ready);
        assert_eq!(states[0].0, StateSummary::RunningHealthy);
        let healthy = app("RunningHealthy", NOW, seed_spec());
        assert_eq!(
            decide(&healthy, &timeouts, &started(), now()),
            Decision::Act(Step {
                action: Action::Nothing,
                delay: Duration::ZERO
            })
        );
        let (states, _) = appended(
            &decide(&healthy, &timeouts, &exited(0, None), now()),
            &healthy,
        );
        assert_eq!(states[0].0, StateSummary::Succeeded);
        // The simulator restarted and lost the driver: 0.5.0's "Driver removed".
        let (states, _) = appended(
            &decide(&healthy, &timeouts, &DriverSeen::Absent, now()),
            &healthy,
        );
        assert_eq!(
            states[0],
            (
                StateSummary::Failed,
                Some(messages::DRIVER_UNEXPECTED_REMOVED.to_owned())
            )
        );
    }

    #[test]
    fn outcomes_and_deletes_go_to_the_scripted_core_and_stop_the_driver() {
        let timeouts = Timeouts::from_spec(None);
        for state in [
            "Succeeded",
            "Failed",
            "DriverReadyTimedOut",
            "ResourceReleased",
        ] {
            let view = app(state, NOW, seed_spec());
            assert_eq!(
                decide(&view, &timeouts, &started(), now()),
                Decision::Delegate { stop_driver: true },
                "{state}"
            );
        }
        let unfinalized = AppView::from_value(&json!({"metadata": {"name": "x"}}));
        assert_eq!(
            decide(&unfinalized, &timeouts, &DriverSeen::Absent, now()),
            Decision::Delegate { stop_driver: false }
        );
    }

    #[test]
    fn execution_is_chosen_by_annotation_then_label_then_default() {
        let map = |v: &str| BTreeMap::from([(EXECUTION_KEY.to_owned(), v.to_owned())]);
        assert_eq!(
            Execution::resolve(Some(&map("scripted")), Some(&map("real")), Execution::Real).0,
            Execution::Scripted
        );
        assert_eq!(
            Execution::resolve(None, Some(&map("real")), Execution::Scripted).0,
            Execution::Real
        );
        let scenario = BTreeMap::from([(SCENARIO_KEY.to_owned(), "failure".to_owned())]);
        assert_eq!(
            Execution::resolve(Some(&scenario), None, Execution::Real).0,
            Execution::Scripted,
            "a scenario is a script"
        );
        assert_eq!(
            Execution::resolve(Some(&scenario), Some(&map("real")), Execution::Scripted).0,
            Execution::Real
        );
        assert_eq!(
            Execution::resolve(None, None, Execution::Real).0,
            Execution::Real
        );
        let (execution, problem) = Execution::resolve(Some(&map("yes")), None, Execution::Scripted);
        assert_eq!(execution, Execution::Scripted);
        assert!(problem.unwrap().contains("\"yes\""));
    }
}
