//! The three operations of the seed gateway, made safe under retries and duplicate delivery:
//! submit, delete and status. Decisions (policy, mapping, outcome) come from the pure core; this module
//! only sequences them with cluster calls and turns every failure into a permanent rejection or a
//! transient error.

use serde_json::Value;
use spark_gateway_core::labels::{
    MANAGED_BY_LABEL, MANAGED_BY_VALUE, REQUEST_ID_LABEL, SPEC_HASH_ANNOTATION,
};
use spark_gateway_core::links::LinkTarget;
use spark_gateway_core::status::StatusError;
use spark_gateway_core::{
    Classify, Disposition, KubeAnswer, job_status, kube_answer, spark_application,
};
use spark_gateway_events::{
    DeleteJobRequest, FieldViolation, GetJobStatusRequest, GetJobStatusResponse, JobLookup, Phase,
    RejectionReason, SubmitJobRequest,
};

use crate::cluster::{ClusterApi, ClusterError, Deletion};
use crate::config::{ClusterConfig, ClustersConfig};
use crate::vault::VaultError;

/// A submit that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// The SparkApplication was created.
    Created {
        /// Its uid.
        uid: String,
    },
    /// It already existed, created by this same request with the same spec (a redelivery): nothing was
    /// done.
    Duplicate {
        /// Its uid.
        uid: String,
    },
    /// A dry run: the policy and the cluster's server-side dry run accepted it; nothing was created.
    Validated,
}

/// A delete that succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    /// The delete was accepted; the operator records "shutdown as requested" and the watcher publishes
    /// the terminal event.
    Deleted {
        /// The deleted application's uid.
        uid: String,
    },
    /// There was no such application (already deleted, or never created).
    AlreadyGone,
}

/// Why an operation did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Retrying cannot help: the request is rejected.
    #[error("{message}")]
    Rejected {
        /// Machine-readable reason.
        reason: RejectionReason,
        /// For people.
        message: String,
        /// The offending fields, when there are any.
        violations: Vec<FieldViolation>,
    },
    /// The status query names an application that does not exist.
    #[error(
        "SparkApplication {application} not found in namespace {namespace} on cluster {cluster}"
    )]
    NotFound {
        /// Cluster.
        cluster: String,
        /// Namespace.
        namespace: String,
        /// The name asked for, or `with request id <id>`.
        application: String,
    },
    /// The cluster, the proxy or Vault failed in a way retrying may fix.
    #[error(transparent)]
    Cluster(ClusterError),
    /// The application's status cannot be read.
    #[error(transparent)]
    Status(#[from] StatusError),
}

impl GatewayError {
    fn rejected(reason: RejectionReason, message: impl Into<String>) -> Self {
        Self::Rejected {
            reason,
            message: message.into(),
            violations: Vec::new(),
        }
    }

    /// What a producer is told when a transient failure outlasted every delivery: the category, never
    /// the detail (addresses, Vault paths and the causes' texts stay in the gateway's logs).
    pub fn unavailable_summary(&self) -> &'static str {
        match self {
            Self::Cluster(ClusterError::Token(VaultError::Credentials(_))) => {
                "the gateway could not read its Vault credentials"
            }
            Self::Cluster(ClusterError::Token(_)) => "Vault was unavailable",
            Self::Cluster(ClusterError::Unauthorized) => {
                "the cluster proxy did not accept the gateway's token"
            }
            Self::Cluster(ClusterError::Setup { .. }) => {
                "the gateway's configuration of the cluster is unusable"
            }
            Self::Cluster(
                ClusterError::Api { .. }
                | ClusterError::Transport(_)
                | ClusterError::Vanished { .. },
            ) => "the cluster was unavailable",
            Self::Cluster(ClusterError::Unexpected(_)) | Self::Status(_) => {
                "the cluster's answers could not be read"
            }
            Self::Rejected { .. } | Self::NotFound { .. } => "the request was refused",
        }
    }

    fn policy(violations: Vec<FieldViolation>) -> Self {
        let details: Vec<String> = violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.message))
            .collect();
        Self::Rejected {
            reason: RejectionReason::PolicyViolation,
            message: format!(
                "{} policy violation(s): {}",
                violations.len(),
                details.join("; ")
            ),
            violations,
        }
    }
}

impl Classify for GatewayError {
    fn disposition(&self) -> Disposition {
        match self {
            Self::Rejected { reason, .. } => Disposition::Permanent(*reason),
            Self::NotFound { .. } => Disposition::Permanent(RejectionReason::RejectedByCluster),
            // A deployment problem (credentials, Vault policy, CA file, a token the proxy refuses)
            // rather than the request's or an outage: the message waits for the fix.
            Self::Cluster(ClusterError::Token(error)) => error.disposition(),
            Self::Cluster(ClusterError::Setup { .. } | ClusterError::Unauthorized) => {
                Disposition::Configuration
            }
            // The operator wrote a status of another shape than the target's: another operator
            // version than the one configured.
            Self::Status(_) => Disposition::Configuration,
            Self::Cluster(_) => Disposition::TRANSIENT,
        }
    }
}

