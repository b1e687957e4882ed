//! The operator target: the Apache Spark Kubernetes Operator's `spark.apache.org/v1` SparkApplication
//! (operator 0.5.0). Everything the gateway knows about this operator lives here, and the gateway, the
//! status function, the watcher and the operator simulator all read the operator through it:
//! - the resource: [`GROUP`], [`VERSION`], [`KIND`], [`PLURAL`];
//! - what each state means: its operator-neutral [`Phase`], whether it ends, stops or fails an attempt
//!   ([`StateMeaning`]), and the [`outcome`] a history adds up to;
//! - the status as typed values: [`StatusView`]; the spec's sizing inputs: [`SpecView`];
//! - the names the operator derives: [`spark_app_id`], [`driver_pod_name`]; the driver container's,
//!   [`DRIVER_CONTAINER`], and how much of its log a failure keeps ([`log_tail`]).
//!
//! The state names themselves are the contract's [`ApplicationState`], so what is published and what is
//! read can never disagree. The operator's last state is `ResourceReleased` (or
//! `TerminatedWithoutReleaseResources`) whether the job succeeded or failed: the outcome is the stopping
//! state recorded before it, which is why [`outcome`] reads the attempt's whole history.

mod naming;
mod spec;
mod status;

pub use naming::{driver_pod_name, spark_app_id};
pub use spec::SpecView;
pub use status::{CurrentState, DriverTermination, HistoryEntry, StatusError, StatusView};

use spark_gateway_events::{ApplicationState, FailureDetail, FailureReason, Outcome, Phase};

/// API group of SparkApplication.
pub const GROUP: &str = "spark.apache.org";
/// API version the gateway writes and reads.
pub const VERSION: &str = "v1";
/// `apiVersion` of the objects.
pub const API_VERSION: &str = "spark.apache.org/v1";
/// Kind.
pub const KIND: &str = "SparkApplication";
/// Resource plural.
pub const PLURAL: &str = "sparkapplications";

/// The states of an attempt that runs and succeeds, in order: what the operator writes when nothing
/// goes wrong (`SparkAppReconcileSteps` from submission to `AppResourceObserveStep` releasing
/// resources).
pub const HAPPY_PATH: [ApplicationState; 7] = [
    ApplicationState::Submitted,
    ApplicationState::DriverRequested,
    ApplicationState::DriverStarted,
    ApplicationState::DriverReady,
    ApplicationState::RunningHealthy,
    ApplicationState::Succeeded,
    ApplicationState::ResourceReleased,
];

/// What a state of this operator means, as its `ApplicationStateSummary` classifies it.
pub trait StateMeaning: Copy {
    /// The operator-neutral phase the contract publishes beside the state.
    fn phase(self) -> Phase;
    /// `ResourceReleased` or `TerminatedWithoutReleaseResources`: the attempt has ended and nothing
    /// follows in it (`isTerminated`).
    fn is_terminal(self) -> bool;
    /// The state records how the attempt ended, success or a failure, before resources are released
    /// (`isStopping`: every state after `RunningWithBelowThresholdExecutors` that is not terminated).
    fn is_stopping(self) -> bool;
    /// The failure this state stands for (`isFailure`), if it is one.
    fn failure(self) -> Option<FailureReason>;
    /// The operator's infrastructure failures (`isInfrastructureFailure`), what an
    /// `OnInfrastructureFailure` restart policy reacts to.
    fn is_infrastructure_failure(self) -> bool;
}

impl StateMeaning for ApplicationState {
    fn phase(self) -> Phase {
        use ApplicationState::*;
        match self {
            Submitted | DriverRequested | DriverStarted => Phase::Pending,
            DriverReady
            | InitializedBelowThresholdExecutors
            | RunningHealthy
            | RunningWithBelowThresholdExecutors => Phase::Running,
            ScheduledToRestart => Phase::Restarting,
            ResourceReleased | TerminatedWithoutReleaseResources => Phase::Ended,
            Succeeded
            | DriverStartTimedOut
            | ExecutorsStartTimedOut
            | DriverReadyTimedOut
            | Failed
            | SchedulingFailure
            | DriverEvicted => Phase::Stopping,
        }
    }

    fn is_terminal(self) -> bool {
        self.phase() == Phase::Ended
    }

    fn is_stopping(self) -> bool {
        self.phase() == Phase::Stopping
    }

