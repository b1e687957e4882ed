//! Kubernetes `Status` objects, the single shape every error response takes.
//!
//! The constructors reproduce the real kube-apiserver's messages word for word
//! (`sparkapplications.spark.apache.org "x" not found`, `... is invalid: ...`),
//! because clients and tests match on `reason`, `code` and sometimes `message`.

use std::fmt;

use serde_json::{Map, Value, json};

/// A resource qualified by its API group, printed the way the API server prints
/// it in messages: `sparkapplications.spark.apache.org`, or just `namespaces`
/// for the core group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupResource {
    /// API group, empty for the core group.
    pub group: String,
    /// Plural resource name, possibly with a subresource (`sparkapplications/status`).
    pub resource: String,
}

impl GroupResource {
    /// Builds a group-qualified resource name.
    pub fn new(group: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            resource: resource.into(),
        }
    }
}

impl fmt::Display for GroupResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

/// The kind of a field-level validation error, mirroring
/// `k8s.io/apimachinery/pkg/util/validation/field.ErrorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// A required field is missing.
    Required,
    /// A value is not one of the enumerated values.
    NotSupported,
    /// A value is malformed or out of range.
    Invalid,
    /// A value has the wrong JSON type.
    TypeInvalid,
    /// A change is not allowed.
    Forbidden,
    /// A value is longer than allowed.
    TooLong,
    /// A list or map has too many entries.
    TooMany,
}

impl FieldErrorKind {
    /// The `reason` of a `StatusCause`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Required => "FieldValueRequired",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Invalid => "FieldValueInvalid",
            Self::TypeInvalid => "FieldValueTypeInvalid",
            Self::Forbidden => "FieldValueForbidden",
            Self::TooLong => "FieldValueTooLong",
            Self::TooMany => "FieldValueTooMany",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Required => "Required value",
            Self::NotSupported => "Unsupported value",
            Self::Invalid | Self::TypeInvalid => "Invalid value",
            Self::Forbidden => "Forbidden",
            Self::TooLong => "Too long",
            Self::TooMany => "Too many",
        }
    }
}

/// One field-level validation error; several of them make a 422 Invalid.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// What went wrong.
    pub kind: FieldErrorKind,
    /// The field path, e.g. `spec.runtimeVersions.sparkVersion` or `spec.driverArgs[0]`.
    pub field: String,
    /// The offending value rendered like Go's `%q`/`%v`, when the kind shows one.
    pub value: Option<String>,
    /// Extra explanation appended after the value.
    pub detail: String,
}

impl FieldError {
    /// `field: Required value`.
    pub fn required(field: impl Into<String>) -> Self {
        Self::new(FieldErrorKind::Required, field, None, "")
    }

    /// `field: Unsupported value: "x": supported values: "a", "b"`.
    pub fn not_supported(field: impl Into<String>, value: &Value, allowed: &[Value]) -> Self {
        let allowed: Vec<String> = allowed.iter().map(render_value).collect();
        Self::new(
            FieldErrorKind::NotSupported,
            field,
            Some(render_value(value)),
            format!("supported values: {}", allowed.join(", ")),
        )
    }

    /// `field: Invalid value: "string": field in body must be of type integer: "string"`.
    pub fn type_invalid(field: impl Into<String>, expected: &str, actual: &Value) -> Self {
        let field = field.into();
        let actual_type = json_type_name(actual);
        let detail = format!("{field} in body must be of type {expected}: \"{actual_type}\"");
        Self::new(
            FieldErrorKind::TypeInvalid,
            field,
            Some(format!("\"{actual_type}\"")),
            detail,
        )
    }

    /// `field: Invalid value: <value>: detail`.
    pub fn invalid(field: impl Into<String>, value: &Value, detail: impl Into<String>) -> Self {
        Self::new(
            FieldErrorKind::Invalid,
            field,
            Some(render_value(value)),
            detail,
        )
    }

    /// `field: Forbidden: detail`.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorKind::Forbidden, field, None, detail)
    }

    /// `field: Too long: detail`.
    pub fn too_long(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorKind::TooLong, field, None, detail)
    }

    /// `field: Too many: detail`.
    pub fn too_many(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorKind::TooMany, field, None, detail)
    }

    fn new(
        kind: FieldErrorKind,
        field: impl Into<String>,
        value: Option<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            field: field.into(),
            value,
            detail: detail.into(),
        }
    }

    /// The part after `field: `, used as the cause message.
    pub fn body(&self) -> String {
        let mut body = self.kind.label().to_string();
        if let Some(value) = &self.value {
            body.push_str(": ");
            body.push_str(value);
        }
        if !self.detail.is_empty() {
            body.push_str(": ");
            body.push_str(&self.detail);
        }
        body
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// Renders a JSON value the way the API server's field errors quote it.
pub fn render_value(value: &Value) -> String {
    match value {
        Value::String(_) => value.to_string(),
        Value::Null => "null".to_string(),
        other => other.to_string(),
    }
}

/// The OpenAPI type name of a JSON value, as used in type errors.
pub fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// One entry of `details.causes`.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusCause {
    /// Machine-readable reason, e.g. `FieldValueRequired`.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
    /// The field the cause is about, possibly empty.
    pub field: String,
}