/// Turns a cluster failure of an operation on `namespace/name` into a rejection when the API's answer is
/// final ([`kube_answer`], the table the watcher decides by too), and keeps it transient otherwise.
fn classify_cluster(error: ClusterError, cluster: &str, namespace: &str) -> GatewayError {
    let ClusterError::Api { code, message, .. } = &error else {
        return GatewayError::Cluster(error);
    };
    match kube_answer(*code) {
        // Reads and deletes of one object answer "no such object" without an error; a 404 names the
        // namespace.
        KubeAnswer::NotFound => GatewayError::rejected(
            RejectionReason::RejectedByCluster,
            format!("namespace {namespace:?} does not exist on cluster {cluster:?} ({message})"),
        ),
        KubeAnswer::Forbidden => {
            // The API's text names the gateway's own identity and permissions: logs, not producers.
            tracing::warn!(cluster, namespace, %message, "the cluster answered 403 Forbidden");
            GatewayError::rejected(
                RejectionReason::Forbidden,
                format!(
                    "cluster {cluster:?} does not allow this operation in namespace {namespace:?} (403 Forbidden)"
                ),
            )
        }
        KubeAnswer::Invalid => GatewayError::rejected(
            RejectionReason::RejectedByCluster,
            format!("cluster {cluster:?} rejected the SparkApplication: {message}"),
        ),
        // A conflict is decided again on the next delivery (a submit's own 409 is handled before).
        KubeAnswer::Unauthenticated | KubeAnswer::Conflict | KubeAnswer::Unavailable => {
            GatewayError::Cluster(error)
        }
    }
}

fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.get("metadata")?.get("labels")?.get(key)?.as_str()
}

fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .get("metadata")?
        .get("annotations")?
        .get(key)?
        .as_str()
}

