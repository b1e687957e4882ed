//! A SparkApplication's `status` as typed values: the ordered history entries, each tagged with its
//! attempt (what the watcher publishes), and the current state (what the status function answers).
//!
//! The operator (0.5.0, history trimming on by default) keeps the current attempt's entries in
//! `status.stateTransitionHistory` and, after a restart, the previous attempt's entries in
//! `status.previousAttemptSummary.stateTransitionHistory`; entries of older attempts are gone. Keys
//! continue across attempts, so previous entries followed by current entries are in history order.
//!
//! With trimming off the current history holds every attempt; each `ScheduledToRestart` entry then
//! opens a new attempt, which is how entries are assigned to attempts here in both cases.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;
use spark_gateway_events::{ApplicationState, UnknownState};

/// One entry of a `stateTransitionHistory`.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// The attempt the entry belongs to.
    pub attempt: u64,
    /// Its key in the history.
    pub history_index: u64,
    /// The state entered, or the name of a state this watcher does not know (a newer operator).
    pub state: Result<ApplicationState, UnknownState>,
    /// `lastTransitionTime`, when present and valid.
    pub time: Option<Timestamp>,
    /// The operator's message.
    pub message: Option<String>,
    /// How the driver's container ended, from the pod status the operator copied into the entry
    /// (`lastObservedDriverStatus`, on the `Failed`, `Succeeded` and `DriverEvicted` it writes when it
    /// sees the driver terminate).
    pub driver: Option<DriverTermination>,
}

/// A terminated driver container, as `lastObservedDriverStatus` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverTermination {
    /// `terminated.exitCode`.
    pub exit_code: i32,
    /// `terminated.reason` (`Error`, `OOMKilled`, `Completed`), else the pod's `reason` (`Evicted`).
    pub reason: Option<String>,
    /// `terminated.message`: the container's termination message (with `terminationMessagePolicy:
    /// FallbackToLogsOnError`, the end of its log when it failed), else the pod's `message`.
    pub message: Option<String>,
}

/// `status.currentState`: the state the application is in now.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrentState {
    /// The state, or the name of a state this gateway does not know.
    pub state: Result<ApplicationState, UnknownState>,
    /// `lastTransitionTime`, when present and valid.
    pub time: Option<Timestamp>,
    /// The operator's message.
    pub message: Option<String>,
}

/// The history the status holds, in history order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusView {
    /// `currentAttemptSummary.attemptInfo.id` (0 when absent, as the operator defaults it).
    pub current_attempt: u64,
    /// Entries of the previous attempt (when the status still has them) then of the current one.
    pub entries: Vec<HistoryEntry>,
    /// `currentState`, once the operator has written one.
    pub current: Option<CurrentState>,
}

impl StatusView {
    /// The entries of the current attempt, in history order.
    pub fn current_attempt_entries(&self) -> impl Iterator<Item = &HistoryEntry> {
        self.entries
            .iter()
            .filter(move |entry| entry.attempt == self.current_attempt)
    }

    /// The last entry's state, if known.
    pub fn last_state(&self) -> Option<ApplicationState> {
        self.entries
            .last()
            .and_then(|entry| entry.state.as_ref().ok().copied())
    }
}

