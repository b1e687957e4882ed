//! A SparkApplication object read back from the cluster to the status function's answer.
//!
//! The outcome is read from the whole history of the current attempt, because the operator's final
//! state is `ResourceReleased` whatever happened.

use serde_json::Value;
use spark_gateway_events::{ApplicationState, GetJobStatusResponse, StateTransition, UnknownState};

use crate::apache_v1::{self, StateMeaning, StatusView, driver_pod_name};
use crate::labels::REQUEST_ID_LABEL;

/// The object does not look like a SparkApplication written by the operator.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// A required field is missing.
    #[error("SparkApplication has no {0}")]
    Missing(&'static str),
    /// The status does not have the operator's shape.
    #[error(transparent)]
    Shape(#[from] apache_v1::StatusError),
    /// The operator wrote a state this gateway does not know (a newer operator?).
    #[error("SparkApplication {field} has unknown state {value:?}")]
    UnknownState {
        /// Where.
        field: String,
        /// What.
        value: String,
    },
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
    let view = StatusView::from_status(app.get("status"))?;
    let known = |state: &Result<ApplicationState, UnknownState>, field: String| {
        state
            .clone()
            .map_err(|UnknownState(value)| StatusError::UnknownState { field, value })
    };
    let history = view
        .current_attempt_entries()
        .map(|entry| {
            let state = known(
                &entry.state,
                format!("stateTransitionHistory.{}", entry.history_index),
            )?;
            Ok(StateTransition {
                index: entry.history_index,
                state,
                phase: Some(state.phase()),
                time: entry.time,
                message: entry.message.clone(),
            })
        })
        .collect::<Result<Vec<_>, StatusError>>()?;
    let outcome = apache_v1::outcome(history.iter().map(|e| (e.state, e.message.as_deref())));
    let (state, last_transition_time, message) = match view.current {
        Some(current) => (
            Some(known(&current.state, "currentState".into())?),
            current.time,
            current.message,
        ),
        None => (None, None, None),
    };
    let attempt = view.current_attempt;
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
        phase: state.map(StateMeaning::phase),
        state,
        outcome,
        message,
        attempt,
        history,
        last_transition_time,
        application_name: name,
    })
}
