//! The real Lambda binaries (`job-requests`, `job-status`) run as processes under the Lambda Runtime
//! API emulator, configured only through their environment, against the real local world.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use lambda_runtime_emulator::{LambdaProcess, Outcome, RuntimeEmulator};
use serde_json::{Value, json};
use spark_gateway_events::JobRequest;
use spark_gateway_harness::kafka::create_topic;
use spark_gateway_harness::unique_name;

use super::fixture::{Fixture, NAMESPACE, seed_request, with_scenario};

const TIMEOUT: Duration = Duration::from_secs(30);

/// A binary of this workspace, built next to this test binary (`cargo build --workspace --bins`).
pub(super) fn workspace_binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("test binary location")?;
    let binary = profile_dir.join(name);
    if !binary.exists() {
        bail!(
            "{} is missing: build the binaries first (cargo build --workspace --bins)",
            binary.display()
        );
    }
    Ok(binary)
}

fn sqs_record(id: &str, body: &str, receives: u32) -> Value {
    json!({
        "messageId": id, "receiptHandle": format!("handle-{id}"), "body": body,
        "attributes": {"ApproximateReceiveCount": receives.to_string(), "SentTimestamp": "1732350000000",
                       "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": "1732350000001"},
        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:spark-gateway-requests", "awsRegion": "us-east-1",
    })
}

fn response(outcome: &Outcome) -> Result<&Value> {
    match outcome {
        Outcome::Response { response } => Ok(response),
        other => bail!("expected a response, got {}", other.describe()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_requests_binary_answers_sqs_and_kafka_events_with_the_right_batch_responses()
-> Result<()> {
    let fixture = Fixture::start().await?;
    let events_topic = create_topic(fixture.world.kafka_bootstrap()?, "it-events", 1).await?;
    let sqs = aws_sdk_sqs::Client::new(
        &spark_gateway_harness::aws::localstack_config(&fixture.world).await?,
    );
    let queue = spark_gateway_harness::aws::TestQueue::create(&sqs, "it-lambda", 5).await?;
    let emulator = RuntimeEmulator::start().await?;
    let process = LambdaProcess::spawn(
        workspace_binary("job-requests")?,
        &emulator,
        fixture.function_env(&events_topic, &queue.dlq_url)?,
    )?;

    let request = with_scenario(seed_request()?, "stuck");
    let submit = serde_json::to_string(&JobRequest::Submit(Box::new(request.clone())))?;
    // The API server fails the create once: that message must come back as a batch item failure, the
    // poison one must not (it is rejected and acknowledged).
    fixture
        .cluster
        .control()
        .inject_errors(kube_emulator::ErrorRule::next("create", 500, 1));
    let first = json!({"Records": [sqs_record("m-submit", &submit, 1), sqs_record("m-poison", "{oops", 1)]});
    let invocation = emulator.invoke(first, TIMEOUT).await?;
    assert_eq!(
        response(&invocation.outcome)?,
        &json!({"batchItemFailures": [{"itemIdentifier": "m-submit"}]})
    );

    let redelivery = json!({"Records": [sqs_record("m-submit", &submit, 2)]});
    let invocation = emulator.invoke(redelivery, TIMEOUT).await?;
    assert_eq!(
        response(&invocation.outcome)?,
        &json!({"batchItemFailures": []})
    );
    fixture
        .wait_for_app(&request.application_name, true)
        .await?;

    // An MSK event with the delete of the same application, base64 as the event source mapping sends it.
    let delete =
        json!({"action": "delete", "request_id": unique_name("del"), "namespace": NAMESPACE,
                        "application_name": request.application_name})
        .to_string();
    let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let kafka = json!({
        "eventSource": "aws:kafka",
        "eventSourceArn": "arn:aws:kafka:us-east-1:000000000000:cluster/local/1",
        "bootstrapServers": fixture.world.kafka_bootstrap()?,
        "records": {"spark-gateway.requests-0": [{
            "topic": "spark-gateway.requests", "partition": 0, "offset": 7, "timestamp": 1732350000000_i64,
            "timestampType": "CREATE_TIME", "key": encode("ns/app"), "value": encode(&delete), "headers": [],
        }]},
    });
    let invocation = emulator.invoke(kafka, TIMEOUT).await?;
    assert_eq!(response(&invocation.outcome)?, &json!({"processed": 1}));
    fixture
        .wait_for_app(&request.application_name, false)
        .await?;

    let bogus = emulator.invoke(json!({"hello": "world"}), TIMEOUT).await?;
    let Outcome::Error(error) = &bogus.outcome else {
        bail!("unsupported event accepted: {}", bogus.outcome.describe())
    };
    assert!(
        error.error_message.contains("unsupported event source"),
        "{error:?}"
    );
    drop(process);
    fixture.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_status_binary_answers_direct_invocations_and_function_urls() -> Result<()> {
    let fixture = Fixture::start().await?;
    let gateway = fixture.gateway().await?;
    let request = with_scenario(seed_request()?, "success");
    gateway.submit(&request).await?;
    let emulator = RuntimeEmulator::start().await?;
    let _process = LambdaProcess::spawn(
        workspace_binary("job-status")?,
        &emulator,
        fixture.function_env("unused", "unused")?,
    )?;

    // Direct invocation until the outcome is there.
    let query = json!({"application_name": request.application_name, "namespace": NAMESPACE});
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        let invocation = emulator.invoke(query.clone(), TIMEOUT).await?;
        let status = response(&invocation.outcome)?.clone();
        if status.get("outcome").is_some() {
            break status;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no outcome in 30 s: {status}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status["state"], "ResourceReleased");
    assert_eq!(status["outcome"], json!({"result": "succeeded"}));
    assert_eq!(status["request_id"], request.request_id.as_str());

    let missing = emulator
        .invoke(
            json!({"application_name": "no-such-app", "namespace": NAMESPACE}),
            TIMEOUT,
        )
        .await?;
    let Outcome::Error(error) = &missing.outcome else {
        bail!("{}", missing.outcome.describe())
    };
    assert_eq!(error.error_type, "NotFound");

    // The same through a function URL (GET with a query string).
    let url_event = |name: &str| {
        json!({
            "version": "2.0", "rawPath": "/", "rawQueryString": format!("namespace={NAMESPACE}&application_name={name}"),
            "headers": {"accept": "application/json"},
            "queryStringParameters": {"namespace": NAMESPACE, "application_name": name},
            "requestContext": {"accountId": "000000000000", "apiId": "status", "domainName": "status.lambda-url.us-east-1.on.aws",
                               "domainPrefix": "status", "http": {"method": "GET", "path": "/", "protocol": "HTTP/1.1",
                               "sourceIp": "127.0.0.1", "userAgent": "test"}, "requestId": "r-1", "routeKey": "$default",
                               "stage": "$default", "time": "23/Nov/2026:10:00:00 +0000", "timeEpoch": 1732350000000_i64},
            "isBase64Encoded": false,
        })
    };
    let ok = emulator
        .invoke(url_event(&request.application_name), TIMEOUT)
        .await?;
    let ok = response(&ok.outcome)?;
    assert_eq!(ok["statusCode"], 200);
    let body: Value = serde_json::from_str(ok["body"].as_str().context("body")?)?;
    assert_eq!(body["outcome"], json!({"result": "succeeded"}));
    let not_found = emulator.invoke(url_event("no-such-app"), TIMEOUT).await?;
    assert_eq!(response(&not_found.outcome)?["statusCode"], 404);
    fixture.cluster.shutdown().await;
    Ok(())
}
