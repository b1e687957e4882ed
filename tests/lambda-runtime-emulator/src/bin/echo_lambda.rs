//! `echo-lambda`: a tiny real Lambda function (`lambda_runtime::run`) for the
//! emulator's integration tests. What it does is chosen by the event:
//!
//! | event | answer |
//! |---|---|
//! | an SQS event (`Records[].eventSource == "aws:sqs"`) | `SqsBatchResponse`: every message whose body contains `fail` is a batch item failure |
//! | a Kafka event (`aws:kafka`, `aws:SelfManagedKafka`) | `{eventSource, records, partitions, values}` with the values base64-decoded |
//! | `{"action": "fail", "errorType": T, "errorMessage": M}` | an error with that `Diagnostic` |
//! | `{"action": "panic"}` | a panic (`lambda_runtime` reports it as an error) |
//! | `{"action": "sleep", "ms": N}` | the event, after N ms |
//! | `{"action": "context"}` | the invocation `Context` and the Lambda environment it saw |
//! | `{"action": "stream", "chunks": [..], "error": M?}` | a streaming response, failing mid-stream with M if given |
//! | `{"action": "exit", "code": N}` | the process exits without answering |
//! | anything else | the event itself |
//!
//! With `ECHO_LAMBDA_INIT_ERROR=<message>` it reports an init error through
//! `POST /runtime/init/error` and exits, as a function whose set-up failed does.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    time::Duration,
};

use aws_lambda_events::event::{
    kafka::KafkaEvent,
    sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent},
};
use base64::Engine as _;
use bytes::Bytes;
use lambda_runtime::{Diagnostic, FunctionResponse, LambdaEvent, StreamResponse, service_fn};
use serde_json::{Value, json};

/// The streaming body type: a fixed list of chunks.
type Chunks = tokio_stream::Iter<std::vec::IntoIter<Result<Bytes, lambda_runtime::Error>>>;

/// An error the event asked for, with the `errorType` it asked for.
#[derive(Debug)]
struct Requested {
    error_type: String,
    message: String,
}

impl From<Requested> for Diagnostic {
    fn from(e: Requested) -> Self {
        Diagnostic {
            error_type: e.error_type,
            error_message: e.message,
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    if let Ok(message) = std::env::var("ECHO_LAMBDA_INIT_ERROR") {
        report_init_error(&message)?;
        std::process::exit(1);
    }
    lambda_runtime::run(service_fn(handle)).await
}

async fn handle(event: LambdaEvent<Value>) -> Result<FunctionResponse<Value, Chunks>, Requested> {
    let (payload, context) = event.into_parts();
    let source = payload
        .pointer("/Records/0/eventSource")
        .or_else(|| payload.get("eventSource"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let buffered = |v: Value| Ok(FunctionResponse::BufferedResponse(v));
    match source.as_str() {
        "aws:sqs" => return buffered(sqs(payload)?),
        "aws:kafka" | "aws:SelfManagedKafka" => return buffered(kafka(payload)?),
        _ => {}
    }
    match payload.get("action").and_then(Value::as_str) {
        Some("fail") => Err(Requested {
            error_type: str_field(&payload, "errorType", "EchoLambda.Requested"),
            message: str_field(&payload, "errorMessage", "the event asked for an error"),
        }),
        Some("panic") => panic!("the event asked for a panic"),
        Some("exit") => {
            let code = payload.get("code").and_then(Value::as_i64).unwrap_or(3);
            std::process::exit(i32::try_from(code).unwrap_or(3));
        }
        Some("sleep") => {
            let ms = payload.get("ms").and_then(Value::as_u64).unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            buffered(payload)
        }
        Some("context") => buffered(json!({
            "requestId": context.request_id,
            "deadline": context.deadline,
            "invokedFunctionArn": context.invoked_function_arn,
            "xrayTraceId": context.xray_trace_id,
            "clientContext": context.client_context,
            "identity": context.identity,
            "tenantId": context.tenant_id,
            "functionName": context.env_config.function_name,
            "memory": context.env_config.memory,
            "version": context.env_config.version,
            "logGroup": context.env_config.log_group,
            "logStream": context.env_config.log_stream,
            "env": env_snapshot(),
        })),
        Some("stream") => {
            let mut chunks: Vec<Result<Bytes, lambda_runtime::Error>> = payload
                .get("chunks")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(|c| Ok(Bytes::from(c.to_owned())))
                .collect();
            if let Some(message) = payload.get("error").and_then(Value::as_str) {
                chunks.push(Err(message.to_owned().into()));
            }
            Ok(FunctionResponse::StreamingResponse(StreamResponse::from(
                tokio_stream::iter(chunks),
            )))
        }
        _ => buffered(payload),
    }
}

/// Partial batch response: messages whose body mentions `fail` are retried.
fn sqs(payload: Value) -> Result<Value, Requested> {
    let event: SqsEvent = serde_json::from_value(payload).map_err(invalid)?;
    let mut response = SqsBatchResponse::default();
    for message in &event.records {
        if message.body.as_deref().is_some_and(|b| b.contains("fail")) {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message.message_id.clone().unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    serde_json::to_value(response).map_err(invalid)
}

/// A summary of a Kafka batch, with the values decoded as Lambda encodes them.
fn kafka(payload: Value) -> Result<Value, Requested> {
    let event: KafkaEvent = serde_json::from_value(payload).map_err(invalid)?;
    let mut partitions: Vec<&String> = event.records.keys().collect();
    partitions.sort();
    let mut values = Vec::new();
    for partition in &partitions {
        for record in &event.records[*partition] {
            let decoded = record
                .value
                .as_deref()
                .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v).ok())
                .map(|v| String::from_utf8_lossy(&v).into_owned());
            values.push(json!(decoded));
        }
    }
    Ok(json!({
        "eventSource": event.event_source,
        "records": values.len(),
        "partitions": partitions,
        "values": values,
    }))
}

fn invalid(e: serde_json::Error) -> Requested {
    Requested {
        error_type: "EchoLambda.InvalidEvent".to_owned(),
        message: e.to_string(),
    }
}

fn str_field(v: &Value, key: &str, default: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or(default)
        .to_owned()
}

/// The Lambda-defined variables the function was started with.
fn env_snapshot() -> Value {
    let vars: serde_json::Map<String, Value> = std::env::vars()
        .filter(|(k, _)| {
            k.starts_with("AWS_")
                || k.starts_with("LAMBDA_")
                || k == "_HANDLER"
                || k == "_X_AMZN_TRACE_ID"
        })
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    Value::Object(vars)
}

/// `lambda_runtime` has no public call for `/init/error`, so speak the
/// Runtime API directly: this is what a custom runtime does when its set-up
/// fails. Waits for the answer so the error is recorded before the exit.
fn report_init_error(message: &str) -> std::io::Result<()> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API")
        .map_err(|e| std::io::Error::other(format!("AWS_LAMBDA_RUNTIME_API: {e}")))?;
    let body = json!({"errorType": "EchoLambda.InitError", "errorMessage": message}).to_string();
    let mut stream = TcpStream::connect(&api)?;
    write!(
        stream,
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {api}\r\n\
         Lambda-Runtime-Function-Error-Type: Runtime.InitError\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(())
}
