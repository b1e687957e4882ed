//! The lifecycle vocabulary of the contract: the operator-neutral [`Phase`] and [`Outcome`] every
//! subscriber can read, and the Apache Spark Kubernetes Operator's own state names ([`ApplicationState`]).
//!
//! What a state means (its phase, whether it ends or fails an attempt, the outcome a history adds up
//! to) is the operator target's knowledge, not the contract's: it lives in
//! `spark_gateway_core::apache_v1`, beside the rest of that operator's resource.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `status.currentState.currentStateSummary` of a `spark.apache.org/v1` SparkApplication (operator 0.5.0).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum ApplicationState {
    /// Accepted by the operator; always history entry 0 of an attempt.
    Submitted,
    /// A new attempt will start after the restart back-off.
    ScheduledToRestart,
    /// The driver pod was requested.
    DriverRequested,
    /// The driver pod started.
    DriverStarted,
    /// The driver is ready.
    DriverReady,
    /// Running, but fewer executors than the initial count started.
    InitializedBelowThresholdExecutors,
    /// Running with enough executors.
    RunningHealthy,
    /// Running, but executors fell below the minimum.
    RunningWithBelowThresholdExecutors,
    /// The driver did not start in time (failure).
    DriverStartTimedOut,
    /// Executors did not start in time (failure).
    ExecutorsStartTimedOut,
    /// The driver did not become ready in time (failure).
    DriverReadyTimedOut,
    /// The application finished successfully.
    Succeeded,
    /// The application failed.
    Failed,
    /// The driver could not be scheduled (failure).
    SchedulingFailure,
    /// The driver pod was evicted (failure).
    DriverEvicted,
    /// Stopped and its resources released: the end of the application.
    ResourceReleased,
    /// Stopped with resources retained: the end of the application.
    TerminatedWithoutReleaseResources,
}

impl ApplicationState {
    /// All 17 states in the operator's enum order.
    pub const ALL: [Self; 17] = [
        Self::Submitted,
        Self::ScheduledToRestart,
        Self::DriverRequested,
        Self::DriverStarted,
        Self::DriverReady,
        Self::InitializedBelowThresholdExecutors,
        Self::RunningHealthy,
        Self::RunningWithBelowThresholdExecutors,
        Self::DriverStartTimedOut,
        Self::ExecutorsStartTimedOut,
        Self::DriverReadyTimedOut,
        Self::Succeeded,
        Self::Failed,
        Self::SchedulingFailure,
        Self::DriverEvicted,
        Self::ResourceReleased,
        Self::TerminatedWithoutReleaseResources,
    ];

    /// The operator's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "Submitted",
            Self::ScheduledToRestart => "ScheduledToRestart",
            Self::DriverRequested => "DriverRequested",
            Self::DriverStarted => "DriverStarted",
            Self::DriverReady => "DriverReady",
            Self::InitializedBelowThresholdExecutors => "InitializedBelowThresholdExecutors",
            Self::RunningHealthy => "RunningHealthy",
            Self::RunningWithBelowThresholdExecutors => "RunningWithBelowThresholdExecutors",
            Self::DriverStartTimedOut => "DriverStartTimedOut",
            Self::ExecutorsStartTimedOut => "ExecutorsStartTimedOut",
            Self::DriverReadyTimedOut => "DriverReadyTimedOut",
            Self::Succeeded => "Succeeded",
            Self::Failed => "Failed",
            Self::SchedulingFailure => "SchedulingFailure",
            Self::DriverEvicted => "DriverEvicted",
            Self::ResourceReleased => "ResourceReleased",
            Self::TerminatedWithoutReleaseResources => "TerminatedWithoutReleaseResources",
        }
    }
}

impl fmt::Display for ApplicationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name the operator 0.5.0 does not define.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown application state {0:?}")]
pub struct UnknownState(pub String);

impl FromStr for ApplicationState {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_string()))
    }
}

/// The failing state that ended an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum FailureReason {
    /// The driver did not start in time.
    DriverStartTimedOut,
    /// Executors did not start in time.
    ExecutorsStartTimedOut,
    /// The driver did not become ready in time.
    DriverReadyTimedOut,
    /// The application itself failed.
    Failed,
    /// The driver could not be scheduled.
    SchedulingFailure,
    /// The driver pod was evicted.
    DriverEvicted,
}

