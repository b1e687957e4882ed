//! Events on the completion topic: every state change of a SparkApplication, what each request did in
//! Kubernetes, and the rejection of a request that never got there. Together they give every request
//! exactly one terminal event a subscriber can wait for: for a submit, the state change that carries an
//! `outcome`; for a delete, its `RequestApplied`; for a refused request, its `RequestRejected`.
//!
//! Event data is read tolerantly (unknown fields ignored) so that adding optional fields stays compatible
//! for subscribers.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::cloudevent::{CloudEvent, EventData};
use crate::request::{NotifyTarget, RequestAction};
use crate::state::{ApplicationState, FailureDetail, Links, Outcome, Phase};
use crate::usage::Usage;

/// The CloudEvents `type` of [`ApplicationStateChanged`].
pub const STATE_CHANGED_EVENT_TYPE: &str = "io.spark-gateway.application.state-changed.v1";
/// The CloudEvents `type` of [`RequestRejected`].
pub const REQUEST_REJECTED_EVENT_TYPE: &str = "io.spark-gateway.request.rejected.v1";
/// The CloudEvents `type` of [`RequestApplied`].
pub const REQUEST_APPLIED_EVENT_TYPE: &str = "io.spark-gateway.request.applied.v1";

/// A SparkApplication entered a state (one entry of its `stateTransitionHistory`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApplicationStateChanged {
    /// The SparkApplication's name.
    pub application_name: String,
    /// Its namespace.
    pub namespace: String,
    /// The cluster (the gateway's name for it).
    pub cluster: String,
    /// The Kubernetes uid; a re-created application of the same name has a new one.
    pub uid: String,
    /// The request that created the application, when the gateway did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Who submitted it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_by: Option<String>,
    /// The state entered, in the operator's own words (the Apache operator's state names).
    pub state: ApplicationState,
    /// The phase the state belongs to, the same for every operator target: follow an application by
    /// this and `outcome` without knowing the operator's state names. Absent only on events published
    /// before the field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The state before it in the same attempt; absent for the first entry of an attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_state: Option<ApplicationState>,
    /// The attempt (0 for the first run).
    pub attempt: u64,
    /// The entry's key in the attempt's `stateTransitionHistory`.
    pub history_index: u64,
    /// The operator's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How the application ended; present exactly on the event that ends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Why it failed, on the event that ends a failed or cancelled application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<FailureDetail>,
    /// What it used, on the event that ends it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The Spark UI, history server and log links, when the cluster has link templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<Links>,
    /// The submit's notification targets, which the notifier delivers this event to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<NotifyTarget>,
}

impl EventData for ApplicationStateChanged {
    const EVENT_TYPE: &'static str = STATE_CHANGED_EVENT_TYPE;
}

impl ApplicationStateChanged {
    /// The event id: the same transition always gets the same id, so republishing after a restart or a
    /// broker outage is recognisable as a duplicate.
    pub fn event_id(&self) -> String {
        state_changed_event_id(&self.uid, self.attempt, self.history_index)
    }

    /// The CloudEvents `subject`: `namespace/name`.
    pub fn subject(&self) -> String {
        format!("{}/{}", self.namespace, self.application_name)
    }
}

/// The id of the event for history entry `history_index` of attempt `attempt` of the application `uid`.
pub fn state_changed_event_id(uid: &str, attempt: u64, history_index: u64) -> String {
    format!("{uid}/{attempt}/{history_index}")
}

/// The CloudEvents `source` of events about applications on `cluster`.
pub fn cluster_event_source(cluster: &str) -> String {
    format!("/spark-gateway/clusters/{cluster}")
}

/// A request was refused before anything was created or deleted in Kubernetes; its terminal event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequestRejected {
    /// The request's id, when the message was readable enough to have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// What the request asked for, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<RequestAction>,
    /// The application named, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_name: Option<String>,
    /// The namespace named, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The cluster named, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Who sent it, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_by: Option<String>,
    /// Machine-readable reason.
    pub reason: RejectionReason,
    /// What was wrong, for people.
    pub message: String,
    /// Every offending field, each with the rule it broke.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<FieldViolation>,
    /// Where the message was read from, so it can be found on the dead-letter channel.
    pub origin: MessageOrigin,
    /// The submit's notification targets, when its policy check got as far as admitting them: the
    /// notifier delivers the rejection there too, so a caller waiting on its reply queue hears of it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<NotifyTarget>,
}

