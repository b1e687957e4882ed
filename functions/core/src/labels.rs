//! The labels and annotations the gateway puts on SparkApplications: how it later recognises its own
//! applications, finds the request behind one, and tells a duplicate delivery from a conflicting
//! request.

/// Standard "managed by" label; its value marks applications the gateway created.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Value of [`MANAGED_BY_LABEL`] on the gateway's applications (the watcher selects on it).
pub const MANAGED_BY_VALUE: &str = "spark-gateway";
/// The `request_id` of the submit that created the application.
pub const REQUEST_ID_LABEL: &str = "spark-gateway.io/request-id";
/// The gateway's name of the cluster the application was sent to.
pub const CLUSTER_ANNOTATION: &str = "spark-gateway.io/cluster";
/// Who submitted the application (free text, hence an annotation).
pub const SUBMITTED_BY_ANNOTATION: &str = "spark-gateway.io/submitted-by";
/// W3C trace context of the submit request.
pub const TRACEPARENT_ANNOTATION: &str = "spark-gateway.io/traceparent";
/// `sha256:<hex>` of the mapped `spec`, so a redelivered request can be checked for sameness.
pub const SPEC_HASH_ANNOTATION: &str = "spark-gateway.io/spec-hash";
/// Label and annotation keys under this prefix belong to the gateway; requests may not set them.
pub const RESERVED_PREFIX: &str = "spark-gateway.io/";
