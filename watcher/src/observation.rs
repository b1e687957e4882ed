//! What the watcher reads from one SparkApplication object (pure): who it is, what it carries for
//! events, the checkpoint, the finalizers, and its history.
//!
//! The watched type [`SparkApplication`] deserializes only `metadata`, `status` and the spec's sizing
//! inputs ([`SpecView`]: the Spark configuration and the main resource's language, for the usage of the
//! terminal event and the job record), so pod templates and the rest of the spec are never held.

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use spark_gateway_events::{IdError, NotifyTarget, TraceParent};

use crate::checkpoint::{Checkpoint, InvalidCheckpoint, parse_annotation};
use crate::keys::{
    CHECKPOINT_ANNOTATION, NOTIFY_ANNOTATION, REQUEST_ID_LABEL, SPEC_HASH_ANNOTATION,
    SUBMITTED_BY_ANNOTATION, TRACEPARENT_ANNOTATION,
};
use spark_gateway_core::apache_v1::{SpecView, StatusError, StatusView};
use spark_gateway_core::status::{ObjectFacts, RecordFacts};

/// The resource the watcher reads: the one the gateway writes.
pub use spark_gateway_core::apache_v1::{GROUP, KIND, PLURAL, VERSION};

/// A `spark.apache.org/v1` SparkApplication as the watcher sees it: metadata, the spec's sizing inputs
/// and the raw status.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SparkApplication {
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// What the usage is computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<SpecView>,
    /// The operator's status, read by [`StatusView::from_status`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

impl kube::Resource for SparkApplication {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        KIND.into()
    }

    fn group(_: &()) -> Cow<'_, str> {
        GROUP.into()
    }

    fn version(_: &()) -> Cow<'_, str> {
        VERSION.into()
    }

    fn plural(_: &()) -> Cow<'_, str> {
        PLURAL.into()
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Who an application is, and what every event about it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppIdentity {
    /// `metadata.uid`: the Kafka key and the root of every event id.
    pub uid: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// The gateway's request id label, when present.
    pub request_id: Option<String>,
    /// The submitted-by annotation, when present.
    pub submitted_by: Option<String>,
    /// The traceparent annotation, when present and valid.
    pub traceparent: Option<TraceParent>,
    /// The submit's notification targets (the notify annotation), copied into every event.
    pub notify: Vec<NotifyTarget>,
}

