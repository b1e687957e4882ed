//! Role-based access control the way kube-apiserver's RBAC authorizer decides it
//! (`plugin/pkg/auth/authorizer/rbac` and `pkg/apis/rbac/v1/evaluation_helpers.go` in kubernetes),
//! over Role, ClusterRole, RoleBinding and ClusterRoleBinding documents read from the YAML manifests the
//! repository deploys, so tests run with exactly the permissions a real cluster would grant.
//!
//! What is reproduced:
//! - a ClusterRoleBinding grants its ClusterRole everywhere (every namespace, cluster-scoped resources and
//!   non-resource URLs); a RoleBinding grants its Role or ClusterRole in its own namespace only;
//! - a ServiceAccount subject without a namespace means the binding's namespace (none for a
//!   ClusterRoleBinding, where it then matches nobody);
//! - rules match on verb, API group, resource (`sparkapplications/status` names the subresource, `*/status`
//!   every status subresource), resource names (a request without a name — list and watch without a
//!   `metadata.name=` field selector, create, deletecollection — never matches a rule that lists names) and
//!   non-resource URLs (exact, or a prefix ending in `*`), with `*` for any verb, group or resource;
//! - the members of `system:masters` are allowed everything before RBAC is asked (kube-apiserver's
//!   privileged-group authorizer);
//! - the bootstrap roles every cluster has for discovery: `system:discovery` (authenticated users) and
//!   `system:public-info-viewer` (everyone, anonymous included).
//!
//! Namespaced documents without `metadata.namespace` get one the way `kubectl apply -k` would give it:
//! the `namespace:` of the `kustomization.yaml` beside the file when it lists the file in `resources:`
//! (kustomize then overrides whatever the document says), or one named explicitly in the manifest list.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::auth::Identity;
use crate::config::parse_yaml_documents;

/// The group whose members bypass authorization (`system:masters`).
pub const PRIVILEGED_GROUP: &str = "system:masters";
/// The group of every authenticated user.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// The group of the anonymous user.
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
/// The group the emulator's read-only tokens are in; the built-in ClusterRole `kube-emulator:view`
/// (get, list and watch on everything) is bound to it.
pub const VIEWERS_GROUP: &str = "kube-emulator:viewers";

const RBAC_API_VERSION: &str = "rbac.authorization.k8s.io/v1";

/// A manifest file to load RBAC documents from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RbacManifest {
    /// The YAML file (multi-document allowed; non-RBAC documents are skipped).
    pub path: PathBuf,
    /// The namespace of namespaced documents, overriding theirs (as a kustomization's `namespace:` does);
    /// `None` takes it from the `kustomization.yaml` beside the file, if that lists the file.
    pub namespace: Option<String>,
}

impl RbacManifest {
    /// A manifest whose namespace comes from its kustomization (or its own documents).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            namespace: None,
        }
    }

    /// Parses the CLI form `FILE` or `FILE=NAMESPACE`.
    pub fn parse(spec: &str) -> Self {
        match spec.rsplit_once('=') {
            Some((path, namespace)) if !namespace.is_empty() && !namespace.contains('/') => Self {
                path: path.into(),
                namespace: Some(namespace.to_string()),
            },
            _ => Self::new(spec),
        }
    }
}

/// Why RBAC documents could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RbacError {
    /// A file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is not YAML.
    #[error("cannot parse YAML in {path}")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// A document is not a valid RBAC object.
    #[error("{kind} {name:?} in {path} is not a valid rbac.authorization.k8s.io/v1 object")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The document's kind.
        kind: String,
        /// The document's name.
        name: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A namespaced document has no namespace and nothing gives it one.
    #[error(
        "{kind} {name:?} in {path} has no namespace: set metadata.namespace, list the file in a kustomization.yaml with `namespace:` beside it, or name one (FILE=NAMESPACE)"
    )]
    NoNamespace {
        /// The file.
        path: PathBuf,
        /// The document's kind.
        kind: String,
        /// The document's name.
        name: String,
    },
}

