//! Requests producers send to the gateway: submit and delete (on the request queue or topic) and the
//! status query (answered directly by the status function).
//!
//! # One channel, two actions
//! The request queue (SQS) and the request topic (Kafka) carry both submits and deletes. A message is a
//! JSON object whose `action` field, `"submit"` or `"delete"`, says which; the remaining fields are those
//! of [`SubmitJobRequest`] or [`DeleteJobRequest`]. The discriminator lives in the body rather than in a
//! queue attribute or Kafka header so that a message means the same thing on either transport and after
//! it is copied to a dead-letter queue. Field names follow the seed gateway's gRPC JSON (`snake_case`),
//! so the seed's `SubmitSparkJob` payload plus a `request_id` is a valid [`SubmitJobRequest`].
//!
//! # Versions
//! These are the v1 messages. Adding optional fields is a compatible change and keeps v1. An incompatible
//! change will add a required `"version": 2`; v1 consumers refuse it as an unknown field rather than
//! misreading it. Unknown fields are always refused, naming the field, so a typo never passes silently.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::ids::{RequestId, TraceParent};

/// A message on the request queue or topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum JobRequest {
    /// Create a SparkApplication.
    Submit(Box<SubmitJobRequest>),
    /// Delete a SparkApplication the gateway created.
    Delete(DeleteJobRequest),
}

impl JobRequest {
    /// The producer's idempotency key.
    pub fn request_id(&self) -> &RequestId {
        match self {
            Self::Submit(r) => &r.request_id,
            Self::Delete(r) => &r.request_id,
        }
    }

    /// What the request does.
    pub fn action(&self) -> RequestAction {
        match self {
            Self::Submit(_) => RequestAction::Submit,
            Self::Delete(_) => RequestAction::Delete,
        }
    }

    /// The application the request is about, as `(namespace, name)`.
    pub fn target(&self) -> (&str, &str) {
        match self {
            Self::Submit(r) => (&r.namespace, &r.application_name),
            Self::Delete(r) => (&r.namespace, &r.application_name),
        }
    }

    /// The cluster the request is routed to, if the producer chose one.
    pub fn cluster(&self) -> Option<&str> {
        match self {
            Self::Submit(r) => r.cluster.as_deref(),
            Self::Delete(r) => r.cluster.as_deref(),
        }
    }
}

/// The `action` discriminator of a [`JobRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestAction {
    /// [`JobRequest::Submit`].
    Submit,
    /// [`JobRequest::Delete`].
    Delete,
}

impl RequestAction {
    /// Every action, in the order documentation lists them.
    pub const ALL: [Self; 2] = [Self::Submit, Self::Delete];

    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submit => "submit",
            Self::Delete => "delete",
        }
    }
}

/// Run a Spark application: the seed gateway's `SubmitSparkJob` request plus what an event-driven
/// system needs (an idempotency key, routing, labels, provenance, tracing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitJobRequest {
    /// Idempotency and correlation key; every event about this application carries it.
    pub request_id: RequestId,
    /// The cluster to run on, by the gateway's configured name; absent means the default cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The SparkApplication's name (`metadata.name`).
    pub application_name: String,
    /// The namespace to run in; it must exist and be allowed for the cluster.
    pub namespace: String,
    /// Files for Python applications: the first is the main script, the rest are added to the Python path
    /// (`spark.submit.pyFiles`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub py_files: Vec<String>,
    /// The main resource for Java, Scala and R applications: a jar, or an R file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_application_file: Option<String>,
    /// The entry class of Java and Scala applications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_class: Option<String>,
    /// Extra jars on the driver and executor class path (`spark.jars`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub jars: Vec<String>,
    /// Arguments passed to the application's main.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    /// The container image for driver and executors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// When Kubernetes pulls the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,
    /// The application's language, which decides its main resource.
    pub spark_application_type: SparkApplicationType,
    /// Spark configuration; values are strings, as Spark reads them. Typed fields above win over the
    /// same keys here, and the gateway's policy refuses keys that would escape it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub spark_conf: BTreeMap<String, String>,
    /// Driver resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<DriverResources>,
    /// Executor resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<ExecutorResources>,
    /// Spark (and optionally Scala and JDK) versions; the operator requires the Spark version.
    pub runtime_versions: RuntimeVersions,
    /// Restart, timeout, retention and clean-up behaviour of the operator for this application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_tolerations: Option<ApplicationTolerations>,
    /// Labels put on the SparkApplication, for the producer's own selection and bookkeeping.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Who asked (a pipeline, team or user), recorded on the application and in every event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_by: Option<String>,
    /// Trace context propagated to the application and its events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<TraceParent>,
    /// Check the request without running it: decode, the cluster's policy and a server-side dry-run
    /// create (`dryRun=All`). Nothing is created; the request ends in `RequestApplied` with result
    /// `validated`, or in its rejection.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// Where to be told how the application went, besides the completion topic: an SQS reply queue or
    /// an HTTPS webhook, each allowed by the cluster's policy. Each target gets the request's terminal
    /// event (or every event, with `events: all`) at least once; de-duplicate on the event id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<NotifyTarget>,
}