/// Something odd about an object that does not stop the watcher from publishing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObservationWarning {
    /// The checkpoint annotation is malformed; it is treated as absent (everything is republished
    /// with the same ids, which subscribers de-duplicate).
    #[error("ignoring the checkpoint annotation")]
    InvalidCheckpoint(#[source] InvalidCheckpoint),
    /// The traceparent annotation is malformed; events go out without one.
    #[error("ignoring the traceparent annotation")]
    InvalidTraceparent(#[source] IdError),
    /// The notify annotation is not a list of targets (edited by hand); events go out without
    /// targets, so nobody is notified at an address the gateway did not write.
    #[error("ignoring the notify annotation: {0}")]
    InvalidNotify(String),
}

/// An object the watcher cannot work with.
#[derive(Debug, thiserror::Error)]
pub enum ObservationError {
    /// A metadata field every stored object has is missing.
    #[error("the object has no metadata.{0}")]
    MissingMetadata(&'static str),
    /// The status cannot be read; the application is left alone (finalizer included) until it can.
    #[error("the status of {namespace}/{name} cannot be read")]
    Status {
        /// The application's namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Why.
        #[source]
        source: StatusError,
    },
}

/// One observed version of an application.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Who it is.
    pub identity: AppIdentity,
    /// `metadata.resourceVersion`, the precondition of the watcher's writes.
    pub resource_version: String,
    /// The checkpoint annotation.
    pub checkpoint: Option<Checkpoint>,
    /// `metadata.finalizers`.
    pub finalizers: Vec<String>,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// The history.
    pub status: StatusView,
    /// The spec's sizing inputs, when the spec could be read.
    pub spec: Option<SpecView>,
    /// `metadata.creationTimestamp`.
    pub created_at: Option<jiff::Timestamp>,
    /// The spec-hash annotation.
    pub spec_hash: Option<String>,
    /// Oddities worth a log line.
    pub warnings: Vec<ObservationWarning>,
}

impl Observation {
    /// Reads an object.
    pub fn from_object(object: &SparkApplication) -> Result<Self, ObservationError> {
        let meta = &object.metadata;
        let required = |value: &Option<String>, field| {
            value
                .clone()
                .ok_or(ObservationError::MissingMetadata(field))
        };
        let namespace = required(&meta.namespace, "namespace")?;
        let name = required(&meta.name, "name")?;
        let uid = required(&meta.uid, "uid")?;
        let resource_version = required(&meta.resource_version, "resourceVersion")?;
        let annotation = |key: &str| meta.annotations.as_ref().and_then(|a| a.get(key)).cloned();
        let label = |key: &str| meta.labels.as_ref().and_then(|l| l.get(key)).cloned();

        let status = StatusView::from_status(object.status.as_ref()).map_err(|source| {
            ObservationError::Status {
                namespace: namespace.clone(),
                name: name.clone(),
                source,
            }
        })?;

        let mut warnings = Vec::new();
        let checkpoint = annotation(CHECKPOINT_ANNOTATION).and_then(|text| {
            parse_annotation(&text, &uid)
                .map_err(|error| warnings.push(ObservationWarning::InvalidCheckpoint(error)))
                .ok()
        });
        let notify = annotation(NOTIFY_ANNOTATION)
            .and_then(|text| {
                serde_json::from_str(&text)
                    .map_err(|error| {
                        warnings.push(ObservationWarning::InvalidNotify(error.to_string()))
                    })
                    .ok()
            })
            .unwrap_or_default();
        let traceparent = annotation(TRACEPARENT_ANNOTATION).and_then(|text| {
            TraceParent::new(text)
                .map_err(|error| warnings.push(ObservationWarning::InvalidTraceparent(error)))
                .ok()
        });

        Ok(Self {
            identity: AppIdentity {
                uid,
                namespace,
                name,
                request_id: label(REQUEST_ID_LABEL),
                submitted_by: annotation(SUBMITTED_BY_ANNOTATION),
                traceparent,
                notify,
            },
            resource_version,
            checkpoint,
            finalizers: meta.finalizers.clone().unwrap_or_default(),
            deleting: meta.deletion_timestamp.is_some(),
            status,
            spec: object.spec.clone(),
            created_at: meta.creation_timestamp.as_ref().map(|time| time.0),
            spec_hash: annotation(SPEC_HASH_ANNOTATION),
            warnings,
        })
    }

    /// The identity facts the status answer and the job record are built from.
    pub fn object_facts(&self) -> ObjectFacts {
        ObjectFacts {
            name: self.identity.name.clone(),
            namespace: self.identity.namespace.clone(),
            uid: self.identity.uid.clone(),
            request_id: self.identity.request_id.clone(),
            created_at: self.created_at,
        }
    }

    /// What the job record keeps besides the status.
    pub fn record_facts(&self) -> RecordFacts {
        RecordFacts {
            submitted_by: self.identity.submitted_by.clone(),
            spec_hash: self.spec_hash.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::keys::FINALIZER;

    fn fixture(name: &str) -> SparkApplication {
        let path = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
            .join("tests/fixtures")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn identity_comes_from_metadata_labels_and_annotations() {
        let observation = Observation::from_object(&fixture("succeeded.json")).unwrap();
        assert_eq!(
            observation.identity,
            AppIdentity {
                uid: "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f".into(),
                namespace: "spark-jobs".into(),
                name: "pi-ok".into(),
                request_id: Some("0b7f9c4e-6a0c-4f57-9e61-3c1de8d6b5a2".into()),
                submitted_by: Some("airflow".into()),
                traceparent: Some(
                    TraceParent::new("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
                        .unwrap()
                ),
                notify: Vec::new(),
            }
        );
        assert_eq!(observation.resource_version, "42");
        assert_eq!(observation.checkpoint, None);
        assert!(!observation.deleting);
        assert_eq!(observation.status.entries.len(), 7);
        assert!(observation.warnings.is_empty());
    }

    #[test]
    fn deletion_and_finalizers_are_read() {
        let observation = Observation::from_object(&fixture("deleted-while-running.json")).unwrap();
        assert!(observation.deleting);
        assert_eq!(observation.finalizers, [FINALIZER]);
    }

    #[test]
    fn of_the_spec_only_the_sizing_inputs_are_kept() {
        let object = fixture("succeeded.json");
        let kept = serde_json::to_value(&object).unwrap();
        assert_eq!(
            kept["spec"],
            serde_json::json!({
                "pyFiles": "local:///opt/spark/examples/src/main/python/pi.py",
                "sparkConf": {"spark.kubernetes.container.image": "apache/spark:4.1.0-python3"}
            })
        );
        let observation = Observation::from_object(&object).unwrap();
        assert_eq!(
            observation.spec.map(|spec| spec.application_type()),
            Some(spark_gateway_events::SparkApplicationType::Python)
        );
    }

    #[test]
    fn a_checkpoint_annotation_is_read_and_a_bad_one_warned_about() {
        let mut object = fixture("no-status.json");
        let annotations = object.metadata.annotations.get_or_insert_default();
        let uid = object.metadata.uid.clone().unwrap();
        annotations.insert(CHECKPOINT_ANNOTATION.into(), format!("{uid}/0/3"));
        let observation = Observation::from_object(&object).unwrap();
        assert_eq!(observation.checkpoint, Some(Checkpoint::new(0, 3)));

        // Copied from another application: ignored, so this one's events are all published.
        let annotations = object.metadata.annotations.get_or_insert_default();
        annotations.insert(CHECKPOINT_ANNOTATION.into(), "other-uid/0/6".into());
        let observation = Observation::from_object(&object).unwrap();
        assert_eq!(observation.checkpoint, None);
        assert!(matches!(
            observation.warnings[..],
            [ObservationWarning::InvalidCheckpoint(
                InvalidCheckpoint::OtherApplication { .. }
            )]
        ));

        let annotations = object.metadata.annotations.get_or_insert_default();
        annotations.insert(CHECKPOINT_ANNOTATION.into(), "three".into());
        annotations.insert(TRACEPARENT_ANNOTATION.into(), "not-a-trace".into());
        let observation = Observation::from_object(&object).unwrap();
        assert_eq!(observation.checkpoint, None);
        assert_eq!(observation.identity.traceparent, None);
        assert_eq!(observation.warnings.len(), 2);
    }

    #[test]
    fn notify_targets_come_from_the_annotation_and_a_hand_edited_one_is_ignored() {
        let mut object = fixture("succeeded.json");
        let annotations = object.metadata.annotations.get_or_insert_default();
        annotations.insert(
            NOTIFY_ANNOTATION.into(),
            r#"[{"type":"webhook","url":"https://hooks.example.com/a","events":"all"}]"#.into(),
        );
        let observation = Observation::from_object(&object).unwrap();
        assert_eq!(
            observation.identity.notify,
            vec![NotifyTarget::Webhook {
                url: "https://hooks.example.com/a".into(),
                events: spark_gateway_events::NotifyEvents::All,
            }]
        );

        let annotations = object.metadata.annotations.get_or_insert_default();
        annotations.insert(NOTIFY_ANNOTATION.into(), r#"[{"type":"fax"}]"#.into());
        let observation = Observation::from_object(&object).unwrap();
        assert!(observation.identity.notify.is_empty());
        assert!(matches!(
            observation.warnings.as_slice(),
            [ObservationWarning::InvalidNotify(_)]
        ));
    }

    #[test]
    fn an_unreadable_status_is_an_error_naming_the_application() {
        let mut object = fixture("no-status.json");
        object.status = Some(serde_json::json!({"stateTransitionHistory": 7}));
        let error = Observation::from_object(&object).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the status of spark-jobs/pi-new cannot be read"
        );
    }
}
