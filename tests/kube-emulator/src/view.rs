//! How a client sees stored objects: converted to the requested version (only
//! `apiVersion` changes, as there is no conversion webhook), optionally as a
//! Table, and filtered by namespace and selectors.

use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::resources::{Registry, ResourceId, ResourceType, VersionDef};
use crate::selector::{FieldSelector, LabelSelector, simple_json_path};
use crate::table::{self, IncludeObject};

/// A resource type at one served version, rendered plainly or as a Table.
#[derive(Debug, Clone)]
pub struct View {
    registry: Arc<Registry>,
    resource: ResourceId,
    version: String,
    table: Option<IncludeObject>,
}

impl View {
    /// A view of `resource` at `version` (which must be served).
    pub fn new(
        registry: Arc<Registry>,
        resource: ResourceId,
        version: &str,
        table: Option<IncludeObject>,
    ) -> Self {
        Self {
            registry,
            resource,
            version: version.to_string(),
            table,
        }
    }

    /// The resource type.
    pub fn resource(&self) -> &ResourceType {
        self.registry.get(self.resource)
    }

    /// The version definition.
    pub fn version(&self) -> &VersionDef {
        let resource = self.resource();
        resource
            .served_version(&self.version)
            .unwrap_or_else(|| resource.storage_version())
    }

    /// `group/version` of rendered objects.
    pub fn api_version(&self) -> String {
        self.resource().api_version(&self.version)
    }

    /// Whether responses are Tables.
    pub fn is_table(&self) -> bool {
        self.table.is_some()
    }

    /// The stored object at the requested version.
    pub fn object(&self, stored: &Value) -> Value {
        let mut object = stored.clone();
        if let Some(map) = object.as_object_mut() {
            map.insert("apiVersion".into(), Value::String(self.api_version()));
            map.insert("kind".into(), Value::String(self.resource().kind.clone()));
        }
        object
    }

    /// One object as the client asked for it: the object, or a one-row Table.
    pub fn render_one(&self, stored: &Value) -> Value {
        let object = self.object(stored);
        match self.table {
            None => object,
            Some(include) => table::table(
                self.version(),
                vec![table::row(
                    &object,
                    self.version(),
                    include,
                    Timestamp::now(),
                )],
                None,
                None,
            ),
        }
    }

    /// A list (or Table) of objects.
    pub fn render_list(
        &self,
        items: &[Arc<Value>],
        resource_version: u64,
        continue_token: Option<String>,
        remaining: Option<usize>,
    ) -> Value {
        if let Some(include) = self.table {
            let now = Timestamp::now();
            let rows = items
                .iter()
                .map(|item| table::row(&self.object(item), self.version(), include, now))
                .collect();
            return table::table(
                self.version(),
                rows,
                Some(resource_version.to_string()),
                continue_token,
            );
        }
        let mut metadata = json!({"resourceVersion": resource_version.to_string()});
        if let Some(token) = continue_token {
            metadata["continue"] = json!(token);
        }
        if let Some(remaining) = remaining {
            metadata["remainingItemCount"] = json!(remaining);
        }
        let items: Vec<Value> = items.iter().map(|item| self.object(item)).collect();
        json!({
            "apiVersion": self.api_version(),
            "kind": self.resource().list_kind,
            "metadata": metadata,
            "items": items,
        })
    }

    /// A BOOKMARK event object.
    pub fn bookmark(&self, resource_version: u64, initial_events_end: bool) -> Value {
        let mut metadata = json!({"resourceVersion": resource_version.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        json!({
            "kind": self.resource().kind,
            "apiVersion": self.api_version(),
            "metadata": metadata,
        })
    }
}

/// Which objects a list or watch selects.
#[derive(Debug, Clone, Default)]
pub struct ObjectFilter {
    /// Only this namespace, when set.
    pub namespace: Option<String>,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
}

impl ObjectFilter {
    /// Whether an object is selected.
    pub fn matches(&self, object: &Value) -> bool {
        if let Some(namespace) = &self.namespace {
            let actual = object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if actual != namespace {
                return false;
            }
        }
        self.labels.matches_object(object) && self.fields.matches_with(|f| field_value(object, f))
    }
}

/// The string value of a selectable field.
pub fn field_value(object: &Value, field: &str) -> Option<String> {
    let value = simple_json_path(object, field)?;
    Some(match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// Checks that every field in a selector is selectable for this version.
pub fn check_selectable(fields: &FieldSelector, version: &VersionDef) -> Result<(), String> {
    for requirement in fields.requirements() {
        let field = requirement.field.as_str();
        let known = field == "metadata.name"
            || field == "metadata.namespace"
            || version.selectable_fields.iter().any(|f| f == field);
        if !known {
            let mut allowed = vec![
                "\"metadata.name\"".to_string(),
                "\"metadata.namespace\"".to_string(),
            ];
            allowed.extend(version.selectable_fields.iter().map(|f| format!("{f:?}")));
            return Err(format!(
                "\"{field}\" is not a known field selector: only {}",
                allowed.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_by_namespace_labels_and_fields() {
        let object =
            json!({"metadata": {"name": "pi", "namespace": "jobs", "labels": {"app": "spark"}}});
        let mut filter = ObjectFilter {
            namespace: Some("jobs".into()),
            labels: LabelSelector::parse("app=spark").unwrap(),
            fields: FieldSelector::parse("metadata.name=pi").unwrap(),
        };
        assert!(filter.matches(&object));
        filter.namespace = Some("other".into());
        assert!(!filter.matches(&object));
        filter.namespace = None;
        filter.fields = FieldSelector::parse("metadata.name!=pi").unwrap();
        assert!(!filter.matches(&object));
    }

    #[test]
    fn unknown_selector_fields_are_rejected() {
        let registry = Registry::new(&[]).unwrap();
        let version = registry.namespaces().storage_version();
        let fields = FieldSelector::parse("spec.color=red").unwrap();
        let error = check_selectable(&fields, version).unwrap_err();
        assert_eq!(
            error,
            "\"spec.color\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        assert!(
            check_selectable(&FieldSelector::parse("metadata.name=x").unwrap(), version).is_ok()
        );
    }

    #[test]
    fn views_rewrite_api_version() {
        let registry = Arc::new(Registry::new(&[]).unwrap());
        let leases = registry.find("coordination.k8s.io", "leases").unwrap().id;
        let view = View::new(Arc::clone(&registry), leases, "v1", None);
        let rendered = view.render_one(&json!({"apiVersion": "old", "metadata": {"name": "l"}}));
        assert_eq!(rendered["apiVersion"], "coordination.k8s.io/v1");
        assert_eq!(rendered["kind"], "Lease");
        let list = view.render_list(
            &[Arc::new(json!({"metadata": {"name": "l"}}))],
            9,
            None,
            None,
        );
        assert_eq!(list["kind"], "LeaseList");
        assert_eq!(list["metadata"]["resourceVersion"], "9");
        let bookmark = view.bookmark(9, true);
        assert_eq!(
            bookmark["metadata"]["annotations"]["k8s.io/initial-events-end"],
            "true"
        );
    }
}
