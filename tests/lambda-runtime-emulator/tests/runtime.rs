//! Integration tests: the emulator runs the real compiled `echo-lambda`
//! (`lambda_runtime::run`) and checks what `lambda_runtime` 1.x sends and
//! expects, plus the event fixtures, the CLI and one cold-start measurement.
//! Every test starts its own emulator on a free loopback port, so they run in
//! parallel.

use std::{
    path::PathBuf,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, Result, bail, ensure};
use aws_lambda_events::event::{
    kafka::KafkaEvent,
    sqs::{SqsBatchResponse, SqsEvent},
};
use lambda_runtime_emulator::{
    Error, InvokeRequest, LambdaProcess, Outcome, RuntimeEmulator, cold_start,
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const ECHO: &str = env!("CARGO_BIN_EXE_echo-lambda");
const CLI: &str = env!("CARGO_BIN_EXE_lambda-runtime-emulator");
/// Generous: debug binaries on a busy 2-core machine.
const TIMEOUT: Duration = Duration::from_secs(20);

fn fixture(name: &str) -> Result<Value> {
    let path = fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    Ok(serde_json::from_str(&text)?)
}

fn fixtures_dir() -> PathBuf {
    // The package directory cargo or nextest names at run time: a binary reused from another checkout
    // (one shared target dir) would otherwise read that checkout's files.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("fixtures")
}

async fn echo_function(emulator: &RuntimeEmulator) -> Result<LambdaProcess> {
    Ok(LambdaProcess::spawn(
        ECHO,
        emulator,
        [("RUST_LOG", "info"), ("AWS_LAMBDA_LOG_FORMAT", "Text")],
    )?)
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Evens out the two ways `aws_lambda_events` writes a value differently
/// from how Lambda sends it, neither of which loses anything: absent options
/// become `null` (dropped here), and Kafka's millisecond timestamps become
/// strings (numbers are written as strings here).
fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), normalized(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalized).collect()),
        Value::Number(n) => Value::String(n.to_string()),
        other => other.clone(),
    }
}

/// parse -> serialize -> reparse gives the same value, and serializing loses
/// none of the fixture's fields.
fn round_trip<T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug>(
    name: &str,
) -> Result<T> {
    let original = fixture(name)?;
    let parsed: T = serde_json::from_value(original.clone())
        .with_context(|| format!("{name} does not parse"))?;
    let serialized = serde_json::to_value(&parsed)?;
    let reparsed: T = serde_json::from_value(serialized.clone())?;
    ensure!(parsed == reparsed, "{name}: reparse differs");
    ensure!(
        normalized(&original) == normalized(&serialized),
        "{name}: re-serialized JSON differs:\n{}\nvs\n{}",
        serde_json::to_string_pretty(&original)?,
        serde_json::to_string_pretty(&serialized)?
    );
    Ok(parsed)
}

#[test]
fn fixtures_deserialize_and_round_trip() -> Result<()> {
    let sqs: SqsEvent = round_trip("sqs-event.json")?;
    assert_eq!(sqs.records.len(), 2);
    for record in &sqs.records {
        assert_eq!(record.event_source.as_deref(), Some("aws:sqs"));
        for attribute in [
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SenderId",
            "ApproximateFirstReceiveTimestamp",
        ] {
            assert!(
                record.attributes.contains_key(attribute),
                "{attribute} missing"
            );
        }
        assert!(record.md5_of_body.is_some() && record.receipt_handle.is_some());
    }

    let msk: KafkaEvent = round_trip("kafka-msk-event.json")?;
    assert_eq!(msk.event_source.as_deref(), Some("aws:kafka"));
    assert!(msk.event_source_arn.is_some() && msk.bootstrap_servers.is_some());
    assert_eq!(msk.records["spark-jobs-0"].len(), 2);

    let self_managed: KafkaEvent = round_trip("kafka-self-managed-event.json")?;
    assert_eq!(
        self_managed.event_source.as_deref(),
        Some("aws:SelfManagedKafka")
    );
    // One payload can mix partitions.
    assert_eq!(self_managed.records.len(), 2);
    let header = &self_managed.records["spark-job-events-0"][0].headers[0]["ce_source"];
    let bytes: Vec<u8> = header.iter().map(|b| b.cast_unsigned()).collect();
    assert_eq!(bytes, b"spark-gateway-watcher");
    Ok(())
}

