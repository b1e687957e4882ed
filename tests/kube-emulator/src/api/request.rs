//! Transport-independent requests and replies, and the parsing of Kubernetes
//! API paths into routes (pure, unit-tested).

use std::collections::HashMap;

use bytes::Bytes;
use http::Method;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::status::ApiError;

/// A request, already stripped of the path prefix.
#[derive(Debug, Clone)]
pub struct Request {
    /// HTTP method.
    pub method: Method,
    /// Path below the prefix, starting with `/`.
    pub path: String,
    /// Decoded query parameters.
    pub query: HashMap<String, String>,
    /// `Accept` header.
    pub accept: String,
    /// `Content-Type` header.
    pub content_type: String,
    /// `Authorization` header.
    pub authorization: Option<String>,
    /// Body bytes.
    pub body: Bytes,
}

impl Request {
    /// A query parameter, empty values treated as absent.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A boolean query parameter (`true` or `1`).
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.param(name), Some("true" | "1"))
    }
}

/// A reply body.
pub enum Body {
    /// A JSON document.
    Json(Value),
    /// Plain text.
    Text(String),
    /// A streamed watch.
    Stream(mpsc::Receiver<Bytes>),
}

/// A reply, turned into an HTTP response by the server.
pub struct Reply {
    /// HTTP status code.
    pub status: u16,
    /// `Content-Type`, when not the default for the body kind.
    pub content_type: Option<&'static str>,
    /// Extra headers (`Warning`, `Retry-After`).
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Body,
}

impl Reply {
    /// A JSON reply.
    pub fn json(status: u16, value: Value) -> Self {
        Self {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Body::Json(value),
        }
    }

    /// A plain-text reply.
    pub fn text(status: u16, text: impl Into<String>) -> Self {
        Self {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Body::Text(text.into()),
        }
    }

    /// A streamed watch reply.
    pub fn stream(events: mpsc::Receiver<Bytes>) -> Self {
        Self {
            status: 200,
            content_type: None,
            headers: Vec::new(),
            body: Body::Stream(events),
        }
    }

    /// An error as a `Status` object, with `Retry-After` when it has one.
    pub fn error(error: &ApiError) -> Self {
        let mut reply = Self::json(error.code, error.to_status());
        if let Some(seconds) = error.retry_after() {
            reply.headers.push(("Retry-After", seconds.to_string()));
        }
        reply
    }

    /// Adds `Warning` headers.
    pub fn with_warnings(mut self, warnings: &[String]) -> Self {
        for warning in warnings {
            let escaped = warning.replace('\\', "\\\\").replace('"', "\\\"");
            self.headers
                .push(("Warning", format!("299 - \"{escaped}\"")));
        }
        self
    }
}

