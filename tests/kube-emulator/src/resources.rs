//! The resource types the emulator serves: the built-in `namespaces`,
//! `leases` and `pods` (with `pods/log`, see `api::read::pod_log`), and one
//! entry per CustomResourceDefinition it was given.
//!
//! Everything about a custom resource (names, scope, versions, schema,
//! printer columns, subresources, selectable fields) comes from its CRD; no
//! field of any particular custom resource is known here.

use std::cmp::Ordering;

use serde_json::{Value, json};

use crate::Error;
use crate::schema::Schema;
use crate::status::GroupResource;

/// Index of a resource type in the [`Registry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId(pub usize);

/// Built-in resource types that have behaviour beyond storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// `v1` `namespaces`: cluster-scoped, Terminating on delete.
    Namespace,
    /// `coordination.k8s.io/v1` `leases`.
    Lease,
    /// `v1` `pods`: stored objects with a `status` subresource and a `log` subresource.
    Pod,
}

/// One `additionalPrinterColumns` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// OpenAPI type: `string`, `integer`, `number`, `boolean`, `date`.
    pub type_name: String,
    /// OpenAPI format, possibly empty.
    pub format: String,
    /// Description shown by `kubectl explain`-like tools.
    pub description: String,
    /// 0 for default columns, higher for `-o wide`.
    pub priority: i64,
    /// Simple JSONPath, e.g. `.status.currentState.currentStateSummary`.
    pub json_path: String,
}

/// One served (or merely declared) version of a resource type.
#[derive(Debug, Clone)]
pub struct VersionDef {
    /// Version name, e.g. `v1`.
    pub name: String,
    /// Whether the API serves it.
    pub served: bool,
    /// Whether objects are stored at this version.
    pub storage: bool,
    /// Structural schema, when the CRD declares one.
    pub schema: Option<Schema>,
    /// The schema as declared, for OpenAPI documents.
    pub raw_schema: Option<Value>,
    /// Extra Table columns after Name.
    pub printer_columns: Vec<PrinterColumn>,
    /// Whether `/status` is a subresource.
    pub status_subresource: bool,
    /// `selectableFields` JSONPaths usable in field selectors (without the leading dot).
    pub selectable_fields: Vec<String>,
}

/// Everything the emulator knows about one resource type.
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// Its index in the registry.
    pub id: ResourceId,
    /// API group, empty for core.
    pub group: String,
    /// Plural name used in URLs.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind of one object.
    pub kind: String,
    /// Kind of a list.
    pub list_kind: String,
    /// Short names, e.g. `sparkapp`.
    pub short_names: Vec<String>,
    /// Categories, e.g. `all`.
    pub categories: Vec<String>,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Declared versions, in CRD order.
    pub versions: Vec<VersionDef>,
    /// Behaviour of a built-in type.
    pub builtin: Option<Builtin>,
}

impl ResourceType {
    /// `plural.group`, the name used in messages.
    pub fn group_resource(&self) -> GroupResource {
        GroupResource::new(&self.group, &self.plural)
    }

    /// `group/version`, or just `version` for the core group.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// The version objects are stored as.
    pub fn storage_version(&self) -> &VersionDef {
        self.versions
            .iter()
            .find(|v| v.storage)
            .unwrap_or(&self.versions[0])
    }

    /// A served version by name.
    pub fn served_version(&self, name: &str) -> Option<&VersionDef> {
        self.versions.iter().find(|v| v.served && v.name == name)
    }

    /// Served versions, most preferred first (Kubernetes version priority).
    pub fn served_versions_by_priority(&self) -> Vec<&VersionDef> {
        let mut versions: Vec<&VersionDef> = self.versions.iter().filter(|v| v.served).collect();
        versions.sort_by(|a, b| compare_kube_versions(&a.name, &b.name));
        versions
    }

    /// Whether the server maintains `metadata.generation` (custom resources do).
    pub fn tracks_generation(&self) -> bool {
        self.builtin.is_none()
    }

    /// Whether this resource is a custom resource (affects patch types).
    pub fn is_custom(&self) -> bool {
        self.builtin.is_none()
    }
}

/// All served resource types.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    types: Vec<ResourceType>,
}

impl Registry {
    /// The built-in types plus the given CRDs.
    pub fn new(crds: &[Value]) -> Result<Self, Error> {
        let mut registry = Self::default();
        registry.push(namespaces_type())?;
        registry.push(leases_type())?;
        registry.push(pods_type())?;
        for crd in crds {
            let resource = resource_from_crd(crd)?;
            registry.push(resource)?;
        }
        Ok(registry)
    }

