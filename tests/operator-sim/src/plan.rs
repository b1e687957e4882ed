//! The pure core: from one SparkApplication (metadata, spec, status) and its scenario, decide
//! the operator's next action and how long to wait before it.
//!
//! No I/O and no clock: `now` is passed in, and every delay is computed from the timestamps in
//! the status (`lastTransitionTime` of the current or the pre-terminal state). A simulator that
//! restarts, or that lost its timers, therefore continues exactly where the status says.
//!
//! The rules mirror the operator's reconcile steps (see the crate docs for the facts):
//! finalizer first, a missing status becomes `Submitted`, each scripted state follows the
//! previous one after the step delay, an outcome is followed by the cleanup decision
//! (release, retain, or restart with history trimming), retained resources are released after
//! the effective retain duration, and a released application is deleted after
//! `ttlAfterStopMillis`. A deleted application gets `ResourceReleased` (unless it already has
//! it) and then loses the finalizer.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::model::{
    ApplicationState, ApplicationStatus, AttemptSummary, RestartPolicy, StateMeaning, StateSummary,
    Tolerations, messages,
};
use crate::scenario::{Beat, Mark, Pace, Scenario, Settings, Timeout};

/// The finalizer the operator (Java Operator SDK default: `<plural>.<group>/finalizer`) puts
/// on every SparkApplication it manages.
pub const FINALIZER: &str = "sparkapplications.spark.apache.org/finalizer";

/// Name of the driver's main container, used in the simulated driver pod statuses.
const DRIVER_CONTAINER: &str = "spark-kubernetes-driver";

/// What the core needs to know about one SparkApplication.
#[derive(Debug, Clone, PartialEq)]
pub struct AppView {
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// `metadata.finalizers` contains [`FINALIZER`].
    pub has_finalizer: bool,
    /// `spec.applicationTolerations` with defaults.
    pub tolerations: Tolerations,
    /// `.status`, `None` when absent or unusable.
    pub status: Option<ApplicationStatus>,
    /// The driver image from `sparkConf`, shown in simulated pod statuses.
    pub driver_image: Option<String>,
    /// How long the operator's own waits take ([`crate::scenario::PACE_KEY`]).
    pub pace: Pace,
}

impl AppView {
    /// Builds the view from an object's metadata and its other top-level fields (`spec`,
    /// `status`), the way `kube::api::DynamicObject` splits them.
    pub fn from_parts(metadata: &ObjectMeta, data: &Value) -> Self {
        let spec = data.get("spec");
        let conf = |key: &str| {
            spec.and_then(|s| s.get("sparkConf"))
                .and_then(|c| c.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Self {
            deleting: metadata.deletion_timestamp.is_some(),
            has_finalizer: metadata
                .finalizers
                .as_ref()
                .is_some_and(|f| f.iter().any(|f| f == FINALIZER)),
            tolerations: Tolerations::from_spec(spec),
            status: ApplicationStatus::from_status_value(data.get("status")),
            driver_image: conf("spark.kubernetes.driver.container.image")
                .or_else(|| conf("spark.kubernetes.container.image")),
            pace: Pace::resolve(metadata.annotations.as_ref(), metadata.labels.as_ref()),
        }
    }

    /// Builds the view from a whole object as JSON (fixtures, tools).
    pub fn from_value(object: &Value) -> Self {
        let metadata = object
            .get("metadata")
            .and_then(|m| ObjectMeta::deserialize(m).ok())
            .unwrap_or_default();
        Self::from_parts(&metadata, object)
    }
}

/// The operator's next move on one application.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Add [`FINALIZER`] to `metadata.finalizers`.
    AddFinalizer,
    /// Replace `.status` with this one (through the status subresource).
    WriteStatus(Box<ApplicationStatus>),
    /// Remove [`FINALIZER`] so a pending delete completes.
    RemoveFinalizer,
    /// Delete the application: its `ttlAfterStopMillis` has passed.
    DeleteApplication,
    /// Nothing until the object changes.
    Nothing,
}

impl Action {
    /// Short description for logs, e.g. `status Succeeded`.
    pub fn describe(&self) -> String {
        match self {
            Self::AddFinalizer => "add finalizer".to_owned(),
            Self::WriteStatus(status) => {
                format!("status {}", status.current_state.current_state_summary)
            }
            Self::RemoveFinalizer => "remove finalizer".to_owned(),
            Self::DeleteApplication => "delete (ttlAfterStopMillis passed)".to_owned(),
            Self::Nothing => "nothing".to_owned(),
        }
    }
}

/// An action and when it is due.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// What to do.
    pub action: Action,
    /// How long to wait before doing it; zero means now. Callers re-run [`next_step`] when the
    /// delay has passed and act only on a zero delay, so the action uses a fresh status.
    pub delay: Duration,
}

impl Step {
    fn now(action: Action) -> Self {
        Self {
            action,
            delay: Duration::ZERO,
        }
    }

    fn nothing() -> Self {
        Self::now(Action::Nothing)
    }
}

/// Decides the next step for `app` under `settings` at `now`.
pub fn next_step(app: &AppView, settings: &Settings, now: Timestamp) -> Step {
    let clock = Clock::new(now);
    let waits = Waits::new(app, settings);
    if app.deleting {
        return on_delete(app, &clock, &waits);
    }
    if !app.has_finalizer {
        return Step::now(Action::AddFinalizer);
    }
    let Some(status) = &app.status else {
        let initial = ApplicationStatus::initial(&clock.stamp(clock.now_ms));
        return Step::now(Action::WriteStatus(Box::new(initial)));
    };

    let tolerations = &app.tolerations;
    let current = &status.current_state;
    let since = parse_ms(current.last_transition_time.as_deref());
    let write = |due: i64, build: &dyn Fn(&str) -> ApplicationStatus| {
        clock.at(due, |stamp| Action::WriteStatus(Box::new(build(stamp))))
    };
    let script = settings
        .scenario
        .attempt_script(status.current_attempt_id(), tolerations.instances);
    let write_beat = |due: i64, beat: &Beat| {
        write(due, &|stamp| {
            beat.marks.iter().fold(status.clone(), |next, mark| {
                next.append(scripted_state(*mark, stamp, app.driver_image.as_deref()))
            })
        })
    };

    match current.current_state_summary {
        StateSummary::ResourceReleased => {
            if !tolerations.ttl_enabled() {
                return Step::nothing();
            }
            let stopped = status.last_state_before_termination();
            let base = parse_ms(stopped.last_transition_time.as_deref());
            clock.at(
                base.saturating_add(waits.spec_duration(tolerations.ttl_after_stop_millis)),
                |_| Action::DeleteApplication,
            )
        }
        StateSummary::TerminatedWithoutReleaseResources => {
            match tolerations.effective_retain_millis() {
                None => Step::nothing(),
                Some(retain) => write(
                    since.saturating_add(waits.spec_duration(retain)),
                    &|stamp| {
                        status.append(ApplicationState::new(
                            StateSummary::ResourceReleased,
                            stamp,
                            Some(messages::APP_EXCEEDED_RETAIN_DURATION.to_owned()),
                        ))
                    },
                ),
            }
        }
        outcome if outcome.is_stopping() => {
            write(since.saturating_add(waits.cleanup()), &|stamp| {
                terminate_or_restart(status, tolerations, settings.scenario, stamp)
            })
        }
        StateSummary::Submitted | StateSummary::ScheduledToRestart => {
            let wait = if current.current_state_summary == StateSummary::ScheduledToRestart {
                // `AppInitStep` waits restartBackoffMillis after the restart.
                waits.restart_backoff()
            } else {
                waits.step_ms
            };
            match script.first() {
                None => Step::nothing(),
                Some(beat) => write_beat(since.saturating_add(wait), beat),
            }
        }
        running => {
            let next = match script
                .iter()
                .rposition(|beat| beat.last_summary() == Some(running))
            {
                Some(index) => script.get(index + 1),
                // A state we never write (e.g. set by hand): continue with the first later one.
                None => script.iter().find(|beat| {
                    beat.marks
                        .first()
                        .is_some_and(|mark| mark.summary() > running)
                }),
            };
            let Some(beat) = next else {
                return Step::nothing();
            };
            let wait = match beat.timeout {
                None => Some(waits.step_ms),
                Some(timeout) => waits.timeout(timeout),
            };
            match wait {
                // A disabled timeout (<= 0): the operator never gives up.
                None => Step::nothing(),
                Some(wait) => write_beat(since.saturating_add(wait), beat),
            }
        }
    }
}