/// A path naming resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    /// API group, empty for core.
    pub group: String,
    /// Version.
    pub version: String,
    /// Namespace from `/namespaces/{ns}/...`.
    pub namespace: Option<String>,
    /// Plural resource name.
    pub plural: String,
    /// Object name.
    pub name: Option<String>,
    /// Subresource, e.g. `status`.
    pub subresource: Option<String>,
    /// Legacy `/watch/` path form.
    pub watch_prefix: bool,
}

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/healthz`, `/livez`, `/readyz` (and their sub-checks).
    Health,
    /// `/version`.
    Version,
    /// `/api`.
    CoreVersions,
    /// `/api/v1`.
    CoreResources,
    /// `/apis`.
    Groups,
    /// `/apis/{group}`.
    Group(String),
    /// `/apis/{group}/{version}`.
    GroupResources(String, String),
    /// `/openapi/v2`.
    OpenApiV2,
    /// `/openapi/v3`.
    OpenApiV3Index,
    /// `/openapi/v3/...`.
    OpenApiV3Document(String),
    /// Anything under a group version.
    Resource(ResourcePath),
    /// Nothing known.
    NotFound,
}

/// Namespace subresources, which make `/namespaces/{name}/{sub}` not a namespaced path.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

/// Parses a path (below the prefix).
pub fn parse_path(path: &str) -> Route {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["healthz" | "livez" | "readyz", ..] => Route::Health,
        ["version"] => Route::Version,
        ["api"] => Route::CoreVersions,
        ["api", "v1"] => Route::CoreResources,
        ["api", version, rest @ ..] => resource_route("", version, rest),
        ["apis"] => Route::Groups,
        ["apis", group] => Route::Group((*group).to_string()),
        ["apis", group, version] => {
            Route::GroupResources((*group).to_string(), (*version).to_string())
        }
        ["apis", group, version, rest @ ..] => resource_route(group, version, rest),
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3Index,
        ["openapi", "v3", rest @ ..] => Route::OpenApiV3Document(rest.join("/")),
        _ => Route::NotFound,
    }
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Route {
    let (watch_prefix, mut rest) = match rest {
        ["watch", tail @ ..] => (true, tail),
        other => (false, other),
    };
    let mut namespace = None;
    if let ["namespaces", ns, tail @ ..] = rest {
        let is_namespace_subresource = tail.len() == 1 && NAMESPACE_SUBRESOURCES.contains(&tail[0]);
        if !tail.is_empty() && !is_namespace_subresource {
            namespace = Some((*ns).to_string());
            rest = tail;
        }
    }
    let (plural, name, subresource) = match rest {
        [plural] => (plural, None, None),
        [plural, name] => (plural, Some(*name), None),
        [plural, name, sub] => (plural, Some(*name), Some(*sub)),
        _ => return Route::NotFound,
    };
    Route::Resource(ResourcePath {
        group: group.to_string(),
        version: version.to_string(),
        namespace,
        plural: (*plural).to_string(),
        name: name.map(str::to_string),
        subresource: subresource.map(str::to_string),
        watch_prefix,
    })
}

/// The verb of a resource request, as RBAC names it.
pub fn resource_verb(
    method: &Method,
    path: &ResourcePath,
    watch_param: bool,
) -> Option<&'static str> {
    let named = path.name.is_some();
    Some(match *method {
        Method::GET | Method::HEAD if path.watch_prefix || (watch_param && !named) => "watch",
        Method::GET | Method::HEAD if named => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST if !named => "create",
        Method::PUT if named => "update",
        Method::PATCH if named => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(path: &str) -> ResourcePath {
        match parse_path(path) {
            Route::Resource(r) => r,
            other => panic!("{path} parsed as {other:?}"),
        }
    }

    #[test]
    fn discovery_paths() {
        assert_eq!(parse_path("/healthz"), Route::Health);
        assert_eq!(parse_path("/readyz/ping"), Route::Health);
        assert_eq!(parse_path("/version"), Route::Version);
        assert_eq!(parse_path("/api"), Route::CoreVersions);
        assert_eq!(parse_path("/api/v1"), Route::CoreResources);
        assert_eq!(parse_path("/apis/"), Route::Groups);
        assert_eq!(
            parse_path("/apis/spark.apache.org"),
            Route::Group("spark.apache.org".into())
        );
        assert_eq!(
            parse_path("/apis/spark.apache.org/v1"),
            Route::GroupResources("spark.apache.org".into(), "v1".into())
        );
        assert_eq!(
            parse_path("/openapi/v3/apis/x/v1"),
            Route::OpenApiV3Document("apis/x/v1".into())
        );
        assert_eq!(parse_path("/nope"), Route::NotFound);
    }

    #[test]
    fn namespaced_custom_resources() {
        let r = resource("/apis/spark.apache.org/v1/namespaces/jobs/sparkapplications/pi/status");
        assert_eq!(r.group, "spark.apache.org");
        assert_eq!(r.namespace.as_deref(), Some("jobs"));
        assert_eq!(r.plural, "sparkapplications");
        assert_eq!(r.name.as_deref(), Some("pi"));
        assert_eq!(r.subresource.as_deref(), Some("status"));
        let all = resource("/apis/spark.apache.org/v1/sparkapplications");
        assert_eq!(all.namespace, None);
        assert_eq!(all.name, None);
    }

    #[test]
    fn namespaces_themselves() {
        let list = resource("/api/v1/namespaces");
        assert_eq!(
            (list.plural.as_str(), list.name.as_deref()),
            ("namespaces", None)
        );
        let one = resource("/api/v1/namespaces/jobs");
        assert_eq!(
            (one.plural.as_str(), one.name.as_deref(), one.namespace),
            ("namespaces", Some("jobs"), None)
        );
        let status = resource("/api/v1/namespaces/jobs/status");
        assert_eq!(status.subresource.as_deref(), Some("status"));
        assert_eq!(status.namespace, None);
        let leases = resource("/apis/coordination.k8s.io/v1/namespaces/jobs/leases");
        assert_eq!(leases.namespace.as_deref(), Some("jobs"));
        assert_eq!(leases.plural, "leases");
    }

    #[test]
    fn legacy_watch_paths() {
        let r = resource("/apis/spark.apache.org/v1/watch/namespaces/jobs/sparkapplications/pi");
        assert!(r.watch_prefix);
        assert_eq!(r.name.as_deref(), Some("pi"));
    }

    #[test]
    fn verbs() {
        let named = resource("/api/v1/namespaces/x");
        let collection = resource("/api/v1/namespaces");
        assert_eq!(resource_verb(&Method::GET, &named, false), Some("get"));
        assert_eq!(
            resource_verb(&Method::GET, &collection, false),
            Some("list")
        );
        assert_eq!(
            resource_verb(&Method::GET, &collection, true),
            Some("watch")
        );
        assert_eq!(
            resource_verb(&Method::POST, &collection, false),
            Some("create")
        );
        assert_eq!(resource_verb(&Method::POST, &named, false), None);
        assert_eq!(resource_verb(&Method::PUT, &named, false), Some("update"));
        assert_eq!(resource_verb(&Method::PATCH, &named, false), Some("patch"));
        assert_eq!(
            resource_verb(&Method::DELETE, &named, false),
            Some("delete")
        );
        assert_eq!(
            resource_verb(&Method::DELETE, &collection, false),
            Some("deletecollection")
        );
    }
}
