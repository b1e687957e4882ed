//! Reading messages from bytes with errors that name the offending field.
//!
//! serde alone reports "invalid type: integer `2`, expected a string" without saying where;
//! `serde_path_to_error` adds the path, and [`DecodeError`] turns it into a field name, a machine-readable
//! rule and a [`RejectionReason`], which is what a [`RequestRejected`] event needs.
//!
//! Input is bounded before it is parsed ([`DecodeLimits`]), and a JSON object that names a key twice is
//! refused: serde_json would silently keep the last value, so `{"action": "delete", ..., "action":
//! "submit"}` would mean one thing to a producer's validator and another to the gateway.

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::cloudevent::CloudEvent;
use crate::events::{
    CompletionEvent, FieldViolation, MessageOrigin, REQUEST_APPLIED_EVENT_TYPE,
    REQUEST_REJECTED_EVENT_TYPE, RejectionReason, RequestRejected, STATE_CHANGED_EVENT_TYPE,
};
use crate::request::{JobRequest, RequestAction};

/// The largest request message read by default: 256 KiB, SQS's classic limit, far above any real
/// request (the seed's pi-test is 700 bytes) and small enough that nothing derived from it is large.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Characters of a duplicated key quoted in its error.
const QUOTED_KEY_CHARS: usize = 64;

/// Bounds checked before a message is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Larger messages are refused unread.
    pub max_message_bytes: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        Self {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// A message that could not be read as the contract type asked for.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The message is larger than the gateway reads.
    #[error("message: {size} bytes, larger than the {limit} bytes a request may have")]
    TooLarge {
        /// The message's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The bytes are not JSON.
    #[error("message is not valid JSON: {0}")]
    MalformedJson(#[source] serde_json::Error),
    /// The JSON is not an object.
    #[error("message must be a JSON object, found {found}")]
    NotAnObject {
        /// The JSON type found.
        found: &'static str,
    },
    /// A request without the `action` discriminator.
    #[error("action: missing field `action` (expected \"submit\" or \"delete\")")]
    MissingAction,
    /// A request whose `action` is not one the gateway knows.
    #[error("action: unknown action {0}, expected \"submit\" or \"delete\"")]
    UnknownAction(String),
    /// An event whose CloudEvents `type` is not one of ours.
    #[error("type: unknown event type {0}")]
    UnknownEventType(String),
    /// A field is missing, unknown, mistyped or has an invalid value.
    #[error("{field}: {message}")]
    InvalidField {
        /// Dot-separated path of the field (`driver.cores`, `py_files[0]`).
        field: String,
        /// The rule broken: `required`, `unknown_field`, `invalid_type` or `invalid_value`.
        rule: &'static str,
        /// serde's description.
        message: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
}

impl DecodeError {
    /// The rejection reason this error leads to.
    pub fn reason(&self) -> RejectionReason {
        match self {
            Self::MalformedJson(_) | Self::NotAnObject { .. } => RejectionReason::MalformedMessage,
            Self::TooLarge { .. }
            | Self::MissingAction
            | Self::UnknownAction(_)
            | Self::UnknownEventType(_)
            | Self::InvalidField { .. } => RejectionReason::InvalidRequest,
        }
    }

    /// The offending field, when one is to blame.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::MissingAction | Self::UnknownAction(_) => Some("action"),
            Self::UnknownEventType(_) => Some("type"),
            Self::InvalidField { field, .. } => Some(field),
            Self::TooLarge { .. } => Some("message"),
            Self::MalformedJson(_) | Self::NotAnObject { .. } => None,
        }
    }

    /// The error as field violations for a [`RequestRejected`] event.
    pub fn violations(&self) -> Vec<FieldViolation> {
        let rule = match self {
            Self::MissingAction => "required",
            Self::UnknownAction(_) | Self::UnknownEventType(_) => "invalid_value",
            Self::InvalidField { rule, .. } => rule,
            Self::TooLarge { .. } => "max_message_bytes",
            Self::MalformedJson(_) | Self::NotAnObject { .. } => return Vec::new(),
        };
        let field = self.field().unwrap_or_default().to_string();
        vec![FieldViolation {
            field,
            rule: rule.to_string(),
            message: self.to_string(),
        }]
    }
}

/// Reads a message from the request queue or topic, within the default [`DecodeLimits`].
pub fn decode_job_request(bytes: &[u8]) -> Result<JobRequest, DecodeError> {
    decode_job_request_with(bytes, DecodeLimits::default())
}

/// Reads a message from the request queue or topic, refusing it unread when it exceeds `limits`.
pub fn decode_job_request_with(
    bytes: &[u8],
    limits: DecodeLimits,
) -> Result<JobRequest, DecodeError> {
    if bytes.len() > limits.max_message_bytes {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            limit: limits.max_message_bytes,
        });
    }
    let mut object = parse_object(bytes)?;
    let action = match object.remove("action") {
        None => return Err(DecodeError::MissingAction),
        Some(Value::String(action)) => action,
        Some(other) => return Err(DecodeError::UnknownAction(other.to_string())),
    };
    let body = Value::Object(object);
    match action.as_str() {
        "submit" => from_value(body).map(|request| JobRequest::Submit(Box::new(request))),
        "delete" => from_value(body).map(JobRequest::Delete),
        _ => Err(DecodeError::UnknownAction(
            Value::String(action).to_string(),
        )),
    }
}