/// How an application ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// The application succeeded.
    Succeeded,
    /// The application failed; `reason` is the failing state.
    Failed {
        /// The failing state.
        reason: FailureReason,
        /// The operator's message for that state.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// The application was stopped on request (deleted) before it succeeded or failed.
    Cancelled {
        /// The operator's message, usually "Spark application has been shutdown as requested."
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
}

impl Outcome {
    /// The outcome is a success.
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Succeeded)
    }

    /// What kind of failure it is; `None` for a success.
    pub fn failure_category(&self) -> Option<FailureCategory> {
        match self {
            Self::Succeeded => None,
            Self::Cancelled { .. } => Some(FailureCategory::Cancelled),
            Self::Failed { reason, .. } => Some(reason.category()),
        }
    }
}

impl FailureReason {
    /// Who is likely to act on the failure.
    pub fn category(self) -> FailureCategory {
        match self {
            Self::Failed => FailureCategory::UserError,
            Self::SchedulingFailure => FailureCategory::Scheduling,
            Self::DriverStartTimedOut
            | Self::ExecutorsStartTimedOut
            | Self::DriverReadyTimedOut => FailureCategory::Timeout,
            Self::DriverEvicted => FailureCategory::Infrastructure,
        }
    }
}

/// What kind of failure ended an application: where a person starts looking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureCategory {
    /// The application itself failed (its driver exited with an error): the job's owner fixes it.
    UserError,
    /// Kubernetes could not place the driver (quota, node capacity, an unschedulable pod spec).
    Scheduling,
    /// The driver or the executors did not start or become ready within the application's timeouts.
    Timeout,
    /// The cluster took the driver away (eviction, a lost node): usually worth a retry.
    Infrastructure,
    /// It was stopped on request before it ended by itself.
    Cancelled,
}

/// Why an application failed, for a person: the category, and how the driver's container ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FailureDetail {
    /// What kind of failure.
    pub category: FailureCategory,
    /// The driver container's exit code, when the operator saw it terminate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Kubernetes' reason for the end: the container's (`Error`, `OOMKilled`) or the pod's
    /// (`Evicted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The driver container's termination message, at most its last 2048 characters: with
    /// `terminationMessagePolicy: FallbackToLogsOnError` on the driver container, the end of its log
    /// (a Python job's exception line, a JVM's stack trace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub termination_message: Option<String>,
    /// The last lines of the driver's log (at most 40 lines and 4096 characters), read from the driver
    /// pod when it was still there at the end (`resource_retain_policy: OnFailure` keeps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_tail: Option<String>,
}

/// Where a person looks next, from the cluster's URL templates; each link only when its template is
/// configured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Links {
    /// The running driver's Spark UI (until the attempt stops).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spark_ui: Option<String>,
    /// The application in the Spark history server (once the attempt has stopped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_server: Option<String>,
    /// Where the driver's logs are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<String>,
}

/// Where an application is in its life, in terms every operator target shares: what a subscriber reads
/// to follow an application without knowing the operator's own state names.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Accepted; the driver is being requested or started.
    Pending,
    /// The driver is ready and the job runs.
    Running,
    /// The attempt ended and a new one starts after the restart back-off.
    Restarting,
    /// The attempt's result is known (success or a failure) and its resources are being released.
    Stopping,
    /// Nothing runs any more; the event that ends an application in this phase carries its `outcome`.
    Ended,
}

impl Phase {
    /// The snake_case name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Restarting => "restarting",
            Self::Stopping => "stopping",
            Self::Ended => "ended",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_parses_from_its_own_name() {
        for state in ApplicationState::ALL {
            assert_eq!(state.as_str().parse::<ApplicationState>(), Ok(state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        assert_eq!(
            "Running".parse::<ApplicationState>(),
            Err(UnknownState("Running".into()))
        );
    }

    #[test]
    fn outcome_json_is_tagged_by_result() {
        let failed = Outcome::Failed {
            reason: FailureReason::DriverEvicted,
            message: None,
        };
        assert_eq!(
            serde_json::to_value(&failed).unwrap(),
            serde_json::json!({"result": "failed", "reason": "DriverEvicted"})
        );
        assert_eq!(
            serde_json::to_value(Outcome::Succeeded).unwrap(),
            serde_json::json!({"result": "succeeded"})
        );
    }

    #[test]
    fn phases_are_snake_case_on_the_wire() {
        for phase in [
            Phase::Pending,
            Phase::Running,
            Phase::Restarting,
            Phase::Stopping,
            Phase::Ended,
        ] {
            assert_eq!(serde_json::to_value(phase).unwrap(), phase.as_str());
        }
    }
}
