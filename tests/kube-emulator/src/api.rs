//! Request handling, independent of HTTP: authentication, authorization,
//! injected faults, then discovery, reads (get, list, watch) and writes
//! (create, update, patch, delete).
//!
//! ```text
//! Request ─► parse_path ─► health? ─► latency ─► authn (401) ─► authz (403)
//!         ─► injected error? ─► discovery | read | write ─► Reply
//! ```

mod meta;
mod read;
pub mod request;
mod write;

use std::sync::Arc;

use crate::resources::{Builtin, ResourceType, VersionDef};
use crate::selector::FieldSelector;
use crate::state::Shared;
use crate::status::{ApiError, GroupResource};
use crate::store::ObjectKey;
use crate::table::IncludeObject;
use crate::view::View;
use crate::{discovery, rbac};

pub use request::{Body, Reply, Request};
use request::{ResourcePath, Route};

/// Everything a resource handler needs to know about its request.
pub(crate) struct Ctx<'a> {
    shared: &'a Arc<Shared>,
    resource: &'a ResourceType,
    version: &'a VersionDef,
    namespace: Option<String>,
    name: Option<String>,
    status_subresource: bool,
    request: &'a Request,
    table: Option<IncludeObject>,
}

impl Ctx<'_> {
    fn view(&self) -> View {
        View::new(
            Arc::clone(&self.shared.registry),
            self.resource.id,
            &self.version.name,
            self.table,
        )
    }

    fn group_resource(&self) -> GroupResource {
        self.resource.group_resource()
    }

    fn key(&self, name: &str) -> ObjectKey {
        ObjectKey::new(self.namespace.clone().unwrap_or_default(), name)
    }

    fn name(&self) -> &str {
        self.name.as_deref().unwrap_or_default()
    }

    fn dry_run(&self) -> bool {
        self.request.param("dryRun") == Some("All")
    }
}

/// Serves one request.
pub async fn handle(shared: &Arc<Shared>, request: Request) -> Reply {
    let route = request::parse_path(&request.path);
    if route == Route::Health {
        return match authorize(shared, &request, &route) {
            Ok(()) => Reply::text(200, "ok"),
            Err(error) => Reply::error(&error),
        };
    }
    let (verb, resource_name) = match &route {
        Route::Resource(path) => (
            request::resource_verb(&request.method, path, request.flag("watch")),
            Some(path.plural.clone()),
        ),
        _ => (Some("discovery"), None),
    };
    let verb_label = verb.unwrap_or("other");
    let delay = shared.faults().latency_for(verb_label);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    shared.count_request(verb_label);
    if let Err(error) = authorize(shared, &request, &route) {
        return Reply::error(&error);
    }
    let injected = shared
        .faults()
        .take_error(verb_label, resource_name.as_deref(), fastrand::f64);
    match route {
        Route::Resource(path) => {
            let Some(verb) = verb else {
                return Reply::error(&ApiError::new(
                    405,
                    "MethodNotAllowed",
                    "the server does not allow this method on the requested resource",
                ));
            };
            if let Some(error) = injected {
                return Reply::error(&error);
            }
            match resource_request(shared, &request, &path, verb) {
                Ok(reply) => reply,
                Err(error) => Reply::error(&error),
            }
        }
        other => {
            if let Some(error) = injected {
                return Reply::error(&error);
            }
            discovery_request(shared, &request, other)
        }
    }
}

/// Authentication (401 for a token nobody issued) and RBAC authorization (403 with the real server's
/// message), before anything else looks at the request.
fn authorize(shared: &Shared, request: &Request, route: &Route) -> Result<(), ApiError> {
    let identity = shared
        .tokens()
        .authenticate(request.authorization.as_deref())
        .map_err(|_| ApiError::unauthorized())?;
    let attributes = attributes(request, route);
    if shared.rbac.allows(&identity, &attributes) {
        return Ok(());
    }
    Err(match &attributes.resource {
        Some(resource) => ApiError::forbidden_rbac(
            &GroupResource::new(&resource.group, &resource.resource),
            resource.subresource.as_deref(),
            resource.name.as_deref().unwrap_or_default(),
            &identity.user,
            &attributes.verb,
            resource.namespace.as_deref(),
        ),
        None => ApiError::forbidden_path(&identity.user, &attributes.verb, &attributes.path),
    })
}

/// The request as kube-apiserver's `RequestInfo` would describe it to the authorizer.
fn attributes(request: &Request, route: &Route) -> rbac::Attributes {
    let method_verb = request.method.as_str().to_ascii_lowercase();
    let Route::Resource(path) = route else {
        return rbac::Attributes {
            verb: method_verb,
            resource: None,
            path: request.path.clone(),
        };
    };
    let verb = request::resource_verb(&request.method, path, request.flag("watch"))
        .map_or(method_verb, str::to_string);
    let mut name = path.name.clone();
    if name.is_none() && matches!(verb.as_str(), "list" | "watch") {
        // A list or watch of one name (kube-rs `watch_object`, `kubectl get -w NAME`) is authorized
        // for that name, so rules with resourceNames can allow it.
        name = request
            .param("fieldSelector")
            .and_then(|s| FieldSelector::parse(s).ok())
            .and_then(|s| s.exact_name().map(str::to_string))
            .filter(|n| valid_path_segment(n));
    }
    // `/api/v1/namespaces/{name}` is "in" the namespace it names.
    let namespace = path.namespace.clone().or_else(|| {
        (path.group.is_empty() && path.plural == "namespaces")
            .then(|| path.name.clone())
            .flatten()
    });
    rbac::Attributes {
        verb,
        resource: Some(rbac::ResourceAttributes {
            group: path.group.clone(),
            resource: path.plural.clone(),
            subresource: path.subresource.clone(),
            namespace,
            name,
        }),
        path: request.path.clone(),
    }
}