fn uid(object: &Value) -> String {
    object
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Submit, delete and status against the configured clusters.
pub struct Gateway<A> {
    clusters: ClustersConfig,
    api: A,
}

impl<A: ClusterApi> Gateway<A> {
    /// A gateway over `api` for `clusters`.
    pub fn new(clusters: ClustersConfig, api: A) -> Self {
        Self { clusters, api }
    }

    /// The configured clusters.
    pub fn clusters(&self) -> &ClustersConfig {
        &self.clusters
    }

    /// The cluster adapter (a test reads and scripts its fake through this).
    pub fn api(&self) -> &A {
        &self.api
    }

    /// Gets the default cluster ready (token from Vault, a connection) ahead of the first request. A
    /// failure is only logged: the first request meets it again and handles it as any request would.
    pub async fn warm_up(&self) {
        let Ok((cluster, config)) = self.resolve(None) else {
            return;
        };
        if let Err(error) = self.api.prepare(cluster, config).await {
            tracing::debug!(cluster, %error, "warm-up failed; the first request will retry it");
        }
    }

    fn resolve(&self, requested: Option<&str>) -> Result<(&str, &ClusterConfig), GatewayError> {
        self.clusters
            .resolve(requested)
            .ok_or_else(|| GatewayError::Rejected {
                reason: RejectionReason::UnknownCluster,
                message: format!(
                    "cluster {:?} is not configured (known: {})",
                    requested.unwrap_or_default(),
                    self.clusters
                        .clusters
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                violations: vec![FieldViolation {
                    field: "cluster".into(),
                    rule: "known_cluster".into(),
                    message: "not a configured cluster".into(),
                }],
            })
    }

    /// Creates the request's SparkApplication once: a redelivery of the same request is a
    /// [`Submitted::Duplicate`]; another request for an existing name, or the same request id with
    /// another spec, is a permanent conflict. A dry run goes through the same steps with a server-side
    /// dry-run create and ends [`Submitted::Validated`].
    pub async fn submit(&self, request: &SubmitJobRequest) -> Result<Submitted, GatewayError> {
        let (cluster, config) = self.resolve(request.cluster.as_deref())?;
        let admitted = config
            .policy
            .admit(request, cluster)
            .map_err(GatewayError::policy)?;
        let app = spark_application(&admitted, cluster);
        let (namespace, name) = (&request.namespace, &request.application_name);
        let dry_run = request.dry_run;
        match self.api.create(cluster, config, &app, dry_run).await {
            Ok(_) if dry_run => return Ok(Submitted::Validated),
            Ok(created) => return Ok(Submitted::Created { uid: uid(&created) }),
            // The name is taken: by this request (a redelivery) or by another.
            Err(ClusterError::Api { code: 409, .. }) => {}
            Err(error) => return Err(classify_cluster(error, cluster, namespace)),
        }
        let existing = self
            .api
            .get(cluster, config, namespace, name)
            .await
            .map_err(|e| classify_cluster(e, cluster, namespace))?
            // Deleted between our create and get: a retry will create it.
            .ok_or_else(|| {
                GatewayError::Cluster(ClusterError::Vanished {
                    namespace: namespace.clone(),
                    name: name.clone(),
                })
            })?;
        let conflict = |message: String| GatewayError::rejected(RejectionReason::Conflict, message);
        match label(&existing, REQUEST_ID_LABEL) {
            Some(id) if id == request.request_id.as_str() => {
                // Same id, same spec: a redelivery. Same id, other spec: the id was reused for a
                // different request, which must not pass as done.
                if annotation(&existing, SPEC_HASH_ANNOTATION)
                    == annotation(&app, SPEC_HASH_ANNOTATION)
                {
                    Ok(if dry_run {
                        Submitted::Validated
                    } else {
                        Submitted::Duplicate {
                            uid: uid(&existing),
                        }
                    })
                } else {
                    Err(conflict(format!(
                        "SparkApplication {namespace}/{name} on cluster {cluster:?} was created by request {id:?} with a different spec; a request id names one request"
                    )))
                }
            }
            Some(other) => Err(conflict(format!(
                "SparkApplication {namespace}/{name} already exists on cluster {cluster:?}, created by request {other:?}"
            ))),
            None => Err(conflict(format!(
                "SparkApplication {namespace}/{name} already exists on cluster {cluster:?} and was not created by Spark Gateway"
            ))),
        }
    }

    /// Deletes an application the gateway created; deleting what is not there succeeds.
    pub async fn delete(&self, request: &DeleteJobRequest) -> Result<Deleted, GatewayError> {
        let (cluster, config) = self.resolve(request.cluster.as_deref())?;
        let (namespace, name) = (&request.namespace, &request.application_name);
        let violations = config.policy.target_violations(namespace, name, cluster);
        if !violations.is_empty() {
            return Err(GatewayError::policy(violations));
        }
        let Some(existing) = self
            .api
            .get(cluster, config, namespace, name)
            .await
            .map_err(|e| classify_cluster(e, cluster, namespace))?
        else {
            return Ok(Deleted::AlreadyGone);
        };
        if label(&existing, MANAGED_BY_LABEL) != Some(MANAGED_BY_VALUE)
            && !config.allow_delete_unmanaged
        {
            return Err(GatewayError::rejected(
                RejectionReason::Forbidden,
                format!(
                    "SparkApplication {namespace}/{name} was not created by Spark Gateway; refusing to delete it"
                ),
            ));
        }
        let uid = uid(&existing);
        match self
            .api
            .delete(cluster, config, namespace, name, Some(&uid))
            .await
        {
            Ok(Deletion::Accepted) => Ok(Deleted::Deleted { uid }),
            Ok(Deletion::NotFound) => Ok(Deleted::AlreadyGone),
            // 409: the uid precondition failed, a new application took the name; decide again on retry.
            Err(error) => Err(classify_cluster(error, cluster, namespace)),
        }
    }

    /// The application's state, history and outcome.
    pub async fn status(
        &self,
        request: &GetJobStatusRequest,
    ) -> Result<GetJobStatusResponse, GatewayError> {
        let lookup = request.lookup().map_err(|error| {
            GatewayError::rejected(RejectionReason::InvalidRequest, error.to_string())
        })?;
        let (cluster, config) = self.resolve(request.cluster.as_deref())?;
        let namespace = &request.namespace;
        // A request id is a valid label value by construction; the name and namespace rules are the
        // policy's, so a status query reaches no namespace a submit could not.
        let name = match lookup {
            JobLookup::Name(name) => name,
            JobLookup::RequestId(_) => "by-request-id",
        };
        let violations = config.policy.target_violations(namespace, name, cluster);
        if !violations.is_empty() {
            return Err(GatewayError::policy(violations));
        }
        let found = match lookup {
            JobLookup::Name(name) => self.api.get(cluster, config, namespace, name).await,
            JobLookup::RequestId(request_id) => {
                self.api
                    .find_by_request_id(cluster, config, namespace, request_id.as_str())
                    .await
            }
        };
        let app = found
            .map_err(|e| classify_cluster(e, cluster, namespace))?
            .ok_or_else(|| GatewayError::NotFound {
                cluster: cluster.to_string(),
                namespace: namespace.clone(),
                application: match lookup {
                    JobLookup::Name(name) => name.to_string(),
                    JobLookup::RequestId(id) => format!("with request id {}", id.as_str()),
                },
            })?;
        let mut answer = job_status(&app, cluster)?;
        answer.links = config.links.links(
            &LinkTarget {
                cluster,
                namespace: &answer.namespace,
                name: &answer.application_name,
                uid: &answer.uid,
                attempt: answer.attempt,
            },
            answer.phase.unwrap_or(Phase::Pending),
        );
        Ok(answer)
    }
}