/// Reads any contract type strictly (for example a bare [`SubmitJobRequest`](crate::SubmitJobRequest)
/// or a [`GetJobStatusRequest`](crate::GetJobStatusRequest)).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    from_value(Value::Object(parse_object(bytes)?))
}

/// Reads an event from the completion topic.
pub fn decode_completion_event(bytes: &[u8]) -> Result<CompletionEvent, DecodeError> {
    let object = parse_object(bytes)?;
    let event_type = object.get("type").cloned();
    let value = Value::Object(object);
    match event_type.as_ref().and_then(Value::as_str) {
        Some(STATE_CHANGED_EVENT_TYPE) => {
            from_value::<CloudEvent<_>>(value).map(CompletionEvent::StateChanged)
        }
        Some(REQUEST_REJECTED_EVENT_TYPE) => {
            from_value::<CloudEvent<_>>(value).map(CompletionEvent::Rejected)
        }
        Some(REQUEST_APPLIED_EVENT_TYPE) => {
            from_value::<CloudEvent<_>>(value).map(CompletionEvent::Applied)
        }
        _ => Err(DecodeError::UnknownEventType(
            event_type.map_or_else(|| "(missing)".to_string(), |t| t.to_string()),
        )),
    }
}

/// Builds the terminal event for a request message that could not be read, keeping whatever identifying
/// fields it did have so the producer can correlate it.
pub fn rejection_for_undecodable(
    bytes: &[u8],
    error: &DecodeError,
    origin: MessageOrigin,
) -> RequestRejected {
    // An oversized message is not parsed for its identity either: that is the point of the bound.
    let object = match error {
        DecodeError::TooLarge { .. } => None,
        _ => serde_json::from_slice::<Value>(bytes).ok(),
    };
    let text = |key: &str| {
        object
            .as_ref()
            .and_then(|o| o.get(key))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    RequestRejected {
        // A request id that breaks its own rule is not echoed back as if it were valid.
        request_id: text("request_id").filter(|id| crate::RequestId::new(id.as_str()).is_ok()),
        action: text("action").and_then(|a| {
            RequestAction::ALL
                .into_iter()
                .find(|known| known.as_str() == a)
        }),
        application_name: text("application_name"),
        namespace: text("namespace"),
        cluster: text("cluster"),
        submitted_by: text("submitted_by"),
        reason: error.reason(),
        message: error.to_string(),
        violations: error.violations(),
        origin,
        // An undecodable request's targets were never checked by a policy.
        notify: Vec::new(),
    }
    .bounded()
}

fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, DecodeError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize::<_, UniqueKeys>(&mut deserializer) {
        Ok(UniqueKeys(value)) => value,
        // The only data error a plain JSON value can have is the duplicate key our visitor reports.
        Err(error) if error.inner().is_data() => return Err(invalid_field(error)),
        Err(error) => return Err(DecodeError::MalformedJson(error.into_inner())),
    };
    deserializer.end().map_err(DecodeError::MalformedJson)?;
    match value {
        Value::Object(object) => Ok(object),
        other => Err(DecodeError::NotAnObject {
            found: json_type_name(&other),
        }),
    }
}

