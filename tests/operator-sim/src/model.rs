//! Typed view of the parts of a `spark.apache.org/v1` SparkApplication that the operator reads
//! (`spec.applicationTolerations`, a few `sparkConf` keys) and writes (`status`).
//!
//! The status types serialize to exactly the shape the Apache operator 0.5.0 writes (Jackson with
//! `NON_NULL`): absent optionals are omitted, history maps are keyed by numeric strings, and an
//! attempt summary carries its own history only after a restart trimmed it away.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::scenario::{InstanceConfig, Timeout};

/// Messages the operator writes, copied as data from its `Constants.java` and status classes
/// because consumers (the gateway, tests) match on them.
pub mod messages {
    /// `Submitted` (initial status).
    pub const SUBMITTED: &str = "Spark application has been created on Kubernetes Cluster.";
    /// `DriverRequested`.
    pub const DRIVER_REQUESTED: &str = "Requested driver from resource scheduler.";
    /// `DriverStarted`.
    pub const DRIVER_RUNNING: &str = "Driver has started running.";
    /// `DriverReady`.
    pub const DRIVER_READY: &str = "Driver has reached ready state.";
    /// `RunningHealthy`.
    pub const RUNNING_HEALTHY: &str = "Application is running healthy.";
    /// `Succeeded` (driver pod phase Succeeded after it had been ready).
    pub const DRIVER_COMPLETED: &str = "Spark application completed successfully.";
    /// `Failed` and `DriverEvicted` (driver pod phase Failed).
    pub const DRIVER_FAILED: &str = "Driver has one or more failed critical container(s), refer last observed status for details.";
    /// `DriverStartTimedOut`.
    pub const DRIVER_LAUNCH_TIMEOUT: &str = "The driver has not responded to the initial health check request within the allotted start-up time. This can be configured by setting .spec.applicationTolerations.applicationTimeoutConfig.";
    /// `ResourceReleased` written when the application is deleted.
    pub const APP_CANCELLED: &str = "Spark application has been shutdown as requested.";
    /// `ResourceReleased` written once a retained application exceeded its retain duration.
    pub const APP_EXCEEDED_RETAIN_DURATION: &str =
        "Spark application resources released after exceeding the configured retain duration.";
    /// `TerminatedWithoutReleaseResources`.
    pub const TERMINATED_WITHOUT_RELEASE: &str =
        "Application is terminated without releasing resources as configured.";
    /// Override used when resources would be retained but a restart policy forces their release.
    pub const RESTART_FORCES_RELEASE: &str = "Application is configured to restart, resources created in current attempt would be force released.";

    /// `Failed` when the driver pod is missing (`DRIVER_UNEXPECTED_REMOVED_MESSAGE`).
    pub const DRIVER_UNEXPECTED_REMOVED: &str = "Driver removed. This could caused by 'exit' called in driver process with non-zero code, involuntary disruptions or unintentional destroy behavior, check Kubernetes events for more details.";
    /// `Failed` when the driver pod succeeded before it was seen ready
    /// (`DRIVER_TERMINATED_BEFORE_INITIALIZATION_MESSAGE`).
    pub const DRIVER_TERMINATED_BEFORE_INITIALIZATION: &str =
        "Driver container is terminated without SparkContext / SparkSession initialization.";
    /// `DriverReadyTimedOut`: the operator reuses the start-timeout text
    /// (`SparkAppStatusUtils.driverReadyTimedOut`).
    pub const DRIVER_READY_TIMEOUT: &str = DRIVER_LAUNCH_TIMEOUT;
    /// `ExecutorsStartTimedOut` (`EXECUTOR_LAUNCH_TIMEOUT_MESSAGE`).
    pub const EXECUTOR_LAUNCH_TIMEOUT: &str =
        "The Spark application failed to get enough executors in the given time threshold.";
    /// `InitializedBelowThresholdExecutors`.
    pub const INITIALIZED_WITH_BELOW_THRESHOLD_EXECUTORS: &str =
        "The application is running with less than minimal number of requested initial executors.";
    /// `RunningWithBelowThresholdExecutors`.
    pub const RUNNING_WITH_BELOW_THRESHOLD_EXECUTORS: &str =
        "The Spark application is running with less than minimal number of requested executors.";
    /// Start of `SchedulingFailure` when requesting the driver threw (`AppInitStep`, followed by
    /// `" StackTrace: "` and the exception's stack trace).
    pub const SCHEDULE_FAILURE: &str = "Failed to request driver from scheduler backend.";
    /// `ResourceReleased` when the cleanup of a `SchedulingFailure` cannot rebuild the spec
    /// (`AppCleanUpStep`).
    pub const CANNOT_BUILD_SPEC: &str =
        "Cannot build Spark spec for given application, consider all resources as released.";