    fn failure(self) -> Option<FailureReason> {
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

    fn is_infrastructure_failure(self) -> bool {
        matches!(
            self,
            Self::DriverStartTimedOut | Self::ExecutorsStartTimedOut | Self::SchedulingFailure
        )
    }
}

/// The outcome of an attempt, given its history in order as `(state, message)` pairs; `None` while the
/// attempt has not ended (its last state is not terminal).
///
/// The outcome is the last stopping state before the end; an end with no stopping state means the
/// application was deleted while it ran.
pub fn outcome<'a>(
    history: impl IntoIterator<Item = (ApplicationState, Option<&'a str>)>,
) -> Option<Outcome> {
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
        Some((ApplicationState::Succeeded, _)) => Outcome::Succeeded,
        Some((state, message)) => Outcome::Failed {
            reason: state
                .failure()
                .expect("stopping states other than Succeeded are failures"),
            message: message.map(str::to_string),
        },
        None => Outcome::Cancelled {
            message: last_message.map(str::to_string),
        },
    })
}

/// The longest termination message kept, in characters: what Kubernetes keeps of a log under
/// `FallbackToLogsOnError` (the last 2048 bytes), so an event stays far below a broker's record limit.
pub const MAX_TERMINATION_MESSAGE_CHARS: usize = 2048;

/// The driver container's name: Spark's `DEFAULT_DRIVER_CONTAINER_NAME`, which the driver pod keeps
/// because the gateway's pod template names its container so.
pub const DRIVER_CONTAINER: &str = "spark-kubernetes-driver";

/// Lines of the driver log a failure keeps.
pub const MAX_LOG_TAIL_LINES: usize = 40;
/// Characters of the driver log a failure keeps (the end of the last lines).
pub const MAX_LOG_TAIL_CHARS: usize = 4096;

/// The end of a driver log as a failure keeps it: the last [`MAX_LOG_TAIL_LINES`] lines, at most the
/// last [`MAX_LOG_TAIL_CHARS`] characters, trailing blank space dropped; `None` when nothing is left.
pub fn log_tail(log: &str) -> Option<String> {
    let log = log.trim_end();
    let start = log
        .rmatch_indices('\n')
        .nth(MAX_LOG_TAIL_LINES - 1)
        .map_or(0, |(i, _)| i + 1);
    let lines = &log[start..];
    let skip = lines.chars().count().saturating_sub(MAX_LOG_TAIL_CHARS);
    let tail: String = lines.chars().skip(skip).collect();
    (!tail.trim().is_empty()).then_some(tail)
}