/// A JSON value read like [`Value`], except that an object naming a key twice is an error.
struct UniqueKeys(Value);

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueKeysVisitor).map(Self)
    }
}

struct UniqueKeysVisitor;

impl<'de> Visitor<'de> for UniqueKeysVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueKeys(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate key `{}`",
                    crate::events::truncate_chars(&key, QUOTED_KEY_CHARS)
                )));
            }
            let UniqueKeys(value) = access.next_value()?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

fn json_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize(value).map_err(invalid_field)
}

fn invalid_field(error: serde_path_to_error::Error<serde_json::Error>) -> DecodeError {
    let path = field_path(error.path());
    let source = error.into_inner();
    // serde_json appends the position to errors raised while parsing text; the field says where.
    let message = match source.line() {
        0 => source.to_string(),
        _ => {
            let text = source.to_string();
            text.rsplit_once(" at line ")
                .map_or(text.clone(), |(head, _)| head.to_string())
        }
    };
    let (rule, named) = classify(&message);
    // A missing field (and a duplicated key) is reported at its parent's path and named only in the
    // message; joining the two gives the field's full path. (An unknown field's path already ends with
    // its name.)
    let field = match (named, path.is_empty()) {
        (Some(name), true) => name.to_string(),
        (Some(name), false) => format!("{path}.{name}"),
        (None, _) => path,
    };
    DecodeError::InvalidField {
        field,
        rule,
        message,
        source,
    }
}

fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
}

