//! Validated identifiers that travel in every message: the request id (idempotency and correlation key)
//! and the W3C `traceparent`.
//!
//! Both are checked while deserializing, so a bad value fails with an error naming its field, and the JSON
//! Schema carries the same rule as a `pattern`, so producers that validate against the schema and the
//! gateway agree.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// The longest request id accepted.
///
/// The gateway stores the request id as a Kubernetes label value, so it obeys label-value rules: at most
/// 63 characters, alphanumerics plus `-`, `_`, `.`, starting and ending alphanumeric. UUIDs and ULIDs fit.
pub const REQUEST_ID_MAX_LEN: usize = 63;

/// ECMA-262 pattern equal to [`RequestId`]'s rule, for the JSON Schema.
pub const REQUEST_ID_PATTERN: &str = "^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$";

/// ECMA-262 pattern for a version-00 W3C `traceparent`.
pub const TRACEPARENT_PATTERN: &str = "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$";

/// Why an identifier was refused; the message names the rule, the caller names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The request id breaks the label-value rule.
    #[error(
        "request id {0:?} is invalid: use 1 to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
    )]
    RequestId(String),
    /// The trace context is not a W3C version-00 `traceparent`.
    #[error(
        "traceparent {0:?} is invalid: expected 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags> with non-zero ids"
    )]
    TraceParent(String),
}

/// The caller-chosen key that makes a request idempotent and ties every event back to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RequestId(String);

impl RequestId {
    /// Checks `value` against the label-value rule.
    pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        let bytes = value.as_bytes();
        let edge_ok = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
        let inner_ok = bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if bytes.len() <= REQUEST_ID_MAX_LEN
            && edge_ok(bytes.first())
            && edge_ok(bytes.last())
            && inner_ok
        {
            Ok(Self(value))
        } else {
            Err(IdError::RequestId(value))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RequestId {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<RequestId> for String {
    fn from(id: RequestId) -> Self {
        id.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl JsonSchema for RequestId {
    fn schema_name() -> Cow<'static, str> {
        "RequestId".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Idempotency and correlation key chosen by the producer. Sending the same request twice with the same request_id applies it once. A Kubernetes label value: 1-63 characters, letters, digits, '-', '_', '.', starting and ending with a letter or digit.",
            "type": "string",
            "minLength": 1,
            "maxLength": REQUEST_ID_MAX_LEN,
            "pattern": REQUEST_ID_PATTERN,
        })
    }
}

/// A W3C trace context `traceparent` header value (version 00), carried so traces span the whole flow.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TraceParent(String);

impl TraceParent {
    /// Checks `value` is a version-00 traceparent with non-zero trace and parent ids.
    pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
        let value = value.into();
        let parts: Vec<&str> = value.split('-').collect();
        let hex = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let non_zero = |s: &str| s.bytes().any(|b| b != b'0');
        let valid = matches!(parts.as_slice(), [version, trace, parent, flags]
            if *version == "00" && hex(trace, 32) && hex(parent, 16) && hex(flags, 2)
                && non_zero(trace) && non_zero(parent));
        if valid {
            Ok(Self(value))
        } else {
            Err(IdError::TraceParent(value))
        }
    }

    /// The header value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TraceParent {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<TraceParent> for String {
    fn from(id: TraceParent) -> Self {
        id.0
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl JsonSchema for TraceParent {
    fn schema_name() -> Cow<'static, str> {
        "TraceParent".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "W3C trace context traceparent (version 00); the gateway propagates it to the SparkApplication and to every event about it.",
            "type": "string",
            "pattern": TRACEPARENT_PATTERN,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_accepts_uuid_ulid_and_dotted_ids() {
        for ok in [
            "0b7f9c4e-6a0c-4f57-9e61-3c1de8d6b5a2",
            "01JD6Z8K4Q3W5E7R9T1Y2U3I4O",
            "airflow.daily_etl.2026-11-23",
            "a",
        ] {
            assert_eq!(RequestId::new(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn request_id_rejects_what_a_label_value_cannot_hold() {
        for bad in [
            "",
            "-leading",
            "trailing.",
            "has space",
            "colon:inside",
            &"x".repeat(64),
        ] {
            assert_eq!(
                RequestId::new(bad),
                Err(IdError::RequestId(bad.to_string())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn traceparent_follows_w3c_version_00() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(TraceParent::new(ok).unwrap().as_str(), ok);
        for bad in [
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ] {
            assert!(TraceParent::new(bad).is_err(), "{bad}");
        }
    }
}
