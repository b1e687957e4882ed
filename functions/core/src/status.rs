//! A SparkApplication object read back from the cluster to the status function's answer, and to the
//! job record the watcher keeps of it: one builder for both, so an answer read from the record has
//! exactly the shape and the numbers of the live one.
//!
//! The outcome is read from the whole history of the current attempt, because the operator's final
//! state is `ResourceReleased` whatever happened.

use jiff::Timestamp;
use serde_json::Value;
use spark_gateway_events::{
    ApplicationState, AttemptHistory, GetJobStatusResponse, HistoryPosition, JOB_RECORD_VERSION,
    JobRecord, StateTransition, StatusSource, UnknownState,
};

use crate::apache_v1::{self, HistoryEntry, SpecView, StateMeaning, StatusView, driver_pod_name};
use crate::labels::REQUEST_ID_LABEL;
use crate::usage;

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

/// What the answer and the record say about who an application is, read off its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectFacts {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.uid`.
    pub uid: String,
    /// The gateway's request id label.
    pub request_id: Option<String>,
    /// `metadata.creationTimestamp`.
    pub created_at: Option<Timestamp>,
}

/// The status function's answer for `app`, a SparkApplication on the cluster the gateway calls `cluster`.
pub fn job_status(app: &Value, cluster: &str) -> Result<GetJobStatusResponse, StatusError> {
    let metadata = app
        .get("metadata")
        .ok_or(StatusError::Missing("metadata"))?;
    let text =
        |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
    let facts = ObjectFacts {
        name: text(metadata, "name").ok_or(StatusError::Missing("metadata.name"))?,
        namespace: text(metadata, "namespace").ok_or(StatusError::Missing("metadata.namespace"))?,
        uid: text(metadata, "uid").ok_or(StatusError::Missing("metadata.uid"))?,
        request_id: metadata
            .pointer(&format!("/labels/{}", REQUEST_ID_LABEL.replace('/', "~1")))
            .and_then(Value::as_str)
            .map(str::to_string),
        created_at: text(metadata, "creationTimestamp").and_then(|t| t.parse().ok()),
    };
    let view = StatusView::from_status(app.get("status"))?;
    let spec = SpecView::from_spec(app.get("spec"));
    let mut answer = status_answer(&facts, &view, spec.as_ref(), cluster)?;
    answer.source = Some(StatusSource::Live);
    Ok(answer)
}

/// The answer for an application of `facts` with status `view` and spec `spec`; `source` is left for
/// the caller, who knows where it read.
pub fn status_answer(
    facts: &ObjectFacts,
    view: &StatusView,
    spec: Option<&SpecView>,
    cluster: &str,
) -> Result<GetJobStatusResponse, StatusError> {
    let history = transitions(view.current_attempt_entries())?;
    let outcome = apache_v1::outcome(history.iter().map(|e| (e.state, e.message.as_deref())));
    let (state, last_transition_time, message) = match &view.current {
        Some(current) => (
            Some(known(&current.state, "currentState".into())?),
            current.time,
            current.message.clone(),
        ),
        None => (None, None, None),
    };
    let attempt = view.current_attempt;
    let usage = outcome
        .as_ref()
        .and_then(|_| usage::of_application(spec, view));
    Ok(GetJobStatusResponse {
        // Named from the attempt the status is on; a state before the operator's first write has
        // no driver yet.
        driver_pod_name: state.map(|_| driver_pod_name(&facts.namespace, &facts.name, attempt)),
        namespace: facts.namespace.clone(),
        cluster: cluster.to_string(),
        uid: facts.uid.clone(),
        request_id: facts.request_id.clone(),
        created_at: facts.created_at,
        phase: state.map(StateMeaning::phase),
        state,
        failure: outcome
            .as_ref()
            .and_then(|outcome| apache_v1::failure_detail(outcome, view.current_attempt_entries())),
        usage,
        outcome,
        message,
        attempt,
        history,
        last_transition_time,
        application_name: facts.name.clone(),
        links: None,
        source: None,
    })
}

/// What the record of an application says beyond its status answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordFacts {
    /// The submitted-by annotation.
    pub submitted_by: Option<String>,
    /// The spec-hash annotation.
    pub spec_hash: Option<String>,
}

/// The job record of an application as observed now; `None` while its status holds no history (there
/// is nothing to keep yet).
pub fn job_record(
    facts: &ObjectFacts,
    record_facts: &RecordFacts,
    view: &StatusView,
    spec: Option<&SpecView>,
    cluster: &str,
    now: Timestamp,
) -> Result<Option<JobRecord>, StatusError> {
    let Some(last) = view.entries.last() else {
        return Ok(None);
    };
    let mut earlier_attempts: Vec<AttemptHistory> = Vec::new();
    for entry in view
        .entries
        .iter()
        .filter(|e| e.attempt != view.current_attempt)
    {
        let transition = transitions(std::iter::once(entry))?.remove(0);
        match earlier_attempts.last_mut() {
            Some(attempt) if attempt.attempt == entry.attempt => attempt.history.push(transition),
            _ => earlier_attempts.push(AttemptHistory {
                attempt: entry.attempt,
                history: vec![transition],
            }),
        }
    }
    Ok(Some(JobRecord {
        record_version: JOB_RECORD_VERSION,
        recorded_at: now,
        through: HistoryPosition {
            attempt: last.attempt,
            history_index: last.history_index,
        },
        submitted_by: record_facts.submitted_by.clone(),
        spec_hash: record_facts.spec_hash.clone(),
        status: status_answer(facts, view, spec, cluster)?,
        earlier_attempts,
    }))
}

fn known(
    state: &Result<ApplicationState, UnknownState>,
    field: String,
) -> Result<ApplicationState, StatusError> {
    state
        .clone()
        .map_err(|UnknownState(value)| StatusError::UnknownState { field, value })
}

fn transitions<'a>(
    entries: impl Iterator<Item = &'a HistoryEntry>,
) -> Result<Vec<StateTransition>, StatusError> {
    entries
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
        .collect()
}
