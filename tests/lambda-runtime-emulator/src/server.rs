//! The Runtime API over plain HTTP/1.1 (hyper 1), as `lambda_runtime` 1.x
//! speaks it:
//!
//! | route | answer |
//! |---|---|
//! | `GET /2018-06-01/runtime/invocation/next` | long-polls; 200, event body, `Lambda-Runtime-*` headers |
//! | `POST /2018-06-01/runtime/invocation/{id}/response` | 202 `{"status":"OK"}` (buffered or streaming) |
//! | `POST /2018-06-01/runtime/invocation/{id}/error` | 202; records `{errorType, errorMessage}` and the error-type header |
//! | `POST /2018-06-01/runtime/init/error` | 202; fails the queued invocations with the init error |
//! | `GET /2018-06-01/runtime/restore/next` | 200 at once (SnapStart "restored") |
//! | `POST /2018-06-01/runtime/restore/error` | 202; recorded like an init error |
//!
//! Plus the caller's side, the Lambda `Invoke` API (as the AWS Runtime
//! Interface Emulator offers it), so a function under the CLI can be driven
//! with `curl` or an SDK pointed at the emulator:
//!
//! | route | answer |
//! |---|---|
//! | `POST /2015-03-31/functions/{name}/invocations` | 200 with the response; a function error, init error or timeout is 200 with `X-Amz-Function-Error: Unhandled` and `{errorType, errorMessage}`; `X-Amz-Invocation-Type: Event` queues and answers 202, `DryRun` 204 |
//!
//! Refusals follow the Runtime API: 400 `InvalidRequestID` for an id never
//! dispatched, 403 `InvalidStateTransition` for a second answer, 410 for an
//! answer after the deadline or with a foreign `Lambda-Runtime-Invocation-Id`,
//! 413 for a buffered response over the size limit.

use std::{collections::BTreeMap, convert::Infallible, sync::Arc, time::Instant};

use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::{net::TcpListener, sync::watch, task::JoinSet};

use crate::{
    emulator::{Answer, Dispatch, Reject, Shared},
    error::Error,
    invocation::{FunctionError, InvokeRequest, Outcome, StreamedResponse},
};

const PREFIX: &str = "/2018-06-01/runtime/";
const INVOKE_PREFIX: &str = "/2015-03-31/functions/";
const ERROR_TYPE: &str = "lambda-runtime-function-error-type";
const ERROR_BODY: &str = "lambda-runtime-function-error-body";
const INVOCATION_ID: &str = "lambda-runtime-invocation-id";
/// What separates the HTTP-integration prelude from the payload in a
/// streaming response.
const PRELUDE_DELIMITER: &[u8] = &[0; 8];

type Reply = Response<Full<Bytes>>;

/// Accepts connections until `shutdown` changes (or its sender is dropped).
/// Connections live in a `JoinSet`, so leaving the loop drops them all,
/// long polls included.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Small request/response exchanges: don't let Nagle add latency
                    // to what cold-start measurements see.
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    let shutdown = shutdown.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |req| {
                            let shared = shared.clone();
                            let shutdown = shutdown.clone();
                            async move { Ok::<_, Infallible>(route(shared, shutdown, req).await) }
                        });
                        if let Err(error) = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                        {
                            tracing::debug!(%error, "runtime API connection ended with an error");
                        }
                    });
                }
                Err(error) => {
                    // Accept errors (e.g. out of file descriptors) are transient;
                    // back off briefly instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
}

async fn route(
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
    req: Request<Incoming>,
) -> Reply {
    let path = req.uri().path().to_owned();
    if let Some(rest) = path.strip_prefix(INVOKE_PREFIX) {
        return match (rest.strip_suffix("/invocations"), req.method()) {
            (Some(name), &Method::POST) if !name.contains('/') => invoke_api(shared, req).await,
            (Some(_), _) => error_reply(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                "invoke with POST",
            ),
            (None, _) => not_found(&path),
        };
    }
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return not_found(&path);
    };
    let shared = &*shared;
    let segments: Vec<&str> = rest.split('/').collect();
    let method = req.method().clone();
    match (segments.as_slice(), method) {
        (["invocation", "next"], Method::GET) => next(shared, shutdown).await,
        (["invocation", id, "response"], Method::POST) => {
            let id = (*id).to_owned();
            response(shared, &id, req).await
        }
        (["invocation", id, "error"], Method::POST) => {
            let id = (*id).to_owned();
            invocation_error(shared, &id, req).await
        }
        (["init", "error"] | ["restore", "error"], Method::POST) => init_error(shared, req).await,
        (["restore", "next"], Method::GET) => reply(StatusCode::OK, Bytes::new()),
        (
            ["invocation", "next"]
            | ["invocation", _, "response" | "error"]
            | ["init" | "restore", "error"]
            | ["restore", "next"],
            _,
        ) => error_reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "wrong method for this Runtime API route",
        ),
        _ => not_found(&path),
    }
}