/// One rule of a Role or ClusterRole (`rbac.authorization.k8s.io/v1` `PolicyRule`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    /// Verbs, or `*`.
    #[serde(default)]
    pub verbs: Vec<String>,
    /// API groups (`""` is the core group), or `*`.
    #[serde(default)]
    pub api_groups: Vec<String>,
    /// Resources, `resource/subresource`, `*/subresource` or `*`.
    #[serde(default)]
    pub resources: Vec<String>,
    /// Object names; empty means any.
    #[serde(default)]
    pub resource_names: Vec<String>,
    /// Non-resource URLs (`/version`, `/apis/*`), or `*`.
    #[serde(default, rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
}

impl PolicyRule {
    fn verbs(verbs: &[&str]) -> Self {
        Self {
            verbs: verbs.iter().map(|v| (*v).to_string()).collect(),
            ..Self::default()
        }
    }

    fn urls(mut self, urls: &[&str]) -> Self {
        self.non_resource_urls = urls.iter().map(|u| (*u).to_string()).collect();
        self
    }

    fn everything(mut self) -> Self {
        self.api_groups = vec!["*".into()];
        self.resources = vec!["*".into()];
        self
    }

    /// `RuleAllows` of the RBAC authorizer.
    pub fn allows(&self, request: &Attributes) -> bool {
        if !matches_or_star(&self.verbs, &request.verb) {
            return false;
        }
        match &request.resource {
            Some(resource) => {
                matches_or_star(&self.api_groups, &resource.group)
                    && self.resource_matches(resource)
                    && (self.resource_names.is_empty()
                        || self
                            .resource_names
                            .iter()
                            .any(|n| Some(n.as_str()) == resource.name.as_deref()))
            }
            None => self.non_resource_urls.iter().any(|url| {
                url == "*"
                    || *url == request.path
                    || url
                        .strip_suffix('*')
                        .is_some_and(|prefix| request.path.starts_with(prefix))
            }),
        }
    }

    fn resource_matches(&self, request: &ResourceAttributes) -> bool {
        let combined = match &request.subresource {
            Some(sub) => format!("{}/{sub}", request.resource),
            None => request.resource.clone(),
        };
        self.resources.iter().any(|rule| {
            rule == "*"
                || *rule == combined
                || request
                    .subresource
                    .as_deref()
                    .is_some_and(|sub| rule.strip_prefix("*/") == Some(sub))
        })
    }
}

fn matches_or_star(values: &[String], wanted: &str) -> bool {
    values.iter().any(|v| v == "*" || v == wanted)
}

/// What a request asks to do, as kube-apiserver's `RequestInfo` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`; for a
    /// non-resource request the lower-cased HTTP method.
    pub verb: String,
    /// The resource addressed; `None` for a non-resource request (discovery, `/version`, health).
    pub resource: Option<ResourceAttributes>,
    /// The request path (below any proxy prefix).
    pub path: String,
}

