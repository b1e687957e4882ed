//! Transition detection, the watcher's pure core: from an application's history and its checkpoint,
//! the events still to publish, in history order.
//!
//! The input is the whole history the status still holds (not just `currentState`), so however many
//! transitions happened between two observations, each becomes an event; a restart observed late still
//! yields the previous attempt's unpublished entries (from `previousAttemptSummary`) before the new
//! attempt's. Nothing at or below the checkpoint is planned again, and an event planned twice (after a
//! crash between publishing and checkpointing) has the same id, because the id is built from the
//! position.

use jiff::Timestamp;
use spark_gateway_events::{ApplicationState, FailureDetail, Outcome};

use crate::checkpoint::Checkpoint;
use spark_gateway_core::apache_v1::{self, HistoryEntry, StateMeaning, StatusView};

/// One history entry as an event-to-be.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The attempt.
    pub attempt: u64,
    /// The history key.
    pub history_index: u64,
    /// The state entered.
    pub state: ApplicationState,
    /// The state before it in the same attempt.
    pub previous_state: Option<ApplicationState>,
    /// The operator's message.
    pub message: Option<String>,
    /// When the state was entered.
    pub time: Option<Timestamp>,
    /// How the application ended, on the first terminal entry of an attempt only, so every
    /// application has exactly one event with an outcome.
    pub outcome: Option<Outcome>,
    /// Why it failed, beside a failed or cancelled `outcome`.
    pub failure: Option<FailureDetail>,
}

impl Transition {
    /// The entry's position.
    pub fn position(&self) -> Checkpoint {
        Checkpoint::new(self.attempt, self.history_index)
    }
}

/// What to do with one unpublished entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Publish its event.
    Publish(Transition),
    /// Move the checkpoint past it without an event: its state is unknown to the event contract (an
    /// operator newer than 0.5.0), so no valid event can describe it. Callers report it.
    SkipUnknownState {
        /// The entry's position.
        position: Checkpoint,
        /// The state's name.
        state: String,
    },
}

impl Step {
    /// The entry's position.
    pub fn position(&self) -> Checkpoint {
        match self {
            Self::Publish(transition) => transition.position(),
            Self::SkipUnknownState { position, .. } => *position,
        }
    }
}

/// Entries that were removed from the status before they were published: the operator keeps only
/// the current and the previous attempt, so a watcher down for two restarts cannot see the oldest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The checkpoint before the gap (`None`: nothing was published).
    pub after: Option<Checkpoint>,
    /// The first entry still available.
    pub resumes_at: Checkpoint,
    /// How many history keys are missing.
    pub missing: u64,
}

/// The unpublished entries of an application, in history order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// One step per entry after the checkpoint.
    pub steps: Vec<Step>,
    /// Entries lost before they could be published, if any.
    pub gap: Option<Gap>,
}

/// The steps that bring `published` up to the end of `status`.
pub fn plan(status: &StatusView, published: Option<Checkpoint>) -> Plan {
    let mut steps = Vec::new();
    // Context of the attempt being walked: earlier entries feed previous_state and the outcome.
    let mut attempt = None;
    let mut attempt_history: Vec<(ApplicationState, Option<&str>)> = Vec::new();
    let mut attempt_entries: Vec<&HistoryEntry> = Vec::new();
    let mut previous_state = None;
    let mut attempt_ended = false;

    for entry in &status.entries {
        if attempt != Some(entry.attempt) {
            attempt = Some(entry.attempt);
            attempt_history.clear();
            attempt_entries.clear();
            previous_state = None;
            attempt_ended = false;
        }
        let unpublished = Some(Checkpoint::of(entry)) > published;
        attempt_entries.push(entry);
        match &entry.state {
            Ok(state) => {
                attempt_history.push((*state, entry.message.as_deref()));
                let outcome = if state.is_terminal() && !attempt_ended {
                    attempt_ended = true;
                    apache_v1::outcome(attempt_history.iter().copied())
                } else {
                    None
                };
                let failure = outcome.as_ref().and_then(|outcome| {
                    apache_v1::failure_detail(outcome, attempt_entries.iter().copied())
                });
                if unpublished {
                    steps.push(Step::Publish(Transition {
                        attempt: entry.attempt,
                        history_index: entry.history_index,
                        state: *state,
                        previous_state,
                        message: entry.message.clone(),
                        time: entry.time,
                        outcome,
                        failure,
                    }));
                }
                previous_state = Some(*state);
            }
            Err(unknown) => {
                if unpublished {
                    steps.push(Step::SkipUnknownState {
                        position: Checkpoint::of(entry),
                        state: unknown.0.clone(),
                    });
                }
                previous_state = None;
            }
        }
    }

    let expected_index = published.map_or(0, |checkpoint| checkpoint.history_index + 1);
    let gap = steps.first().map(Step::position).and_then(|first| {
        (first.history_index > expected_index).then_some(Gap {
            after: published,
            resumes_at: first,
            missing: first.history_index - expected_index,
        })
    });
    Plan { steps, gap }
}

