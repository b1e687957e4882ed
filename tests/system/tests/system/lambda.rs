//! The real Lambda binaries (`job-requests`, `job-status`) run as processes under the Lambda Runtime
//! API emulator, configured only through their environment, against the real local world.

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

pub(super) use spark_gateway_harness::workspace_binary;

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

/// Stores `token` at `path` in OpenBao with the root token (what an operator fixing a deployment does).
pub(super) async fn store_token_at(fixture: &Fixture, path: &str, token: &str) -> Result<()> {
    let root = vaultrs::client::VaultClient::new(
        vaultrs::client::VaultClientSettingsBuilder::default()
            .address(fixture.world.vault_addr()?)
            .token(fixture.world.var("VAULT_TOKEN")?)
            .build()?,
    )?;
    vaultrs::kv2::set(
        &root,
        "secret",
        path,
        &std::collections::HashMap::from([("token", token)]),
    )
    .await?;
    Ok(())
}

/// The fixture's clusters plus `flaky`: the same cluster, reached with a token at `token_path`, which
/// holds nothing until the test stores it: every request for `flaky` fails transiently until then (the
/// gateway cannot read its Vault secret), as when a deployment's secret is missing.
pub(super) fn clusters_with_flaky(fixture: &Fixture, token_path: &str) -> Value {
    let cluster = |token_path: &str| {
        json!({"proxy_url": fixture.cluster.url(), "ca_file": fixture.cluster.ca_file(),
               "token_path": token_path, "policy": fixture.policy})
    };
    json!({"default_cluster": super::fixture::CLUSTER, "clusters": {
        super::fixture::CLUSTER: cluster(&fixture.token_path), "flaky": cluster(token_path)}})
}

/// The request ids of `RequestApplied` events, one entry per record (duplicates kept), with whether the
/// event is its request's terminal one.
pub(super) fn applied_events(
    records: &[spark_gateway_harness::kafka::Record],
) -> Vec<(String, bool)> {
    records
        .iter()
        .filter_map(|r| {
            match spark_gateway_events::decode_completion_event(r.value.as_bytes()).ok()? {
                event @ spark_gateway_events::CompletionEvent::Applied(_) => {
                    let terminal = event.is_terminal();
                    let spark_gateway_events::CompletionEvent::Applied(applied) = event else {
                        unreachable!()
                    };
                    Some((applied.data.request_id, terminal))
                }
                _ => None,
            }
        })
        .collect()
}

