//! The job record: what the gateway keeps of an application after the cluster object is gone, so
//! "did my job succeed?" has an answer once the operator's `ttlAfterStopMillis` or a delete removed it.
//!
//! The watcher writes it before it lets go of its finalizer and before it publishes the event that
//! ends the application, so every terminal event has a record behind it; the status function answers
//! from it, in the same [`GetJobStatusResponse`] shape, once the object is gone.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::status::{GetJobStatusResponse, StateTransition};

/// The current version of the record document.
pub const JOB_RECORD_VERSION: u32 = 1;

/// One application's durable record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JobRecord {
    /// The document's version, [`JOB_RECORD_VERSION`].
    pub record_version: u32,
    /// When the watcher wrote it.
    pub recorded_at: Timestamp,
    /// The last history entry it covers; a writer never replaces a record with one that covers less
    /// (an older observation, a second watcher briefly leading).
    pub through: HistoryPosition,
    /// Who submitted the application, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_by: Option<String>,
    /// `sha256:<hex>` of the spec the gateway applied, when the gateway created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<String>,
    /// The status as it was last observed: state, outcome, the current attempt's history, failure and
    /// usage.
    pub status: GetJobStatusResponse,
    /// The history of the attempts before the current one that the operator still held, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_attempts: Vec<AttemptHistory>,
}

/// Where in an application's history an entry is: attempts in order, entries in order within one.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub struct HistoryPosition {
    /// The attempt.
    pub attempt: u64,
    /// The history key.
    pub history_index: u64,
}

/// One earlier attempt's state transitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AttemptHistory {
    /// The attempt.
    pub attempt: u64,
    /// Its transitions, oldest first.
    pub history: Vec<StateTransition>,
}

impl JobRecord {
    /// The status answer the record gives: its status, marked as read from the record.
    pub fn into_status(self) -> GetJobStatusResponse {
        GetJobStatusResponse {
            source: Some(crate::StatusSource::Record),
            ..self.status
        }
    }
}