/// A place a submit's events are delivered to (see [`SubmitJobRequest::notify`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum NotifyTarget {
    /// An SQS queue; each event is one message whose body is the CloudEvent (structured JSON).
    Sqs {
        /// The queue URL, as `GetQueueUrl` returns it.
        queue_url: String,
        /// Which events.
        #[serde(default, skip_serializing_if = "NotifyEvents::is_terminal")]
        events: NotifyEvents,
    },
    /// An HTTPS endpoint; each event is one `POST` of the CloudEvent (structured JSON), signed as
    /// Standard Webhooks specify (`webhook-id`, `webhook-timestamp`, `webhook-signature`) with the
    /// cluster's signing secret.
    Webhook {
        /// The `https://` URL.
        url: String,
        /// Which events.
        #[serde(default, skip_serializing_if = "NotifyEvents::is_terminal")]
        events: NotifyEvents,
    },
}

impl NotifyTarget {
    /// Which events the target wants.
    pub fn events(&self) -> NotifyEvents {
        match self {
            Self::Sqs { events, .. } | Self::Webhook { events, .. } => *events,
        }
    }

    /// The queue URL or webhook URL.
    pub fn address(&self) -> &str {
        match self {
            Self::Sqs { queue_url, .. } => queue_url,
            Self::Webhook { url, .. } => url,
        }
    }

    /// `sqs` or `webhook`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sqs { .. } => "sqs",
            Self::Webhook { .. } => "webhook",
        }
    }
}

/// Which of a request's events a [`NotifyTarget`] receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvents {
    /// Only the terminal one: the state change with the `outcome`, or the request's rejection, or a
    /// dry run's `validated`.
    #[default]
    Terminal,
    /// Every state change and the request's own events.
    All,
}

impl NotifyEvents {
    fn is_terminal(&self) -> bool {
        matches!(self, Self::Terminal)
    }
}

/// Stop and remove a SparkApplication the gateway created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteJobRequest {
    /// Idempotency and correlation key of this delete (not of the submit it undoes).
    pub request_id: RequestId,
    /// The cluster, by the gateway's configured name; absent means the default cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The SparkApplication's name.
    pub application_name: String,
    /// Its namespace.
    pub namespace: String,
    /// Who asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_by: Option<String>,
    /// Why, for the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Trace context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<TraceParent>,
}

/// The language of a Spark application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum SparkApplicationType {
    /// Main script is `py_files[0]`.
    Python,
    /// Main resource is `main_application_file` (a jar) with `main_class`.
    Java,
    /// Like Java.
    Scala,
    /// Main resource is `main_application_file` (an R file).
    R,
}

/// Kubernetes image pull policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ImagePullPolicy {
    /// Pull on every start.
    Always,
    /// Pull when the node lacks the image.
    IfNotPresent,
    /// Never pull.
    Never,
}

impl ImagePullPolicy {
    /// The Kubernetes spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "Always",
            Self::IfNotPresent => "IfNotPresent",
            Self::Never => "Never",
        }
    }
}

/// Driver pod resources and identity.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DriverResources {
    /// CPU cores, as Spark reads `spark.driver.cores` (for example `"1"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<String>,
    /// Memory, as `spark.driver.memory` (for example `"512m"`, `"4g"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// The Kubernetes service account the driver runs as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
}