    /// `ResourceReleased` once `maxRestartAttempts` is reached (the operator's
    /// `"The maximum number of restart attempts (%d) has been exceeded."`).
    pub fn exceeded_max_restart_attempts(max: i64) -> String {
        format!("The maximum number of restart attempts ({max}) has been exceeded.")
    }
}

/// The 17 values of `currentStateSummary`, in the operator's enum order (the order matters: the
/// operator classifies states by ordinal ranges). The same enum the event contract uses, so the
/// simulator and the gateway can never disagree on a state's name.
pub use spark_gateway_events::ApplicationState as StateSummary;

/// What each state means (terminated, stopping, failure, infrastructure failure) is the operator
/// target's knowledge, shared with the gateway and the watcher.
pub use spark_gateway_core::apache_v1::StateMeaning;

/// One entry of `currentState` / `stateTransitionHistory`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationState {
    /// The state.
    pub current_state_summary: StateSummary,
    /// RFC 3339 instant of the transition. Optional on read only: the operator always writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// Human readable reason; the operator leaves it out for a plain `ResourceReleased`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A Kubernetes `PodStatus` of the driver, recorded with failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_observed_driver_status: Option<Value>,
}

impl ApplicationState {
    /// A state entered at `at` (RFC 3339) with an optional message.
    pub fn new(summary: StateSummary, at: &str, message: Option<String>) -> Self {
        Self {
            current_state_summary: summary,
            last_transition_time: Some(at.to_owned()),
            message,
            last_observed_driver_status: None,
        }
    }

    /// Adds the driver's pod status.
    pub fn with_driver_status(mut self, status: Value) -> Self {
        self.last_observed_driver_status = Some(status);
        self
    }
}

/// `attemptInfo`: the attempt number, 0 for the first run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptInfo {
    /// Attempt number.
    #[serde(default)]
    pub id: u64,
}

/// `previousAttemptSummary` / `currentAttemptSummary`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptSummary {
    /// Which attempt.
    #[serde(default)]
    pub attempt_info: AttemptInfo,
    /// The attempt's history; set on the previous attempt when a restart trimmed the main history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_transition_history: Option<BTreeMap<u64, ApplicationState>>,
}

impl AttemptSummary {
    /// A summary of attempt `id` without history.
    pub fn attempt(id: u64) -> Self {
        Self {
            attempt_info: AttemptInfo { id },
            state_transition_history: None,
        }
    }
}

/// `.status` of a SparkApplication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    /// The latest state (also the last history entry).
    pub current_state: ApplicationState,
    /// Every state of the current attempt, keyed `0, 1, ...` (numeric strings in JSON).
    #[serde(default)]
    pub state_transition_history: BTreeMap<u64, ApplicationState>,
    /// The attempt before the current one, once a restart happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_attempt_summary: Option<AttemptSummary>,
    /// The running attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_attempt_summary: Option<AttemptSummary>,
}

impl ApplicationStatus {
    /// What the operator writes for an application without a valid status: `Submitted` as entry
    /// "0" and attempt 0.
    pub fn initial(at: &str) -> Self {
        let state = ApplicationState::new(
            StateSummary::Submitted,
            at,
            Some(messages::SUBMITTED.to_owned()),
        );
        Self {
            current_state: state.clone(),
            state_transition_history: BTreeMap::from([(0, state)]),
            previous_attempt_summary: None,
            current_attempt_summary: Some(AttemptSummary::attempt(0)),
        }
    }

    /// Reads `.status` leniently: `None` when it is absent or unusable, which is exactly when the
    /// operator resets it to [`ApplicationStatus::initial`].
    pub fn from_status_value(status: Option<&Value>) -> Option<Self> {
        let value = status?;
        if value.is_null() {
            return None;
        }
        Self::deserialize(value).ok()
    }

    /// The key the next history entry gets: the last key plus one.
    pub fn next_history_key(&self) -> u64 {
        self.state_transition_history
            .keys()
            .next_back()
            .map_or(0, |last| last + 1)
    }