/// `GET /invocation/next`: hand out the oldest queued invocation, waiting as
/// long as it takes (the real API has no timeout on this long poll).
async fn next(shared: &Shared, mut shutdown: watch::Receiver<bool>) -> Reply {
    shared.record_poll();
    loop {
        // Register for the wake-up before looking, so a queueing between the
        // look and the wait is not missed.
        let queued = shared.queued.notified();
        tokio::pin!(queued);
        queued.as_mut().enable();
        if let Some(dispatch) = shared.dispatch() {
            return event_reply(dispatch);
        }
        if shared.is_closed() {
            return shutting_down();
        }
        tokio::select! {
            () = &mut queued => {}
            _ = shutdown.changed() => return shutting_down(),
        }
    }
}

/// The Lambda `Invoke` API: the event is the body; the function's name in
/// the path is not checked (the emulator emulates one function).
async fn invoke_api(shared: Arc<Shared>, req: Request<Incoming>) -> Reply {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return error_reply(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContentException",
                &error.to_string(),
            );
        }
    };
    let event = if body.is_empty() {
        Value::Object(serde_json::Map::new())
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(event) => event,
            Err(error) => {
                return error_reply(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContentException",
                    &format!("could not parse request body into json: {error}"),
                );
            }
        }
    };
    let mut request = InvokeRequest::new(event, shared.config.function.timeout);
    // The SDKs send the client context base64-encoded.
    if let Some(context) = header_str(&parts.headers, "x-amz-client-context")
        .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
        .and_then(|v| serde_json::from_slice(&v).ok())
    {
        request = request.client_context(context);
    }
    match header_str(&parts.headers, "x-amz-invocation-type").unwrap_or("RequestResponse") {
        "DryRun" => return reply(StatusCode::NO_CONTENT, Bytes::new()),
        "Event" => {
            // Fire and forget: the outcome lands in the history.
            tokio::spawn(async move { shared.invoke(request).await });
            return reply(StatusCode::ACCEPTED, Bytes::new());
        }
        _ => {}
    }
    let function_error = |e: &FunctionError| {
        let mut r = reply(
            StatusCode::OK,
            Bytes::from(
                json!({"errorType": e.error_type, "errorMessage": e.error_message}).to_string(),
            ),
        );
        r.headers_mut().insert(
            "x-amz-function-error",
            header::HeaderValue::from_static("Unhandled"),
        );
        r
    };
    match shared.invoke(request).await {
        Ok(invocation) => match invocation.outcome {
            Outcome::Response { response } => {
                reply(StatusCode::OK, Bytes::from(response.to_string()))
            }
            Outcome::RawResponse { body } => reply(StatusCode::OK, Bytes::from(body)),
            Outcome::Streamed(s) => match &s.error {
                Some(e) => function_error(e),
                None => reply(StatusCode::OK, Bytes::from(s.body)),
            },
            Outcome::Error(e) | Outcome::InitError(e) => function_error(&e),
            Outcome::TimedOut => function_error(&timed_out(shared.config.function.timeout)),
        },
        Err(Error::Timeout { timeout, .. }) => function_error(&timed_out(timeout)),
        Err(error) => error_reply(
            StatusCode::BAD_GATEWAY,
            "ServiceException",
            &error.to_string(),
        ),
    }
}

fn timed_out(timeout: std::time::Duration) -> FunctionError {
    FunctionError {
        error_type: "Sandbox.Timedout".to_owned(),
        error_message: format!("Task timed out after {:.2} seconds", timeout.as_secs_f64()),
        header_error_type: None,
        stack_trace: None,
    }
}