/// The operator's default for every `applicationTimeoutConfig` timeout.
pub(crate) const DEFAULT_TIMEOUT_MILLIS: i64 = 300_000;
/// `restartConfig.restartBackoffMillis` default.
pub(crate) const DEFAULT_RESTART_BACKOFF_MILLIS: i64 = 30_000;
/// `applicationTimeoutConfig.terminationRequeuePeriodMillis` default.
const DEFAULT_TERMINATION_REQUEUE_MILLIS: i64 = 2_000;
/// `spark.kubernetes.operator.reconciler.intervalSeconds` default (`SparkOperatorConf`): with no
/// pod event, the operator looks again this long after its last write, so a timeout is noticed
/// at the first such reconcile after it expired.
const RECONCILE_INTERVAL_MILLIS: i64 = 120_000;
/// What one lost status-write race costs the operator: its status recorder re-reads and the SDK
/// retries about 3 s later.
const STATUS_CONFLICT_MILLIS: i64 = 3_000;

/// The operator's waits for one application under its pace, in simulated milliseconds (see
/// [`Pace`]: one step stands for one operator second).
struct Waits<'a> {
    step_ms: i64,
    pace: Pace,
    tolerations: &'a Tolerations,
}

impl<'a> Waits<'a> {
    fn new(app: &'a AppView, settings: &Settings) -> Self {
        Self {
            step_ms: millis(settings.step),
            pace: app.pace,
            tolerations: &app.tolerations,
        }
    }

    /// `ms` of operator time.
    fn scaled(&self, ms: i64) -> i64 {
        let scaled = i128::from(ms) * i128::from(self.step_ms) / 1000;
        i64::try_from(scaled).unwrap_or(i64::MAX)
    }

    /// A retention or TTL from the spec: as written when compressed (wall-clock, like the
    /// seed's 5-minute TTL), scaled when realistic.
    fn spec_duration(&self, ms: i64) -> i64 {
        match self.pace {
            Pace::Compressed => ms,
            Pace::Realistic => self.scaled(ms),
        }
    }

    /// When `timeout` fires after the state it guards was entered; `None` when disabled.
    fn timeout(&self, timeout: Timeout) -> Option<i64> {
        let configured = self.tolerations.timeouts.get(timeout);
        match self.pace {
            Pace::Compressed => match configured {
                None => Some(self.step_ms),
                Some(ms) if ms <= 0 => None,
                Some(ms) => Some(self.scaled(ms)),
            },
            Pace::Realistic => {
                let ms = configured.unwrap_or(DEFAULT_TIMEOUT_MILLIS);
                if ms <= 0 {
                    return None;
                }
                // `AppDriverTimeoutObserver` compares with `isBefore(now)` at a reconcile; the
                // reconciles come every interval after the state's write.
                let reconciles = ms / RECONCILE_INTERVAL_MILLIS + 1;
                Some(self.scaled(reconciles.saturating_mul(RECONCILE_INTERVAL_MILLIS)))
            }
        }
    }

    /// From `ScheduledToRestart` to the next attempt's first write.
    fn restart_backoff(&self) -> i64 {
        match (self.pace, self.tolerations.restart_backoff_millis) {
            (Pace::Compressed, Some(ms)) => ms,
            // Unset: keep the application's pace so tests stay fast.
            (Pace::Compressed, None) => self.step_ms,
            (Pace::Realistic, ms) => self.scaled(ms.unwrap_or(DEFAULT_RESTART_BACKOFF_MILLIS)),
        }
    }

    /// From an outcome to the cleanup's write. The operator requeues at once after writing an
    /// outcome; compressed keeps one step so each state is observable on its own.
    fn cleanup(&self) -> i64 {
        match self.pace {
            Pace::Compressed => self.step_ms,
            Pace::Realistic => 0,
        }
    }

    /// From the delete's `ResourceReleased` to the finalizer's removal: the operator requeues
    /// after `terminationRequeuePeriodMillis` before it lets the delete finish.
    fn finalizer_release(&self) -> i64 {
        match (self.pace, self.tolerations.termination_requeue_millis) {
            (Pace::Compressed, None) => 0,
            (Pace::Compressed, Some(ms)) => self.scaled(ms),
            (Pace::Realistic, ms) => self.scaled(ms.unwrap_or(DEFAULT_TERMINATION_REQUEUE_MILLIS)),
        }
    }
}

