//! Discovery documents: `/version`, `/api`, `/api/v1`, `/apis`,
//! `/apis/{group}[/{version}]`, in both the legacy form (`APIGroupList`,
//! `APIResourceList`) and the aggregated form (`apidiscovery.k8s.io/v2`
//! `APIGroupDiscoveryList`) that kubectl asks for first.
//!
//! Also a minimal OpenAPI v3 index so clients that probe it for field
//! validation support find a well-formed answer.

use serde_json::{Value, json};

use crate::resources::{Builtin, Registry, ResourceType};

/// The Kubernetes version the emulator claims to be.
pub const KUBE_MAJOR: &str = "1";
/// Minor version, matching the kubectl on the machine (skew 0).
pub const KUBE_MINOR: &str = "32";

/// Content type of aggregated discovery responses.
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const STATUS_VERBS: [&str; 3] = ["get", "patch", "update"];

/// `/version`.
pub fn version_info() -> Value {
    json!({
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": format!("v{KUBE_MAJOR}.{KUBE_MINOR}.0-kube-emulator"),
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.23.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// `/api` (legacy form).
pub fn api_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    })
}

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

fn api_group(group: &str, versions: &[String]) -> Value {
    let entries: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": group_version(group, v), "version": v}))
        .collect();
    json!({
        "name": group,
        "versions": entries,
        "preferredVersion": entries.first().cloned().unwrap_or(Value::Null),
    })
}