    fn push(&mut self, mut resource: ResourceType) -> Result<(), Error> {
        if self
            .types
            .iter()
            .any(|t| t.group == resource.group && t.plural == resource.plural)
        {
            return Err(Error::InvalidCrd(format!(
                "{} is defined twice",
                resource.group_resource()
            )));
        }
        resource.id = ResourceId(self.types.len());
        self.types.push(resource);
        Ok(())
    }

    /// Every type.
    pub fn all(&self) -> &[ResourceType] {
        &self.types
    }

    /// The type with this id.
    pub fn get(&self, id: ResourceId) -> &ResourceType {
        &self.types[id.0]
    }

    /// Finds a type by group and plural name.
    pub fn find(&self, group: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .iter()
            .find(|t| t.group == group && t.plural == plural)
    }

    /// The built-in namespaces type.
    pub fn namespaces(&self) -> &ResourceType {
        self.types
            .iter()
            .find(|t| t.builtin == Some(Builtin::Namespace))
            .expect("the registry always holds namespaces")
    }

    /// API groups (excluding core) with their served versions, most preferred first.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        for resource in self.types.iter().filter(|t| !t.group.is_empty()) {
            let index = match groups.iter().position(|(g, _)| *g == resource.group) {
                Some(i) => i,
                None => {
                    groups.push((resource.group.clone(), Vec::new()));
                    groups.len() - 1
                }
            };
            for version in resource.versions.iter().filter(|v| v.served) {
                if !groups[index].1.contains(&version.name) {
                    groups[index].1.push(version.name.clone());
                }
            }
        }
        for (_, versions) in &mut groups {
            versions.sort_by(|a, b| compare_kube_versions(a, b));
        }
        groups
    }

    /// Types served at `group/version`.
    pub fn in_group_version<'a>(
        &'a self,
        group: &'a str,
        version: &'a str,
    ) -> impl Iterator<Item = &'a ResourceType> + 'a {
        self.types
            .iter()
            .filter(move |t| t.group == group && t.served_version(version).is_some())
    }
}