/// How long to wait before deciding again after a status write lost a race (HTTP 409): none when
/// compressed, about 3 s of operator time when realistic.
pub fn conflict_retry_delay(app: &AppView, settings: &Settings) -> Duration {
    let waits = Waits::new(app, settings);
    let ms = match app.pace {
        Pace::Compressed => 0,
        Pace::Realistic => waits.scaled(STATUS_CONFLICT_MILLIS),
    };
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// The operator's cleanup of a deleted application: record `ResourceReleased` (unless it is
/// already there), then let the delete finish.
fn on_delete(app: &AppView, clock: &Clock, waits: &Waits<'_>) -> Step {
    if !app.has_finalizer {
        // Someone else's finalizer holds the object; the operator never touched it.
        return Step::nothing();
    }
    let stamp = clock.stamp(clock.now_ms);
    let cancelled = ApplicationState::new(
        StateSummary::ResourceReleased,
        &stamp,
        Some(messages::APP_CANCELLED.to_owned()),
    );
    match &app.status {
        Some(status)
            if status.current_state.current_state_summary == StateSummary::ResourceReleased =>
        {
            let since = parse_ms(status.current_state.last_transition_time.as_deref());
            clock.at(since.saturating_add(waits.finalizer_release()), |_| {
                Action::RemoveFinalizer
            })
        }
        Some(status) => Step::now(Action::WriteStatus(Box::new(status.append(cancelled)))),
        None => Step::now(Action::WriteStatus(Box::new(
            ApplicationStatus::initial(&stamp).append(cancelled),
        ))),
    }
}

/// The restart policy in force: the spec's, or the operator's default `Never`
/// (`RestartConfig`), whatever the scenario.
pub fn effective_restart_policy(tolerations: &Tolerations) -> RestartPolicy {
    tolerations.restart_policy.unwrap_or(RestartPolicy::Never)
}

/// What follows an outcome state: the operator's cleanup step followed by its
/// `terminateOrRestart`, with history trimming enabled (the operator's default).
fn terminate_or_restart(
    status: &ApplicationStatus,
    tolerations: &Tolerations,
    scenario: Scenario,
    stamp: &str,
) -> ApplicationStatus {
    let outcome = status.current_state.current_state_summary;
    let retain = tolerations.resource_retain_policy.retains_after(outcome);
    let policy = effective_restart_policy(tolerations);
    let state = |summary, message: Option<String>| ApplicationState::new(summary, stamp, message);
    let retained = |suffix: &str| {
        state(
            StateSummary::TerminatedWithoutReleaseResources,
            Some(format!("{}{suffix}", messages::TERMINATED_WITHOUT_RELEASE)),
        )
    };

    if retain && policy == RestartPolicy::Never {
        return status.append(retained(""));
    }
    // `AppCleanUpStep` rebuilds the spec of a SchedulingFailure attempt to delete what it may
    // have created; when that throws it releases without `terminateOrRestart`: no restart.
    if scenario == Scenario::UnbuildableSpec && outcome == StateSummary::SchedulingFailure {
        return status.append(state(
            StateSummary::ResourceReleased,
            Some(messages::CANNOT_BUILD_SPEC.to_owned()),
        ));
    }
    // Retaining is overridden when a restart policy is set; the operator says so in the message.
    let override_message = retain.then_some(messages::RESTART_FORCES_RELEASE);

    if !policy.restarts_after(outcome) {
        let terminal = match override_message {
            // The operator concatenates without a separator.
            Some(text) => retained(text),
            None => state(StateSummary::ResourceReleased, None),
        };
        return status.append(terminal);
    }

    let attempt = status.current_attempt_id();
    if i64::try_from(attempt).unwrap_or(i64::MAX) >= tolerations.max_restart_attempts {
        let mut text = messages::exceeded_max_restart_attempts(tolerations.max_restart_attempts);
        if let Some(extra) = override_message {
            text.push_str(extra);
        }
        let terminal = if retain {
            retained(&text)
        } else {
            state(StateSummary::ResourceReleased, Some(text))
        };
        return status.append(terminal);
    }

    // Restart: the history collapses to the new ScheduledToRestart entry (keeping the key
    // sequence), the old entries move to previousAttemptSummary and the attempt id increments.
    let restart = state(
        StateSummary::ScheduledToRestart,
        override_message.map(str::to_owned),
    );
    let previous_info = status
        .current_attempt_summary
        .as_ref()
        .map(|summary| summary.attempt_info)
        .unwrap_or_default();
    ApplicationStatus {
        current_state: restart.clone(),
        state_transition_history: [(status.next_history_key(), restart)].into(),
        previous_attempt_summary: Some(AttemptSummary {
            attempt_info: previous_info,
            state_transition_history: Some(status.state_transition_history.clone()),
        }),
        current_attempt_summary: Some(AttemptSummary::attempt(attempt + 1)),
    }
}

/// The state one scripted observation writes, with the operator's message for it and, where the
/// operator records it, a driver pod status like the one it would have seen.
fn scripted_state(mark: Mark, stamp: &str, image: Option<&str>) -> ApplicationState {
    let summary = mark.summary();
    let new = |text: &str| ApplicationState::new(summary, stamp, Some(text.to_owned()));
    let image = image.unwrap_or("apache/spark");
    match mark {
        Mark::DriverRequested => new(messages::DRIVER_REQUESTED),
        Mark::DriverStarted => new(messages::DRIVER_RUNNING),
        Mark::DriverReady => new(messages::DRIVER_READY),
        Mark::BelowInitExecutors => new(messages::INITIALIZED_WITH_BELOW_THRESHOLD_EXECUTORS),
        Mark::RunningHealthy => new(messages::RUNNING_HEALTHY),
        Mark::BelowMinExecutors => new(messages::RUNNING_WITH_BELOW_THRESHOLD_EXECUTORS),
        Mark::Succeeded => new(messages::DRIVER_COMPLETED),
        Mark::Failed => new(messages::DRIVER_FAILED)
            .with_driver_status(terminated_driver(stamp, image, 1, "Error", None)),
        Mark::Evicted => new(messages::DRIVER_FAILED).with_driver_status(terminated_driver(
            stamp,
            image,
            137,
            "Evicted",
            Some("The node was low on resource: memory."),
        )),
        Mark::TerminatedBeforeInit => new(messages::DRIVER_TERMINATED_BEFORE_INITIALIZATION)
            .with_driver_status(completed_driver(stamp, image)),
        // `driverUnexpectedRemoved` records no pod status: there is no pod.
        Mark::DriverRemoved => new(messages::DRIVER_UNEXPECTED_REMOVED),
        Mark::SchedulingFailure => new(&format!(
            "{} StackTrace: {}",
            messages::SCHEDULE_FAILURE,
            QUOTA_STACK_TRACE
        )),
        Mark::SpecBuildFailure => new(&format!(
            "{} StackTrace: {}",
            messages::SCHEDULE_FAILURE,
            SPEC_STACK_TRACE
        )),
        Mark::DriverStartTimedOut => {
            new(messages::DRIVER_LAUNCH_TIMEOUT).with_driver_status(json!({
                "phase": "Pending",
                "conditions": [{
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/1 nodes are available: 1 Insufficient cpu.",
                    "lastTransitionTime": stamp,
                }],
            }))
        }
        Mark::DriverReadyTimedOut => new(messages::DRIVER_READY_TIMEOUT)
            .with_driver_status(running_driver(stamp, image, false)),
        Mark::ExecutorsStartTimedOut => new(messages::EXECUTOR_LAUNCH_TIMEOUT)
            .with_driver_status(running_driver(stamp, image, true)),
    }
}

/// What the fabric8 client throws when a ResourceQuota refuses the driver pod (shortened; the
/// operator appends the whole stack trace). Plausible, not recorded from a cluster.
const QUOTA_STACK_TRACE: &str = "io.fabric8.kubernetes.client.KubernetesClientException: Failure executing: POST at: https://kubernetes.default.svc/api/v1/namespaces/spark-jobs/pods. Message: pods is forbidden: exceeded quota: compute-resources, requested: limits.memory=1408Mi, used: limits.memory=8Gi, limited: limits.memory=8Gi.\n\tat io.fabric8.kubernetes.client.dsl.internal.OperationSupport.requestFailure(OperationSupport.java:642)\n\tat org.apache.spark.k8s.operator.reconciler.reconcilesteps.AppInitStep.reconcile(AppInitStep.java:96)\n";

/// What Spark's `BasicDriverFeatureStep` throws for a spec without an image (its real message),
/// shortened like [`QUOTA_STACK_TRACE`].
const SPEC_STACK_TRACE: &str = "org.apache.spark.SparkException: Must specify the driver container image\n\tat org.apache.spark.deploy.k8s.features.BasicDriverFeatureStep.$anonfun$driverContainerImage$1(BasicDriverFeatureStep.scala:47)\n\tat org.apache.spark.k8s.operator.SparkAppSubmissionWorker.buildResourceSpec(SparkAppSubmissionWorker.java:161)\n";

/// A `PodStatus` of a running driver, ready or not.
fn running_driver(stamp: &str, image: &str, ready: bool) -> Value {
    json!({
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }, "lastTransitionTime": stamp}],
        "containerStatuses": [{
            "name": DRIVER_CONTAINER,
            "image": image,
            "imageID": "",
            "ready": ready,
            "restartCount": 0,
            "started": true,
            "state": {"running": {"startedAt": stamp}},
        }],
    })
}

