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
    ApplicationState, ApplicationStatus, AttemptSummary, RestartPolicy, StateSummary, Tolerations,
    messages,
};
use crate::scenario::{Scenario, Settings};

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
    if app.deleting {
        return on_delete(app, &clock);
    }
    if !app.has_finalizer {
        return Step::now(Action::AddFinalizer);
    }
    let Some(status) = &app.status else {
        let initial = ApplicationStatus::initial(&clock.stamp(clock.now_ms));
        return Step::now(Action::WriteStatus(Box::new(initial)));
    };

    let tolerations = &app.tolerations;
    let step_ms = millis(settings.step);
    let current = &status.current_state;
    let since = parse_ms(current.last_transition_time.as_deref());
    let write = |due: i64, build: &dyn Fn(&str) -> ApplicationStatus| {
        clock.at(due, |stamp| Action::WriteStatus(Box::new(build(stamp))))
    };

    match current.current_state_summary {
        StateSummary::ResourceReleased => {
            if !tolerations.ttl_enabled() {
                return Step::nothing();
            }
            let stopped = status.last_state_before_termination();
            let base = parse_ms(stopped.last_transition_time.as_deref());
            clock.at(
                base.saturating_add(tolerations.ttl_after_stop_millis),
                |_| Action::DeleteApplication,
            )
        }
        StateSummary::TerminatedWithoutReleaseResources => {
            match tolerations.effective_retain_millis() {
                None => Step::nothing(),
                Some(retain) => write(since.saturating_add(retain), &|stamp| {
                    status.append(ApplicationState::new(
                        StateSummary::ResourceReleased,
                        stamp,
                        Some(messages::APP_EXCEEDED_RETAIN_DURATION.to_owned()),
                    ))
                }),
            }
        }
        outcome if outcome.is_stopping() => write(since.saturating_add(step_ms), &|stamp| {
            terminate_or_restart(status, tolerations, settings.scenario, stamp)
        }),
        StateSummary::Submitted | StateSummary::ScheduledToRestart => {
            let wait = if current.current_state_summary == StateSummary::ScheduledToRestart {
                // The operator waits restartBackoffMillis (default 30 s) before the next attempt;
                // unset, we keep the application's pace so tests stay fast.
                tolerations.restart_backoff_millis.unwrap_or(step_ms)
            } else {
                step_ms
            };
            write(since.saturating_add(wait), &|stamp| {
                status.append(scripted_state(
                    StateSummary::DriverRequested,
                    stamp,
                    app.driver_image.as_deref(),
                ))
            })
        }
        running => {
            let script = settings
                .scenario
                .attempt_script(status.current_attempt_id());
            let next = match script.iter().position(|s| *s == running) {
                Some(index) => script.get(index + 1).copied(),
                // A state we never write (e.g. set by hand): continue with the first later one.
                None => script.iter().copied().find(|s| *s > running),
            };
            match next {
                None => Step::nothing(),
                Some(next) => write(since.saturating_add(step_ms), &|stamp| {
                    status.append(scripted_state(next, stamp, app.driver_image.as_deref()))
                }),
            }
        }
    }
}

/// The operator's cleanup of a deleted application: record `ResourceReleased` (unless it is
/// already there), then let the delete finish.
fn on_delete(app: &AppView, clock: &Clock) -> Step {
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
            Step::now(Action::RemoveFinalizer)
        }
        Some(status) => Step::now(Action::WriteStatus(Box::new(status.append(cancelled)))),
        None => Step::now(Action::WriteStatus(Box::new(
            ApplicationStatus::initial(&stamp).append(cancelled),
        ))),
    }
}

/// The restart policy in force: the spec's, or `OnFailure` for the `restart-then-success`
/// scenario when the spec leaves it unset (the scenario would be pointless with `Never`).
pub fn effective_restart_policy(tolerations: &Tolerations, scenario: Scenario) -> RestartPolicy {
    tolerations.restart_policy.unwrap_or(match scenario {
        Scenario::RestartThenSuccess => RestartPolicy::OnFailure,
        _ => RestartPolicy::Never,
    })
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
    let policy = effective_restart_policy(tolerations, scenario);
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

/// A state the simulated driver reaches, with the operator's message for it and, for failures,
/// a driver pod status like the one the operator records.
fn scripted_state(summary: StateSummary, stamp: &str, image: Option<&str>) -> ApplicationState {
    let message = |text: &str| Some(text.to_owned());
    let image = image.unwrap_or("apache/spark");
    match summary {
        StateSummary::DriverRequested => {
            ApplicationState::new(summary, stamp, message(messages::DRIVER_REQUESTED))
        }
        StateSummary::DriverStarted => {
            ApplicationState::new(summary, stamp, message(messages::DRIVER_RUNNING))
        }
        StateSummary::DriverReady => {
            ApplicationState::new(summary, stamp, message(messages::DRIVER_READY))
        }
        StateSummary::RunningHealthy => {
            ApplicationState::new(summary, stamp, message(messages::RUNNING_HEALTHY))
        }
        StateSummary::Succeeded => {
            ApplicationState::new(summary, stamp, message(messages::DRIVER_COMPLETED))
        }
        StateSummary::Failed => {
            ApplicationState::new(summary, stamp, message(messages::DRIVER_FAILED))
                .with_driver_status(terminated_driver(stamp, image, 1, "Error", None))
        }
        StateSummary::DriverEvicted => {
            ApplicationState::new(summary, stamp, message(messages::DRIVER_FAILED))
                .with_driver_status(terminated_driver(
                    stamp,
                    image,
                    137,
                    "Evicted",
                    Some("The node was low on resource: memory."),
                ))
        }
        StateSummary::DriverStartTimedOut => {
            ApplicationState::new(summary, stamp, message(messages::DRIVER_LAUNCH_TIMEOUT))
                .with_driver_status(json!({
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
        other => ApplicationState::new(other, stamp, None),
    }
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

    const HAPPY_PATH: [StateSummary; 7] = [
        Submitted,
        DriverRequested,
        DriverStarted,
        DriverReady,
        RunningHealthy,
        Succeeded,
        ResourceReleased,
    ];

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
        let run = simulate(app().build(), settings(Scenario::RestartThenSuccess));
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

    #[test]
    fn every_written_status_satisfies_the_crd_status_schema() {
        let schema: Value = serde_json::from_str(include_str!(
            "../fixtures/sparkapplication-v1-status.schema.json"
        ))
        .unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let retain = json!({"resourceRetainPolicy": "Always", "ttlAfterStopMillis": 1000});
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