/// Classifies serde's (stable) error texts; returns the rule and, for a missing field or a duplicated
/// key, its name.
fn classify(message: &str) -> (&'static str, Option<&str>) {
    fn backticked(rest: &str) -> Option<&str> {
        rest.split('`').nth(1)
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        ("required", backticked(rest))
    } else if let Some(rest) = message.strip_prefix("duplicate key ") {
        ("duplicate_key", backticked(rest))
    } else if message.starts_with("unknown field ") {
        ("unknown_field", None)
    } else if message.starts_with("invalid type") {
        ("invalid_type", None)
    } else {
        ("invalid_value", None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submit_with(extra: &str) -> String {
        format!(
            r#"{{"action":"submit","request_id":"r-1","application_name":"pi","namespace":"ns",
                "spark_application_type":"Python","runtime_versions":{{"spark_version":"4.1.0"}}{extra}}}"#
        )
    }

    #[test]
    fn a_minimal_submit_decodes() {
        let request = decode_job_request(submit_with("").as_bytes()).unwrap();
        assert_eq!(request.action(), RequestAction::Submit);
        assert_eq!(request.request_id().as_str(), "r-1");
        assert_eq!(request.target(), ("ns", "pi"));
    }

    #[test]
    fn unknown_nested_field_is_named_with_its_path() {
        let error =
            decode_job_request(submit_with(r#","driver":{"gpus":"1"}"#).as_bytes()).unwrap_err();
        assert_eq!(error.field(), Some("driver.gpus"));
        assert_eq!(error.violations()[0].rule, "unknown_field");
        assert!(
            error
                .to_string()
                .starts_with("driver.gpus: unknown field `gpus`"),
            "{error}"
        );
    }

    #[test]
    fn mistyped_field_is_named() {
        let error =
            decode_job_request(submit_with(r#","executor":{"instances":"two"}"#).as_bytes())
                .unwrap_err();
        assert_eq!(error.field(), Some("executor.instances"));
        assert_eq!(error.violations()[0].rule, "invalid_type");
    }

    #[test]
    fn missing_top_level_field_is_named() {
        let error =
            decode_job_request(br#"{"action":"delete","request_id":"r-2","namespace":"ns"}"#)
                .unwrap_err();
        assert_eq!(error.field(), Some("application_name"));
        assert_eq!(error.violations()[0].rule, "required");
    }

    #[test]
    fn non_string_spark_conf_value_is_named() {
        let error = decode_job_request(
            submit_with(r#","spark_conf":{"spark.executor.instances":2}"#).as_bytes(),
        )
        .unwrap_err();
        assert_eq!(error.field(), Some("spark_conf.spark.executor.instances"));
    }

    #[test]
    fn action_problems_name_the_action_field() {
        assert!(matches!(
            decode_job_request(b"{}"),
            Err(DecodeError::MissingAction)
        ));
        let error = decode_job_request(br#"{"action":"restart"}"#).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"action: unknown action "restart", expected "submit" or "delete""#
        );
        assert_eq!(error.field(), Some("action"));
    }

    #[test]
    fn a_key_given_twice_is_refused_naming_it() {
        let error = decode_job_request(
            br#"{"action":"delete","request_id":"r-1","application_name":"a","namespace":"n","action":"submit"}"#,
        )
        .unwrap_err();
        assert_eq!(error.field(), Some("action"));
        assert_eq!(error.violations()[0].rule, "duplicate_key");
        assert_eq!(error.to_string(), "action: duplicate key `action`");
        let error = decode_job_request(
            submit_with(
                r#","spark_conf":{"spark.executor.memory":"1g","spark.executor.memory":"64g"}"#,
            )
            .as_bytes(),
        )
        .unwrap_err();
        assert_eq!(error.field(), Some("spark_conf.spark.executor.memory"));
        assert_eq!(error.reason(), RejectionReason::InvalidRequest);
    }

    #[test]
    fn an_oversized_message_is_refused_unread() {
        let limits = DecodeLimits {
            max_message_bytes: 100,
        };
        let body = submit_with(&format!(r#","submitted_by":"{}""#, "x".repeat(200)));
        let error = decode_job_request_with(body.as_bytes(), limits).unwrap_err();
        assert_eq!(error.field(), Some("message"));
        assert_eq!(error.violations()[0].rule, "max_message_bytes");
        assert_eq!(error.reason(), RejectionReason::InvalidRequest);
        let origin = MessageOrigin::Direct {
            invocation_id: "i".into(),
        };
        // Its identity is not read out of it either.
        let rejected = rejection_for_undecodable(body.as_bytes(), &error, origin);
        assert_eq!(rejected.request_id, None);
        assert_eq!(rejected.submitted_by, None);
        assert!(
            decode_job_request_with(submit_with("").as_bytes(), DecodeLimits::default()).is_ok()
        );
    }

    #[test]
    fn trailing_garbage_is_malformed() {
        let error = decode_job_request(format!("{} x", submit_with("")).as_bytes()).unwrap_err();
        assert_eq!(error.reason(), RejectionReason::MalformedMessage);
    }

    #[test]
    fn garbage_is_a_malformed_message() {
        let error = decode_job_request(b"not json").unwrap_err();
        assert_eq!(error.reason(), RejectionReason::MalformedMessage);
        assert!(error.violations().is_empty());
        let error = decode_job_request(b"[1]").unwrap_err();
        assert_eq!(
            error.to_string(),
            "message must be a JSON object, found an array"
        );
    }

    #[test]
    fn rejection_keeps_what_identifies_the_request() {
        let bytes = submit_with(r#","driver":{"gpus":"1"}"#);
        let error = decode_job_request(bytes.as_bytes()).unwrap_err();
        let origin = MessageOrigin::Sqs {
            queue: "q".into(),
            message_id: "m-1".into(),
        };
        let rejected = rejection_for_undecodable(bytes.as_bytes(), &error, origin);
        assert_eq!(rejected.request_id.as_deref(), Some("r-1"));
        assert_eq!(rejected.action, Some(RequestAction::Submit));
        assert_eq!(rejected.reason, RejectionReason::InvalidRequest);
        assert_eq!(rejected.event_id(), "rejected/r-1");
        assert_eq!(rejected.violations[0].field, "driver.gpus");
    }

    #[test]
    fn rejection_without_request_id_is_identified_by_its_origin() {
        let error = decode_job_request(b"{").unwrap_err();
        let origin = MessageOrigin::Kafka {
            topic: "t".into(),
            partition: 2,
            offset: 41,
        };
        let rejected = rejection_for_undecodable(b"{", &error, origin);
        assert_eq!(rejected.request_id, None);
        assert_eq!(rejected.event_id(), "rejected/kafka/t/2/41");
    }
}