    /// A copy with `state` appended to the history and made current.
    pub fn append(&self, state: ApplicationState) -> Self {
        let mut next = self.clone();
        next.state_transition_history
            .insert(self.next_history_key(), state.clone());
        next.current_state = state;
        next
    }

    /// Id of the running attempt (0 when the summary is missing, as the operator defaults it).
    pub fn current_attempt_id(&self) -> u64 {
        self.current_attempt_summary
            .as_ref()
            .map_or(0, |summary| summary.attempt_info.id)
    }

    /// The state before the terminal one: what the operator's TTL counts from. For a status that
    /// is not terminated, the current state.
    pub fn last_state_before_termination(&self) -> &ApplicationState {
        if !self.current_state.current_state_summary.is_terminal() {
            return &self.current_state;
        }
        let mut entries = self.state_transition_history.values().rev();
        entries.next();
        entries.next().unwrap_or(&self.current_state)
    }

    /// The status as JSON.
    pub fn to_value(&self) -> Value {
        // Serializing plain structs and maps with string-able keys cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// `restartConfig.restartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartPolicy {
    Always,
    Never,
    OnFailure,
    OnInfrastructureFailure,
}

impl RestartPolicy {
    /// Whether the operator starts another attempt after `state` (its
    /// `RestartPolicy.attemptRestartOnState`).
    pub fn restarts_after(self, state: StateSummary) -> bool {
        match self {
            Self::Always => true,
            Self::Never => false,
            Self::OnFailure => state.failure().is_some(),
            Self::OnInfrastructureFailure => state.is_infrastructure_failure(),
        }
    }
}

/// `applicationTolerations.resourceRetainPolicy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResourceRetainPolicy {
    Always,
    OnFailure,
    #[default]
    Never,
}

impl ResourceRetainPolicy {
    /// Whether resources stay after the outcome `state`.
    pub fn retains_after(self, state: StateSummary) -> bool {
        match self {
            Self::Always => true,
            Self::OnFailure => state.failure().is_some(),
            Self::Never => false,
        }
    }
}

/// `spec.applicationTolerations` as far as status decisions need it, with the operator's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tolerations {
    /// `None` when the spec does not set it: the operator then uses `Never`.
    pub restart_policy: Option<RestartPolicy>,
    /// Default 3.
    pub max_restart_attempts: i64,
    /// `None` when unset (the operator's default is 30000; see [`crate::plan`] for ours).
    pub restart_backoff_millis: Option<i64>,
    /// Default `Never`.
    pub resource_retain_policy: ResourceRetainPolicy,
    /// Default -1 (disabled).
    pub resource_retain_duration_millis: i64,
    /// Default -1 (disabled).
    pub ttl_after_stop_millis: i64,
    /// `applicationTimeoutConfig`, each `None` when unset (the operator's default is 300000;
    /// the pace decides ours). A value <= 0 disables that timeout.
    pub timeouts: TimeoutConfig,
    /// `applicationTimeoutConfig.terminationRequeuePeriodMillis`, `None` when unset (2000).
    pub termination_requeue_millis: Option<i64>,
    /// `instanceConfig`.
    pub instances: InstanceConfig,
}

/// `applicationTolerations.applicationTimeoutConfig` timeouts as the spec sets them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeoutConfig {
    /// `driverStartTimeoutMillis`.
    pub driver_start_millis: Option<i64>,
    /// `driverReadyTimeoutMillis`.
    pub driver_ready_millis: Option<i64>,
    /// `executorStartTimeoutMillis`.
    pub executor_start_millis: Option<i64>,
}

impl TimeoutConfig {
    /// The spec's value of `timeout`.
    pub fn get(&self, timeout: Timeout) -> Option<i64> {
        match timeout {
            Timeout::DriverStart => self.driver_start_millis,
            Timeout::DriverReady => self.driver_ready_millis,
            Timeout::ExecutorStart => self.executor_start_millis,
        }
    }
}

impl Default for Tolerations {
    fn default() -> Self {
        Self {
            restart_policy: None,
            max_restart_attempts: 3,
            restart_backoff_millis: None,
            resource_retain_policy: ResourceRetainPolicy::Never,
            resource_retain_duration_millis: -1,
            ttl_after_stop_millis: -1,
            timeouts: TimeoutConfig::default(),
            termination_requeue_millis: None,
            instances: InstanceConfig::default(),
        }
    }
}