impl EventData for RequestRejected {
    const EVENT_TYPE: &'static str = REQUEST_REJECTED_EVENT_TYPE;
}

/// How much of a request a [`RequestRejected`] echoes: enough to recognise it and fix it, never so much
/// that the event outgrows a broker's or a queue attribute's limit, whatever the request held.
pub mod rejection_bounds {
    /// Characters of each echoed identifying field (names, cluster, submitter).
    pub const ECHOED_FIELD_CHARS: usize = 253;
    /// Characters of the message.
    pub const MESSAGE_CHARS: usize = 2048;
    /// Violations listed; the last slot says how many more there were.
    pub const VIOLATIONS: usize = 50;
    /// Characters of a violation's field path.
    pub const VIOLATION_FIELD_CHARS: usize = 256;
    /// Characters of a violation's message.
    pub const VIOLATION_MESSAGE_CHARS: usize = 512;
}

/// `text` cut to at most `max` characters, marked with `…` when cut.
pub fn truncate_chars(text: &str, max: usize) -> String {
    if text.char_indices().nth(max).is_none() {
        return text.to_string();
    }
    let end = text
        .char_indices()
        .nth(max.saturating_sub(1))
        .map_or(0, |(i, _)| i);
    format!("{}…", &text[..end])
}

impl RequestRejected {
    /// The rejection with everything it echoes of the request cut to [`rejection_bounds`], so it always
    /// fits the completion topic and the dead-letter attributes, however large the request was.
    pub fn bounded(mut self) -> Self {
        use rejection_bounds::*;
        for field in [
            &mut self.request_id,
            &mut self.application_name,
            &mut self.namespace,
            &mut self.cluster,
            &mut self.submitted_by,
        ]
        .into_iter()
        .flatten()
        {
            *field = truncate_chars(field, ECHOED_FIELD_CHARS);
        }
        self.message = truncate_chars(&self.message, MESSAGE_CHARS);
        if self.violations.len() > VIOLATIONS {
            let more = self.violations.len() - (VIOLATIONS - 1);
            self.violations.truncate(VIOLATIONS - 1);
            self.violations.push(FieldViolation {
                field: String::new(),
                rule: "more_violations".into(),
                message: format!("{more} more violations are not listed"),
            });
        }
        for violation in &mut self.violations {
            violation.field = truncate_chars(&violation.field, VIOLATION_FIELD_CHARS);
            violation.message = truncate_chars(&violation.message, VIOLATION_MESSAGE_CHARS);
        }
        self
    }

    /// A stable id: the request id when known, otherwise the message's place on its channel, so a
    /// rejection published twice (a crash between publish and acknowledge) is recognisably one.
    pub fn event_id(&self) -> String {
        match &self.request_id {
            Some(request_id) => format!("rejected/{request_id}"),
            None => format!("rejected/{}", self.origin.locator()),
        }
    }
}

/// A request took effect in Kubernetes. A delete's terminal event; for a submit it comes first, and the
/// application's state changes (ending with the one that carries the outcome) follow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequestApplied {
    /// The request's id.
    pub request_id: String,
    /// What the request asked for.
    pub action: RequestAction,
    /// The application.
    pub application_name: String,
    /// Its namespace.
    pub namespace: String,
    /// The cluster the request named, if it named one (absent: the default cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The application's uid, when one existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// What happened.
    pub result: AppliedResult,
    /// Who sent the request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_by: Option<String>,
    /// The submit's notification targets (a dry run's `validated` is its terminal event).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<NotifyTarget>,
}

impl EventData for RequestApplied {
    const EVENT_TYPE: &'static str = REQUEST_APPLIED_EVENT_TYPE;
}

impl RequestApplied {
    /// One id per request: a redelivered request that finds its work done (a `duplicate` submit, an
    /// `already_gone` delete) publishes under the same id, so subscribers keep the first.
    pub fn event_id(&self) -> String {
        match self.result {
            // A dry run shares nothing with a later real run of the same request id.
            AppliedResult::Validated => format!("validated/{}", self.request_id),
            _ => format!("applied/{}", self.request_id),
        }
    }
}

/// What an applied request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppliedResult {
    /// The submit created the SparkApplication.
    Created,
    /// The submit found its SparkApplication already created by the same request id.
    Duplicate,
    /// The delete was accepted; the application ends with outcome `cancelled` unless it had ended.
    Deleted,
    /// The delete found no such application.
    AlreadyGone,
    /// A dry-run submit passed the policy and the cluster's server-side dry run; nothing was created.
    Validated,
}