/// Orders Kubernetes version names by priority: GA before beta before alpha,
/// higher numbers first, then anything else alphabetically.
pub fn compare_kube_versions(a: &str, b: &str) -> Ordering {
    fn parse(v: &str) -> Option<(u64, u8, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: u64 = rest[..digits_end].parse().ok()?;
        let tail = &rest[digits_end..];
        if tail.is_empty() {
            return Some((major, 2, 0));
        }
        let (stability, minor) = if let Some(m) = tail.strip_prefix("beta") {
            (1, m)
        } else if let Some(m) = tail.strip_prefix("alpha") {
            (0, m)
        } else {
            return None;
        };
        Some((major, stability, minor.parse().ok()?))
    }
    match (parse(a), parse(b)) {
        (Some((ma, sa, na)), Some((mb, sb, nb))) => sb.cmp(&sa).then(mb.cmp(&ma)).then(nb.cmp(&na)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

fn str_field(value: &Value, pointer: &str) -> Option<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn string_list(value: &Value, pointer: &str) -> Vec<String> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Builds a resource type from an `apiextensions.k8s.io/v1` CRD document.
pub fn resource_from_crd(crd: &Value) -> Result<ResourceType, Error> {
    let crd_name = str_field(crd, "/metadata/name").unwrap_or_default();
    let invalid = |why: &str| Error::InvalidCrd(format!("{crd_name}: {why}"));
    if str_field(crd, "/kind").as_deref() != Some("CustomResourceDefinition") {
        return Err(invalid("kind is not CustomResourceDefinition"));
    }
    let group = str_field(crd, "/spec/group").ok_or_else(|| invalid("spec.group is missing"))?;
    let plural = str_field(crd, "/spec/names/plural")
        .ok_or_else(|| invalid("spec.names.plural is missing"))?;
    let kind =
        str_field(crd, "/spec/names/kind").ok_or_else(|| invalid("spec.names.kind is missing"))?;
    let singular = str_field(crd, "/spec/names/singular").unwrap_or_else(|| kind.to_lowercase());
    let list_kind = str_field(crd, "/spec/names/listKind").unwrap_or_else(|| format!("{kind}List"));
    let namespaced = match str_field(crd, "/spec/scope").as_deref() {
        Some("Namespaced") | None => true,
        Some("Cluster") => false,
        Some(other) => return Err(invalid(&format!("unknown scope {other}"))),
    };
    // apiextensions.k8s.io/v1beta1 CRDs may declare these once for all versions.
    let shared_status = crd.pointer("/spec/subresources/status").is_some();
    let shared_columns = crd.pointer("/spec/additionalPrinterColumns").cloned();
    let shared_schema = crd.pointer("/spec/validation/openAPIV3Schema").cloned();
    let raw_versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("spec.versions is missing"))?;
    let mut versions = Vec::new();
    for raw in raw_versions {
        let name = str_field(raw, "/name").ok_or_else(|| invalid("a version has no name"))?;
        let raw_schema = raw
            .pointer("/schema/openAPIV3Schema")
            .cloned()
            .or_else(|| shared_schema.clone());
        let schema = raw_schema.as_ref().map(Schema::compile);
        let columns_raw = raw
            .get("additionalPrinterColumns")
            .cloned()
            .or_else(|| shared_columns.clone());
        let printer_columns = match columns_raw {
            Some(Value::Array(columns)) => columns.iter().map(printer_column).collect(),
            // Without declared columns the real server shows Age.
            _ => vec![age_column()],
        };
        versions.push(VersionDef {
            served: raw.get("served").and_then(Value::as_bool).unwrap_or(true),
            storage: raw.get("storage").and_then(Value::as_bool).unwrap_or(false),
            status_subresource: raw.pointer("/subresources/status").is_some() || shared_status,
            selectable_fields: raw
                .get("selectableFields")
                .and_then(Value::as_array)
                .map(|fields| {
                    fields
                        .iter()
                        .filter_map(|f| f.get("jsonPath").and_then(Value::as_str))
                        .map(|p| p.trim_start_matches('.').to_string())
                        .collect()
                })
                .unwrap_or_default(),
            name,
            schema,
            raw_schema,
            printer_columns,
        });
    }
    if versions.is_empty() {
        return Err(invalid("no versions"));
    }
    match versions.iter().filter(|v| v.storage).count() {
        1 => {}
        0 if versions.len() == 1 => versions[0].storage = true,
        _ => return Err(invalid("exactly one version must be the storage version")),
    }
    Ok(ResourceType {
        id: ResourceId(0),
        group,
        plural,
        singular,
        kind,
        list_kind,
        short_names: string_list(crd, "/spec/names/shortNames"),
        categories: string_list(crd, "/spec/names/categories"),
        namespaced,
        versions,
        builtin: None,
    })
}

fn printer_column(raw: &Value) -> PrinterColumn {
    PrinterColumn {
        name: str_field(raw, "/name").unwrap_or_default(),
        type_name: str_field(raw, "/type").unwrap_or_else(|| "string".to_string()),
        format: str_field(raw, "/format").unwrap_or_default(),
        description: str_field(raw, "/description").unwrap_or_default(),
        priority: raw.get("priority").and_then(Value::as_i64).unwrap_or(0),
        json_path: str_field(raw, "/jsonPath").unwrap_or_default(),
    }
}

fn age_column() -> PrinterColumn {
    PrinterColumn {
        name: "Age".to_string(),
        type_name: "date".to_string(),
        format: String::new(),
        description: "CreationTimestamp is a timestamp representing the server time when this object was created.".to_string(),
        priority: 0,
        json_path: ".metadata.creationTimestamp".to_string(),
    }
}

fn builtin_version(schema: Value, columns: Vec<PrinterColumn>, status: bool) -> VersionDef {
    VersionDef {
        name: "v1".to_string(),
        served: true,
        storage: true,
        schema: Some(Schema::compile(&schema)),
        raw_schema: Some(schema),
        printer_columns: columns,
        status_subresource: status,
        selectable_fields: Vec::new(),
    }
}

fn namespaces_type() -> ResourceType {
    let schema = json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {"finalizers": {"type": "array", "items": {"type": "string"}}}},
            "status": {"type": "object", "properties": {
                "phase": {"type": "string"},
                "conditions": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
            }}
        }
    });
    let status_column = PrinterColumn {
        name: "Status".to_string(),
        type_name: "string".to_string(),
        format: String::new(),
        description: "The status of the namespace".to_string(),
        priority: 0,
        json_path: ".status.phase".to_string(),
    };
    ResourceType {
        id: ResourceId(0),
        group: String::new(),
        plural: "namespaces".to_string(),
        singular: "namespace".to_string(),
        kind: "Namespace".to_string(),
        list_kind: "NamespaceList".to_string(),
        short_names: vec!["ns".to_string()],
        categories: Vec::new(),
        namespaced: false,
        versions: vec![builtin_version(
            schema,
            vec![status_column, age_column()],
            true,
        )],
        builtin: Some(Builtin::Namespace),
    }
}