/// Why an attempt that ended with `outcome` failed: the category, and how its driver container ended
/// (the last entry of the attempt that recorded the driver's termination). `None` for a success.
pub fn failure_detail<'a>(
    outcome: &Outcome,
    attempt_entries: impl IntoIterator<Item = &'a HistoryEntry>,
) -> Option<FailureDetail> {
    let category = outcome.failure_category()?;
    let driver = attempt_entries
        .into_iter()
        .filter_map(|entry| entry.driver.as_ref())
        .last();
    Some(FailureDetail {
        category,
        exit_code: driver.map(|d| d.exit_code),
        reason: driver.and_then(|d| d.reason.clone()),
        termination_message: driver.and_then(|d| d.message.as_deref()).map(|m| {
            let skip = m
                .chars()
                .count()
                .saturating_sub(MAX_TERMINATION_MESSAGE_CHARS);
            m.chars().skip(skip).collect()
        }),
        // Read from the pod by the watcher, not from the status.
        log_tail: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use spark_gateway_events::ApplicationState::*;

    fn states_where(keep: impl Fn(ApplicationState) -> bool) -> Vec<ApplicationState> {
        ApplicationState::ALL
            .into_iter()
            .filter(|s| keep(*s))
            .collect()
    }

    // The operator's `ApplicationStateSummary` classifies by ordinal: stopping is every state after
    // `RunningWithBelowThresholdExecutors` that is not terminated, so the enum order is pinned too.
    #[test]
    fn classification_matches_the_operator() {
        assert_eq!(
            states_where(StateMeaning::is_terminal),
            [ResourceReleased, TerminatedWithoutReleaseResources]
        );
        let after_running = ApplicationState::ALL
            .iter()
            .position(|s| *s == RunningWithBelowThresholdExecutors)
            .unwrap()
            + 1;
        assert_eq!(
            states_where(StateMeaning::is_stopping),
            ApplicationState::ALL[after_running..ApplicationState::ALL.len() - 2]
        );
        assert_eq!(
            states_where(|s| s.failure().is_some()),
            [
                DriverStartTimedOut,
                ExecutorsStartTimedOut,
                DriverReadyTimedOut,
                Failed,
                SchedulingFailure,
                DriverEvicted
            ]
        );
        assert_eq!(
            states_where(StateMeaning::is_infrastructure_failure),
            [
                DriverStartTimedOut,
                ExecutorsStartTimedOut,
                SchedulingFailure
            ]
        );
    }

    #[test]
    fn every_state_has_the_phase_its_class_implies() {
        assert_eq!(
            HAPPY_PATH.map(StateMeaning::phase),
            [
                Phase::Pending,
                Phase::Pending,
                Phase::Pending,
                Phase::Running,
                Phase::Running,
                Phase::Stopping,
                Phase::Ended
            ]
        );
        assert_eq!(ScheduledToRestart.phase(), Phase::Restarting);
        assert_eq!(
            states_where(|s| s.phase() == Phase::Running),
            [
                DriverReady,
                InitializedBelowThresholdExecutors,
                RunningHealthy,
                RunningWithBelowThresholdExecutors
            ]
        );
    }

    fn plain(states: &[ApplicationState]) -> Vec<(ApplicationState, Option<&'static str>)> {
        states.iter().map(|&s| (s, None)).collect()
    }

    #[test]
    fn success_is_read_through_resource_released() {
        assert_eq!(outcome(plain(&HAPPY_PATH)), Some(Outcome::Succeeded));
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
            outcome(history),
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
            outcome(history),
            Some(Outcome::Cancelled {
                message: Some("Spark application has been shutdown as requested.".into())
            })
        );
    }

    #[test]
    fn no_outcome_before_the_end() {
        assert_eq!(outcome(plain(&HAPPY_PATH[..6])), None);
        assert_eq!(outcome(plain(&[])), None);
    }

    #[test]
    fn the_failure_detail_comes_from_the_driver_status_the_operator_recorded() {
        let long_log = format!("{}ValueError: the last line", "x".repeat(5000));
        let status = StatusView::from_status(Some(&serde_json::json!({
            "stateTransitionHistory": {
                "0": {"currentStateSummary": "DriverStarted"},
                "1": {"currentStateSummary": "Failed", "lastObservedDriverStatus": {
                    "phase": "Failed",
                    "containerStatuses": [
                        {"name": "sidecar", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                        {"name": "spark-kubernetes-driver", "state": {"terminated": {
                            "exitCode": 1, "reason": "Error", "message": long_log}}}
                    ]}},
                "2": {"currentStateSummary": "ResourceReleased"}
            }
        })))
        .unwrap();
        let outcome = outcome(
            status
                .entries
                .iter()
                .map(|e| (*e.state.as_ref().unwrap(), None)),
        )
        .unwrap();
        let detail = failure_detail(&outcome, &status.entries).unwrap();
        assert_eq!(
            detail.category,
            spark_gateway_events::FailureCategory::UserError
        );
        assert_eq!(
            (detail.exit_code, detail.reason.as_deref()),
            (Some(1), Some("Error"))
        );
        let message = detail.termination_message.unwrap();
        assert_eq!(message.chars().count(), MAX_TERMINATION_MESSAGE_CHARS);
        assert!(message.ends_with("ValueError: the last line"));

        // An eviction names the pod's reason; a success has no detail.
        let evicted = StatusView::from_status(Some(&serde_json::json!({
            "stateTransitionHistory": {"0": {"currentStateSummary": "DriverEvicted",
                "lastObservedDriverStatus": {"phase": "Failed", "reason": "Evicted",
                    "message": "The node was low on resource: memory.",
                    "containerStatuses": [{"state": {"terminated": {"exitCode": 137}}}]}}}
        })))
        .unwrap();
        let failed = Outcome::Failed {
            reason: FailureReason::DriverEvicted,
            message: None,
        };
        let detail = failure_detail(&failed, &evicted.entries).unwrap();
        assert_eq!(
            detail.category,
            spark_gateway_events::FailureCategory::Infrastructure
        );
        assert_eq!(detail.reason.as_deref(), Some("Evicted"));
        assert_eq!(detail.exit_code, Some(137));
        assert_eq!(failure_detail(&Outcome::Succeeded, &evicted.entries), None);
    }

    #[test]
    fn a_log_tail_keeps_the_last_lines_and_characters() {
        let log: String = (1..=100).map(|i| format!("line {i}\n")).collect();
        let tail = log_tail(&format!("{log}\n\n  ")).unwrap();
        assert_eq!(tail.lines().count(), MAX_LOG_TAIL_LINES);
        assert!(
            tail.starts_with("line 61\n") && tail.ends_with("line 100"),
            "{tail}"
        );
        let long = "x".repeat(10_000) + "\nValueError: boom";
        let tail = log_tail(&long).unwrap();
        assert_eq!(tail.chars().count(), MAX_LOG_TAIL_CHARS);
        assert!(tail.ends_with("ValueError: boom"));
        assert_eq!(log_tail(" \n\n"), None);
        assert_eq!(log_tail("one line").as_deref(), Some("one line"));
    }
}