#[tokio::test]
async fn echoes_events_with_the_runtime_api_headers() -> Result<()> {
    let emulator = RuntimeEmulator::start().await?;
    let mut function = echo_function(&emulator).await?;

    let event = json!({"hello": "spark", "n": [1, 2, 3]});
    let invocation = function.invoke(event.clone(), TIMEOUT).await?;
    assert_eq!(invocation.response(), Some(&event));
    // lambda_runtime identifies itself and echoes the invocation id (cross-wiring guard).
    assert!(invocation.answer_headers["user-agent"].starts_with("aws-lambda-rust/"));
    assert_eq!(
        invocation
            .answer_headers
            .get("lambda-runtime-invocation-id"),
        Some(&invocation.invocation_id)
    );

    let before = now_ms();
    let request = InvokeRequest::new(json!({"action": "context"}), TIMEOUT)
        .client_context(json!({
            "client": {"installation_id": "i-1", "app_title": "t", "app_version_name": "1", "app_version_code": "1", "app_package_name": "p"},
            "custom": {"tenant": "blue"},
            "environment": {"platform": "test"}
        }))
        .cognito_identity(json!({"identityId": "id-1", "identityPoolId": "pool-1"}))
        .tenant_id("tenant-7")
        .trace_id("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1");
    let invocation = function.invoke_with(request).await?;
    let context = invocation.clone().into_response()?;
    assert_eq!(context["requestId"], json!(invocation.request_id));
    assert_eq!(context["deadline"], json!(invocation.deadline_ms));
    let timeout_ms = u64::try_from(TIMEOUT.as_millis())?;
    assert!(
        invocation.deadline_ms >= before + timeout_ms - 1000
            && invocation.deadline_ms <= now_ms() + timeout_ms
    );
    assert_eq!(
        context["invokedFunctionArn"],
        json!(emulator.config().function.arn())
    );
    assert_eq!(
        context["xrayTraceId"],
        json!("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
    );
    assert_eq!(context["clientContext"]["custom"]["tenant"], "blue");
    assert_eq!(context["identity"]["identityId"], "id-1");
    assert_eq!(context["tenantId"], "tenant-7");
    assert_eq!(context["functionName"], "spark-gateway-test");
    assert_eq!(context["memory"], 128);
    assert_eq!(context["version"], "$LATEST");
    assert_eq!(context["logGroup"], "/aws/lambda/spark-gateway-test");
    assert!(
        context["logStream"]
            .as_str()
            .unwrap_or_default()
            .contains("[$LATEST]")
    );
    let env = &context["env"];
    assert_eq!(env["AWS_LAMBDA_RUNTIME_API"], json!(emulator.runtime_api()));
    assert_eq!(env["AWS_REGION"], "us-east-1");
    assert_eq!(env["_HANDLER"], "bootstrap");
    // lambda_runtime sets the X-Ray variable from the trace header for SDKs.
    assert_eq!(env["_X_AMZN_TRACE_ID"], context["xrayTraceId"]);

    emulator.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn records_function_errors_and_panics() -> Result<()> {
    let emulator = RuntimeEmulator::start().await?;
    let mut function = echo_function(&emulator).await?;

    let failed = function
        .invoke(
            json!({"action": "fail", "errorType": "Retryable", "errorMessage": "cluster busy"}),
            TIMEOUT,
        )
        .await?;
    let error = failed.error().context("expected an error")?;
    assert_eq!(error.error_type, "Retryable");
    assert_eq!(error.error_message, "cluster busy");
    assert_eq!(error.header_error_type.as_deref(), Some("unhandled"));
    match failed.clone().into_response() {
        Err(Error::Function { error, .. }) => assert_eq!(error.error_type, "Retryable"),
        other => bail!("expected Error::Function, got {other:?}"),
    }

    let panicked = function.invoke(json!({"action": "panic"}), TIMEOUT).await?;
    let error = panicked
        .error()
        .context("a panic is reported as an error")?;
    assert!(error.error_message.contains("panic"), "{error:?}");

    // The runtime survives both and keeps serving.
    let ok = function.invoke(json!({"after": "errors"}), TIMEOUT).await?;
    assert_eq!(ok.into_response()?, json!({"after": "errors"}));
    Ok(())
}

#[tokio::test]
async fn sqs_partial_batch_response_and_kafka_events() -> Result<()> {
    let emulator = RuntimeEmulator::start().await?;
    let mut function = echo_function(&emulator).await?;

    let sqs = fixture("sqs-event.json")?;
    let response = function
        .invoke(sqs.clone(), TIMEOUT)
        .await?
        .into_response()?;
    let batch: SqsBatchResponse = serde_json::from_value(response)?;
    assert_eq!(batch.batch_item_failures.len(), 1);
    assert_eq!(
        json!(batch.batch_item_failures[0].item_identifier),
        sqs["Records"][1]["messageId"]
    );

    let msk = function
        .invoke(fixture("kafka-msk-event.json")?, TIMEOUT)
        .await?
        .into_response()?;
    assert_eq!(msk["eventSource"], "aws:kafka");
    assert_eq!(msk["records"], 2);
    assert_eq!(
        msk["values"][1],
        r#"{"jobId":"spark-pi-0001","state":"RUNNING"}"#
    );

    let smk = function
        .invoke(fixture("kafka-self-managed-event.json")?, TIMEOUT)
        .await?
        .into_response()?;
    assert_eq!(smk["eventSource"], "aws:SelfManagedKafka");
    assert_eq!(
        smk["partitions"],
        json!(["spark-job-events-0", "spark-job-events-3"])
    );
    Ok(())
}

#[tokio::test]
async fn runs_invocations_in_sequence_and_keeps_history() -> Result<()> {
    let emulator = RuntimeEmulator::start().await?;
    let mut function = echo_function(&emulator).await?;
    for n in 0..5 {
        let invocation = function.invoke(json!({"n": n}), TIMEOUT).await?;
        assert_eq!(invocation.into_response()?, json!({"n": n}));
    }
    // Queued together, answered one after the other by the one runtime.
    let (a, b, c) = tokio::join!(
        emulator.invoke(json!({"n": "a"}), TIMEOUT),
        emulator.invoke(json!({"n": "b"}), TIMEOUT),
        emulator.invoke(json!({"n": "c"}), TIMEOUT),
    );
    for (result, n) in [(a, "a"), (b, "b"), (c, "c")] {
        assert_eq!(result?.into_response()?, json!({"n": n}));
    }

    let history = emulator.invocations();
    assert_eq!(history.len(), 8);
    let first: Vec<Value> = history[..5].iter().map(|i| i.event["n"].clone()).collect();
    assert_eq!(
        first,
        vec![json!(0), json!(1), json!(2), json!(3), json!(4)]
    );
    let mut ids: Vec<&str> = history.iter().map(|i| i.request_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 8, "request ids are unique");
    assert!(emulator.polls() >= 8);
    Ok(())
}

#[tokio::test]
async fn times_out_and_refuses_the_late_answer() -> Result<()> {
    let emulator = RuntimeEmulator::start().await?;
    let mut function = echo_function(&emulator).await?;
    // Make sure the runtime is up, so the short timeout only covers the handler.
    function.invoke(json!({"warm": true}), TIMEOUT).await?;

    let started = now_ms();
    match function
        .invoke(
            json!({"action": "sleep", "ms": 2000}),
            Duration::from_millis(300),
        )
        .await
    {
        Err(Error::Timeout { timeout, .. }) => assert_eq!(timeout, Duration::from_millis(300)),
        other => bail!("expected a timeout, got {other:?}"),
    }
    assert!(
        now_ms() - started < 2000,
        "gave up at the deadline, not at the answer"
    );
    let last = emulator.invocations().pop().context("history")?;
    assert_eq!(last.outcome, Outcome::TimedOut);

    // The late answer is refused with 410; lambda_runtime logs it and goes on.
    let next = function
        .invoke(json!({"after": "timeout"}), TIMEOUT)
        .await?;
    assert_eq!(next.into_response()?, json!({"after": "timeout"}));
    // Its default tracing subscriber logs the refusal to stdout, which is captured.
    let logged = async {
        while !function.stdout().contains("non-200") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    ensure!(
        tokio::time::timeout(Duration::from_secs(5), logged)
            .await
            .is_ok(),
        "refusal not logged; stdout:\n{}",
        function.stdout()
    );
    Ok(())
}

#[tokio::test]
async fn accepts_streaming_responses() -> Result<()> {
    let emulator = RuntimeEmulator::start().await?;
    let mut function = echo_function(&emulator).await?;

    let streamed = function
        .invoke(
            json!({"action": "stream", "chunks": ["spark-", "gateway"]}),
            TIMEOUT,
        )
        .await?;
    let Outcome::Streamed(stream) = &streamed.outcome else {
        bail!("expected a streamed response, got {:?}", streamed.outcome);
    };
    assert_eq!(stream.body, b"spark-gateway");
    assert_eq!(
        stream.prelude.as_ref().map(|p| p["statusCode"].clone()),
        Some(json!(200))
    );
    assert_eq!(
        streamed.answer_headers["lambda-runtime-function-response-mode"],
        "streaming"
    );

    let failed = function
        .invoke(
            json!({"action": "stream", "chunks": ["part"], "error": "disk full"}),
            TIMEOUT,
        )
        .await?;
    let Outcome::Streamed(stream) = &failed.outcome else {
        bail!("expected a streamed response, got {:?}", failed.outcome);
    };
    assert_eq!(stream.body, b"part");
    let error = stream.error.as_ref().context("mid-stream error")?;
    assert_eq!(error.error_type, "Runtime.StreamError");
    assert_eq!(error.error_message, "disk full");

    // And the runtime goes on with buffered responses.
    assert_eq!(
        function.invoke(json!(1), TIMEOUT).await?.into_response()?,
        json!(1)
    );
    Ok(())
}

#[tokio::test]
async fn reports_init_errors() -> Result<()> {
    let emulator = RuntimeEmulator::start().await?;
    let mut function =
        LambdaProcess::spawn(ECHO, &emulator, [("ECHO_LAMBDA_INIT_ERROR", "no secrets")])?;
    let invocation = function.invoke(json!({"any": "event"}), TIMEOUT).await?;
    assert!(invocation.is_init_error(), "{:?}", invocation.outcome);
    let error = invocation.error().context("init error")?;
    assert_eq!(error.error_type, "EchoLambda.InitError");
    assert_eq!(error.error_message, "no secrets");
    assert_eq!(
        error.header_error_type.as_deref(),
        Some("Runtime.InitError")
    );
    assert_eq!(emulator.init_errors().len(), 1);
    Ok(())
}

#[tokio::test]
async fn notices_a_process_that_dies_and_a_function_that_never_polls() -> Result<()> {
    let emulator = RuntimeEmulator::start().await?;
    let mut function = echo_function(&emulator).await?;
    match function
        .invoke(json!({"action": "exit", "code": 7}), TIMEOUT)
        .await
    {
        Err(Error::ProcessExited { status, .. }) => assert_eq!(status.code(), Some(7)),
        other => bail!("expected ProcessExited, got {other:?}"),
    }

    // Nobody polls any more: the invocation is withdrawn after the timeout.
    match emulator.invoke(json!({}), Duration::from_millis(200)).await {
        Err(Error::NotPickedUp { .. }) => {}
        other => bail!("expected NotPickedUp, got {other:?}"),
    }

    // A fresh process takes over the same emulator and does not see the
    // withdrawn event.
    let mut replacement = echo_function(&emulator).await?;
    let invocation = replacement.invoke(json!({"fresh": true}), TIMEOUT).await?;
    assert_eq!(invocation.into_response()?, json!({"fresh": true}));

    // Pending invocations fail when the emulator shuts down.
    drop(replacement);
    let pending = tokio::spawn({
        let emulator = emulator.clone();
        async move { emulator.invoke(json!({}), TIMEOUT).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    emulator.shutdown().await;
    assert!(matches!(pending.await?, Err(Error::ShutDown)));
    Ok(())
}

#[tokio::test]
async fn a_killed_poller_does_not_swallow_the_next_event() -> Result<()> {
    let emulator = RuntimeEmulator::start().await?;
    let mut first = echo_function(&emulator).await?;
    first.invoke(json!({"warm": 1}), TIMEOUT).await?;
    // Killed while its `GET /next` long poll is open.
    first.kill().await?;
    drop(first);
    let mut second = echo_function(&emulator).await?;
    for n in 0..3 {
        let answer = second
            .invoke(json!({"n": n}), Duration::from_secs(5))
            .await?;
        assert_eq!(answer.into_response()?, json!({"n": n}));
    }
    Ok(())
}

/// A minimal HTTP/1.1 exchange, to call routes `lambda_runtime` never gets wrong.
async fn http(emulator: &RuntimeEmulator, request: &str) -> Result<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(emulator.addr()).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    let status = answer
        .split_whitespace()
        .nth(1)
        .context("status line")?
        .parse()?;
    Ok((status, answer))
}

#[tokio::test]
async fn refuses_what_the_runtime_api_refuses_and_serves_the_invoke_api() -> Result<()> {
    let emulator = RuntimeEmulator::start().await?;
    let post = |path: &str, body: &str, extra: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let (status, answer) = http(
        &emulator,
        &post("/2018-06-01/runtime/invocation/nope/response", "{}", ""),
    )
    .await?;
    assert_eq!(status, 400);
    assert!(answer.contains("InvalidRequestID"));
    let (status, _) = http(&emulator, &post("/2018-06-01/runtime/elsewhere", "", "")).await?;
    assert_eq!(status, 404);
    let (status, _) = http(&emulator, "DELETE /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
    assert_eq!(status, 405);

    // The caller's side, as the AWS Runtime Interface Emulator offers it.
    let _function = echo_function(&emulator).await?;
    let invoke = "/2015-03-31/functions/function/invocations";
    let (status, answer) = http(&emulator, &post(invoke, r#"{"via":"invoke-api"}"#, "")).await?;
    assert_eq!(status, 200);
    assert!(answer.ends_with(r#"{"via":"invoke-api"}"#), "{answer}");
    let (status, answer) = http(
        &emulator,
        &post(invoke, r#"{"action":"fail","errorType":"Boom"}"#, ""),
    )
    .await?;
    assert_eq!(status, 200);
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("x-amz-function-error: unhandled"),
        "{answer}"
    );
    assert!(answer.contains(r#""errorType":"Boom""#));
    Ok(())
}

#[tokio::test]
async fn cli_runs_events_through_a_function() -> Result<()> {
    let output = tokio::process::Command::new(CLI)
        .args(["--listen", "127.0.0.1:0", "--exec", ECHO, "--timeout", "20"])
        .arg("--event")
        .arg(fixtures_dir().join("sqs-event.json"))
        .arg("--event")
        .arg(fixtures_dir().join("kafka-msk-event.json"))
        .kill_on_drop(true)
        .output()
        .await?;
    let stdout = String::from_utf8(output.stdout)?;
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["outcome"], "response");
    assert_eq!(
        lines[0]["response"]["batchItemFailures"][0]["itemIdentifier"],
        "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
    );
    assert_eq!(lines[1]["response"]["eventSource"], "aws:kafka");
    Ok(())
}

#[tokio::test]
async fn measures_a_cold_start() -> Result<()> {
    let measured = cold_start(ECHO, json!({"cold": true})).await?;
    assert_eq!(measured.invocation.response(), Some(&json!({"cold": true})));
    assert!(measured.init <= measured.first_response);
    // Reported, not asserted: timings depend on the machine and its load.
    println!(
        "echo-lambda cold start (debug build): init {:?}, first response {:?}, handler {:?}",
        measured.init, measured.first_response, measured.invocation.duration
    );
    Ok(())
}