fn event_reply(d: Dispatch) -> Reply {
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header("Lambda-Runtime-Aws-Request-Id", &d.request_id)
        .header("Lambda-Runtime-Deadline-Ms", d.deadline_ms.to_string())
        .header("Lambda-Runtime-Invoked-Function-Arn", &d.function_arn)
        .header("Lambda-Runtime-Trace-Id", &d.trace_id);
    if let Some(id) = &d.invocation_id {
        builder = builder.header("Lambda-Runtime-Invocation-Id", id);
    }
    if let Some(v) = d.headers.client_context {
        builder = builder.header("Lambda-Runtime-Client-Context", v);
    }
    if let Some(v) = d.headers.cognito_identity {
        builder = builder.header("Lambda-Runtime-Cognito-Identity", v);
    }
    if let Some(v) = d.headers.tenant_id {
        builder = builder.header("Lambda-Runtime-Aws-Tenant-Id", v);
    }
    builder.body(Full::new(d.body)).unwrap_or_else(|error| {
        // Only reachable if a generated id or trace id were not a valid
        // header value, which the generators rule out.
        error_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "EmulatorError",
            &error.to_string(),
        )
    })
}

/// `POST /invocation/{id}/response`, buffered or streaming.
async fn response(shared: &Shared, id: &str, req: Request<Incoming>) -> Reply {
    let (parts, body) = req.into_parts();
    let (body, trailers) = match body.collect().await {
        Ok(collected) => {
            let trailers = collected.trailers().cloned();
            (collected.to_bytes(), trailers)
        }
        Err(error) => {
            return error_reply(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                &error.to_string(),
            );
        }
    };
    let received_at = Instant::now();
    let streaming = header_str(&parts.headers, "lambda-runtime-function-response-mode")
        .is_some_and(|mode| mode.eq_ignore_ascii_case("streaming"));
    let too_large = !streaming && body.len() > shared.config.max_response_bytes;
    let outcome = if streaming {
        Outcome::Streamed(read_stream(&parts.headers, &body, trailers.as_ref()))
    } else if too_large {
        Outcome::Error(FunctionError {
            error_type: "Function.ResponseSizeTooLarge".to_owned(),
            error_message: format!(
                "Response payload size ({} bytes) exceeded maximum allowed payload size ({} bytes).",
                body.len(),
                shared.config.max_response_bytes
            ),
            header_error_type: None,
            stack_trace: None,
        })
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(response) => Outcome::Response { response },
            Err(_) => Outcome::RawResponse {
                body: body.to_vec(),
            },
        }
    };
    let answer = answer(&parts.headers, outcome, received_at);
    match shared.complete(id, answer) {
        Ok(()) if too_large => error_reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "response payload over the synchronous invocation limit",
        ),
        Ok(()) => accepted(),
        Err(reject) => rejected(&reject, id),
    }
}

/// `POST /invocation/{id}/error`.
async fn invocation_error(shared: &Shared, id: &str, req: Request<Incoming>) -> Reply {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return error_reply(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                &error.to_string(),
            );
        }
    };
    let received_at = Instant::now();
    let error = FunctionError::from_body(
        &body,
        header_str(&parts.headers, ERROR_TYPE).map(str::to_owned),
    );
    let answer = answer(&parts.headers, Outcome::Error(error), received_at);
    match shared.complete(id, answer) {
        Ok(()) => accepted(),
        Err(reject) => rejected(&reject, id),
    }
}

/// `POST /init/error` (and `/restore/error`).
async fn init_error(shared: &Shared, req: Request<Incoming>) -> Reply {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return error_reply(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                &error.to_string(),
            );
        }
    };
    shared.init_error(FunctionError::from_body(
        &body,
        header_str(&parts.headers, ERROR_TYPE).map(str::to_owned),
    ));
    accepted()
}

fn answer(headers: &HeaderMap, outcome: Outcome, received_at: Instant) -> Answer {
    Answer {
        outcome,
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect::<BTreeMap<_, _>>(),
        echoed_invocation_id: header_str(headers, INVOCATION_ID).map(str::to_owned),
        received_at,
    }
}

/// Splits a streaming body into prelude, payload and error trailer.
fn read_stream(headers: &HeaderMap, body: &[u8], trailers: Option<&HeaderMap>) -> StreamedResponse {
    let integration = header_str(headers, header::CONTENT_TYPE.as_str())
        .is_some_and(|ct| ct.starts_with("application/vnd.awslambda.http-integration-response"));
    let (prelude, payload) = match find(body, PRELUDE_DELIMITER) {
        Some(at) if integration => (
            serde_json::from_slice(&body[..at]).ok(),
            &body[at + PRELUDE_DELIMITER.len()..],
        ),
        _ => (None, body),
    };
    let from_trailers = trailers.and_then(|t| {
        let error_type = header_str(t, ERROR_TYPE)?;
        Some(stream_error(
            error_type,
            header_str(t, ERROR_BODY).unwrap_or(""),
        ))
    });
    let (payload, error) = match from_trailers {
        Some(error) => (payload, Some(error)),
        None => split_inline_trailer(payload),
    };
    StreamedResponse {
        prelude,
        body: payload.to_vec(),
        error,
    }
}