/// Every entry of `status` is at or below `published`.
pub fn fully_published(status: &StatusView, published: Option<Checkpoint>) -> bool {
    Checkpoint::last_of(status) <= published
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::Value;
    use spark_gateway_events::ApplicationState::*;
    use spark_gateway_events::FailureReason;

    use super::*;

    fn fixture(name: &str) -> StatusView {
        let path = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
            .join("tests/fixtures")
            .join(name);
        let object: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        StatusView::from_status(object.get("status")).unwrap()
    }

    fn transitions(plan: &Plan) -> Vec<&Transition> {
        plan.steps
            .iter()
            .map(|step| match step {
                Step::Publish(transition) => transition,
                Step::SkipUnknownState { .. } => panic!("unexpected skip {step:?}"),
            })
            .collect()
    }

    fn states(plan: &Plan) -> Vec<(u64, u64, ApplicationState)> {
        transitions(plan)
            .iter()
            .map(|t| (t.attempt, t.history_index, t.state))
            .collect()
    }

    #[test]
    fn no_status_means_nothing_to_publish() {
        let status = fixture("no-status.json");
        assert_eq!(plan(&status, None), Plan::default());
        assert!(fully_published(&status, None));
    }

    #[test]
    fn several_transitions_between_observations_are_each_published_in_order() {
        let status = fixture("succeeded.json");
        let plan = plan(&status, Some(Checkpoint::new(0, 1)));
        assert_eq!(
            states(&plan),
            [
                (0, 2, DriverStarted),
                (0, 3, DriverReady),
                (0, 4, RunningHealthy),
                (0, 5, Succeeded),
                (0, 6, ResourceReleased)
            ]
        );
        let all = transitions(&plan);
        assert_eq!(all[0].previous_state, Some(DriverRequested));
        assert_eq!(
            all[0].message.as_deref(),
            Some("Driver has started running.")
        );
        assert_eq!(all[0].time, Some("2026-11-23T10:00:02Z".parse().unwrap()));
        assert_eq!(plan.gap, None);
    }

    #[test]
    fn the_outcome_is_on_the_terminal_entry_only() {
        let plan = plan(&fixture("succeeded.json"), None);
        let outcomes: Vec<_> = transitions(&plan)
            .iter()
            .map(|t| t.outcome.clone())
            .collect();
        assert_eq!(
            outcomes,
            [None, None, None, None, None, None, Some(Outcome::Succeeded)]
        );
        assert_eq!(transitions(&plan)[0].previous_state, None);
    }

    #[test]
    fn a_failure_carries_its_state_and_message() {
        let plan = plan(&fixture("failed.json"), Some(Checkpoint::new(0, 5)));
        let last = transitions(&plan)[0];
        assert_eq!(
            (last.state, last.previous_state),
            (ResourceReleased, Some(Failed))
        );
        assert_eq!(
            last.outcome,
            Some(Outcome::Failed {
                reason: FailureReason::Failed,
                message: Some(
                    "Driver has one or more failed critical container(s), refer last observed status for details."
                        .into()
                )
            })
        );
    }

    #[test]
    fn nothing_at_or_below_the_checkpoint_is_planned_again() {
        let status = fixture("succeeded.json");
        assert_eq!(plan(&status, Some(Checkpoint::new(0, 6))), Plan::default());
        // A checkpoint ahead of a stale observation plans nothing either.
        assert_eq!(plan(&status, Some(Checkpoint::new(1, 9))), Plan::default());
        assert!(fully_published(&status, Some(Checkpoint::new(0, 6))));
        assert!(!fully_published(&status, Some(Checkpoint::new(0, 5))));
    }

    #[test]
    fn replanning_after_a_crash_gives_the_same_positions() {
        let status = fixture("succeeded.json");
        let first = plan(&status, Some(Checkpoint::new(0, 3)));
        let again = plan(&status, Some(Checkpoint::new(0, 3)));
        assert_eq!(first, again);
    }

    #[test]
    fn a_restart_observed_late_publishes_the_previous_attempt_first() {
        // Last observed: attempt 0 at RunningHealthy (index 4); now attempt 1 is under way.
        let status = fixture("restarted-running.json");
        let plan = plan(&status, Some(Checkpoint::new(0, 4)));
        assert_eq!(
            states(&plan),
            [
                (0, 5, Failed),
                (1, 6, ScheduledToRestart),
                (1, 7, DriverRequested),
                (1, 8, DriverStarted)
            ]
        );
        let all = transitions(&plan);
        assert_eq!(all[0].previous_state, Some(RunningHealthy));
        // The first entry of an attempt has no previous state in that attempt.
        assert_eq!(all[1].previous_state, None);
        assert_eq!(all[2].previous_state, Some(ScheduledToRestart));
        // A failure that leads to a restart ends nothing: no outcome yet.
        assert!(all.iter().all(|t| t.outcome.is_none()));
        assert_eq!(plan.gap, None);
    }

    #[test]
    fn restart_then_success_ends_with_the_success_of_the_last_attempt() {
        let status = fixture("restarted-succeeded.json");
        let plan = plan(&status, None);
        let all = transitions(&plan);
        assert_eq!(all.len(), 13);
        assert_eq!(all.iter().filter(|t| t.outcome.is_some()).count(), 1);
        let last = all.last().unwrap();
        assert_eq!(
            (last.attempt, last.history_index, last.state),
            (1, 12, ResourceReleased)
        );
        assert_eq!(last.outcome, Some(Outcome::Succeeded));
    }

    #[test]
    fn entries_trimmed_away_before_publishing_are_reported_as_a_gap() {
        let status = fixture("restarted-running.json");
        // Nothing published, but attempt 0 is intact in previousAttemptSummary: no gap.
        assert_eq!(plan(&status, None).gap, None);
        // Only attempt 1 left in a status whose previous summary was dropped.
        let mut trimmed = status.clone();
        trimmed.entries.retain(|e| e.attempt == 1);
        let plan = plan(&trimmed, Some(Checkpoint::new(0, 2)));
        assert_eq!(
            plan.gap,
            Some(Gap {
                after: Some(Checkpoint::new(0, 2)),
                resumes_at: Checkpoint::new(1, 6),
                missing: 3
            })
        );
        assert_eq!(plan.steps.len(), 3);
    }

    #[test]
    fn retained_resources_released_later_do_not_repeat_the_outcome() {
        let status = fixture("retained-then-released.json");
        let plan = plan(&status, None);
        let with_outcome: Vec<_> = transitions(&plan)
            .into_iter()
            .filter(|t| t.outcome.is_some())
            .map(|t| (t.state, t.outcome.clone()))
            .collect();
        assert_eq!(
            with_outcome,
            [(
                TerminatedWithoutReleaseResources,
                Some(Outcome::Failed {
                    reason: FailureReason::DriverStartTimedOut,
                    message: Some("timed out".into())
                })
            )]
        );
    }

    #[test]
    fn deleted_while_running_is_cancelled() {
        let status = fixture("deleted-while-running.json");
        let plan = plan(&status, Some(Checkpoint::new(0, 4)));
        let last = transitions(&plan)[0];
        assert_eq!(
            last.outcome,
            Some(Outcome::Cancelled {
                message: Some("Spark application has been shutdown as requested.".into())
            })
        );
    }

    #[test]
    fn unknown_states_are_skipped_but_still_advance_the_checkpoint() {
        let status = StatusView::from_status(Some(&serde_json::json!({
            "stateTransitionHistory": {
                "0": {"currentStateSummary": "Submitted"},
                "1": {"currentStateSummary": "Hibernating"},
                "2": {"currentStateSummary": "DriverRequested"}
            }
        })))
        .unwrap();
        let plan = plan(&status, None);
        assert_eq!(plan.steps.len(), 3);
        assert_eq!(
            plan.steps[1],
            Step::SkipUnknownState {
                position: Checkpoint::new(0, 1),
                state: "Hibernating".into()
            }
        );
        let Step::Publish(after) = &plan.steps[2] else {
            panic!("expected a publish step")
        };
        assert_eq!(after.previous_state, None);
    }
}
