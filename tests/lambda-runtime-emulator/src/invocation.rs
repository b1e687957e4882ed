//! What a test asks for ([`InvokeRequest`]) and what it gets back
//! ([`Invocation`] with its [`Outcome`]). Plain data with no I/O, so the
//! server and the CLI share one vocabulary and the history is serializable as
//! JSON lines.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};

/// The function timeout used when a caller does not choose one (Lambda's own
/// default is 3 s; tests run debug builds on a loaded 2-core machine, so the
/// emulator is more patient).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// One invocation to queue: the event plus what Lambda would send alongside it.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    /// The event, sent as the body of `GET /invocation/next`.
    pub event: Value,
    /// The function timeout: the deadline header is the dispatch time plus
    /// this, and the emulator also waits at most this long for a runtime to
    /// pick the invocation up.
    pub timeout: Duration,
    /// Sent as `Lambda-Runtime-Client-Context` (JSON) when set.
    pub client_context: Option<Value>,
    /// Sent as `Lambda-Runtime-Cognito-Identity` (JSON) when set.
    pub cognito_identity: Option<Value>,
    /// Sent as `Lambda-Runtime-Aws-Tenant-Id` when set.
    pub tenant_id: Option<String>,
    /// Overrides the generated `Lambda-Runtime-Trace-Id`.
    pub trace_id: Option<String>,
}

impl InvokeRequest {
    /// An invocation of `event` with the given function timeout and nothing else set.
    pub fn new(event: Value, timeout: Duration) -> Self {
        Self {
            event,
            timeout,
            client_context: None,
            cognito_identity: None,
            tenant_id: None,
            trace_id: None,
        }
    }

    /// Adds a client context (as the AWS mobile SDKs send it).
    pub fn client_context(mut self, context: Value) -> Self {
        self.client_context = Some(context);
        self
    }

    /// Adds a Cognito identity (`{"identityId": .., "identityPoolId": ..}`).
    pub fn cognito_identity(mut self, identity: Value) -> Self {
        self.cognito_identity = Some(identity);
        self
    }

    /// Adds a tenant id.
    pub fn tenant_id(mut self, tenant: impl Into<String>) -> Self {
        self.tenant_id = Some(tenant.into());
        self
    }

    /// Fixes the X-Ray trace id instead of generating one.
    pub fn trace_id(mut self, trace: impl Into<String>) -> Self {
        self.trace_id = Some(trace.into());
        self
    }
}

/// The `{errorType, errorMessage}` a function (or its init) reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionError {
    /// `errorType` from the body (falls back to the header when the body has none).
    pub error_type: String,
    /// `errorMessage` from the body (the raw body when it is not the JSON shape).
    pub error_message: String,
    /// The `Lambda-Runtime-Function-Error-Type` header: `lambda_runtime` sends
    /// `unhandled` for handler errors and `Runtime.InitError` for init errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_error_type: Option<String>,
    /// `stackTrace` when the body carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<Value>,
}

impl FunctionError {
    /// Reads an error body as Lambda runtimes send it, leniently: a body that
    /// is not the documented JSON shape is kept whole as the message rather
    /// than lost, because the point of the emulator is to show what happened.
    pub fn from_body(body: &[u8], header_error_type: Option<String>) -> Self {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Wire {
            error_type: Option<String>,
            error_message: Option<String>,
            stack_trace: Option<Value>,
        }
        let parsed = serde_json::from_slice::<Wire>(body).ok();
        let fallback_type = header_error_type
            .clone()
            .unwrap_or_else(|| "Unknown".to_owned());
        match parsed {
            Some(wire) => Self {
                error_type: wire.error_type.unwrap_or(fallback_type),
                error_message: wire.error_message.unwrap_or_default(),
                header_error_type,
                stack_trace: wire.stack_trace,
            },
            None => Self {
                error_type: fallback_type,
                error_message: String::from_utf8_lossy(body).into_owned(),
                header_error_type,
                stack_trace: None,
            },
        }
    }
}

/// A response sent with `Lambda-Runtime-Function-Response-Mode: streaming`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamedResponse {
    /// The HTTP-integration prelude (`statusCode`, `headers`, `cookies`) when
    /// the content type was `application/vnd.awslambda.http-integration-response`.
    pub prelude: Option<Value>,
    /// The streamed payload after the prelude, with any error trailer removed.
    #[serde(serialize_with = "lossy_utf8")]
    pub body: Vec<u8>,
    /// A mid-stream error (`Lambda-Runtime-Function-Error-Type/-Body`), sent
    /// as HTTP trailers or, as `lambda_runtime` 1.x does, as a final body chunk.
    pub error: Option<FunctionError>,
}

