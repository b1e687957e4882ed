//! Spark Gateway's event contract: every message that enters or leaves the gateway, as serde types, with
//! the JSON Schemas and the AsyncAPI document generated from or checked against them.
//!
//! # Layout
//! - [`request`]: what producers send: [`JobRequest`] (submit or delete, on the request queue or topic)
//!   and [`GetJobStatusRequest`] (to the status function).
//! - [`status`]: the status function's answer, [`GetJobStatusResponse`].
//! - [`record`]: the [`JobRecord`] kept after the cluster object is gone; [`usage`]: what a job used.
//! - [`state`]: the operator-neutral [`Phase`] and [`Outcome`], and the operator's 17 [`ApplicationState`]s.
//! - [`events`]: what subscribers receive on the completion topic: [`ApplicationStateChanged`],
//!   [`RequestApplied`] and [`RequestRejected`], each in a [`CloudEvent`].
//! - [`cloudevent`]: the CloudEvents 1.0 envelope.
//! - [`decode`]: reading bytes into these types with errors that name the field.
//! - [`ids`]: the validated request id and trace context.
//! - [`schema`]: the JSON Schema documents.
//!
//! ```text
//! producer ──JobRequest──▶ SQS / Kafka ──▶ gateway ──▶ Kubernetes ──▶ operator
//!                                            │                          │ status
//!                                            ▼ RequestRejected          ▼ ApplicationStateChanged
//!                                        completion topic ◀──────── watcher
//! ```
//!
//! Inputs are strict (unknown fields are errors); events are read tolerantly (unknown fields ignored), so
//! the gateway can add optional event fields without breaking subscribers.
//! The crate does no I/O.

pub mod cloudevent;
pub mod decode;
pub mod events;
pub mod ids;
pub mod record;
pub mod request;
pub mod schema;
pub mod state;
pub mod status;
pub mod usage;

/// The default topic names (the AsyncAPI document's channels); every component takes these unless
/// configured otherwise.
pub mod topics {
    /// The completion topic: every state change, applied request and rejection.
    pub const EVENTS: &str = "spark-gateway.events";
    /// Dead-letter copies of refused Kafka records.
    pub const DEAD_LETTERS: &str = "spark-gateway.requests.dlq";
}

pub use cloudevent::{
    CLOUDEVENTS_JSON_CONTENT_TYPE, CONTENT_TYPE_HEADER, CloudEvent, EventData, KafkaRecord,
    SpecVersion, TRACEPARENT_HEADER,
};
pub use decode::{
    DEFAULT_MAX_MESSAGE_BYTES, DecodeError, DecodeLimits, decode, decode_completion_event,
    decode_job_request, decode_job_request_with, rejection_for_undecodable,
};
pub use events::{
    ApplicationStateChanged, AppliedResult, CompletionEvent, FieldViolation, MessageOrigin,
    REQUEST_APPLIED_EVENT_TYPE, REQUEST_REJECTED_EVENT_TYPE, RejectionReason, RequestApplied,
    RequestRejected, STATE_CHANGED_EVENT_TYPE, cluster_event_source, rejection_bounds,
    state_changed_event_id, truncate_chars,
};
pub use ids::{IdError, RequestId, TraceParent};
pub use record::{AttemptHistory, HistoryPosition, JOB_RECORD_VERSION, JobRecord};
pub use request::{
    AmbiguousLookup, ApplicationTimeoutConfig, ApplicationTolerations, DeleteJobRequest,
    DriverResources, ExecutorResources, GetJobStatusRequest, ImagePullPolicy, InstanceConfig,
    JobLookup, JobRequest, NotifyEvents, NotifyTarget, RequestAction, ResourceRetainPolicy,
    RestartConfig, RestartPolicy, RuntimeVersions, SparkApplicationType, SubmitJobRequest,
};
pub use state::{
    ApplicationState, FailureCategory, FailureDetail, FailureReason, Links, Outcome, Phase,
    UnknownState,
};
pub use status::{GetJobStatusResponse, StateTransition, StatusSource};
pub use usage::{RoleUsage, Usage};