/// The resource part of [`Attributes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceAttributes {
    /// API group, empty for core.
    pub group: String,
    /// Plural resource name.
    pub resource: String,
    /// Subresource, e.g. `status`.
    pub subresource: Option<String>,
    /// The namespace of the request: from `/namespaces/{ns}/`, or the name of a namespace addressed
    /// itself (`/api/v1/namespaces/{name}`).
    pub namespace: Option<String>,
    /// The object's name: from the path, or from a `metadata.name=` field selector of a list or watch.
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct RoleRef {
    kind: String,
    name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct Subject {
    kind: String,
    name: String,
    #[serde(default)]
    namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BindingSpec {
    role_ref: RoleRef,
    #[serde(default)]
    subjects: Vec<Subject>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct RoleSpec {
    #[serde(default)]
    rules: Vec<PolicyRule>,
}

#[derive(Debug, Clone)]
struct Binding {
    /// Empty for a ClusterRoleBinding.
    namespace: String,
    spec: BindingSpec,
}

/// Roles and bindings, and the decisions they give.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    roles: HashMap<(String, String), Vec<PolicyRule>>,
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    role_bindings: Vec<Binding>,
    cluster_role_bindings: Vec<Binding>,
}

impl Policy {
    /// The bootstrap discovery roles and the emulator's `kube-emulator:view` for read-only tokens.
    pub fn with_defaults() -> Self {
        let mut policy = Self::default();
        // plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go in kubernetes.
        policy.add_cluster_role(
            "system:discovery",
            vec![PolicyRule::verbs(&["get"]).urls(&[
                "/api",
                "/api/*",
                "/apis",
                "/apis/*",
                "/healthz",
                "/livez",
                "/openapi",
                "/openapi/*",
                "/readyz",
                "/version",
                "/version/",
            ])],
            &[AUTHENTICATED_GROUP],
        );
        policy.add_cluster_role(
            "system:public-info-viewer",
            vec![PolicyRule::verbs(&["get"]).urls(&[
                "/healthz",
                "/livez",
                "/readyz",
                "/version",
                "/version/",
            ])],
            &[AUTHENTICATED_GROUP, UNAUTHENTICATED_GROUP],
        );
        policy.add_cluster_role(
            "kube-emulator:view",
            vec![PolicyRule::verbs(&["get", "list", "watch"]).everything()],
            &[VIEWERS_GROUP],
        );
        policy
    }

    fn add_cluster_role(&mut self, name: &str, rules: Vec<PolicyRule>, groups: &[&str]) {
        self.cluster_roles.insert(name.to_string(), rules);
        self.cluster_role_bindings.push(Binding {
            namespace: String::new(),
            spec: BindingSpec {
                role_ref: RoleRef {
                    kind: "ClusterRole".into(),
                    name: name.to_string(),
                },
                subjects: groups
                    .iter()
                    .map(|g| Subject {
                        kind: "Group".into(),
                        name: (*g).to_string(),
                        namespace: None,
                    })
                    .collect(),
            },
        });
    }

    /// Loads the RBAC documents of a manifest file; returns how many were taken.
    pub fn load(&mut self, manifest: &RbacManifest) -> Result<usize, RbacError> {
        let path = &manifest.path;
        let text = std::fs::read_to_string(path).map_err(|source| RbacError::Io {
            path: path.clone(),
            source,
        })?;
        let documents = parse_yaml_documents(&text).map_err(|source| RbacError::Yaml {
            path: path.clone(),
            source,
        })?;
        let namespace = match &manifest.namespace {
            Some(namespace) => Some(namespace.clone()),
            None => kustomization_namespace(path)?,
        };
        let mut taken = 0;
        for document in &documents {
            if self.add_document(path, document, namespace.as_deref())? {
                taken += 1;
            }
        }
        Ok(taken)
    }

    /// Adds one document when it is an RBAC object; `namespace` overrides a namespaced one's.
    fn add_document(
        &mut self,
        path: &Path,
        document: &Value,
        namespace: Option<&str>,
    ) -> Result<bool, RbacError> {
        if document["apiVersion"] != RBAC_API_VERSION {
            return Ok(false);
        }
        let kind = document["kind"].as_str().unwrap_or_default().to_string();
        let name = document["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let invalid = |source| RbacError::Invalid {
            path: path.to_path_buf(),
            kind: kind.clone(),
            name: name.clone(),
            source,
        };
        let namespace = || {
            namespace
                .map(str::to_string)
                .or_else(|| {
                    document["metadata"]["namespace"]
                        .as_str()
                        .map(str::to_string)
                })
                .ok_or_else(|| RbacError::NoNamespace {
                    path: path.to_path_buf(),
                    kind: kind.clone(),
                    name: name.clone(),
                })
        };
        match kind.as_str() {
            "Role" => {
                let spec: RoleSpec = serde_json::from_value(document.clone()).map_err(invalid)?;
                self.roles.insert((namespace()?, name.clone()), spec.rules);
            }
            "ClusterRole" => {
                let spec: RoleSpec = serde_json::from_value(document.clone()).map_err(invalid)?;
                self.cluster_roles.insert(name.clone(), spec.rules);
            }
            "RoleBinding" => {
                let spec: BindingSpec =
                    serde_json::from_value(document.clone()).map_err(invalid)?;
                self.role_bindings.push(Binding {
                    namespace: namespace()?,
                    spec,
                });
            }
            "ClusterRoleBinding" => {
                let spec: BindingSpec =
                    serde_json::from_value(document.clone()).map_err(invalid)?;
                self.cluster_role_bindings.push(Binding {
                    namespace: String::new(),
                    spec,
                });
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Whether `user` may do what `request` asks.
    pub fn allows(&self, user: &Identity, request: &Attributes) -> bool {
        if user.groups.iter().any(|g| g == PRIVILEGED_GROUP) {
            return true;
        }
        let granted = |binding: &Binding| -> bool {
            if !binding
                .spec
                .subjects
                .iter()
                .any(|s| applies_to(user, s, &binding.namespace))
            {
                return false;
            }
            let rules = match binding.spec.role_ref.kind.as_str() {
                "ClusterRole" => self.cluster_roles.get(&binding.spec.role_ref.name),
                // A RoleBinding can only name a Role of its own namespace.
                "Role" => self.roles.get(&(
                    binding.namespace.clone(),
                    binding.spec.role_ref.name.clone(),
                )),
                _ => None,
            };
            rules.is_some_and(|rules| rules.iter().any(|r| r.allows(request)))
        };
        if self.cluster_role_bindings.iter().any(granted) {
            return true;
        }
        let Some(namespace) = request
            .resource
            .as_ref()
            .and_then(|r| r.namespace.as_deref())
        else {
            return false;
        };
        self.role_bindings
            .iter()
            .filter(|b| b.namespace == namespace)
            .any(granted)
    }
}

/// `appliesToUser` of the RBAC authorizer.
fn applies_to(user: &Identity, subject: &Subject, binding_namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => user.user == subject.name,
        "Group" => user.groups.contains(&subject.name),
        "ServiceAccount" => {
            let namespace = subject
                .namespace
                .as_deref()
                .filter(|ns| !ns.is_empty())
                .unwrap_or(binding_namespace);
            !namespace.is_empty()
                && user.user == format!("system:serviceaccount:{namespace}:{}", subject.name)
        }
        _ => false,
    }
}

/// The `namespace:` of the `kustomization.yaml` beside `path`, when it lists the file in `resources:`.
fn kustomization_namespace(path: &Path) -> Result<Option<String>, RbacError> {
    let (Some(dir), Some(file)) = (path.parent(), path.file_name()) else {
        return Ok(None);
    };
    let kustomization = dir.join("kustomization.yaml");
    let text = match std::fs::read_to_string(&kustomization) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(RbacError::Io {
                path: kustomization,
                source,
            });
        }
    };
    let value: Value = serde_yaml_ng::from_str(&text).map_err(|source| RbacError::Yaml {
        path: kustomization.clone(),
        source,
    })?;
    let listed = value["resources"].as_array().is_some_and(|resources| {
        resources.iter().any(|r| {
            r.as_str()
                .is_some_and(|r| Path::new(r.trim_start_matches("./")) == Path::new(file))
        })
    });
    Ok(listed
        .then(|| value["namespace"].as_str().map(str::to_string))
        .flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(namespace: &str, name: &str) -> Identity {
        Identity::service_account(namespace, name)
    }

    fn resource(verb: &str, group: &str, resource: &str, namespace: Option<&str>) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource: Some(ResourceAttributes {
                group: group.into(),
                resource: resource.into(),
                subresource: None,
                namespace: namespace.map(str::to_string),
                name: None,
            }),
            path: String::new(),
        }
    }

    fn named(mut attributes: Attributes, name: &str) -> Attributes {
        if let Some(r) = attributes.resource.as_mut() {
            r.name = Some(name.into());
        }
        attributes
    }

    fn sub(mut attributes: Attributes, subresource: &str) -> Attributes {
        if let Some(r) = attributes.resource.as_mut() {
            r.subresource = Some(subresource.into());
        }
        attributes
    }

    fn path(verb: &str, path: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource: None,
            path: path.into(),
        }
    }

    fn policy(yaml: &str, namespace: Option<&str>) -> Policy {
        let mut policy = Policy::with_defaults();
        for document in parse_yaml_documents(yaml).unwrap() {
            policy
                .add_document(Path::new("test.yaml"), &document, namespace)
                .unwrap();
        }
        policy
    }

    const WATCHER: &str = r"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: watcher}
rules:
  - apiGroups: [spark.apache.org]
    resources: [sparkapplications]
    verbs: [get, list, watch, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: watcher}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: watcher}
