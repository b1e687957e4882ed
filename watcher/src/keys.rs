//! The label, annotation and finalizer names the watcher reads and writes on SparkApplications.
//!
//! The gateway puts the labels and annotations on the applications it creates (their names live in
//! `spark_gateway_core::labels`, re-exported here); the watcher reads them into every event and adds
//! its own checkpoint annotation and finalizer.

pub use spark_gateway_core::labels::{
    MANAGED_BY_LABEL, MANAGED_BY_VALUE, NOTIFY_ANNOTATION, REQUEST_ID_LABEL, SPEC_HASH_ANNOTATION,
    SUBMITTED_BY_ANNOTATION, TRACEPARENT_ANNOTATION,
};

/// The default label selector: the applications the gateway manages.
pub const DEFAULT_LABEL_SELECTOR: &str = "app.kubernetes.io/managed-by=spark-gateway";

/// Annotation the watcher writes: the id of the last event the broker acknowledged,
/// `<uid>/<attempt>/<history index>` (see [`crate::checkpoint`]).
pub const CHECKPOINT_ANNOTATION: &str = "spark-gateway.io/published-through";

/// Finalizer the watcher holds so an application cannot disappear before its last events are out.
pub const FINALIZER: &str = "spark-gateway.io/watcher";