/// Why a request was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RejectionReason {
    /// The message is not JSON, or not a JSON object.
    MalformedMessage,
    /// The JSON does not fit the contract: unknown, missing or mistyped fields, or an unknown action.
    InvalidRequest,
    /// The request is well-formed but the gateway's policy forbids it (names, allow-lists, caps,
    /// forbidden Spark configuration).
    PolicyViolation,
    /// The named cluster is not configured.
    UnknownCluster,
    /// An application of that name exists and was created by another request.
    Conflict,
    /// The cluster refused the operation (permissions, or a delete of an application the gateway did not
    /// create).
    Forbidden,
    /// The cluster found the SparkApplication invalid (Kubernetes 422), or the namespace does not exist.
    RejectedByCluster,
    /// A transient failure (cluster, proxy or Vault unavailable) lasted through every delivery attempt;
    /// the message says the last error. The request may be sent again once the cause is fixed.
    RetriesExhausted,
}

/// One offending field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FieldViolation {
    /// The field's path in the request, dot-separated (`driver.memory`, `spark_conf.spark.master`).
    pub field: String,
    /// The rule broken, machine-readable (`unknown_field`, `required`, `invalid_type`, `allow_list`, ...).
    pub rule: String,
    /// What is wrong, for people.
    pub message: String,
}

/// Where a request message came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "transport", rename_all = "snake_case")]
pub enum MessageOrigin {
    /// An SQS queue.
    Sqs {
        /// The queue's ARN or URL.
        queue: String,
        /// The SQS message id.
        message_id: String,
    },
    /// A Kafka topic.
    Kafka {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The record's offset.
        offset: i64,
    },
    /// A direct call (no queue).
    Direct {
        /// The caller's invocation id.
        invocation_id: String,
    },
}

impl MessageOrigin {
    /// A compact, unique text for the message's place.
    pub fn locator(&self) -> String {
        match self {
            Self::Sqs { queue, message_id } => format!("sqs/{queue}/{message_id}"),
            Self::Kafka {
                topic,
                partition,
                offset,
            } => format!("kafka/{topic}/{partition}/{offset}"),
            Self::Direct { invocation_id } => format!("direct/{invocation_id}"),
        }
    }
}

/// Any event on the completion topic, told apart by its CloudEvents `type`.
///
/// Not boxed although state changes are the largest: a subscriber decodes one at a time and handles it
/// there, so no collection of them pays for the size difference.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum CompletionEvent {
    /// An [`ApplicationStateChanged`] event.
    StateChanged(CloudEvent<ApplicationStateChanged>),
    /// A [`RequestRejected`] event.
    Rejected(CloudEvent<RequestRejected>),
    /// A [`RequestApplied`] event.
    Applied(CloudEvent<RequestApplied>),
}

impl CompletionEvent {
    /// The request the event answers, when known.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::StateChanged(event) => event.data.request_id.as_deref(),
            Self::Rejected(event) => event.data.request_id.as_deref(),
            Self::Applied(event) => Some(&event.data.request_id),
        }
    }

    /// The event ends its request: a rejection, an applied delete, or a state change with an outcome
    /// (which ends the submit that created the application).
    pub fn is_terminal(&self) -> bool {
        match self {
            Self::StateChanged(event) => event.data.outcome.is_some(),
            Self::Rejected(_) => true,
            Self::Applied(event) => {
                event.data.action == RequestAction::Delete
                    || event.data.result == AppliedResult::Validated
            }
        }
    }

    /// The submit's notification targets the event carries.
    pub fn notify(&self) -> &[NotifyTarget] {
        match self {
            Self::StateChanged(event) => &event.data.notify,
            Self::Rejected(event) => &event.data.notify,
            Self::Applied(event) => &event.data.notify,
        }
    }

    /// The cluster the event is about, when it names one (a request that named none went to the
    /// default cluster).
    pub fn cluster(&self) -> Option<&str> {
        match self {
            Self::StateChanged(event) => Some(&event.data.cluster),
            Self::Rejected(event) => event.data.cluster.as_deref(),
            Self::Applied(event) => event.data.cluster.as_deref(),
        }
    }

    /// The CloudEvents id.
    pub fn id(&self) -> &str {
        match self {
            Self::StateChanged(event) => &event.id,
            Self::Rejected(event) => &event.id,
            Self::Applied(event) => &event.id,
        }
    }
}
