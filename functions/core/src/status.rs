//! A SparkApplication object read back from the cluster to the status function's answer.
//!
//! The outcome is read from the whole history of the current attempt, because the operator's final
//! state is `ResourceReleased` whatever happened.

use jiff::Timestamp;
use serde_json::Value;
use spark_gateway_events::{ApplicationState, GetJobStatusResponse, Outcome, StateTransition};

use crate::labels::REQUEST_ID_LABEL;
use crate::names::driver_pod_name;

/// The object does not look like a SparkApplication written by the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    /// A required field is missing.
    #[error("SparkApplication has no {0}")]
    Missing(&'static str),
    /// The operator wrote a state this gateway does not know (a newer operator?).
    #[error("SparkApplication {field} has unknown state {value:?}")]
    UnknownState {
        /// Where.
        field: String,
        /// What.
        value: String,
    },
    /// A history key is not a number.
    #[error("stateTransitionHistory key {0:?} is not a number")]
    HistoryKey(String),
}

/// One parsed entry of `stateTransitionHistory`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Its numeric key.
    pub index: u64,
    /// The state entered.
    pub state: ApplicationState,
    /// When.
    pub time: Option<Timestamp>,
    /// The operator's message.
    pub message: Option<String>,
}

/// The entries of a `stateTransitionHistory` object, ordered by their numeric keys.
pub fn parse_history(history: Option<&Value>) -> Result<Vec<HistoryEntry>, StatusError> {
    let Some(entries) = history.and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    let mut parsed = entries
        .iter()
        .map(|(key, entry)| {
            let index = key
                .parse()
                .map_err(|_| StatusError::HistoryKey(key.clone()))?;
            let (state, time, message) =
                parse_state(entry, &format!("stateTransitionHistory.{key}"))?;
            Ok(HistoryEntry {
                index,
                state,
                time,
                message,
            })
        })
        .collect::<Result<Vec<_>, StatusError>>()?;
    parsed.sort_by_key(|entry| entry.index);
    Ok(parsed)
}

fn parse_state(
    entry: &Value,
    field: &str,
) -> Result<(ApplicationState, Option<Timestamp>, Option<String>), StatusError> {
    let summary = entry
        .get("currentStateSummary")
        .and_then(Value::as_str)
        .ok_or(StatusError::Missing("currentStateSummary"))?;
    let state = summary.parse().map_err(|_| StatusError::UnknownState {
        field: field.to_string(),
        value: summary.to_string(),
    })?;
    let time = entry
        .get("lastTransitionTime")
        .and_then(Value::as_str)
        .and_then(|t| t.parse().ok());
    let message = entry
        .get("message")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    Ok((state, time, message))
}

/// The attempt number in `status.currentAttemptSummary.attemptInfo.id` (0 before any restart).
pub fn current_attempt(status: Option<&Value>) -> u64 {
    status
        .and_then(|s| s.pointer("/currentAttemptSummary/attemptInfo/id"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// The status function's answer for `app`, a SparkApplication on the cluster the gateway calls `cluster`.
pub fn job_status(app: &Value, cluster: &str) -> Result<GetJobStatusResponse, StatusError> {
    let metadata = app
        .get("metadata")
        .ok_or(StatusError::Missing("metadata"))?;
    let text =
        |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
    let name = text(metadata, "name").ok_or(StatusError::Missing("metadata.name"))?;
    let namespace =
        text(metadata, "namespace").ok_or(StatusError::Missing("metadata.namespace"))?;
    let status = app.get("status");
    let history = parse_history(status.and_then(|s| s.get("stateTransitionHistory")))?;
    let current = match status.and_then(|s| s.get("currentState")) {
        Some(state) if state.get("currentStateSummary").is_some() => {
            Some(parse_state(state, "currentState")?)
        }
        _ => None,
    };
    let attempt = current_attempt(status);
    let outcome = Outcome::from_history(history.iter().map(|e| (e.state, e.message.as_deref())));
    let (state, last_transition_time, message) = match current {
        Some((state, time, message)) => (Some(state), time, message),
        None => (None, None, None),
    };
    Ok(GetJobStatusResponse {
        // Named from the attempt the status is on; a state before the operator's first write has
        // no driver yet.
        driver_pod_name: state.map(|_| driver_pod_name(&namespace, &name, attempt)),
        namespace,
        cluster: cluster.to_string(),
        uid: text(metadata, "uid").ok_or(StatusError::Missing("metadata.uid"))?,
        request_id: metadata
            .pointer(&format!("/labels/{}", REQUEST_ID_LABEL.replace('/', "~1")))
            .and_then(Value::as_str)
            .map(str::to_string),
        created_at: text(metadata, "creationTimestamp").and_then(|t| t.parse().ok()),
        state,
        outcome,
        message,
        attempt,
        history: history
            .into_iter()
            .map(|e| StateTransition {
                index: e.index,
                state: e.state,
                time: e.time,
                message: e.message,
            })
            .collect(),
        last_transition_time,
        application_name: name,
    })
}
