//! The status function's answer to a [`GetJobStatusRequest`](crate::GetJobStatusRequest).

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::state::{ApplicationState, FailureDetail, Links, Outcome, Phase};
use crate::usage::Usage;

/// What the gateway knows about one SparkApplication.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GetJobStatusResponse {
    /// The SparkApplication's name.
    pub application_name: String,
    /// Its namespace.
    pub namespace: String,
    /// The cluster it runs on (the gateway's name for it).
    pub cluster: String,
    /// The Kubernetes uid of the SparkApplication.
    pub uid: String,
    /// The request that created it, when the gateway did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The current state; absent until the operator has seen the application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<ApplicationState>,
    /// The current state's operator-neutral phase; absent with `state`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// How it ended; present once the application has ended, even though the current state is then
    /// `ResourceReleased` whatever happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// The operator's message for the current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The attempt number, 0 for the first run; restarts increment it.
    pub attempt: u64,
    /// The current attempt's state transitions, oldest first.
    pub history: Vec<StateTransition>,
    /// The driver pod of the current attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_pod_name: Option<String>,
    /// When the SparkApplication was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// When the current state was entered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Timestamp>,
    /// Why it failed, once it has failed or was cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureDetail>,
    /// What it used, once it has ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The history server and log links, in a job record written by a watcher with link templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// Where the answer comes from: the live object, or the job record once the object is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<StatusSource>,
}

/// Where a status answer was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusSource {
    /// The SparkApplication on the cluster.
    Live,
    /// The job record the watcher wrote before the object could go (deleted, or removed by the
    /// operator's `ttlAfterStopMillis`).
    Record,
}

/// One entry of the operator's `stateTransitionHistory`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StateTransition {
    /// The history key (the operator numbers entries 0, 1, 2, ... within an attempt).
    pub index: u64,
    /// The state entered.
    pub state: ApplicationState,
    /// Its operator-neutral phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Timestamp>,
    /// The operator's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}