subjects: [{kind: ServiceAccount, name: watcher, namespace: gw}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: lease}
rules:
  - apiGroups: [coordination.k8s.io]
    resources: [leases]
    verbs: [create]
  - apiGroups: [coordination.k8s.io]
    resources: [leases]
    resourceNames: [the-lease]
    verbs: [get, update, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: lease}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: lease}
subjects: [{kind: ServiceAccount, name: watcher}]
";

    #[test]
    fn cluster_role_bindings_grant_everywhere_and_only_the_listed_verbs() {
        let policy = policy(WATCHER, Some("gw"));
        let watcher = sa("gw", "watcher");
        for verb in ["get", "list", "watch", "patch"] {
            let request = resource(verb, "spark.apache.org", "sparkapplications", Some("jobs"));
            assert!(policy.allows(&watcher, &request), "{verb}");
        }
        let all_namespaces = resource("list", "spark.apache.org", "sparkapplications", None);
        assert!(policy.allows(&watcher, &all_namespaces));
        for verb in ["create", "update", "delete", "deletecollection"] {
            let request = resource(verb, "spark.apache.org", "sparkapplications", Some("jobs"));
            assert!(!policy.allows(&watcher, &request), "{verb}");
        }
        assert!(
            !policy.allows(
                &sa("other", "watcher"),
                &resource("get", "spark.apache.org", "sparkapplications", Some("jobs"))
            ),
            "the same name in another namespace is another account"
        );
        assert!(
            !policy.allows(
                &watcher,
                &resource("get", "other.io", "sparkapplications", Some("jobs"))
            ),
            "the API group must match"
        );
        assert!(
            !policy.allows(
                &watcher,
                &sub(
                    resource("patch", "spark.apache.org", "sparkapplications", Some("j")),
                    "status"
                )
            ),
            "sparkapplications does not cover sparkapplications/status"
        );
    }

    #[test]
    fn role_bindings_grant_in_their_namespace_and_resource_names_need_a_name() {
        let policy = policy(WATCHER, Some("gw"));
        let watcher = sa("gw", "watcher");
        let lease =
            |verb: &str, ns: &str| resource(verb, "coordination.k8s.io", "leases", Some(ns));
        assert!(policy.allows(&watcher, &lease("create", "gw")));
        assert!(
            !policy.allows(&watcher, &lease("create", "default")),
            "a RoleBinding grants nothing outside its namespace"
        );
        assert!(policy.allows(&watcher, &named(lease("get", "gw"), "the-lease")));
        assert!(policy.allows(&watcher, &named(lease("update", "gw"), "the-lease")));
        assert!(!policy.allows(&watcher, &named(lease("get", "gw"), "another")));
        assert!(
            !policy.allows(&watcher, &lease("list", "gw")),
            "a list without a name selector never matches resourceNames"
        );
        assert!(
            policy.allows(&watcher, &named(lease("list", "gw"), "the-lease")),
            "a list with metadata.name=the-lease does"
        );
    }

    #[test]
    fn wildcards_subresources_users_and_groups() {
        let policy = policy(
            r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: statuses}
rules:
  - {apiGroups: ["*"], resources: ["*/status"], verbs: [patch]}
  - {apiGroups: [""], resources: [namespaces], verbs: ["*"]}
  - {nonResourceURLs: ["/metrics", "/debug/*"], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: statuses}
roleRef: {kind: ClusterRole, name: statuses}
subjects: [{kind: User, name: alice}, {kind: Group, name: ops}]
"#,
            None,
        );
        let alice = Identity::user("alice", &[]);
        let bob = Identity::user("bob", &["ops"]);
        let carol = Identity::user("carol", &[]);
        let status = sub(
            resource("patch", "spark.apache.org", "sparkapplications", Some("j")),
            "status",
        );
        assert!(policy.allows(&alice, &status));
        assert!(policy.allows(&bob, &status));
        assert!(!policy.allows(&carol, &status));
        assert!(
            !policy.allows(
                &alice,
                &resource("patch", "spark.apache.org", "sparkapplications", Some("j"))
            ),
            "*/status covers no main resource"
        );
        assert!(policy.allows(
            &alice,
            &resource("deletecollection", "", "namespaces", None)
        ));
        assert!(policy.allows(&alice, &path("get", "/metrics")));
        assert!(policy.allows(&alice, &path("get", "/debug/pprof/heap")));
        assert!(!policy.allows(&alice, &path("get", "/metricsz")));
        assert!(!policy.allows(&alice, &path("post", "/metrics")));
    }

    #[test]
    fn discovery_is_for_authenticated_users_and_version_for_everyone() {
        let policy = Policy::with_defaults();
        let anonymous = Identity::anonymous();
        let account = sa("gw", "gateway");
        for url in [
            "/api",
            "/api/v1",
            "/apis",
            "/apis/spark.apache.org/v1",
            "/openapi/v3",
        ] {
            assert!(policy.allows(&account, &path("get", url)), "{url}");
            assert!(!policy.allows(&anonymous, &path("get", url)), "{url}");
        }
        for url in ["/version", "/readyz", "/healthz", "/livez"] {
            assert!(policy.allows(&anonymous, &path("get", url)), "{url}");
        }
        assert!(
            !policy.allows(&anonymous, &path("get", "/readyz/etcd")),
            "the public paths are exact"
        );
        assert!(!policy.allows(&anonymous, &resource("list", "", "namespaces", None)));
        assert!(policy.allows(
            &Identity::admin(),
            &resource("list", "", "namespaces", None)
        ));
    }

    #[test]
    fn read_only_tokens_are_viewers() {
        let policy = Policy::with_defaults();
        let viewer = Identity::viewer("viewer");
        let list = resource("list", "spark.apache.org", "sparkapplications", Some("j"));
        assert!(policy.allows(&viewer, &list));
        let create = resource("create", "spark.apache.org", "sparkapplications", Some("j"));
        assert!(!policy.allows(&viewer, &create));
    }

    #[test]
    fn a_role_binding_cannot_use_a_role_of_another_namespace_and_kinds_are_checked() {
        let yaml = r"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: r, namespace: a}
rules: [{apiGroups: [''], resources: [pods], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: r, namespace: b}
roleRef: {kind: Role, name: r}
subjects: [{kind: ServiceAccount, name: s}]
";
        let policy = policy(yaml, None);
        let s = sa("b", "s");
        assert!(!policy.allows(&s, &named(resource("get", "", "pods", Some("b")), "p")));
        assert!(!policy.allows(&s, &named(resource("get", "", "pods", Some("a")), "p")));
    }

    #[test]
    fn namespaces_come_from_the_kustomization_listing_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("kustomization.yaml"),
            "namespace: gw\nresources:\n  - ./rbac.yaml\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("rbac.yaml"), WATCHER).unwrap();
        std::fs::write(dir.path().join("unlisted.yaml"), WATCHER).unwrap();
        let mut policy = Policy::default();
        assert_eq!(
            policy
                .load(&RbacManifest::new(dir.path().join("rbac.yaml")))
                .unwrap(),
            4
        );
        let lease = resource("create", "coordination.k8s.io", "leases", Some("gw"));
        assert!(policy.allows(&sa("gw", "watcher"), &lease));
        let error = Policy::default()
            .load(&RbacManifest::new(dir.path().join("unlisted.yaml")))
            .unwrap_err();
        assert!(matches!(error, RbacError::NoNamespace { ref kind, .. } if kind == "Role"));
        let mut explicit = Policy::default();
        let spec = format!("{}=other", dir.path().join("unlisted.yaml").display());
        explicit.load(&RbacManifest::parse(&spec)).unwrap();
        let lease = resource("create", "coordination.k8s.io", "leases", Some("other"));
        assert!(explicit.allows(&sa("other", "watcher"), &lease));
    }

    #[test]
    fn manifest_specs_parse() {
        assert_eq!(
            RbacManifest::parse("a/b.yaml"),
            RbacManifest::new("a/b.yaml")
        );
        assert_eq!(
            RbacManifest::parse("a/b.yaml=ns").namespace.as_deref(),
            Some("ns")
        );
        assert_eq!(RbacManifest::parse("a=b/c.yaml").namespace, None);
    }
}
