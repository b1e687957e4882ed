//! The Kubernetes side: watching SparkApplications, writing the checkpoint and finalizer, stripping
//! stale finalizers, and reading a failed driver's log.
//!
//! Every metadata write is a JSON merge patch carrying `metadata.resourceVersion`, which the API server
//! treats as a precondition: a write computed from a stale object fails with 409 instead of moving a
//! checkpoint backwards or dropping a finalizer another client just added. Callers re-read and decide
//! again.

use futures::stream::{self, BoxStream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams, LogParams, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use spark_gateway_core::apache_v1;
use spark_gateway_core::{Classify, Disposition};

use crate::keys::{CHECKPOINT_ANNOTATION, FINALIZER};
use crate::observation::SparkApplication;

/// Field manager name of the watcher's writes.
pub const FIELD_MANAGER: &str = "spark-gateway-watcher";

/// A Kubernetes API call that failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A call about one application.
    #[error("cannot {action} SparkApplication {namespace}/{name}")]
    Application {
        /// What was attempted (`read`, `patch`).
        action: &'static str,
        /// The application's namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// Listing applications.
    #[error("cannot list SparkApplications")]
    List(#[source] kube::Error),
    /// Reading a driver pod's log.
    #[error("cannot read the log of pod {namespace}/{pod}")]
    PodLog {
        /// The pod's namespace.
        namespace: String,
        /// The pod.
        pod: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
}

impl ClusterError {
    /// The underlying client error.
    pub fn kube_error(&self) -> &kube::Error {
        match self {
            Self::Application { source, .. } | Self::List(source) | Self::PodLog { source, .. } => {
                source
            }
        }
    }
}

/// Throttling, server errors and connection trouble are transient; a refusal of the watcher's own reads
/// and patches (403 without RBAC, 404 without the CRD, 422) means the deployment is wrong.
impl Classify for ClusterError {
    fn disposition(&self) -> Disposition {
        Disposition::transient_or_configuration(kube_error_is_transient(self.kube_error()))
    }
}

/// Classifies a kube client error as transient (worth retrying) or permanent: the API's answers by the
/// one table of [`spark_gateway_core::kube_answer`] (401 is transient because the client re-reads a
/// rotated service-account token, 409 because the watcher reads the object again before it writes);
/// connection and stream failures are transient.
pub fn kube_error_is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => spark_gateway_core::kube_answer(status.code).is_transient(),
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

/// What the watcher writes to an application's metadata in one patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataUpdate {
    /// The resourceVersion the decision was made on (the precondition).
    pub resource_version: String,
    /// The new checkpoint annotation value, if the checkpoint moved.
    pub checkpoint: Option<String>,
    /// The complete new finalizer list, if it changes.
    pub finalizers: Option<Vec<String>>,
}

impl MetadataUpdate {
    /// The merge patch.
    pub fn to_patch(&self) -> serde_json::Value {
        let mut metadata = serde_json::Map::new();
        metadata.insert("resourceVersion".into(), json!(self.resource_version));
        if let Some(checkpoint) = &self.checkpoint {
            metadata.insert(
                "annotations".into(),
                json!({ CHECKPOINT_ANNOTATION: checkpoint }),
            );
        }
        if let Some(finalizers) = &self.finalizers {
            metadata.insert("finalizers".into(), json!(finalizers));
        }
        json!({ "metadata": metadata })
    }
}

/// How a metadata patch ended.
#[derive(Debug)]
pub enum PatchOutcome {
    /// Written; the object as it now is.
    Applied(Box<SparkApplication>),
    /// The object changed since the decision: re-read and decide again.
    Conflict,
    /// The object no longer exists.
    Gone,
}

/// The SparkApplications the watcher is responsible for: some namespaces (or all), optionally
/// narrowed by a label selector.
#[derive(Clone)]
pub struct Applications {
    client: Client,
    namespaces: Vec<String>,
    label_selector: Option<String>,
}

impl Applications {
    /// Applications in `namespaces` (all namespaces when empty) matching `label_selector`.
    pub fn new(client: Client, namespaces: &[String], label_selector: Option<String>) -> Self {
        let mut namespaces = namespaces.to_vec();
        namespaces.sort();
        namespaces.dedup();
        Self {
            client,
            namespaces,
            label_selector: label_selector.filter(|s| !s.is_empty()),
        }
    }

    /// The end of the driver container's log of `pod` (bounded by the server with `tailLines` and
    /// `limitBytes`, then by [`apache_v1::log_tail`]); `None` when the pod is gone or the log empty.
    pub async fn driver_log_tail(
        &self,
        namespace: &str,
        pod: &str,
    ) -> Result<Option<String>, ClusterError> {
        let params = LogParams {
            container: Some(apache_v1::DRIVER_CONTAINER.to_string()),
            tail_lines: Some(apache_v1::MAX_LOG_TAIL_LINES as i64),
            // Lines can be long (a JVM stack frame, a JSON log line): a bound on what crosses the wire.
            limit_bytes: Some(64 * 1024),
            ..LogParams::default()
        };
        match Api::<Pod>::namespaced(self.client.clone(), namespace)
            .logs(pod, &params)
            .await
        {
            Ok(log) => Ok(apache_v1::log_tail(&log)),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
            Err(source) => Err(ClusterError::PodLog {
                namespace: namespace.to_string(),
                pod: pod.to_string(),
                source,
            }),
        }
    }

    /// One API per watched scope: all namespaces, or each configured namespace.
    fn scoped_apis(&self) -> Vec<Api<SparkApplication>> {
        if self.namespaces.is_empty() {
            vec![Api::all(self.client.clone())]
        } else {
            self.namespaces
                .iter()
                .map(|ns| Api::namespaced(self.client.clone(), ns))
                .collect()
        }
    }

    /// How many watch streams [`Applications::watch`] merges.
    pub fn scope_count(&self) -> usize {
        self.namespaces.len().max(1)
    }

    /// The watch stream index an application of `namespace` arrives on.
    pub fn scope_of(&self, namespace: &str) -> usize {
        self.namespaces
            .iter()
            .position(|ns| ns == namespace)
            .unwrap_or(0)
    }

    /// Watches every scope; each item says which scope it came from. The kube-rs watcher re-lists on
    /// 410 Gone and backs off on errors, so the stream only ends when dropped.
    pub fn watch(
        &self,
    ) -> BoxStream<
        'static,
        (
            usize,
            Result<watcher::Event<SparkApplication>, watcher::Error>,
        ),
    > {
        let mut config = watcher::Config::default();
        if let Some(selector) = &self.label_selector {
            config = config.labels(selector);
        }
        let streams = self
            .scoped_apis()
            .into_iter()
            .enumerate()
            .map(|(scope, api)| {
                watcher(api, config.clone())
                    .default_backoff()
                    .map(move |event| (scope, event))
                    .boxed()
            });
        stream::select_all(streams).boxed()
    }

    /// Reads one application; `None` when it no longer exists.
    pub async fn get(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<SparkApplication>, ClusterError> {
        let api: Api<SparkApplication> = Api::namespaced(self.client.clone(), namespace);
        api.get_opt(name)
            .await
            .map_err(|source| ClusterError::Application {
                action: "read",
                namespace: namespace.to_string(),
                name: name.to_string(),
                source,
            })
    }

    /// Writes `update` if the object is still at `update.resource_version`.
    pub async fn patch_metadata(
        &self,
        namespace: &str,
        name: &str,
        update: &MetadataUpdate,
    ) -> Result<PatchOutcome, ClusterError> {
        let api: Api<SparkApplication> = Api::namespaced(self.client.clone(), namespace);
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.to_string()),
            ..PatchParams::default()
        };
        match api
            .patch(name, &params, &Patch::Merge(update.to_patch()))
            .await
        {
            Ok(object) => Ok(PatchOutcome::Applied(Box::new(object))),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(PatchOutcome::Conflict),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(PatchOutcome::Gone),
            Err(source) => Err(ClusterError::Application {
                action: "patch",
                namespace: namespace.to_string(),
                name: name.to_string(),
                source,
            }),
        }
    }

    /// Removes the watcher's finalizer from every application in scope that has it, for retiring the
    /// watcher. Returns the `namespace/name` of each application changed.
    ///
    /// Each removal is a precondition-guarded patch retried on conflict, so finalizers of others that
    /// change concurrently are kept.
    pub async fn remove_finalizers(&self) -> Result<Vec<String>, ClusterError> {
        let mut params = ListParams::default();
        if let Some(selector) = &self.label_selector {
            params = params.labels(selector);
        }
        let mut changed = Vec::new();
        for api in self.scoped_apis() {
            let mut list_params = params.clone();
            loop {
                let page = api.list(&list_params).await.map_err(ClusterError::List)?;
                for object in &page.items {
                    if let Some(removed) = self.remove_finalizer_from(object).await? {
                        changed.push(removed);
                    }
                }
                match page.metadata.continue_.filter(|token| !token.is_empty()) {
                    Some(token) => list_params = list_params.continue_token(&token),
                    None => break,
                }
            }
        }
        Ok(changed)
    }

    async fn remove_finalizer_from(
        &self,
        object: &SparkApplication,
    ) -> Result<Option<String>, ClusterError> {
        let (Some(namespace), Some(name)) = (&object.metadata.namespace, &object.metadata.name)
        else {
            return Ok(None);
        };
        let mut current = object.clone();
        loop {
            let finalizers = current.metadata.finalizers.clone().unwrap_or_default();
            if !finalizers.iter().any(|f| f == FINALIZER) {
                return Ok(None);
            }
            let update = MetadataUpdate {
                resource_version: current
                    .metadata
                    .resource_version
                    .clone()
                    .unwrap_or_default(),
                checkpoint: None,
                finalizers: Some(finalizers.into_iter().filter(|f| f != FINALIZER).collect()),
            };
            match self.patch_metadata(namespace, name, &update).await? {
                PatchOutcome::Applied(_) => return Ok(Some(format!("{namespace}/{name}"))),
                PatchOutcome::Gone => return Ok(None),
                PatchOutcome::Conflict => match self.get(namespace, name).await? {
                    Some(fresh) => current = fresh,
                    None => return Ok(None),
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_carries_the_precondition_and_only_what_changes() {
        let update = MetadataUpdate {
            resource_version: "17".into(),
            checkpoint: Some("uid-1/1/8".into()),
            finalizers: None,
        };
        assert_eq!(
            update.to_patch(),
            json!({"metadata": {"resourceVersion": "17", "annotations": {"spark-gateway.io/published-through": "uid-1/1/8"}}})
        );
        let update = MetadataUpdate {
            checkpoint: None,
            finalizers: Some(vec![]),
            ..update
        };
        assert_eq!(
            update.to_patch(),
            json!({"metadata": {"resourceVersion": "17", "finalizers": []}})
        );
    }
}