fn lossy_utf8<S: serde::Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&String::from_utf8_lossy(bytes))
}

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// `POST /invocation/{id}/response` with a JSON body.
    Response {
        /// The parsed body.
        response: Value,
    },
    /// `POST /invocation/{id}/response` with a body that is not JSON (any
    /// bytes are allowed by Lambda; `lambda_runtime` always sends JSON).
    RawResponse {
        /// The body, lossily decoded for display.
        #[serde(serialize_with = "lossy_utf8")]
        body: Vec<u8>,
    },
    /// A streaming response.
    Streamed(StreamedResponse),
    /// `POST /invocation/{id}/error`.
    Error(FunctionError),
    /// `POST /init/error` (or `/restore/error`): the function failed before it
    /// could take this invocation.
    InitError(FunctionError),
    /// No answer before the deadline; the caller got [`Error::Timeout`].
    TimedOut,
}

impl Outcome {
    /// A one-line description, for errors and logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Response { .. } => "a JSON response".to_owned(),
            Self::RawResponse { body } => format!("a non-JSON response of {} bytes", body.len()),
            Self::Streamed(s) => format!("a streamed response of {} bytes", s.body.len()),
            Self::Error(e) => format!("error {}: {}", e.error_type, e.error_message),
            Self::InitError(e) => format!("init error {}: {}", e.error_type, e.error_message),
            Self::TimedOut => "a timeout".to_owned(),
        }
    }
}

/// One invocation as the emulator saw it, from queueing to its outcome.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Invocation {
    /// `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// `Lambda-Runtime-Invocation-Id` as sent (RAPID's cross-wiring guard).
    pub invocation_id: String,
    /// The event that was sent.
    pub event: Value,
    /// `Lambda-Runtime-Deadline-Ms` as sent (0 when it was never dispatched).
    pub deadline_ms: u64,
    /// `Lambda-Runtime-Invoked-Function-Arn` as sent.
    pub function_arn: String,
    /// `Lambda-Runtime-Trace-Id` as sent.
    pub trace_id: String,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// From queueing to a runtime taking it with `GET /next` (includes a cold
    /// start when the process was started after the invocation was queued).
    #[serde(with = "millis")]
    pub queued_for: Duration,
    /// From dispatch to the answer (what Lambda bills as "Duration").
    #[serde(with = "millis")]
    pub duration: Duration,
    /// The headers of the runtime's answer (`User-Agent`, the error-type
    /// header, the echoed invocation id, ...), lower-cased.
    pub answer_headers: BTreeMap<String, String>,
    /// When the invocation was queued (for timing against other clocks, such
    /// as a process's spawn time).
    #[serde(skip)]
    pub queued_at: Instant,
    /// When its outcome was recorded: the answer's arrival, or the deadline.
    #[serde(skip)]
    pub finished_at: Instant,
}

impl Invocation {
    /// The JSON response, if the function answered with one.
    pub fn response(&self) -> Option<&Value> {
        match &self.outcome {
            Outcome::Response { response } => Some(response),
            _ => None,
        }
    }

    /// The reported error, if the function (or its init) failed.
    pub fn error(&self) -> Option<&FunctionError> {
        match &self.outcome {
            Outcome::Error(e) | Outcome::InitError(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the failure was reported through `/init/error`.
    pub fn is_init_error(&self) -> bool {
        matches!(self.outcome, Outcome::InitError(_))
    }

    /// The JSON response, or an [`Error`] saying what came instead: the usual
    /// first line of a test that expects success.
    pub fn into_response(self) -> Result<Value> {
        match self.outcome {
            Outcome::Response { response } => Ok(response),
            Outcome::Error(error) | Outcome::InitError(error) => Err(Error::Function {
                request_id: self.request_id,
                error: Box::new(error),
            }),
            other => Err(Error::NotJson {
                request_id: self.request_id,
                outcome: other.describe(),
            }),
        }
    }
}

/// Durations as whole milliseconds in JSON, the unit Lambda reports in.
mod millis {
    use std::time::Duration;

    pub(super) fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_is_read_leniently() {
        let e = FunctionError::from_body(
            br#"{"errorType":"Boom","errorMessage":"bad"}"#,
            Some("unhandled".into()),
        );
        assert_eq!(e.error_type, "Boom");
        assert_eq!(e.error_message, "bad");
        assert_eq!(e.header_error_type.as_deref(), Some("unhandled"));

        let e = FunctionError::from_body(b"plain text", Some("Runtime.InitError".into()));
        assert_eq!(e.error_type, "Runtime.InitError");
        assert_eq!(e.error_message, "plain text");
    }

    #[test]
    fn outcome_serializes_flat_for_json_lines() {
        let v = serde_json::to_value(Outcome::Error(FunctionError {
            error_type: "T".into(),
            error_message: "m".into(),
            header_error_type: None,
            stack_trace: None,
        }))
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"outcome": "error", "errorType": "T", "errorMessage": "m"})
        );
    }
}
