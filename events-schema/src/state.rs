//! The Apache Spark Kubernetes Operator's application states and the outcome they add up to.
//!
//! The operator's last state is `ResourceReleased` (or `TerminatedWithoutReleaseResources`) whether the
//! job succeeded or failed: the outcome is the stopping state recorded before it. Reading only
//! `currentState` therefore loses the result, which is why [`Outcome::from_history`] looks at the whole
//! history of the current attempt.

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

    /// The application has ended; nothing follows in this attempt.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::ResourceReleased | Self::TerminatedWithoutReleaseResources
        )
    }

    /// The state records how the attempt ended (success or a failure), before resources are released.
    pub fn is_stopping(self) -> bool {
        self == Self::Succeeded || self.failure().is_some()
    }

    /// The failure this state stands for, if it is one.
    pub fn failure(self) -> Option<FailureReason> {
        Some(match self {
            Self::DriverStartTimedOut => FailureReason::DriverStartTimedOut,
            Self::ExecutorsStartTimedOut => FailureReason::ExecutorsStartTimedOut,
            Self::DriverReadyTimedOut => FailureReason::DriverReadyTimedOut,
            Self::Failed => FailureReason::Failed,
            Self::SchedulingFailure => FailureReason::SchedulingFailure,
            Self::DriverEvicted => FailureReason::DriverEvicted,
            _ => return None,
        })
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
    /// The outcome of an attempt, given its history in order as `(state, message)` pairs; `None` while the
    /// attempt has not ended (its last state is not terminal).
    ///
    /// The outcome is the last stopping state before the end; an end with no stopping state means the
    /// application was deleted while it ran.
    pub fn from_history<'a>(
        history: impl IntoIterator<Item = (ApplicationState, Option<&'a str>)>,
    ) -> Option<Self> {
        let mut last_stopping = None;
        let mut last = None;
        for (state, message) in history {
            if state.is_stopping() {
                last_stopping = Some((state, message));
            }
            last = Some((state, message));
        }
        let (last_state, last_message) = last?;
        if !last_state.is_terminal() {
            return None;
        }
        Some(match last_stopping {
            Some((ApplicationState::Succeeded, _)) => Self::Succeeded,
            Some((state, message)) => Self::Failed {
                reason: state
                    .failure()
                    .expect("stopping states other than Succeeded are failures"),
                message: message.map(str::to_string),
            },
            None => Self::Cancelled {
                message: last_message.map(str::to_string),
            },
        })
    }

    /// The outcome is a success.
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Succeeded)
    }
}

#[cfg(test)]
mod tests {
    use super::ApplicationState::*;
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
    fn classification_matches_the_operator() {
        let terminal: Vec<_> = ApplicationState::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [ResourceReleased, TerminatedWithoutReleaseResources]
        );
        let failures: Vec<_> = ApplicationState::ALL
            .into_iter()
            .filter(|s| s.failure().is_some())
            .collect();
        assert_eq!(
            failures,
            [
                DriverStartTimedOut,
                ExecutorsStartTimedOut,
                DriverReadyTimedOut,
                Failed,
                SchedulingFailure,
                DriverEvicted
            ]
        );
        assert!(
            Succeeded.is_stopping()
                && !RunningHealthy.is_stopping()
                && !ResourceReleased.is_stopping()
        );
    }

    fn plain(states: &[ApplicationState]) -> Vec<(ApplicationState, Option<&'static str>)> {
        states.iter().map(|&s| (s, None)).collect()
    }

    #[test]
    fn success_is_read_through_resource_released() {
        let history = plain(&[
            Submitted,
            DriverRequested,
            DriverStarted,
            DriverReady,
            RunningHealthy,
            Succeeded,
            ResourceReleased,
        ]);
        assert_eq!(Outcome::from_history(history), Some(Outcome::Succeeded));
    }

    #[test]
    fn failure_keeps_the_failing_state_and_its_message() {
        let history = vec![
            (Submitted, None),
            (DriverRequested, None),
            (DriverStartTimedOut, Some("driver did not start")),
            (TerminatedWithoutReleaseResources, Some("retained")),
        ];
        assert_eq!(
            Outcome::from_history(history),
            Some(Outcome::Failed {
                reason: FailureReason::DriverStartTimedOut,
                message: Some("driver did not start".into())
            })
        );
    }

    #[test]
    fn delete_while_running_is_cancelled() {
        let history = vec![
            (Submitted, None),
            (RunningHealthy, None),
            (
                ResourceReleased,
                Some("Spark application has been shutdown as requested."),
            ),
        ];
        assert_eq!(
            Outcome::from_history(history),
            Some(Outcome::Cancelled {
                message: Some("Spark application has been shutdown as requested.".into())
            })
        );
    }

    #[test]
    fn no_outcome_before_the_end() {
        assert_eq!(
            Outcome::from_history(plain(&[Submitted, RunningHealthy, Succeeded])),
            None
        );
        assert_eq!(Outcome::from_history(plain(&[])), None);
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
}