/// `details` of a Status.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatusDetails {
    /// Name of the object concerned.
    pub name: String,
    /// Its API group.
    pub group: String,
    /// The kind (for Invalid) or the plural resource (for most other errors).
    pub kind: String,
    /// Field causes.
    pub causes: Vec<StatusCause>,
    /// Seconds after which the client may retry (429, 503).
    pub retry_after_seconds: Option<u64>,
}

/// An API error: becomes an HTTP status code and a `Status` body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status code.
    pub code: u16,
    /// `reason`, e.g. `NotFound`.
    pub reason: String,
    /// `message`.
    pub message: String,
    /// `details`, when the real server gives some (boxed to keep errors small).
    pub details: Option<Box<StatusDetails>>,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

/// The HTML escaping kube-apiserver applies to Forbidden messages (they may echo a path).
fn sanitize(message: &str) -> String {
    message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn resource_details(gr: &GroupResource, name: &str) -> StatusDetails {
    StatusDetails {
        name: name.to_string(),
        group: gr.group.clone(),
        kind: gr.resource.clone(),
        ..StatusDetails::default()
    }
}

impl ApiError {
    /// A bare error without details.
    pub fn new(code: u16, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, details: StatusDetails) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    /// 404 `sparkapplications.spark.apache.org "x" not found`.
    pub fn not_found(gr: &GroupResource, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{gr} \"{name}\" not found"))
            .with_details(resource_details(gr, name))
    }

    /// 404 for a path that names no resource at all.
    pub fn path_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(StatusDetails::default())
    }

    /// 409 `sparkapplications.spark.apache.org "x" already exists`.
    pub fn already_exists(gr: &GroupResource, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{gr} \"{name}\" already exists"),
        )
        .with_details(resource_details(gr, name))
    }

    /// 409 Conflict for a stale resourceVersion.
    pub fn conflict_modified(gr: &GroupResource, name: &str) -> Self {
        Self::conflict(
            gr,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 409 `Operation cannot be fulfilled on <gr> "x": <why>`.
    pub fn conflict(gr: &GroupResource, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {gr} \"{name}\": {why}"),
        )
        .with_details(resource_details(gr, name))
    }

    /// 422 `Kind.group "x" is invalid: ...` with one cause per field error.
    pub fn invalid(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> Self {
        let qualified_kind = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let summary = match errors {
            [single] => single.to_string(),
            many => format!(
                "[{}]",
                many.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let causes = errors
            .iter()
            .map(|e| StatusCause {
                reason: e.kind.reason().to_string(),
                message: e.body(),
                field: e.field.clone(),
            })
            .collect();
        Self::new(
            422,
            "Invalid",
            format!("{qualified_kind} \"{name}\" is invalid: {summary}"),
        )
        .with_details(StatusDetails {
            name: name.to_string(),
            group: group.to_string(),
            kind: kind.to_string(),
            causes,
            retry_after_seconds: None,
        })
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// 401 Unauthorized.
    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// 403 Forbidden, with the message kube-apiserver gives when no authorizer allows a resource
    /// request (`responsewriters.Forbidden` and `errors.NewForbidden` in k8s.io/apiserver): the subject
    /// names the resource without its subresource, the sentence names both.
    pub fn forbidden_rbac(
        gr: &GroupResource,
        subresource: Option<&str>,
        name: &str,
        user: &str,
        verb: &str,
        namespace: Option<&str>,
    ) -> Self {
        let subject = if name.is_empty() {
            format!("{gr} is forbidden")
        } else {
            format!("{gr} \"{name}\" is forbidden")
        };
        let resource = match subresource {
            Some(sub) => format!("{}/{sub}", gr.resource),
            None => gr.resource.clone(),
        };
        let scope = match namespace {
            Some(ns) => format!("in the namespace \"{ns}\""),
            None => "at the cluster scope".to_string(),
        };
        Self::new(
            403,
            "Forbidden",
            sanitize(&format!(
                "{subject}: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{}\" {scope}",
                gr.group
            )),
        )
        .with_details(resource_details(gr, name))
    }

    /// 403 Forbidden for a non-resource path (`/api`, `/version`): `forbidden: User "system:anonymous"
    /// cannot get path "/api"`, with empty details.
    pub fn forbidden_path(user: &str, verb: &str, path: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            sanitize(&format!(
                "forbidden: User \"{user}\" cannot {verb} path \"{path}\""
            )),
        )
        .with_details(StatusDetails::default())
    }

    /// 403 Forbidden with a free-form reason.
    pub fn forbidden(gr: &GroupResource, name: &str, why: &str) -> Self {
        let subject = if name.is_empty() {
            format!("{gr} is forbidden")
        } else {
            format!("{gr} \"{name}\" is forbidden")
        };
        Self::new(403, "Forbidden", format!("{subject}: {why}"))
            .with_details(resource_details(gr, name))
    }

    /// 403 for creating content in a namespace that is being deleted.
    pub fn namespace_terminating(gr: &GroupResource, name: &str, namespace: &str) -> Self {
        let mut error = Self::forbidden(
            gr,
            name,
            &format!(
                "unable to create new content in namespace {namespace} because it is being terminated"
            ),
        );
        if let Some(details) = error.details.as_mut() {
            details.causes.push(StatusCause {
                reason: "NamespaceTerminating".to_string(),
                message: format!("namespace {namespace} is being terminated"),
                field: "metadata.namespace".to_string(),
            });
        }
        error
    }

    /// 405 MethodNotAllowed.
    pub fn method_not_supported(gr: &GroupResource, action: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("{action} is not supported on resources of kind \"{gr}\""),
        )
        .with_details(StatusDetails {
            group: gr.group.clone(),
            kind: gr.resource.clone(),
            ..StatusDetails::default()
        })
    }

    /// 406 NotAcceptable.
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    /// 410 Expired: the resourceVersion is older than the retained history.
    pub fn expired(requested: u64, oldest: u64) -> Self {
        Self::new(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    /// 410 Expired for a stale `continue` token.
    pub fn continue_expired() -> Self {
        Self::new(
            410,
            "Expired",
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
        )
    }

    /// 415 for a patch type the resource does not accept.
    pub fn unsupported_media_type(content_type: &str, accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
        .with_details(StatusDetails {
            causes: vec![StatusCause {
                reason: "UnexpectedServerResponse".to_string(),
                message: format!("unsupported content type {content_type}"),
                field: String::new(),
            }],
            ..StatusDetails::default()
        })
    }

    /// 429 TooManyRequests with a retry hint.
    pub fn too_many_requests(retry_after_seconds: u64) -> Self {
        Self::new(
            429,
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later",
        )
        .with_details(StatusDetails {
            retry_after_seconds: Some(retry_after_seconds),
            ..StatusDetails::default()
        })
    }

    /// 500 InternalError.
    pub fn internal(message: impl fmt::Display) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
        .with_details(StatusDetails {
            causes: vec![StatusCause {
                reason: String::new(),
                message: message.to_string(),
                field: String::new(),
            }],
            ..StatusDetails::default()
        })
    }

    /// An error of any code, used by fault injection; the reason follows the code.
    pub fn for_code(code: u16, message: &str, retry_after_seconds: Option<u64>) -> Self {
        let mut error = match code {
            400 => Self::bad_request(message),
            401 => Self::unauthorized(),
            403 => Self::new(403, "Forbidden", message),
            404 => Self::new(404, "NotFound", message),
            405 => Self::new(405, "MethodNotAllowed", message),
            409 => Self::new(409, "Conflict", message),
            410 => Self::new(410, "Expired", message),
            422 => Self::new(422, "Invalid", message),
            429 => Self::too_many_requests(retry_after_seconds.unwrap_or(1)),
            500 => Self::internal(message),
            503 => Self::new(503, "ServiceUnavailable", message),
            504 => Self::new(504, "Timeout", message),
            other => Self::new(other, "Unknown", message),
        };
        if let Some(seconds) = retry_after_seconds {
            error
                .details
                .get_or_insert_with(Box::default)
                .retry_after_seconds = Some(seconds);
        }
        error
    }

    /// The `Retry-After` header value, when the error carries one.
    pub fn retry_after(&self) -> Option<u64> {
        self.details.as_ref().and_then(|d| d.retry_after_seconds)
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = Map::new();
        status.insert("kind".into(), json!("Status"));
        status.insert("apiVersion".into(), json!("v1"));
        status.insert("metadata".into(), json!({}));
        status.insert("status".into(), json!("Failure"));
        status.insert("message".into(), json!(self.message));
        status.insert("reason".into(), json!(self.reason));
        if let Some(details) = &self.details {
            status.insert("details".into(), details_json(details));
        }
        status.insert("code".into(), json!(self.code));
        Value::Object(status)
    }
}

fn details_json(details: &StatusDetails) -> Value {
    let mut out = Map::new();
    for (key, value) in [
        ("name", &details.name),
        ("group", &details.group),
        ("kind", &details.kind),
    ] {
        if !value.is_empty() {
            out.insert(key.into(), json!(value));
        }
    }
    if !details.causes.is_empty() {
        let causes = details
            .causes
            .iter()
            .map(|c| {
                let mut cause = Map::new();
                if !c.reason.is_empty() {
                    cause.insert("reason".into(), json!(c.reason));
                }
                cause.insert("message".into(), json!(c.message));
                if !c.field.is_empty() {
                    cause.insert("field".into(), json!(c.field));
                }
                Value::Object(cause)
            })
            .collect();
        out.insert("causes".into(), Value::Array(causes));
    }
    if let Some(seconds) = details.retry_after_seconds {
        out.insert("retryAfterSeconds".into(), json!(seconds));
    }
    Value::Object(out)
}

/// The `Status` a successful delete answers with when the object is gone at once.
pub fn success_status(gr: &GroupResource, name: &str, uid: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": gr.group, "kind": gr.resource, "uid": uid},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spark() -> GroupResource {
        GroupResource::new("spark.apache.org", "sparkapplications")
    }

    #[test]
    fn not_found_matches_the_real_message() {
        let status = ApiError::not_found(&spark(), "pi").to_status();
        assert_eq!(
            status["message"],
            "sparkapplications.spark.apache.org \"pi\" not found"
        );
        assert_eq!(status["reason"], "NotFound");
        assert_eq!(status["code"], 404);
        assert_eq!(status["details"]["kind"], "sparkapplications");
        assert_eq!(status["details"]["group"], "spark.apache.org");
    }

    #[test]
    fn core_resources_have_no_group_suffix() {
        let gr = GroupResource::new("", "namespaces");
        assert_eq!(
            ApiError::not_found(&gr, "x").message,
            "namespaces \"x\" not found"
        );
    }

    #[test]
    fn invalid_with_one_error_has_no_brackets() {
        let error = ApiError::invalid(
            "SparkApplication",
            "spark.apache.org",
            "pi",
            &[FieldError::required("spec.runtimeVersions.sparkVersion")],
        );
        assert_eq!(
            error.message,
            "SparkApplication.spark.apache.org \"pi\" is invalid: spec.runtimeVersions.sparkVersion: Required value"
        );
        let status = error.to_status();
        assert_eq!(
            status["details"]["causes"][0],
            json!({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.runtimeVersions.sparkVersion"})
        );
    }

    #[test]
    fn invalid_with_several_errors_lists_them_in_brackets() {
        let error = ApiError::invalid(
            "SparkApplication",
            "spark.apache.org",
            "pi",
            &[
                FieldError::not_supported(
                    "spec.deploymentMode",
                    &json!("Foo"),
                    &[json!("ClientMode"), json!("ClusterMode")],
                ),
                FieldError::type_invalid("spec.driverArgs", "array", &json!("x")),
            ],
        );
        assert_eq!(
            error.message,
            "SparkApplication.spark.apache.org \"pi\" is invalid: [spec.deploymentMode: Unsupported value: \"Foo\": supported values: \"ClientMode\", \"ClusterMode\", spec.driverArgs: Invalid value: \"string\": spec.driverArgs in body must be of type array: \"string\"]"
        );
    }

    #[test]
    fn forbidden_names_user_verb_and_scope() {
        let error = ApiError::forbidden_rbac(&spark(), None, "", "ro", "create", Some("jobs"));
        assert_eq!(
            error.message,
            "sparkapplications.spark.apache.org is forbidden: User \"ro\" cannot create resource \"sparkapplications\" in API group \"spark.apache.org\" in the namespace \"jobs\""
        );
        let cluster = ApiError::forbidden_rbac(
            &GroupResource::new("", "namespaces"),
            None,
            "x",
            "ro",
            "delete",
            None,
        );
        assert!(
            cluster
                .message
                .ends_with("in API group \"\" at the cluster scope")
        );
        let status =
            ApiError::forbidden_rbac(&spark(), Some("status"), "pi", "sa", "patch", Some("j"));
        assert_eq!(
            status.message,
            "sparkapplications.spark.apache.org \"pi\" is forbidden: User \"sa\" cannot patch resource \"sparkapplications/status\" in API group \"spark.apache.org\" in the namespace \"j\""
        );
        assert_eq!(status.to_status()["details"]["kind"], "sparkapplications");
        let path = ApiError::forbidden_path("system:anonymous", "get", "/<x>");
        assert_eq!(
            path.message,
            "forbidden: User \"system:anonymous\" cannot get path \"/&lt;x&gt;\""
        );
        assert_eq!(path.to_status()["details"], serde_json::json!({}));
    }

    #[test]
    fn too_many_requests_carries_retry_after() {
        let error = ApiError::for_code(429, "slow down", Some(3));
        assert_eq!(error.retry_after(), Some(3));
        assert_eq!(error.to_status()["details"]["retryAfterSeconds"], 3);
        assert_eq!(error.reason, "TooManyRequests");
    }
}