/// A `status` that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The status does not have the operator's shape.
    #[error("status does not have the shape of a spark.apache.org/v1 SparkApplication status")]
    Shape(#[source] serde_json::Error),
    /// A history key is not a number.
    #[error("stateTransitionHistory key {0:?} is not a number")]
    HistoryKey(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawStatus {
    #[serde(default)]
    state_transition_history: BTreeMap<String, RawEntry>,
    #[serde(default)]
    previous_attempt_summary: Option<RawAttemptSummary>,
    #[serde(default)]
    current_attempt_summary: Option<RawAttemptSummary>,
    #[serde(default)]
    current_state: Option<RawCurrentState>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCurrentState {
    #[serde(default)]
    current_state_summary: Option<String>,
    #[serde(default)]
    last_transition_time: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAttemptSummary {
    #[serde(default)]
    attempt_info: Option<RawAttemptInfo>,
    #[serde(default)]
    state_transition_history: Option<BTreeMap<String, RawEntry>>,
}

#[derive(Deserialize)]
struct RawAttemptInfo {
    #[serde(default)]
    id: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntry {
    current_state_summary: String,
    #[serde(default)]
    last_transition_time: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    last_observed_driver_status: Option<RawPodStatus>,
}

/// The few fields of a `PodStatus` the gateway reads; the rest is skipped unparsed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawPodStatus {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    container_statuses: Vec<RawContainerStatus>,
}

#[derive(Deserialize)]
struct RawContainerStatus {
    #[serde(default)]
    state: Option<RawContainerState>,
}

#[derive(Deserialize)]
struct RawContainerState {
    #[serde(default)]
    terminated: Option<RawTerminated>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawTerminated {
    exit_code: i32,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl RawPodStatus {
    /// The operator counts every container as the driver's unless
    /// `spark.kubernetes.driver.podTemplateContainerName` names one (`ModelUtils`
    /// `findDriverMainContainerStatus`), and fails the application if any of them failed: the first
    /// failed one explains it, else the first terminated one.
    fn termination(&self) -> Option<DriverTermination> {
        let terminated: Vec<&RawTerminated> = self
            .container_statuses
            .iter()
            .filter_map(|c| c.state.as_ref()?.terminated.as_ref())
            .collect();
        let chosen = terminated
            .iter()
            .find(|t| t.exit_code != 0)
            .or_else(|| terminated.first())?;
        Some(DriverTermination {
            exit_code: chosen.exit_code,
            reason: message(chosen.reason.clone()).or_else(|| message(self.reason.clone())),
            message: message(chosen.message.clone()).or_else(|| message(self.message.clone())),
        })
    }
}

impl StatusView {
    /// Reads `.status`; an absent or `null` status (the operator has not seen the application yet) is
    /// an empty history.
    pub fn from_status(status: Option<&Value>) -> Result<Self, StatusError> {
        let Some(status) = status.filter(|value| !value.is_null()) else {
            return Ok(Self::default());
        };
        let raw = RawStatus::deserialize(status).map_err(StatusError::Shape)?;
        let attempt_of = |summary: &Option<RawAttemptSummary>| {
            summary
                .as_ref()
                .and_then(|s| s.attempt_info.as_ref())
                .map_or(0, |info| info.id)
        };
        let current_attempt = attempt_of(&raw.current_attempt_summary);
        let current = numbered(&raw.state_transition_history)?;
        let first_current_key = current.first().map_or(u64::MAX, |(key, _)| *key);

        let mut entries = Vec::new();
        if let Some(previous) = &raw.previous_attempt_summary {
            let previous_attempt = attempt_of(&raw.previous_attempt_summary);
            // A previous attempt is older than the current one by definition; a summary claiming
            // otherwise is ignored rather than allowed to reorder history.
            if previous_attempt < current_attempt
                && let Some(history) = &previous.state_transition_history
            {
                let mut older = numbered(history)?;
                older.retain(|(key, _)| *key < first_current_key);
                entries.extend(assign_attempts(&older, previous_attempt));
            }
        }
        entries.extend(assign_attempts(&current, current_attempt));
        // A `currentState` without a summary is the operator's empty placeholder, not a state.
        let current = raw.current_state.and_then(|raw| {
            let summary = raw.current_state_summary?;
            Some(CurrentState {
                state: summary.parse(),
                time: timestamp(raw.last_transition_time.as_deref()),
                message: message(raw.message),
            })
        });
        Ok(Self {
            current_attempt,
            entries,
            current,
        })
    }
}

/// The entries with numeric keys, in numeric order (string order would put "10" before "2").
fn numbered(history: &BTreeMap<String, RawEntry>) -> Result<Vec<(u64, &RawEntry)>, StatusError> {
    let mut entries = history
        .iter()
        .map(|(key, entry)| {
            key.parse::<u64>()
                .map(|parsed| (parsed, entry))
                .map_err(|_| StatusError::HistoryKey(key.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    entries.sort_by_key(|(key, _)| *key);
    Ok(entries)
}

/// Tags entries (in key order) with attempts: the last `ScheduledToRestart` opens `last_attempt`, each
/// earlier one opens the attempt before.
fn assign_attempts(entries: &[(u64, &RawEntry)], last_attempt: u64) -> Vec<HistoryEntry> {
    let mut attempt = last_attempt;
    let mut tagged: Vec<HistoryEntry> = entries
        .iter()
        .rev()
        .map(|(key, entry)| {
            let state = entry.current_state_summary.parse::<ApplicationState>();
            let opens_attempt = state == Ok(ApplicationState::ScheduledToRestart);
            let tagged = HistoryEntry {
                attempt,
                history_index: *key,
                state,
                time: timestamp(entry.last_transition_time.as_deref()),
                message: message(entry.message.clone()),
                driver: entry
                    .last_observed_driver_status
                    .as_ref()
                    .and_then(RawPodStatus::termination),
            };
            if opens_attempt {
                attempt = attempt.saturating_sub(1);
            }
            tagged
        })
        .collect();
    tagged.reverse();
    tagged
}

fn timestamp(text: Option<&str>) -> Option<Timestamp> {
    text.and_then(|t| t.parse().ok())
}

/// The operator writes an empty message where it has none to give.
fn message(text: Option<String>) -> Option<String> {
    text.filter(|m| !m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use spark_gateway_events::ApplicationState::*;

    fn summary(view: &StatusView) -> Vec<(u64, u64, ApplicationState)> {
        view.entries
            .iter()
            .map(|e| (e.attempt, e.history_index, e.state.clone().unwrap()))
            .collect()
    }

    #[test]
    fn absent_or_null_status_is_an_empty_history() {
        assert_eq!(
            StatusView::from_status(None).unwrap(),
            StatusView::default()
        );
        assert_eq!(
            StatusView::from_status(Some(&Value::Null)).unwrap(),
            StatusView::default()
        );
    }

    #[test]
    fn keys_are_ordered_numerically_with_times_and_messages() {
        let mut history = serde_json::Map::new();
        for key in 0..12 {
            let state = if key == 0 {
                "Submitted"
            } else {
                "RunningHealthy"
            };
            history.insert(
                key.to_string(),
                json!({"currentStateSummary": state, "lastTransitionTime": "2026-11-23T10:00:00Z", "message": format!("m{key}")}),
            );
        }
        let status = json!({"stateTransitionHistory": history, "currentAttemptSummary": {"attemptInfo": {"id": 0}}});
        let view = StatusView::from_status(Some(&status)).unwrap();
        let keys: Vec<u64> = view.entries.iter().map(|e| e.history_index).collect();
        assert_eq!(keys, (0..12).collect::<Vec<_>>());
        assert_eq!(view.entries[11].message.as_deref(), Some("m11"));
        assert_eq!(
            view.entries[0].time,
            Some("2026-11-23T10:00:00Z".parse().unwrap())
        );
    }

    #[test]
    fn trimmed_restart_puts_the_previous_attempt_first() {
        let status = json!({
            "stateTransitionHistory": {
                "6": {"currentStateSummary": "ScheduledToRestart"},
                "7": {"currentStateSummary": "DriverRequested"}
            },
            "previousAttemptSummary": {
                "attemptInfo": {"id": 0},
                "stateTransitionHistory": {
                    "0": {"currentStateSummary": "Submitted"},
                    "5": {"currentStateSummary": "Failed"}
                }
            },
            "currentAttemptSummary": {"attemptInfo": {"id": 1}}
        });
        let view = StatusView::from_status(Some(&status)).unwrap();
        assert_eq!(view.current_attempt, 1);
        assert_eq!(
            view.current_attempt_entries()
                .map(|e| e.history_index)
                .collect::<Vec<_>>(),
            [6, 7]
        );
        assert_eq!(
            summary(&view),
            [
                (0, 0, Submitted),
                (0, 5, Failed),
                (1, 6, ScheduledToRestart),
                (1, 7, DriverRequested)
            ]
        );
    }

    #[test]
    fn untrimmed_history_is_split_at_each_restart() {
        let status = json!({
            "stateTransitionHistory": {
                "0": {"currentStateSummary": "Submitted"},
                "1": {"currentStateSummary": "Failed"},
                "2": {"currentStateSummary": "ScheduledToRestart"},
                "3": {"currentStateSummary": "Failed"},
                "4": {"currentStateSummary": "ScheduledToRestart"},
                "5": {"currentStateSummary": "DriverRequested"}
            },
            "currentAttemptSummary": {"attemptInfo": {"id": 2}}
        });
        let view = StatusView::from_status(Some(&status)).unwrap();
        let attempts: Vec<u64> = view.entries.iter().map(|e| e.attempt).collect();
        assert_eq!(attempts, [0, 0, 1, 1, 2, 2]);
    }

    #[test]
    fn unknown_states_are_kept_by_name() {
        let status =
            json!({"stateTransitionHistory": {"0": {"currentStateSummary": "Hibernating"}}});
        let view = StatusView::from_status(Some(&status)).unwrap();
        assert_eq!(
            view.entries[0].state,
            Err(UnknownState("Hibernating".into()))
        );
        assert_eq!(view.last_state(), None);
    }

    #[test]
    fn current_state_is_read_and_an_empty_placeholder_is_none() {
        let status = json!({
            "currentState": {"currentStateSummary": "RunningHealthy", "lastTransitionTime": "2026-11-23T10:00:15Z", "message": ""},
            "stateTransitionHistory": {"0": {"currentStateSummary": "Submitted", "message": "created"}}
        });
        let view = StatusView::from_status(Some(&status)).unwrap();
        assert_eq!(
            view.current,
            Some(CurrentState {
                state: Ok(RunningHealthy),
                time: Some("2026-11-23T10:00:15Z".parse().unwrap()),
                message: None,
            })
        );
        assert_eq!(view.entries[0].message.as_deref(), Some("created"));
        let placeholder = json!({"currentState": {}});
        assert_eq!(
            StatusView::from_status(Some(&placeholder)).unwrap().current,
            None
        );
    }

    #[test]
    fn malformed_status_is_an_error() {
        let bad_key =
            json!({"stateTransitionHistory": {"first": {"currentStateSummary": "Submitted"}}});
        assert!(
            matches!(StatusView::from_status(Some(&bad_key)), Err(StatusError::HistoryKey(k)) if k == "first")
        );
        let bad_shape = json!({"stateTransitionHistory": ["Submitted"]});
        assert!(matches!(
            StatusView::from_status(Some(&bad_shape)),
            Err(StatusError::Shape(_))
        ));
    }
}