impl Tolerations {
    /// Reads `spec.applicationTolerations`; missing or malformed fields keep their defaults
    /// (the API server has already validated the object against the CRD).
    pub fn from_spec(spec: Option<&Value>) -> Self {
        let mut out = Self::default();
        let Some(tolerations) = spec.and_then(|s| s.get("applicationTolerations")) else {
            return out;
        };
        let enum_field = |v: Option<&Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
        if let Some(restart) = tolerations.get("restartConfig") {
            out.restart_policy = enum_field(restart.get("restartPolicy"))
                .and_then(|p| serde_json::from_value(Value::String(p)).ok());
            if let Some(max) = restart.get("maxRestartAttempts").and_then(Value::as_i64) {
                out.max_restart_attempts = max;
            }
            out.restart_backoff_millis =
                restart.get("restartBackoffMillis").and_then(Value::as_i64);
        }
        if let Some(policy) = enum_field(tolerations.get("resourceRetainPolicy"))
            .and_then(|p| serde_json::from_value(Value::String(p)).ok())
        {
            out.resource_retain_policy = policy;
        }
        if let Some(ms) = tolerations
            .get("resourceRetainDurationMillis")
            .and_then(Value::as_i64)
        {
            out.resource_retain_duration_millis = ms;
        }
        if let Some(ms) = tolerations
            .get("ttlAfterStopMillis")
            .and_then(Value::as_i64)
        {
            out.ttl_after_stop_millis = ms;
        }
        if let Some(config) = tolerations.get("applicationTimeoutConfig") {
            let ms = |key: &str| config.get(key).and_then(Value::as_i64);
            out.timeouts = TimeoutConfig {
                driver_start_millis: ms("driverStartTimeoutMillis"),
                driver_ready_millis: ms("driverReadyTimeoutMillis"),
                executor_start_millis: ms("executorStartTimeoutMillis"),
            };
            out.termination_requeue_millis = ms("terminationRequeuePeriodMillis");
        }
        if let Some(config) = tolerations.get("instanceConfig") {
            let count = |key: &str| config.get(key).and_then(Value::as_i64).unwrap_or(0);
            out.instances = InstanceConfig {
                init_executors: count("initExecutors"),
                min_executors: count("minExecutors"),
            };
        }
        out
    }

    /// The operator deletes the CR itself when this is >= 0.
    pub fn ttl_enabled(&self) -> bool {
        self.ttl_after_stop_millis >= 0
    }