/// `path.IsValidPathSegmentName` of apimachinery.
fn valid_path_segment(name: &str) -> bool {
    name != "." && name != ".." && !name.contains(['/', '%'])
}

fn discovery_request(shared: &Shared, request: &Request, route: Route) -> Reply {
    let registry = &shared.registry;
    let aggregated = discovery::wants_aggregated(&request.accept);
    let aggregated_reply = |core: bool| {
        let mut reply = Reply::json(200, discovery::aggregated(registry, core));
        reply.content_type = Some(discovery::AGGREGATED_CONTENT_TYPE);
        reply
    };
    let found = |value: Option<serde_json::Value>| match value {
        Some(value) => Reply::json(200, value),
        None => Reply::error(&ApiError::path_not_found()),
    };
    match route {
        Route::Version => Reply::json(200, discovery::version_info()),
        Route::CoreVersions if aggregated => aggregated_reply(true),
        Route::CoreVersions => Reply::json(200, discovery::api_versions()),
        Route::CoreResources => found(discovery::resource_list(registry, "", "v1")),
        Route::Groups if aggregated => aggregated_reply(false),
        Route::Groups => Reply::json(200, discovery::group_list(registry)),
        Route::Group(group) => found(discovery::group(registry, &group)),
        Route::GroupResources(group, version) => {
            found(discovery::resource_list(registry, &group, &version))
        }
        Route::OpenApiV3Index => Reply::json(200, discovery::openapi_v3_index(registry)),
        Route::OpenApiV3Document(path) => {
            let segments: Vec<&str> = path.split('/').collect();
            let document = match segments.as_slice() {
                ["api", version] => discovery::openapi_v3_group_version(registry, "", version),
                ["apis", group, version] => {
                    discovery::openapi_v3_group_version(registry, group, version)
                }
                _ => None,
            };
            found(document)
        }
        _ => Reply::error(&ApiError::path_not_found()),
    }
}

fn table_option(request: &Request) -> Result<Option<IncludeObject>, ApiError> {
    let wants_table = request.accept.split(',').any(|media| {
        let params: Vec<&str> = media.split(';').map(str::trim).collect();
        params.contains(&"as=Table") && params.contains(&"g=meta.k8s.io")
    });
    if !wants_table {
        return Ok(None);
    }
    IncludeObject::parse(request.param("includeObject"))
        .map(Some)
        .map_err(ApiError::bad_request)
}

fn resource_request(
    shared: &Arc<Shared>,
    request: &Request,
    path: &ResourcePath,
    verb: &str,
) -> Result<Reply, ApiError> {
    let registry = &shared.registry;
    let resource = registry
        .find(&path.group, &path.plural)
        .ok_or_else(ApiError::path_not_found)?;
    let version = resource
        .served_version(&path.version)
        .ok_or_else(ApiError::path_not_found)?;
    if path.namespace.is_some() && !resource.namespaced {
        return Err(ApiError::path_not_found());
    }
    let status_subresource = match path.subresource.as_deref() {
        None => false,
        Some("status") if version.status_subresource => true,
        Some("log") if resource.builtin == Some(Builtin::Pod) && path.name.is_some() => {
            let ctx = Ctx {
                shared,
                resource,
                version,
                namespace: path.namespace.clone(),
                name: path.name.clone(),
                status_subresource: false,
                request,
                table: None,
            };
            return match verb {
                "get" => read::pod_log(&ctx),
                _ => Err(ApiError::method_not_supported(&ctx.group_resource(), verb)),
            };
        }
        Some(_) => return Err(ApiError::path_not_found()),
    };
    // Named objects of namespaced types only live under /namespaces/{ns}/.
    let needs_namespace = resource.namespaced && (path.name.is_some() || verb == "create");
    if needs_namespace && path.namespace.is_none() {
        return Err(ApiError::path_not_found());
    }
    let ctx = Ctx {
        shared,
        resource,
        version,
        namespace: path.namespace.clone(),
        name: path.name.clone(),
        status_subresource,
        request,
        table: table_option(request)?,
    };
    match verb {
        "get" => read::get(&ctx),
        "list" => read::list(&ctx),
        "watch" => read::watch(&ctx),
        "create" => write::create(&ctx),
        "update" => write::update(&ctx),
        "patch" => write::patch(&ctx),
        "delete" => write::delete(&ctx),
        "deletecollection" => write::delete_collection(&ctx),
        _ => Err(ApiError::method_not_supported(&ctx.group_resource(), verb)),
    }
}

/// Whether a name is valid for a namespace (an RFC 1123 label).
pub(crate) fn valid_namespace_name(name: &str) -> bool {
    meta::validate_name(name, true).is_empty()
}

/// A freshly created, Active namespace object (for namespaces made at start).
pub(crate) fn new_namespace_object(name: &str) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "uid": uuid::Uuid::new_v4().to_string(),
            "creationTimestamp": meta::now(),
            "labels": {"kubernetes.io/metadata.name": name},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}