/// `lambda_runtime` 1.x writes a mid-stream error as a last body chunk that
/// looks like trailer lines rather than as real HTTP trailers; recognise it.
fn split_inline_trailer(payload: &[u8]) -> (&[u8], Option<FunctionError>) {
    const MARK: &[u8] = b"Lambda-Runtime-Function-Error-Type: ";
    let Some(at) = rfind(payload, MARK) else {
        return (payload, None);
    };
    let Ok(tail) = std::str::from_utf8(&payload[at..]) else {
        return (payload, None);
    };
    let mut error_type = None;
    let mut error_body = "";
    for line in tail.split("\r\n").filter(|l| !l.is_empty()) {
        match line.split_once(": ") {
            Some(("Lambda-Runtime-Function-Error-Type", v)) => error_type = Some(v),
            Some(("Lambda-Runtime-Function-Error-Body", v)) => error_body = v,
            _ => return (payload, None),
        }
    }
    match error_type {
        Some(t) => (&payload[..at], Some(stream_error(t, error_body))),
        None => (payload, None),
    }
}

/// The error body of a stream error is base64 (of JSON or of plain text).
fn stream_error(error_type: &str, encoded_body: &str) -> FunctionError {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded_body.trim())
        .unwrap_or_else(|_| encoded_body.as_bytes().to_vec());
    let mut error = FunctionError::from_body(&decoded, Some(error_type.to_owned()));
    if serde_json::from_slice::<Value>(&decoded).is_err() {
        error.error_type = error_type.to_owned();
    }
    error
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn reply(status: StatusCode, body: Bytes) -> Reply {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

fn accepted() -> Reply {
    reply(
        StatusCode::ACCEPTED,
        Bytes::from_static(br#"{"status":"OK"}"#),
    )
}

fn error_reply(status: StatusCode, error_type: &str, message: &str) -> Reply {
    let body = json!({"errorType": error_type, "errorMessage": message});
    reply(status, Bytes::from(body.to_string()))
}

fn rejected(reject: &Reject, id: &str) -> Reply {
    match reject {
        Reject::UnknownRequest => error_reply(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            &format!("no invocation {id} was dispatched"),
        ),
        Reject::AlreadyAnswered => error_reply(
            StatusCode::FORBIDDEN,
            "InvalidStateTransition",
            &format!("invocation {id} was already answered"),
        ),
        Reject::Stale => error_reply(
            StatusCode::GONE,
            "InvocationGone",
            &format!("invocation {id} timed out or the answer is stale"),
        ),
    }
}

fn not_found(path: &str) -> Reply {
    error_reply(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{path} is not a Runtime API route"),
    )
}

fn shutting_down() -> Reply {
    error_reply(
        StatusCode::INTERNAL_SERVER_ERROR,
        "EmulatorShutDown",
        "the runtime emulator is shutting down",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_stream_error_trailer_is_split_off() {
        let body = b"chunk-1chunk-2Lambda-Runtime-Function-Error-Type: Runtime.StreamError\r\nLambda-Runtime-Function-Error-Body: Ym9vbQ==\r\n";
        let (payload, error) = split_inline_trailer(body);
        assert_eq!(payload, b"chunk-1chunk-2");
        let error = error.unwrap();
        assert_eq!(error.error_type, "Runtime.StreamError");
        assert_eq!(error.error_message, "boom");
    }

    #[test]
    fn prelude_is_read_for_http_integration_responses() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/vnd.awslambda.http-integration-response"),
        );
        let mut body = br#"{"statusCode":200}"#.to_vec();
        body.extend_from_slice(PRELUDE_DELIMITER);
        body.extend_from_slice(b"hello");
        let s = read_stream(&headers, &body, None);
        assert_eq!(s.prelude, Some(json!({"statusCode": 200})));
        assert_eq!(s.body, b"hello");
        assert!(s.error.is_none());
    }
}