    /// How long retained resources are kept: the smaller of the enabled retain duration and TTL,
    /// `None` when both are disabled (the operator's `computeEffectiveRetainDurationMillis`).
    pub fn effective_retain_millis(&self) -> Option<i64> {
        let retain = self.resource_retain_duration_millis;
        let ttl = self.ttl_after_stop_millis;
        match (retain >= 0, ttl >= 0) {
            (false, false) => None,
            (true, false) => Some(retain),
            (false, true) => Some(ttl),
            (true, true) => Some(retain.min(ttl)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn state_names_round_trip() {
        for state in StateSummary::ALL {
            assert_eq!(state.as_str().parse::<StateSummary>(), Ok(state));
            assert_eq!(serde_json::to_value(state).unwrap(), json!(state.as_str()));
        }
        assert!("Running".parse::<StateSummary>().is_err());
    }

    #[test]
    fn initial_status_has_the_operator_shape() {
        let status = ApplicationStatus::initial("2025-01-01T00:00:00Z");
        assert_eq!(
            status.to_value(),
            json!({
                "currentState": {
                    "currentStateSummary": "Submitted",
                    "lastTransitionTime": "2025-01-01T00:00:00Z",
                    "message": "Spark application has been created on Kubernetes Cluster."
                },
                "stateTransitionHistory": {"0": {
                    "currentStateSummary": "Submitted",
                    "lastTransitionTime": "2025-01-01T00:00:00Z",
                    "message": "Spark application has been created on Kubernetes Cluster."
                }},
                "currentAttemptSummary": {"attemptInfo": {"id": 0}}
            })
        );
    }

    #[test]
    fn history_keys_are_numeric_not_lexical() {
        let mut status = ApplicationStatus::initial("2025-01-01T00:00:00Z");
        for _ in 0..11 {
            status = status.append(ApplicationState::new(
                StateSummary::RunningHealthy,
                "2025-01-01T00:00:01Z",
                None,
            ));
        }
        assert_eq!(status.next_history_key(), 12);
        let value = status.to_value();
        let reparsed = ApplicationStatus::from_status_value(Some(&value)).unwrap();
        assert_eq!(reparsed, status);
        assert_eq!(reparsed.next_history_key(), 12);
    }

    #[test]
    fn unusable_status_reads_as_none() {
        assert_eq!(ApplicationStatus::from_status_value(None), None);
        assert_eq!(ApplicationStatus::from_status_value(Some(&json!({}))), None);
        assert_eq!(
            ApplicationStatus::from_status_value(Some(
                &json!({"currentState": {"currentStateSummary": "Bogus"}})
            )),
            None
        );
    }

    #[test]
    fn tolerations_default_like_the_operator() {
        let t = Tolerations::from_spec(Some(&json!({})));
        assert_eq!(t, Tolerations::default());
        assert_eq!(t.effective_retain_millis(), None);
        assert!(!t.ttl_enabled());
    }

    #[test]
    fn tolerations_read_every_field() {
        let spec = json!({"applicationTolerations": {
            "restartConfig": {"restartPolicy": "OnFailure", "maxRestartAttempts": 1, "restartBackoffMillis": 10},
            "resourceRetainPolicy": "Always",
            "resourceRetainDurationMillis": 10000,
            "ttlAfterStopMillis": 30000
        }});
        let t = Tolerations::from_spec(Some(&spec));
        assert_eq!(t.restart_policy, Some(RestartPolicy::OnFailure));
        assert_eq!(t.max_restart_attempts, 1);
        assert_eq!(t.restart_backoff_millis, Some(10));
        assert_eq!(t.resource_retain_policy, ResourceRetainPolicy::Always);
        assert_eq!(t.effective_retain_millis(), Some(10000));
        assert!(t.ttl_enabled());
    }

    #[test]
    fn tolerations_read_timeouts_and_instance_config() {
        let spec = json!({"applicationTolerations": {
            "applicationTimeoutConfig": {"driverStartTimeoutMillis": 5000, "executorStartTimeoutMillis": 0,
                                         "terminationRequeuePeriodMillis": 100},
            "instanceConfig": {"initExecutors": 3, "minExecutors": 1, "maxExecutors": 5}
        }});
        let t = Tolerations::from_spec(Some(&spec));
        assert_eq!(t.timeouts.get(Timeout::DriverStart), Some(5000));
        assert_eq!(t.timeouts.get(Timeout::DriverReady), None);
        assert_eq!(t.timeouts.get(Timeout::ExecutorStart), Some(0));
        assert_eq!(t.termination_requeue_millis, Some(100));
        assert_eq!(
            t.instances,
            InstanceConfig {
                init_executors: 3,
                min_executors: 1
            }
        );
    }

    #[test]
    fn effective_retain_is_the_smaller_enabled_duration() {
        let with = |retain, ttl| Tolerations {
            resource_retain_duration_millis: retain,
            ttl_after_stop_millis: ttl,
            ..Tolerations::default()
        };
        assert_eq!(with(-1, 500).effective_retain_millis(), Some(500));
        assert_eq!(with(700, -1).effective_retain_millis(), Some(700));
        assert_eq!(with(700, 500).effective_retain_millis(), Some(500));
        assert_eq!(with(0, -1).effective_retain_millis(), Some(0));
    }

    #[test]
    fn restart_and_retain_policies() {
        assert!(RestartPolicy::Always.restarts_after(StateSummary::Succeeded));
        assert!(!RestartPolicy::Never.restarts_after(StateSummary::Failed));
        assert!(RestartPolicy::OnFailure.restarts_after(StateSummary::DriverEvicted));
        assert!(!RestartPolicy::OnFailure.restarts_after(StateSummary::Succeeded));
        assert!(
            RestartPolicy::OnInfrastructureFailure
                .restarts_after(StateSummary::DriverStartTimedOut)
        );
        assert!(!RestartPolicy::OnInfrastructureFailure.restarts_after(StateSummary::Failed));
        assert!(ResourceRetainPolicy::OnFailure.retains_after(StateSummary::Failed));
        assert!(!ResourceRetainPolicy::OnFailure.retains_after(StateSummary::Succeeded));
        assert!(ResourceRetainPolicy::Always.retains_after(StateSummary::Succeeded));
    }
}