/// Executor pod count and resources.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecutorResources {
    /// Executor count (`spark.executor.instances`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<u32>,
    /// CPU cores per executor (`spark.executor.cores`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<String>,
    /// Memory per executor (`spark.executor.memory`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

/// Versions of the runtime the application needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuntimeVersions {
    /// Spark version, for example `"4.1.0"`.
    pub spark_version: String,
    /// Scala version, for example `"2.13"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scala_version: Option<String>,
    /// JDK version, for example `"17"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jdk_version: Option<String>,
}

/// How the operator restarts, times out, retains and cleans up the application.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationTolerations {
    /// Whether driver and executor resources are kept after the application stops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_retain_policy: Option<ResourceRetainPolicy>,
    /// How long retained resources are kept, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_retain_duration_millis: Option<u64>,
    /// How long after it stops the operator deletes the SparkApplication itself, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_after_stop_millis: Option<u64>,
    /// Restart policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_config: Option<RestartConfig>,
    /// Start and readiness timeouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_timeout_config: Option<ApplicationTimeoutConfig>,
    /// Executor counts the operator considers healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_config: Option<InstanceConfig>,
}

/// Whether resources outlive the application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ResourceRetainPolicy {
    /// Keep them after every stop.
    Always,
    /// Keep them when the application failed.
    OnFailure,
    /// Release them at once.
    Never,
}

/// When the operator starts a new attempt.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartConfig {
    /// Which stops lead to a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    /// Most restarts before the application stays stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_restart_attempts: Option<u32>,
    /// Pause before a restart, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_backoff_millis: Option<u64>,
}

/// Which stops lead to a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum RestartPolicy {
    /// After every stop.
    Always,
    /// Never.
    Never,
    /// After a failure.
    OnFailure,
    /// After an infrastructure failure (scheduling, eviction, timeouts).
    OnInfrastructureFailure,
}

/// Operator timeouts, in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationTimeoutConfig {
    /// Longest wait for the driver pod to start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_start_timeout_millis: Option<u64>,
    /// Longest wait for the driver to become ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_ready_timeout_millis: Option<u64>,
    /// Longest wait for executors to start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_start_timeout_millis: Option<u64>,
    /// Grace period before pods are force-terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_termination_grace_period_millis: Option<u64>,
}

/// Executor counts the operator uses to judge health.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    /// Executors expected at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_executors: Option<u32>,
    /// Fewest executors for a healthy application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_executors: Option<u32>,
    /// Most executors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_executors: Option<u32>,
}

/// Ask for the state of one application (the status function's input), by its name or by the
/// `request_id` of the submit that created it: exactly one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [
    {"required": ["application_name"], "not": {"required": ["request_id"]}},
    {"required": ["request_id"], "not": {"required": ["application_name"]}}
]))]
pub struct GetJobStatusRequest {
    /// The SparkApplication's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_name: Option<String>,
    /// The `request_id` of the submit that created the application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    /// Its namespace.
    pub namespace: String,
    /// The cluster; absent means the default cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

/// Which application a [`GetJobStatusRequest`] asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobLookup<'a> {
    /// By `metadata.name`.
    Name(&'a str),
    /// By the request id label.
    RequestId(&'a RequestId),
}

/// A status request that names neither or both of `application_name` and `request_id`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a status request names exactly one of application_name and request_id")]
pub struct AmbiguousLookup;

impl GetJobStatusRequest {
    /// A request for `namespace/name` on the default cluster.
    pub fn by_name(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            application_name: Some(name.into()),
            request_id: None,
            namespace: namespace.into(),
            cluster: None,
        }
    }

    /// A request for the application that `request_id` created in `namespace`.
    pub fn by_request_id(namespace: impl Into<String>, request_id: RequestId) -> Self {
        Self {
            application_name: None,
            request_id: Some(request_id),
            namespace: namespace.into(),
            cluster: None,
        }
    }

    /// What is asked for.
    pub fn lookup(&self) -> Result<JobLookup<'_>, AmbiguousLookup> {
        match (&self.application_name, &self.request_id) {
            (Some(name), None) => Ok(JobLookup::Name(name)),
            (None, Some(request_id)) => Ok(JobLookup::RequestId(request_id)),
            _ => Err(AmbiguousLookup),
        }
    }
}