fn leases_type() -> ResourceType {
    let int32 = json!({"type": "integer", "format": "int32"});
    let schema = json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {
                "holderIdentity": {"type": "string"},
                "leaseDurationSeconds": int32,
                "acquireTime": {"type": "string"},
                "renewTime": {"type": "string"},
                "leaseTransitions": int32,
                "strategy": {"type": "string"},
                "preferredHolder": {"type": "string"}
            }}
        }
    });
    let holder_column = PrinterColumn {
        name: "Holder".to_string(),
        type_name: "string".to_string(),
        format: String::new(),
        description: "The current holder of the lease".to_string(),
        priority: 0,
        json_path: ".spec.holderIdentity".to_string(),
    };
    ResourceType {
        id: ResourceId(0),
        group: "coordination.k8s.io".to_string(),
        plural: "leases".to_string(),
        singular: "lease".to_string(),
        kind: "Lease".to_string(),
        list_kind: "LeaseList".to_string(),
        short_names: Vec::new(),
        categories: Vec::new(),
        namespaced: true,
        versions: vec![builtin_version(
            schema,
            vec![holder_column, age_column()],
            false,
        )],
        builtin: Some(Builtin::Lease),
    }
}

fn pods_type() -> ResourceType {
    // What a client writes and reads; the emulator schedules and runs nothing, so the fields are
    // whatever the writer (the operator simulator, standing in for the kubelet too) puts there.
    let schema = json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }
    });
    let status_column = PrinterColumn {
        name: "Status".to_string(),
        type_name: "string".to_string(),
        format: String::new(),
        description: "The phase of the pod".to_string(),
        priority: 0,
        json_path: ".status.phase".to_string(),
    };
    ResourceType {
        id: ResourceId(0),
        group: String::new(),
        plural: "pods".to_string(),
        singular: "pod".to_string(),
        kind: "Pod".to_string(),
        list_kind: "PodList".to_string(),
        short_names: vec!["po".to_string()],
        categories: vec!["all".to_string()],
        namespaced: true,
        versions: vec![builtin_version(
            schema,
            vec![status_column, age_column()],
            true,
        )],
        builtin: Some(Builtin::Pod),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "names": {"kind": "Widget", "plural": "widgets", "shortNames": ["wd"], "categories": ["all"]},
                "scope": "Namespaced",
                "versions": [
                    {"name": "v1alpha1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {"type": "object"}}},
                    {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                     "schema": {"openAPIV3Schema": {"type": "object"}},
                     "additionalPrinterColumns": [{"name": "Phase", "type": "string", "jsonPath": ".status.phase"}],
                     "selectableFields": [{"jsonPath": ".spec.color"}]},
                    {"name": "v2", "served": false, "storage": false}
                ]
            }
        })
    }

    #[test]
    fn reads_names_versions_and_columns_from_the_crd() {
        let widget = resource_from_crd(&crd()).unwrap();
        assert_eq!(widget.singular, "widget");
        assert_eq!(widget.list_kind, "WidgetList");
        assert_eq!(widget.short_names, vec!["wd"]);
        assert_eq!(widget.storage_version().name, "v1");
        assert!(widget.served_version("v2").is_none());
        assert!(widget.served_version("v1").unwrap().status_subresource);
        assert!(
            !widget
                .served_version("v1alpha1")
                .unwrap()
                .status_subresource
        );
        assert_eq!(
            widget.served_version("v1").unwrap().printer_columns[0].name,
            "Phase"
        );
        assert_eq!(
            widget.served_version("v1alpha1").unwrap().printer_columns[0].name,
            "Age"
        );
        assert_eq!(
            widget.served_version("v1").unwrap().selectable_fields,
            vec!["spec.color"]
        );
    }

    #[test]
    fn rejects_a_crd_without_a_single_storage_version() {
        let mut bad = crd();
        bad["spec"]["versions"][0]["storage"] = json!(true);
        assert!(resource_from_crd(&bad).is_err());
    }

    #[test]
    fn version_priority_follows_kubernetes() {
        let mut versions = vec!["v1alpha1", "v1", "v1beta1", "v2beta1", "foo", "v2"];
        versions.sort_by(|a, b| compare_kube_versions(a, b));
        assert_eq!(
            versions,
            vec!["v2", "v1", "v2beta1", "v1beta1", "v1alpha1", "foo"]
        );
    }

    #[test]
    fn registry_groups_and_lookups() {
        let registry = Registry::new(&[crd()]).unwrap();
        assert!(registry.find("example.com", "widgets").is_some());
        assert!(registry.find("", "namespaces").is_some());
        let groups = registry.groups();
        assert_eq!(
            groups[0],
            ("coordination.k8s.io".to_string(), vec!["v1".to_string()])
        );
        assert_eq!(
            groups[1],
            (
                "example.com".to_string(),
                vec!["v1".to_string(), "v1alpha1".to_string()]
            )
        );
        assert!(Registry::new(&[crd(), crd()]).is_err());
    }
}