/// The acceptance scenario of a replayed Kafka batch: [submit A, delete A, a record failing
/// transiently]. Lambda's Kafka event source retries a batch whose invocation failed, whole; what pins
/// it: the replay must skip the records the first invocation finished (it recorded them in its S3
/// ledger in LocalStack), so A is not created again, and no request's event is published twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_kafka_batch_does_not_recreate_an_application_a_later_record_deleted()
-> Result<()> {
    let fixture = Fixture::start().await?;
    let bootstrap = fixture.world.kafka_bootstrap()?;
    let events_topic = create_topic(bootstrap, "it-events", 1).await?;
    let aws = spark_gateway_harness::aws::localstack_config(&fixture.world).await?;
    let s3 = spark_gateway_records::s3_client(&aws);
    let bucket = unique_name("it-ledger");
    s3.create_bucket().bucket(&bucket).send().await?;
    let flaky_token_path = format!("spark-gateway/tests/{}/token", unique_name("flaky"));
    let mut env: Vec<(String, String)> = fixture
        .function_env(&events_topic, "unused")?
        .into_iter()
        .filter(|(name, _)| name != "SPARK_GATEWAY_CLUSTERS")
        .collect();
    env.extend([
        (
            "SPARK_GATEWAY_CLUSTERS".to_string(),
            clusters_with_flaky(&fixture, &flaky_token_path).to_string(),
        ),
        (
            "SPARK_GATEWAY_REPLAY_LEDGER_BUCKET".to_string(),
            bucket.clone(),
        ),
        (
            "SPARK_GATEWAY_REPLAY_LEDGER_PREFIX".to_string(),
            "kafka/it/".to_string(),
        ),
    ]);
    let emulator = RuntimeEmulator::start().await?;
    let process = LambdaProcess::spawn(workspace_binary("job-requests")?, &emulator, env)?;

    let request = with_scenario(seed_request()?, "stuck");
    let submit = serde_json::to_string(&JobRequest::Submit(Box::new(request.clone())))?;
    let delete_id = unique_name("del");
    let delete = json!({"action": "delete", "request_id": delete_id, "namespace": NAMESPACE,
                        "application_name": request.application_name})
    .to_string();
    let flaky_id = unique_name("flaky-del");
    let flaky = json!({"action": "delete", "request_id": flaky_id, "namespace": NAMESPACE,
                       "cluster": "flaky", "application_name": unique_name("other")})
    .to_string();
    let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let topic = unique_name("it-requests");
    let record = |offset: i64, value: &str| {
        json!({"topic": topic, "partition": 0, "offset": offset, "timestamp": 1732350000000_i64,
               "timestampType": "CREATE_TIME", "key": encode("ns/app"), "value": encode(value), "headers": []})
    };
    let batch = json!({
        "eventSource": "aws:SelfManagedKafka",
        "bootstrapServers": bootstrap,
        "records": {format!("{topic}-0"): [record(40, &submit), record(41, &delete), record(42, &flaky)]},
    });

    let first = emulator.invoke(batch.clone(), TIMEOUT).await?;
    let Outcome::Error(error) = &first.outcome else {
        bail!("the batch must fail: {}", first.outcome.describe())
    };
    assert!(
        error
            .error_message
            .contains("1 of 3 Kafka records must be retried"),
        "{error:?}"
    );
    fixture
        .wait_for_app(&request.application_name, false)
        .await?;
    let ledger = s3
        .get_object()
        .bucket(&bucket)
        .key(format!("kafka/it/{topic}/0"))
        .send()
        .await?;
    let entry: Value = serde_json::from_slice(&ledger.body.collect().await?.into_bytes())?;
    assert_eq!(entry["done_through"], 41, "{entry}");

    // The deployment is fixed; Lambda replays the same batch.
    let creates = || {
        fixture
            .cluster
            .control()
            .stats()
            .requests
            .get("create")
            .copied()
    };
    let creates_before = creates();
    store_token_at(&fixture, &flaky_token_path, &fixture.gateway_token).await?;
    let replay = emulator.invoke(batch, TIMEOUT).await?;
    assert_eq!(response(&replay.outcome)?, &json!({"processed": 3}));

    let apps = fixture.apps().await?;
    assert!(
        apps.get_opt(&request.application_name).await?.is_none(),
        "A came back"
    );
    // The replay's only cluster call is the flaky delete's (nothing to create).
    assert_eq!(
        creates(),
        creates_before,
        "A was created again by the replay"
    );
    // Every request announced exactly once; the deletes' announcements are their terminal events
    // (the submit's terminal event is the watcher's, once A is gone).
    let ids = [request.request_id.to_string(), delete_id, flaky_id];
    let records = spark_gateway_harness::kafka::TopicReader::new(bootstrap, &events_topic)?
        .read_until(Duration::from_secs(30), |r| {
            let seen = applied_events(r);
            ids.iter().all(|id| seen.iter().any(|(s, _)| s == id))
        })
        .await?;
    let mut seen = applied_events(&records);
    seen.sort();
    let mut expected = vec![
        (ids[0].clone(), false),
        (ids[1].clone(), true),
        (ids[2].clone(), true),
    ];
    expected.sort();
    assert_eq!(seen, expected);
    drop(process);
    fixture.cluster.shutdown().await;
    Ok(())
}