/// A `PodStatus` of a driver that exited 0.
fn completed_driver(stamp: &str, image: &str) -> Value {
    let mut status = terminated_driver(stamp, image, 0, "Completed", None);
    status["phase"] = json!("Succeeded");
    status
}

/// A `PodStatus` of a driver whose main container terminated; `pod_reason` set means the
/// kubelet failed the pod itself (eviction).
fn terminated_driver(
    stamp: &str,
    image: &str,
    exit_code: i32,
    reason: &str,
    pod_message: Option<&str>,
) -> Value {
    let mut status = json!({
        "phase": "Failed",
        "containerStatuses": [{
            "name": DRIVER_CONTAINER,
            "image": image,
            "imageID": "",
            "ready": false,
            "restartCount": 0,
            "started": false,
            "state": {"terminated": {"exitCode": exit_code, "reason": reason, "finishedAt": stamp}},
        }],
    });
    if let Some(text) = pod_message {
        status["reason"] = json!(reason);
        status["message"] = json!(text);
    }
    status
}

/// `now` in milliseconds plus the conversions between due times, delays and timestamps.
struct Clock {
    now_ms: i64,
}

impl Clock {
    fn new(now: Timestamp) -> Self {
        Self {
            now_ms: now.as_millisecond(),
        }
    }

    /// RFC 3339 text of an instant in milliseconds.
    fn stamp(&self, ms: i64) -> String {
        Timestamp::from_millisecond(ms)
            .unwrap_or(Timestamp::MAX)
            .to_string()
    }

    /// The action due at `due_ms`, stamped with the later of `due_ms` and now, so a state
    /// computed ahead of time carries the instant it becomes true.
    fn at(&self, due_ms: i64, build: impl FnOnce(&str) -> Action) -> Step {
        let stamp = self.stamp(due_ms.max(self.now_ms));
        let wait = due_ms.saturating_sub(self.now_ms).max(0);
        Step {
            action: build(&stamp),
            delay: Duration::from_millis(u64::try_from(wait).unwrap_or(0)),
        }
    }
}