/// `/apis` (legacy form).
pub fn group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .iter()
        .map(|(group, versions)| api_group(group, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`.
pub fn group(registry: &Registry, name: &str) -> Option<Value> {
    registry
        .groups()
        .iter()
        .find(|(group, _)| group == name)
        .map(|(group, versions)| {
            let mut value = api_group(group, versions);
            value["kind"] = json!("APIGroup");
            value["apiVersion"] = json!("v1");
            value
        })
}

fn subresources(resource: &ResourceType, version: &str) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut subresources = Vec::new();
    let has_status = resource
        .served_version(version)
        .is_some_and(|v| v.status_subresource);
    if has_status {
        subresources.push(("status", STATUS_VERBS.to_vec()));
    }
    if resource.builtin == Some(Builtin::Namespace) {
        subresources.push(("finalize", vec!["update"]));
    }
    if resource.builtin == Some(Builtin::Pod) {
        subresources.push(("log", vec!["get"]));
    }
    subresources
}

/// `/api/v1` or `/apis/{group}/{version}`; `None` when nothing is served there.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for resource in registry.in_group_version(group, version) {
        let mut entry = json!({
            "name": resource.plural,
            "singularName": resource.singular,
            "namespaced": resource.namespaced,
            "kind": resource.kind,
            "verbs": VERBS,
        });
        if !resource.short_names.is_empty() {
            entry["shortNames"] = json!(resource.short_names);
        }
        if !resource.categories.is_empty() {
            entry["categories"] = json!(resource.categories);
        }
        resources.push(entry);
        for (subresource, verbs) in subresources(resource, version) {
            resources.push(json!({
                "name": format!("{}/{subresource}", resource.plural),
                "singularName": "",
                "namespaced": resource.namespaced,
                "kind": resource.kind,
                "verbs": verbs,
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version(group, version),
        "resources": resources,
    }))
}

fn aggregated_group(registry: &Registry, group: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|version| {
            let resources: Vec<Value> = registry
                .in_group_version(group, version)
                .map(|resource| {
                    let kind = json!({"group": group, "version": version, "kind": resource.kind});
                    let mut entry = json!({
                        "resource": resource.plural,
                        "responseKind": kind,
                        "scope": if resource.namespaced { "Namespaced" } else { "Cluster" },
                        "singularResource": resource.singular,
                        "verbs": VERBS,
                    });
                    if !resource.short_names.is_empty() {
                        entry["shortNames"] = json!(resource.short_names);
                    }
                    if !resource.categories.is_empty() {
                        entry["categories"] = json!(resource.categories);
                    }
                    let subs: Vec<Value> = subresources(resource, version)
                        .into_iter()
                        .map(|(name, verbs)| {
                            json!({"subresource": name, "responseKind": kind, "verbs": verbs})
                        })
                        .collect();
                    if !subs.is_empty() {
                        entry["subresources"] = Value::Array(subs);
                    }
                    entry
                })
                .collect();
            json!({"version": version, "resources": resources, "freshness": "Current"})
        })
        .collect();
    json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": versions})
}

/// Aggregated discovery for `/api` (core group only) or `/apis` (every other group).
pub fn aggregated(registry: &Registry, core: bool) -> Value {
    let items: Vec<Value> = if core {
        vec![aggregated_group(registry, "", &["v1".to_string()])]
    } else {
        registry
            .groups()
            .iter()
            .map(|(group, versions)| aggregated_group(registry, group, versions))
            .collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

/// Whether an Accept header prefers aggregated discovery v2.
pub fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').any(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        params.contains(&"g=apidiscovery.k8s.io")
            && params.contains(&"v=v2")
            && params.contains(&"as=APIGroupDiscoveryList")
    })
}

/// `/openapi/v3`: the index of group-version documents.
pub fn openapi_v3_index(registry: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    paths.insert(
        "api/v1".to_string(),
        json!({"serverRelativeURL": "/openapi/v3/api/v1"}),
    );
    for (group, versions) in registry.groups() {
        for version in versions {
            paths.insert(
                format!("apis/{group}/{version}"),
                json!({"serverRelativeURL": format!("/openapi/v3/apis/{group}/{version}")}),
            );
        }
    }
    json!({"paths": paths})
}

fn query_parameter(name: &str, type_name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": type_name, "uniqueItems": true}})
}

fn operation(resource: &ResourceType, version: &str, action: &str, write: bool) -> Value {
    let mut parameters = vec![query_parameter("pretty", "string")];
    if write {
        for name in ["dryRun", "fieldManager", "fieldValidation"] {
            parameters.push(query_parameter(name, "string"));
        }
        if action == "patch" {
            parameters.push(query_parameter("force", "boolean"));
        }
    }
    json!({
        "operationId": format!("{action}{}", resource.kind),
        "parameters": parameters,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": resource.group, "version": version, "kind": resource.kind},
    })
}

/// `/openapi/v3/apis/{group}/{version}` (or `api/v1`): paths with the
/// operations and parameters clients probe (kubectl checks that PATCH takes
/// `fieldValidation` before it relies on server-side validation), and the
/// declared schemas as components.
pub fn openapi_v3_group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    let root = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    for resource in registry.in_group_version(group, version) {
        let scope = if resource.namespaced {
            format!("{root}/namespaces/{{namespace}}/{}", resource.plural)
        } else {
            format!("{root}/{}", resource.plural)
        };
        paths.insert(
            scope.clone(),
            json!({
                "get": operation(resource, version, "list", false),
                "post": operation(resource, version, "post", true),
            }),
        );
        let item = json!({
            "get": operation(resource, version, "get", false),
            "put": operation(resource, version, "put", true),
            "patch": operation(resource, version, "patch", true),
            "delete": operation(resource, version, "delete", true),
        });
        paths.insert(format!("{scope}/{{name}}"), item.clone());
        if resource
            .served_version(version)
            .is_some_and(|v| v.status_subresource)
        {
            paths.insert(format!("{scope}/{{name}}/status"), item);
        }
        if let Some(schema) = resource
            .served_version(version)
            .and_then(|v| v.raw_schema.clone())
        {
            let prefix = if group.is_empty() {
                "io.k8s.api.core".to_string()
            } else {
                group.split('.').rev().collect::<Vec<_>>().join(".")
            };
            let mut schema = schema;
            schema["x-kubernetes-group-version-kind"] =
                json!([{"group": group, "version": version, "kind": resource.kind}]);
            schemas.insert(format!("{prefix}.{version}.{}", resource.kind), schema);
        }
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v{KUBE_MAJOR}.{KUBE_MINOR}.0")},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        Registry::new(&[json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "names": {"kind": "Widget", "plural": "widgets", "shortNames": ["wd"]},
                "scope": "Namespaced",
                "versions": [
                    {"name": "v1beta1", "served": true, "storage": false},
                    {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}}
                ]
            }
        })])
        .unwrap()
    }

    #[test]
    fn group_list_prefers_the_ga_version() {
        let list = group_list(&registry());
        let example = list["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == "example.com")
            .unwrap();
        assert_eq!(example["preferredVersion"]["version"], "v1");
        assert_eq!(
            example["versions"][1]["groupVersion"],
            "example.com/v1beta1"
        );
    }

    #[test]
    fn resource_list_has_short_names_and_status() {
        let list = resource_list(&registry(), "example.com", "v1").unwrap();
        assert_eq!(list["resources"][0]["shortNames"], json!(["wd"]));
        assert_eq!(list["resources"][0]["singularName"], "widget");
        assert_eq!(list["resources"][1]["name"], "widgets/status");
        let beta = resource_list(&registry(), "example.com", "v1beta1").unwrap();
        assert_eq!(beta["resources"].as_array().unwrap().len(), 1);
        assert!(resource_list(&registry(), "example.com", "v9").is_none());
        let core = resource_list(&registry(), "", "v1").unwrap();
        assert_eq!(core["resources"][0]["name"], "namespaces");
        assert_eq!(core["resources"][0]["namespaced"], false);
    }

    #[test]
    fn aggregated_documents() {
        let apis = aggregated(&registry(), false);
        let example = apis["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["metadata"]["name"] == "example.com")
            .unwrap();
        assert_eq!(example["versions"][0]["version"], "v1");
        assert_eq!(
            example["versions"][0]["resources"][0]["subresources"][0]["subresource"],
            "status"
        );
        let core = aggregated(&registry(), true);
        assert_eq!(
            core["items"][0]["versions"][0]["resources"][0]["resource"],
            "namespaces"
        );
    }

    #[test]
    fn openapi_documents_advertise_field_validation_on_patch() {
        let document = openapi_v3_group_version(&registry(), "example.com", "v1").unwrap();
        let item = &document["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"];
        assert_eq!(
            item["patch"]["x-kubernetes-group-version-kind"]["kind"],
            "Widget"
        );
        let names: Vec<&str> = item["patch"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(names.contains(&"fieldValidation"));
        assert!(
            document["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}/status"]
                .is_object()
        );
        assert!(openapi_v3_group_version(&registry(), "nope", "v1").is_none());
        assert!(openapi_v3_group_version(&registry(), "", "v1").unwrap()["paths"]["/api/v1/namespaces/{name}"].is_object());
    }

    #[test]
    fn detects_aggregated_accept_headers() {
        assert!(wants_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        ));
        assert!(!wants_aggregated("application/json"));
    }
}