/// Milliseconds since the epoch of an RFC 3339 timestamp. Missing or unreadable times count as
/// long ago, so the waiting step is due at once instead of being postponed forever.
fn parse_ms(text: Option<&str>) -> i64 {
    text.and_then(|t| t.parse::<Timestamp>().ok())
        .map_or(i64::MIN / 4, Timestamp::as_millisecond)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{End, app, settings, simulate, simulate_from, start, start_plus};
    use StateSummary::*;

    use spark_gateway_core::apache_v1::HAPPY_PATH;

    fn keys(status: &ApplicationStatus) -> Vec<u64> {
        status.state_transition_history.keys().copied().collect()
    }

    fn summaries(history: &std::collections::BTreeMap<u64, ApplicationState>) -> Vec<StateSummary> {
        history.values().map(|s| s.current_state_summary).collect()
    }

    #[test]
    fn success_follows_the_operator_happy_path() {
        let run = simulate(app().build(), settings(Scenario::Success));
        assert_eq!(run.end, End::Idle);
        assert_eq!(run.actions()[0], "add finalizer");
        assert_eq!(run.states(), HAPPY_PATH);
        // Finalizer and Submitted at once, then one step per state.
        let times: Vec<i64> = run.steps.iter().map(|r| r.at_ms).collect();
        assert_eq!(times, [0, 0, 300, 600, 900, 1200, 1500, 1800]);

        let status = run.last_status();
        assert_eq!(keys(&status), [0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(summaries(&status.state_transition_history), HAPPY_PATH);
        assert_eq!(status.current_attempt_id(), 0);
        assert_eq!(status.previous_attempt_summary, None);
        // A plain release carries no message, like the operator's.
        assert_eq!(status.current_state.message, None);
        assert_eq!(
            status.state_transition_history[&5].message.as_deref(),
            Some(messages::DRIVER_COMPLETED)
        );
        assert_eq!(
            status.current_state.last_transition_time.as_deref(),
            Some("2025-06-01T12:00:01.8Z")
        );
    }

    #[test]
    fn messages_match_the_operator_constants() {
        let status = simulate(app().build(), settings(Scenario::Success)).last_status();
        let texts: Vec<Option<&str>> = status
            .state_transition_history
            .values()
            .map(|s| s.message.as_deref())
            .collect();
        assert_eq!(
            texts,
            [
                Some("Spark application has been created on Kubernetes Cluster."),
                Some("Requested driver from resource scheduler."),
                Some("Driver has started running."),
                Some("Driver has reached ready state."),
                Some("Application is running healthy."),
                Some("Spark application completed successfully."),
                None,
            ]
        );
    }

    #[test]
    fn failure_records_the_driver_status_then_releases() {
        let run = simulate(app().build(), settings(Scenario::Failure));
        assert_eq!(
            run.states(),
            [
                Submitted,
                DriverRequested,
                DriverStarted,
                DriverReady,
                RunningHealthy,
                Failed,
                ResourceReleased
            ]
        );
        let failed = &run.last_status().state_transition_history[&5];
        assert_eq!(failed.message.as_deref(), Some(messages::DRIVER_FAILED));
        let driver = failed.last_observed_driver_status.as_ref().unwrap();
        assert_eq!(driver["phase"], "Failed");
        assert_eq!(
            driver["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            1
        );
        assert_eq!(
            driver["containerStatuses"][0]["image"],
            "apache/spark:4.1.0-python3"
        );
    }

    #[test]
    fn driver_start_timeout_stops_after_driver_requested() {
        let run = simulate(app().build(), settings(Scenario::DriverStartTimeout));
        assert_eq!(
            run.states(),
            [
                Submitted,
                DriverRequested,
                DriverStartTimedOut,
                ResourceReleased
            ]
        );
        let timed_out = &run.last_status().state_transition_history[&2];
        assert_eq!(
            timed_out.message.as_deref(),
            Some(messages::DRIVER_LAUNCH_TIMEOUT)
        );
        assert_eq!(
            timed_out.last_observed_driver_status.as_ref().unwrap()["phase"],
            "Pending"
        );
    }

    #[test]
    fn eviction_is_recorded_with_the_evicted_pod() {
        let run = simulate(app().build(), settings(Scenario::Eviction));
        assert_eq!(
            run.states(),
            [
                Submitted,
                DriverRequested,
                DriverStarted,
                DriverReady,
                RunningHealthy,
                DriverEvicted,
                ResourceReleased
            ]
        );
        let evicted = &run.last_status().state_transition_history[&5];
        assert_eq!(evicted.message.as_deref(), Some(messages::DRIVER_FAILED));
        let driver = evicted.last_observed_driver_status.as_ref().unwrap();
        assert_eq!(driver["phase"], "Failed");
        assert_eq!(driver["reason"], "Evicted");
    }

    #[test]
    fn restart_then_success_trims_history_into_the_previous_attempt() {
        let spec = json!({"restartConfig": {"restartPolicy": "OnFailure"}});
        let run = simulate(
            app().tolerations(spec).build(),
            settings(Scenario::RestartThenSuccess),
        );
        assert_eq!(run.end, End::Idle);
        assert_eq!(
            run.states(),
            [
                Submitted,
                DriverRequested,
                DriverStarted,
                DriverReady,
                RunningHealthy,
                Failed,
                ScheduledToRestart,
                DriverRequested,
                DriverStarted,
                DriverReady,
                RunningHealthy,
                Succeeded,
                ResourceReleased
            ]
        );

        // The restart write itself: history collapsed to one entry keyed after the last one.
        let restart = run.steps.iter().find_map(|r| {
            r.status
                .clone()
                .filter(|s| s.current_state.current_state_summary == ScheduledToRestart)
        });
        let restart = restart.unwrap();
        assert_eq!(keys(&restart), [6]);
        assert_eq!(restart.current_state.message, None);
        assert_eq!(restart.current_attempt_id(), 1);
        let previous = restart.previous_attempt_summary.as_ref().unwrap();
        assert_eq!(previous.attempt_info.id, 0);
        let previous_history = previous.state_transition_history.as_ref().unwrap();
        assert_eq!(
            previous_history.keys().copied().collect::<Vec<_>>(),
            [0, 1, 2, 3, 4, 5]
        );
        assert_eq!(previous_history[&5].current_state_summary, Failed);
        assert_eq!(
            restart.current_attempt_summary,
            Some(AttemptSummary::attempt(1))
        );

        let last = run.last_status();
        assert_eq!(keys(&last), [6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(last.current_attempt_id(), 1);
        assert_eq!(
            last.previous_attempt_summary,
            restart.previous_attempt_summary
        );
    }

    #[test]
    fn restart_waits_for_the_spec_backoff() {
        let spec =
            json!({"restartConfig": {"restartPolicy": "OnFailure", "restartBackoffMillis": 5000}});
        let run = simulate(
            app().tolerations(spec).build(),
            settings(Scenario::RestartThenSuccess),
        );
        let restarted = run.time_of(ScheduledToRestart);
        let requested_again = run
            .steps
            .iter()
            .filter(|r| r.action == "status DriverRequested")
            .nth(1)
            .unwrap()
            .at_ms;
        assert_eq!(requested_again - restarted, 5000);
    }

    #[test]
    fn explicit_never_policy_wins_over_the_restart_scenario() {
        let spec = json!({"restartConfig": {"restartPolicy": "Never"}});
        let run = simulate(
            app().tolerations(spec).build(),
            settings(Scenario::RestartThenSuccess),
        );
        assert_eq!(run.states().last(), Some(&ResourceReleased));
        assert!(!run.states().contains(&ScheduledToRestart));
        assert_eq!(
            run.last_status().state_transition_history[&5].current_state_summary,
            Failed
        );
    }

    #[test]
    fn always_policy_stops_at_max_restart_attempts() {
        let spec = json!({"restartConfig": {"restartPolicy": "Always", "maxRestartAttempts": 1}});
        let run = simulate(app().tolerations(spec).build(), settings(Scenario::Success));
        let states = run.states();
        assert_eq!(
            states.iter().filter(|s| **s == ScheduledToRestart).count(),
            1
        );
        let last = run.last_status();
        assert_eq!(last.current_state.current_state_summary, ResourceReleased);
        assert_eq!(
            last.current_state.message.as_deref(),
            Some("The maximum number of restart attempts (1) has been exceeded.")
        );
        assert_eq!(last.current_attempt_id(), 1);
    }

    #[test]
    fn retained_resources_end_without_release() {
        let spec = json!({"resourceRetainPolicy": "Always"});
        let run = simulate(app().tolerations(spec).build(), settings(Scenario::Success));
        assert_eq!(run.end, End::Idle);
        assert_eq!(
            run.states()[5..],
            [Succeeded, TerminatedWithoutReleaseResources]
        );
        assert_eq!(
            run.last_status().current_state.message.as_deref(),
            Some(messages::TERMINATED_WITHOUT_RELEASE)
        );
    }

    #[test]
    fn retain_on_failure_only_retains_failures() {
        let spec = json!({"resourceRetainPolicy": "OnFailure"});
        let failed = simulate(
            app().tolerations(spec.clone()).build(),
            settings(Scenario::Failure),
        );
        assert_eq!(
            failed.states().last(),
            Some(&TerminatedWithoutReleaseResources)
        );
        let succeeded = simulate(app().tolerations(spec).build(), settings(Scenario::Success));
        assert_eq!(succeeded.states().last(), Some(&ResourceReleased));
    }

    #[test]
    fn retain_duration_then_ttl_like_the_operator_e2e() {
        // tests/e2e/resource-retain-duration of the operator: Always, 10 s retain, 30 s TTL.
        let spec = json!({
            "resourceRetainPolicy": "Always",
            "resourceRetainDurationMillis": 10000,
            "ttlAfterStopMillis": 30000
        });
        let run = simulate(app().tolerations(spec).build(), settings(Scenario::Success));
        assert_eq!(run.end, End::Gone);
        assert_eq!(
            run.states(),
            [
                Submitted,
                DriverRequested,
                DriverStarted,
                DriverReady,
                RunningHealthy,
                Succeeded,
                TerminatedWithoutReleaseResources,
                ResourceReleased
            ]
        );
        let retained_at = run.time_of(TerminatedWithoutReleaseResources);
        assert_eq!(run.time_of(ResourceReleased) - retained_at, 10000);
        assert_eq!(
            run.last_status().current_state.message.as_deref(),
            Some(messages::APP_EXCEEDED_RETAIN_DURATION)
        );
        // TTL counts from the state before the terminal one (here the retained state).
        let tail: Vec<(&str, i64)> = run
            .steps
            .iter()
            .rev()
            .take(2)
            .map(|r| (r.action.as_str(), r.at_ms))
            .collect();
        assert_eq!(
            tail,
            [
                ("remove finalizer", retained_at + 30000),
                ("delete (ttlAfterStopMillis passed)", retained_at + 30000)
            ]
        );
    }

    #[test]
    fn ttl_deletes_after_stop_then_releases_the_finalizer() {
        let spec = json!({"ttlAfterStopMillis": 5000});
        let run = simulate(app().tolerations(spec).build(), settings(Scenario::Success));
        assert_eq!(run.end, End::Gone);
        assert_eq!(run.states(), HAPPY_PATH);
        let stopped = run.time_of(Succeeded);
        let tail: Vec<(&str, i64)> = run.steps[run.steps.len() - 2..]
            .iter()
            .map(|r| (r.action.as_str(), r.at_ms))
            .collect();
        assert_eq!(
            tail,
            [
                ("delete (ttlAfterStopMillis passed)", stopped + 5000),
                ("remove finalizer", stopped + 5000)
            ]
        );
    }

    #[test]
    fn ttl_alone_also_bounds_retained_resources() {
        let spec = json!({"resourceRetainPolicy": "Always", "ttlAfterStopMillis": 2000});
        let run = simulate(app().tolerations(spec).build(), settings(Scenario::Failure));
        assert_eq!(run.end, End::Gone);
        let retained_at = run.time_of(TerminatedWithoutReleaseResources);
        assert_eq!(run.time_of(ResourceReleased), retained_at + 2000);
    }

    #[test]
    fn without_ttl_a_released_application_stays() {
        let run = simulate(app().build(), settings(Scenario::Success));
        assert_eq!(run.end, End::Idle);
        let step = next_step(
            &AppView::from_value(&run.object),
            &settings(Scenario::Success),
            start_plus(86_400_000),
        );
        assert_eq!(step.action, Action::Nothing);
    }

    #[test]
    fn stuck_stays_running_until_deleted() {
        let run = simulate(app().build(), settings(Scenario::Stuck));
        assert_eq!(run.end, End::Idle);
        assert_eq!(run.states().last(), Some(&RunningHealthy));

        let mut object = run.object;
        object["metadata"]["deletionTimestamp"] = json!("2025-06-01T12:00:05Z");
        let deleted = simulate_from(object, settings(Scenario::Stuck), run.end_ms + 5000);
        assert_eq!(deleted.end, End::Gone);
        assert_eq!(
            deleted.actions(),
            ["status ResourceReleased", "remove finalizer"]
        );
        let status = deleted.last_status();
        assert_eq!(keys(&status), [0, 1, 2, 3, 4, 5]);
        assert_eq!(
            status.current_state.message.as_deref(),
            Some("Spark application has been shutdown as requested.")
        );
        assert_eq!(
            status.current_state.last_transition_time.as_deref(),
            Some("2025-06-01T12:00:06.2Z")
        );
    }

    #[test]
    fn deleting_a_released_application_only_removes_the_finalizer() {
        let done = simulate(app().build(), settings(Scenario::Success));
        let mut object = done.object;
        object["metadata"]["deletionTimestamp"] = json!("2025-06-01T12:00:05Z");
        let deleted = simulate_from(object, settings(Scenario::Success), 5000);
        assert_eq!(deleted.actions(), ["remove finalizer"]);
        assert_eq!(deleted.end, End::Gone);
    }

    #[test]
    fn deleting_a_retained_application_releases_it() {
        let spec = json!({"resourceRetainPolicy": "Always"});
        let done = simulate(app().tolerations(spec).build(), settings(Scenario::Success));
        let mut object = done.object;
        object["metadata"]["deletionTimestamp"] = json!("2025-06-01T12:00:05Z");
        let deleted = simulate_from(object, settings(Scenario::Success), 5000);
        assert_eq!(
            deleted.actions(),
            ["status ResourceReleased", "remove finalizer"]
        );
        assert_eq!(
            summaries(&deleted.last_status().state_transition_history)[5..],
            [
                Succeeded,
                TerminatedWithoutReleaseResources,
                ResourceReleased
            ]
        );
    }

    #[test]
    fn deleting_before_any_status_still_records_the_release() {
        let view = app().finalized().deleting().view();
        let step = next_step(&view, &settings(Scenario::Success), start());
        let Action::WriteStatus(status) = step.action else {
            panic!("expected a status write, got {:?}", step.action);
        };
        assert_eq!(
            summaries(&status.state_transition_history),
            [Submitted, ResourceReleased]
        );
    }

    #[test]
    fn someone_elses_delete_is_left_alone() {
        let view = app().deleting().view();
        let step = next_step(&view, &settings(Scenario::Success), start());
        assert_eq!(step.action, Action::Nothing);
    }

    #[test]
    fn finalizer_comes_before_any_status() {
        let view = app().view();
        assert_eq!(
            next_step(&view, &settings(Scenario::Success), start()),
            Step::now(Action::AddFinalizer)
        );
    }

    #[test]
    fn unusable_status_is_reset_to_submitted() {
        let view = app()
            .finalized()
            .status(json!({"currentState": {"currentStateSummary": "NotAState"}}))
            .view();
        let step = next_step(&view, &settings(Scenario::Success), start());
        let Action::WriteStatus(status) = step.action else {
            panic!("expected a status write");
        };
        assert_eq!(keys(&status), [0]);
        assert_eq!(status.current_state.current_state_summary, Submitted);
    }

    #[test]
    fn delays_come_from_the_status_so_a_restarted_simulator_resumes() {
        let mut status = ApplicationStatus::initial("2025-06-01T12:00:00Z");
        status = status.append(ApplicationState::new(
            DriverRequested,
            "2025-06-01T12:00:00.300Z",
            None,
        ));
        let view = app().finalized().status(status.to_value()).view();
        let sim = settings(Scenario::Success);

        // 100 ms into the step: 200 ms left, and the state is stamped when it becomes due.
        let early = next_step(&view, &sim, start_plus(400));
        assert_eq!(early.delay, Duration::from_millis(200));
        let Action::WriteStatus(next) = early.action else {
            panic!("expected a status write");
        };
        assert_eq!(next.current_state.current_state_summary, DriverStarted);
        assert_eq!(
            next.current_state.last_transition_time.as_deref(),
            Some("2025-06-01T12:00:00.6Z")
        );
        assert_eq!(keys(&next), [0, 1, 2]);

        // Long overdue (the simulator was down): due now, stamped now.
        let late = next_step(&view, &sim, start_plus(60_000));
        assert_eq!(late.delay, Duration::ZERO);
        let Action::WriteStatus(next) = late.action else {
            panic!("expected a status write");
        };
        assert_eq!(
            next.current_state.last_transition_time.as_deref(),
            Some("2025-06-01T12:01:00Z")
        );
    }

    #[test]
    fn a_foreign_intermediate_state_continues_the_script() {
        let status =
            ApplicationStatus::initial("2025-06-01T12:00:00Z").append(ApplicationState::new(
                InitializedBelowThresholdExecutors,
                "2025-06-01T12:00:00Z",
                None,
            ));
        let view = app().finalized().status(status.to_value()).view();
        let step = next_step(&view, &settings(Scenario::Success), start_plus(300));
        let Action::WriteStatus(next) = step.action else {
            panic!("expected a status write");
        };
        assert_eq!(next.current_state.current_state_summary, RunningHealthy);
    }

    // ---- failure paths of operator 0.5.0 (AppInitStep, AppCleanUpStep, observers) ----

    /// Every status write of a run: the states it appended, in order.
    fn writes(run: &crate::fixtures::Run) -> Vec<Vec<StateSummary>> {
        let mut before = 0usize;
        let mut out = Vec::new();
        for status in run.steps.iter().filter_map(|r| r.status.as_ref()) {
            let history: Vec<StateSummary> = summaries(&status.state_transition_history);
            // After a restart the history is trimmed; count from its new start.
            let start = if history.len() < before { 0 } else { before };
            out.push(history[start..].to_vec());
            before = history.len();
        }
        out
    }

    fn message_of(status: &ApplicationStatus, key: u64) -> String {
        status.state_transition_history[&key]
            .message
            .clone()
            .unwrap_or_default()
    }

    #[test]
    fn restart_then_success_without_a_policy_does_not_restart() {
        // The operator's RestartConfig defaults to Never.
        let run = simulate(app().build(), settings(Scenario::RestartThenSuccess));
        assert_eq!(
            run.states(),
            [
                Submitted,
                DriverRequested,
                DriverStarted,
                DriverReady,
                RunningHealthy,
                Failed,
                ResourceReleased
            ]
        );
    }

    #[test]
    fn scheduling_failure_comes_straight_after_submitted() {
        // AppInitStep: creating the driver threw; no DriverRequested is ever written.
        let run = simulate(app().build(), settings(Scenario::SchedulingFailure));
        assert_eq!(run.end, End::Idle);
        assert_eq!(
            run.states(),
            [Submitted, SchedulingFailure, ResourceReleased]
        );
        let last = run.last_status();
        assert!(
            message_of(&last, 1)
                .starts_with("Failed to request driver from scheduler backend. StackTrace: "),
            "{}",
            message_of(&last, 1)
        );
        assert_eq!(last.current_state.message, None);
        assert_eq!(run.time_of(SchedulingFailure), 300);
    }

    #[test]
    fn scheduling_failure_restarts_under_on_infrastructure_failure() {
        let spec = json!({"restartConfig": {"restartPolicy": "OnInfrastructureFailure", "maxRestartAttempts": 1}});
        let run = simulate(
            app().tolerations(spec).build(),
            settings(Scenario::SchedulingFailure),
        );
        assert_eq!(
            run.states(),
            [
                Submitted,
                SchedulingFailure,
                ScheduledToRestart,
                SchedulingFailure,
                ResourceReleased
            ]
        );
    }

    #[test]
    fn an_unbuildable_spec_is_released_without_restart() {
        // AppCleanUpStep cannot rebuild the spec of the SchedulingFailure attempt: it writes
        // ResourceReleased "Cannot build Spark spec..." and skips terminateOrRestart.
        let spec = json!({"restartConfig": {"restartPolicy": "Always"}});
        let run = simulate(
            app().tolerations(spec).build(),
            settings(Scenario::UnbuildableSpec),
        );
        assert_eq!(
            run.states(),
            [Submitted, SchedulingFailure, ResourceReleased]
        );
        let last = run.last_status();
        assert!(message_of(&last, 1).contains("Must specify the driver container image"));
        assert_eq!(
            last.current_state.message.as_deref(),
            Some(
                "Cannot build Spark spec for given application, consider all resources as released."
            )
        );
        // Retained under Never, the retain decision comes first.
        let retained = simulate(
            app()
                .tolerations(json!({"resourceRetainPolicy": "OnFailure"}))
                .build(),
            settings(Scenario::UnbuildableSpec),
        );
        assert_eq!(
            retained.states().last(),
            Some(&TerminatedWithoutReleaseResources)
        );
    }

    #[test]
    fn a_removed_driver_fails_without_a_pod_status() {
        let run = simulate(app().build(), settings(Scenario::DriverRemoved));
        assert_eq!(
            run.states()[4..],
            [RunningHealthy, Failed, ResourceReleased]
        );
        let failed = &run.last_status().state_transition_history[&5];
        assert_eq!(failed.current_state_summary, Failed);
        assert_eq!(
            failed.message.as_deref(),
            Some(messages::DRIVER_UNEXPECTED_REMOVED)
        );
        assert!(
            failed
                .message
                .as_deref()
                .unwrap()
                .starts_with("Driver removed.")
        );
        assert_eq!(failed.last_observed_driver_status, None);
    }

    #[test]
    fn started_and_ready_land_in_one_write() {
        let run = simulate(app().build(), settings(Scenario::FastStart));
        assert_eq!(
            writes(&run),
            [
                vec![Submitted],
                vec![DriverRequested],
                vec![DriverStarted, DriverReady],
                vec![RunningHealthy],
                vec![Succeeded],
                vec![ResourceReleased],
            ]
        );
        let last = run.last_status();
        assert_eq!(
            last.state_transition_history[&2].last_transition_time,
            last.state_transition_history[&3].last_transition_time
        );
    }

    #[test]
    fn a_job_ending_between_two_checks_writes_failed_then_succeeded() {
        // AppDriverStartObserver sees a Succeeded pod never seen ready (Failed, "terminated without
        // SparkContext"), AppDriverReadyObserver then Succeeded: one write. The cleanup acts on the
        // last state, Succeeded, so even OnFailure does not restart.
        let spec = json!({"restartConfig": {"restartPolicy": "OnFailure"}});
        let run = simulate(
            app().tolerations(spec).build(),
            settings(Scenario::FinishedBetweenChecks),
        );
        assert_eq!(
            writes(&run),
            [
                vec![Submitted],
                vec![DriverRequested],
                vec![Failed, Succeeded],
                vec![ResourceReleased],
            ]
        );
        let last = run.last_status();
        assert_eq!(
            message_of(&last, 2),
            messages::DRIVER_TERMINATED_BEFORE_INITIALIZATION
        );
        assert_eq!(
            last.state_transition_history[&2]
                .last_observed_driver_status
                .as_ref()
                .unwrap()["phase"],
            "Succeeded"
        );
        assert_eq!(message_of(&last, 3), messages::DRIVER_COMPLETED);
    }

    #[test]
    fn timeouts_from_the_spec_are_honoured_scaled_by_the_step() {
        // Compressed: one step stands for one operator second, so 5000 ms at a 300 ms step is 1.5 s.
        let spec = json!({"applicationTimeoutConfig": {"driverStartTimeoutMillis": 5000}});
        let run = simulate(
            app().tolerations(spec).build(),
            settings(Scenario::DriverStartTimeout),
        );
        assert_eq!(
            run.time_of(DriverStartTimedOut) - run.time_of(DriverRequested),
            1500
        );
        // Unset: one step.
        let quick = simulate(app().build(), settings(Scenario::DriverStartTimeout));
        assert_eq!(
            quick.time_of(DriverStartTimedOut) - quick.time_of(DriverRequested),
            300
        );
        // 0 disables the check (`timeoutThreshold > 0L`): the driver waits for ever.
        let never = simulate(
            app()
                .tolerations(json!({"applicationTimeoutConfig": {"driverStartTimeoutMillis": 0}}))
                .build(),
            settings(Scenario::DriverStartTimeout),
        );
        assert_eq!(never.end, End::Idle);
        assert_eq!(never.states().last(), Some(&DriverRequested));
    }

    #[test]
    fn driver_ready_timeout_follows_driver_started() {
        let spec = json!({"applicationTimeoutConfig": {"driverReadyTimeoutMillis": 2000}});
        let run = simulate(
            app().tolerations(spec).build(),
            settings(Scenario::DriverReadyTimeout),
        );
        assert_eq!(
            run.states(),
            [
                Submitted,
                DriverRequested,
                DriverStarted,
                DriverReadyTimedOut,
                ResourceReleased
            ]
        );
        assert_eq!(
            run.time_of(DriverReadyTimedOut) - run.time_of(DriverStarted),
            600
        );
        assert_eq!(
            message_of(&run.last_status(), 3),
            messages::DRIVER_LAUNCH_TIMEOUT
        );
    }

    #[test]
    fn executor_thresholds_come_from_the_instance_config() {
        let spec = json!({
            "instanceConfig": {"initExecutors": 2, "minExecutors": 1},
            "applicationTimeoutConfig": {"executorStartTimeoutMillis": 10000}
        });
        let run = simulate(
            app().tolerations(spec.clone()).build(),
            settings(Scenario::ExecutorsStartTimeout),
        );
        assert_eq!(
            run.states()[3..],
            [
                DriverReady,
                InitializedBelowThresholdExecutors,
                ExecutorsStartTimedOut,
                ResourceReleased
            ]
        );
        // The timeout counts from the below-threshold state, the current one.
        assert_eq!(
            run.time_of(ExecutorsStartTimedOut) - run.time_of(InitializedBelowThresholdExecutors),
            3000
        );
        let last = run.last_status();
        assert_eq!(
            message_of(&last, 4),
            messages::INITIALIZED_WITH_BELOW_THRESHOLD_EXECUTORS
        );
        assert_eq!(message_of(&last, 5), messages::EXECUTOR_LAUNCH_TIMEOUT);

        let lost = simulate(
            app().tolerations(spec).build(),
            settings(Scenario::ExecutorsLost),
        );
        assert_eq!(
            lost.states()[4..],
            [
                RunningHealthy,
                RunningWithBelowThresholdExecutors,
                Succeeded,
                ResourceReleased
            ]
        );
        // Without an instanceConfig the operator never counts executors.
        let unchecked = simulate(app().build(), settings(Scenario::ExecutorsStartTimeout));
        assert_eq!(unchecked.end, End::Idle);
        assert_eq!(unchecked.states().last(), Some(&RunningHealthy));
    }

    fn realistic() -> crate::fixtures::App {
        app().annotation(crate::scenario::PACE_KEY, "realistic")
    }

    #[test]
    fn realistic_pace_uses_the_operator_defaults_scaled() {
        // 10 ms step = 1/100 of real time. Start timeout 300 s, noticed at the third 120 s
        // reconcile: 360 s -> 3.6 s.
        let step = Settings {
            scenario: Scenario::DriverStartTimeout,
            step: Duration::from_millis(10),
        };
        let run = simulate(realistic().build(), step);
        assert_eq!(
            run.time_of(DriverStartTimedOut) - run.time_of(DriverRequested),
            3600
        );
        // The cleanup follows the outcome at once.
        assert_eq!(
            run.time_of(ResourceReleased),
            run.time_of(DriverStartTimedOut)
        );

        // Restart backoff 30 s -> 300 ms.
        let restart = Settings {
            scenario: Scenario::RestartThenSuccess,
            step: Duration::from_millis(10),
        };
        let run = simulate(
            realistic()
                .tolerations(json!({"restartConfig": {"restartPolicy": "OnFailure"}}))
                .build(),
            restart,
        );
        let restarted = run.time_of(ScheduledToRestart);
        let requested_again = run
            .steps
            .iter()
            .filter(|r| r.action == "status DriverRequested")
            .nth(1)
            .unwrap()
            .at_ms;
        assert_eq!(requested_again - restarted, 300);
    }

    #[test]
    fn realistic_pace_releases_the_finalizer_after_the_termination_requeue() {
        let stuck = Settings {
            scenario: Scenario::Stuck,
            step: Duration::from_millis(10),
        };
        let run = simulate(realistic().build(), stuck);
        let mut object = run.object;
        object["metadata"]["deletionTimestamp"] = json!("2025-06-01T12:00:05Z");
        let deleted = simulate_from(object, stuck, run.end_ms + 1000);
        assert_eq!(
            deleted.actions(),
            ["status ResourceReleased", "remove finalizer"]
        );
        // terminationRequeuePeriodMillis 2 s -> 20 ms.
        assert_eq!(deleted.steps[1].at_ms - deleted.steps[0].at_ms, 20);
        let view = AppView::from_value(&realistic().build());
        assert_eq!(
            conflict_retry_delay(&view, &stuck),
            Duration::from_millis(30)
        );
        assert_eq!(conflict_retry_delay(&app().view(), &stuck), Duration::ZERO);
    }

    #[test]
    fn every_written_status_satisfies_the_crd_status_schema() {
        let schema: Value = serde_json::from_str(include_str!(
            "../fixtures/sparkapplication-v1-status.schema.json"
        ))
        .unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let retain = json!({"resourceRetainPolicy": "Always", "ttlAfterStopMillis": 1000,
                            "instanceConfig": {"initExecutors": 2, "minExecutors": 1},
                            "restartConfig": {"restartPolicy": "OnFailure", "maxRestartAttempts": 1}});
        let mut runs = Vec::new();
        for scenario in Scenario::ALL {
            runs.push(simulate(app().build(), settings(scenario)));
            runs.push(simulate(
                app().tolerations(retain.clone()).build(),
                settings(scenario),
            ));
        }
        let mut checked = 0;
        for run in &runs {
            for status in run.steps.iter().filter_map(|r| r.status.as_ref()) {
                let value = status.to_value();
                let errors: Vec<String> = validator
                    .iter_errors(&value)
                    .map(|e| e.to_string())
                    .collect();
                assert!(errors.is_empty(), "{errors:?} in {value:#}");
                checked += 1;
            }
        }
        assert!(checked > 80, "only {checked} statuses checked");
        // The schema really constrains: an unknown state is rejected.
        assert!(!validator.is_valid(&json!({"currentState": {"currentStateSummary": "Running"}})));
    }
}
