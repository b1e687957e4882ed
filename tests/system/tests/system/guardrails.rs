//! The guardrails end to end: the hostile corpus through SQS under a strict policy, oversized input over
//! every transport, a malformed AppRole secret, dry runs and verified duplicates, against the real local
//! world. Every hostile request must end in exactly one `RequestRejected` naming its field and rule, a
//! dead-letter copy with the reason, and nothing created.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use futures::StreamExt;
use lambda_runtime_emulator::{LambdaProcess, Outcome, RuntimeEmulator};
use serde_json::{Value, json};
use spark_gateway::{GatewayError, Submitted};
use spark_gateway_core::Policy;
use spark_gateway_events::{
    CompletionEvent, JobRequest, MessageOrigin, RejectionReason, decode_completion_event,
    rejection_bounds, truncate_chars,
};
use spark_gateway_handlers::sinks::attributes;
use spark_gateway_harness::kafka::{Record, TopicReader, create_topic};
use spark_gateway_harness::unique_name;
use tokio::sync::watch;

#[path = "../../../hostile-requests/corpus.rs"]
mod corpus;

use super::fixture::{Fixture, NAMESPACE, seed_request, with_scenario};
use spark_gateway_harness::aws::queue_is_empty;

use super::functions::{Channels, handlers, spawn_sqs_consumer, sqs_client, sqs_event};

/// One message read back from an SQS dead-letter queue.
struct DeadLetter {
    body: String,
    attributes: HashMap<String, String>,
}

impl DeadLetter {
    /// The SQS message id of the original, from the origin attribute (`sqs/<queue>/<message id>`).
    fn original_message_id(&self) -> Option<&str> {
        self.attributes
            .get(attributes::ORIGIN)?
            .rsplit_once('/')
            .map(|(_, id)| id)
    }
}

/// Reads the dead-letter queue until `count` messages arrived (and deletes them).
async fn read_dead_letters(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    count: usize,
    timeout: Duration,
) -> Result<Vec<DeadLetter>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut found = Vec::new();
    while found.len() < count {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "{} of {count} dead letters arrived",
            found.len()
        );
        let received = sqs
            .receive_message()
            .queue_url(url)
            .message_attribute_names("All")
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await?;
        for message in received.messages.unwrap_or_default() {
            let attributes = message
                .message_attributes
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(k, v)| v.string_value.map(|s| (k, s)))
                .collect();
            if let Some(handle) = &message.receipt_handle {
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(handle)
                    .send()
                    .await?;
            }
            found.push(DeadLetter {
                body: message.body.unwrap_or_default(),
                attributes,
            });
        }
    }
    Ok(found)
}

fn completion_events(records: &[Record]) -> Vec<CompletionEvent> {
    records
        .iter()
        .filter_map(|r| decode_completion_event(r.value.as_bytes()).ok())
        .collect()
}

fn reason_code(reason: RejectionReason) -> String {
    serde_json::to_value(reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn sqs_message_id(origin: &MessageOrigin) -> Option<&str> {
    match origin {
        MessageOrigin::Sqs { message_id, .. } => Some(message_id),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hostile_corpus_is_refused_over_sqs_and_the_legitimate_requests_are_applied()
-> Result<()> {
    let corpus = corpus::Corpus::load();
    let mut fixture = Fixture::start().await?;
    fixture.policy = serde_json::from_value::<Policy>(corpus.policy.clone())?;
    let sqs = sqs_client(&fixture).await?;
    let channels = Channels::create(&fixture, &sqs).await?;
    let handlers = std::sync::Arc::new(handlers(&fixture, &channels).await?);
    let (stop, consumer) = spawn_sqs_consumer(
        std::sync::Arc::clone(&handlers),
        sqs.clone(),
        channels.queue.url.clone(),
    );

    // Every case as its own message; the SQS message id identifies it on every channel.
    let run = unique_name("corpus");
    let sent: Vec<(usize, String, String)> = futures::stream::iter(corpus.cases.iter().enumerate())
        .map(|(i, case)| {
            let sqs = sqs.clone();
            let url = channels.queue.url.clone();
            let request_id = format!("{run}-{i}");
            let body = case.message(&corpus, &request_id, &format!("h-{i}"));
            async move {
                let sent = sqs
                    .send_message()
                    .queue_url(url)
                    .message_body(body)
                    .send()
                    .await
                    .with_context(|| format!("sending case {i}"))?;
                anyhow::Ok((i, sent.message_id.unwrap_or_default(), request_id))
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let by_message: HashMap<&str, usize> = sent.iter().map(|(i, m, _)| (m.as_str(), *i)).collect();
    let by_request: HashMap<&str, usize> = sent.iter().map(|(i, _, r)| (r.as_str(), *i)).collect();
    let hostile: BTreeSet<usize> = (0..corpus.cases.len())
        .filter(|i| !corpus.cases[*i].is_legitimate())
        .collect();
    let legitimate: BTreeSet<usize> = (0..corpus.cases.len())
        .filter(|i| corpus.cases[*i].is_legitimate())
        .collect();

    // The completion topic: one rejection per hostile case (found by its SQS message id), one
    // RequestApplied per legitimate one (found by its request id).
    let reader = TopicReader::new(fixture.world.kafka_bootstrap()?, &channels.events_topic)?;
    let records = reader
        .read_until(Duration::from_secs(120), |records| {
            let events = completion_events(records);
            let rejected: BTreeSet<usize> = events
                .iter()
                .filter_map(|e| match e {
                    CompletionEvent::Rejected(e) => {
                        sqs_message_id(&e.data.origin).and_then(|m| by_message.get(m).copied())
                    }
                    _ => None,
                })
                .collect();
            let applied: BTreeSet<usize> = events
                .iter()
                .filter_map(|e| match e {
                    CompletionEvent::Applied(e) => {
                        by_request.get(e.data.request_id.as_str()).copied()
                    }
                    _ => None,
                })
                .collect();
            rejected.len() + applied.len() >= corpus.cases.len()
        })
        .await?;
    for record in &records {
        ensure!(
            record.value.len() < 64 * 1024,
            "an event of {} bytes: rejections must stay small",
            record.value.len()
        );
    }
    let mut outcomes: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for event in completion_events(&records) {
        match &event {
            CompletionEvent::Rejected(e) => {
                let i = sqs_message_id(&e.data.origin)
                    .and_then(|m| by_message.get(m).copied())
                    .context("a rejection of a message this test did not send")?;
                let case = &corpus.cases[i];
                let expect = &case.expect;
                ensure!(
                    !case.is_legitimate(),
                    "legitimate case {i} {:?} rejected: {:?}",
                    case.name,
                    e.data
                );
                ensure!(
                    Some(reason_code(e.data.reason)) == expect.reason,
                    "case {i} [{}] {:?}: reason {:?}, expected {:?}",
                    case.class,
                    case.name,
                    e.data.reason,
                    expect.reason
                );
                let field = truncate_chars(
                    expect.field.as_deref().unwrap_or_default(),
                    rejection_bounds::VIOLATION_FIELD_CHARS,
                );
                let rule = expect.rule.as_deref().unwrap_or_default();
                ensure!(
                    e.data
                        .violations
                        .iter()
                        .any(|v| v.field == field && v.rule == rule),
                    "case {i} {:?}: no {field} / {rule} among {:?}",
                    case.name,
                    e.data.violations
                );
                outcomes.entry(i).or_default().insert(e.id.clone());
            }
            CompletionEvent::Applied(e) => {
                let Some(&i) = by_request.get(e.data.request_id.as_str()) else {
                    continue;
                };
                let case = &corpus.cases[i];
                ensure!(
                    case.is_legitimate(),
                    "hostile case {i} {:?} applied",
                    case.name
                );
                let result = serde_json::to_value(e.data.result)?;
                ensure!(
                    result.as_str() == case.expect.result.as_deref(),
                    "case {i} {:?}: {result}",
                    case.name
                );
                outcomes.entry(i).or_default().insert(e.id.clone());
            }
            CompletionEvent::StateChanged(_) => {}
        }
    }
    for (i, ids) in &outcomes {
        ensure!(
            ids.len() == 1,
            "case {i} ended in {} distinct events: {ids:?}",
            ids.len()
        );
    }
    ensure!(
        outcomes.len() == corpus.cases.len(),
        "{} of {} cases ended",
        outcomes.len(),
        corpus.cases.len()
    );

    // A dead-letter copy of each hostile message, with its reason.
    let dead = read_dead_letters(
        &sqs,
        &channels.queue.dlq_url,
        hostile.len(),
        Duration::from_secs(60),
    )
    .await?;
    let mut copied = BTreeSet::new();
    for letter in &dead {
        let i = letter
            .original_message_id()
            .and_then(|m| by_message.get(m).copied())
            .context("a dead letter of a message this test did not send")?;
        let case = &corpus.cases[i];
        ensure!(
            letter.attributes.get(attributes::REASON) == case.expect.reason.as_ref(),
            "case {i} {:?}: dead letter reason {:?}",
            case.name,
            letter.attributes.get(attributes::REASON)
        );
        ensure!(!letter.body.is_empty(), "case {i}: empty dead-letter body");
        copied.insert(i);
    }
    ensure!(
        copied == hostile,
        "dead letters for {copied:?}, expected {hostile:?}"
    );

    // Nothing hostile was created; every legitimate request that was not a dry run was.
    let names: BTreeSet<String> = fixture
        .apps()
        .await?
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter_map(|a| a.metadata.name)
        .collect();
    let expected: BTreeSet<String> = legitimate
        .iter()
        .filter(|i| corpus.cases[**i].expect.result.as_deref() == Some("created"))
        .map(|i| format!("h-{i}"))
        .collect();
    ensure!(
        names == expected,
        "applications {names:?}, expected {expected:?}"
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !queue_is_empty(&sqs, &channels.queue.url).await? {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "messages left on the request queue"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop.send(true);
    consumer.await??;
    eprintln!(
        "{} hostile requests refused with their field and rule, {} legitimate applied",
        hostile.len(),
        legitimate.len()
    );
    fixture.cluster.shutdown().await;
    Ok(())
}

/// The three oversized requests of the acceptance: a 2 MiB message, 10,000 `spark_conf` keys, a 1 MB key.
fn oversized(run: &str) -> Vec<(&'static str, String)> {
    let mut many = serde_json::Map::new();
    for i in 0..10_000 {
        many.insert(format!("spark.sql.k{i}"), json!("1"));
    }
    let submit = |extra: Value, id: &str| {
        let mut request = serde_json::to_value(JobRequest::Submit(Box::new(
            seed_request().expect("seed request"),
        )))
        .expect("serializes");
        let object = request.as_object_mut().expect("object");
        object.insert("request_id".into(), json!(id));
        object.insert("application_name".into(), json!(id));
        for (k, v) in extra.as_object().expect("object") {
            object.insert(k.clone(), v.clone());
        }
        request.to_string()
    };
    vec![
        (
            "two_mib",
            submit(
                json!({"submitted_by": "x".repeat(2 << 20)}),
                &format!("{run}-a"),
            ),
        ),
        (
            "ten_thousand_keys",
            submit(json!({"spark_conf": many}), &format!("{run}-b")),
        ),
        (
            "one_mb_key",
            submit(json!({"k".repeat(1_000_000): 1}), &format!("{run}-c")),
        ),
    ]
}

fn is_bounded_rejection(event: &CompletionEvent) -> bool {
    matches!(event, CompletionEvent::Rejected(e)
        if e.data.violations.iter().any(|v| v.rule == "max_message_bytes" || v.rule == "max_entries"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_end_in_one_bounded_rejection_over_sqs_kafka_and_the_lambda_binary()
-> Result<()> {
    let fixture = Fixture::start().await?;
    let sqs = sqs_client(&fixture).await?;
    let channels = Channels::create(&fixture, &sqs).await?;
    let bootstrap = fixture.world.kafka_bootstrap()?.to_string();
    let run = unique_name("big");
    let messages = oversized(&run);

    // SQS, through the consumer. SQS itself refuses the 2 MiB message (its limit is 1 MiB): the
    // producer learns at once, and nothing reaches the gateway.
    let handlers = std::sync::Arc::new(handlers(&fixture, &channels).await?);
    let (stop, consumer) = spawn_sqs_consumer(
        std::sync::Arc::clone(&handlers),
        sqs.clone(),
        channels.queue.url.clone(),
    );
    let mut sent_over_sqs = 0;
    for (name, body) in &messages {
        let sent = sqs
            .send_message()
            .queue_url(&channels.queue.url)
            .message_body(body)
            .send()
            .await;
        match (*name, sent) {
            ("two_mib", Err(_)) => {}
            ("two_mib", Ok(_)) => bail!("SQS accepted a 2 MiB message"),
            (_, sent) => {
                sent.with_context(|| format!("sending {name}"))?;
                sent_over_sqs += 1;
            }
        }
    }
    let dead = read_dead_letters(
        &sqs,
        &channels.queue.dlq_url,
        sent_over_sqs,
        Duration::from_secs(60),
    )
    .await?;
    for letter in &dead {
        ensure!(
            letter.attributes.contains_key(attributes::REASON),
            "dead letter without a reason"
        );
        ensure!(
            letter.body.len() <= 240 * 1024,
            "dead letter of {} bytes",
            letter.body.len()
        );
    }
    ensure!(
        dead.iter().any(|d| d
            .attributes
            .get(attributes::ORIGINAL_BYTES)
            .is_some_and(|n| n.parse::<usize>().unwrap_or(0) > 1_000_000)),
        "the 1 MB-key copy should say how long the original was"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !queue_is_empty(&sqs, &channels.queue.url).await? {
        ensure!(
            tokio::time::Instant::now() < deadline,
            "an oversized message is looping on the queue"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop.send(true);
    ensure!(
        consumer.await?? == sent_over_sqs as u64,
        "each message must be final once"
    );

    // Kafka, through the consumer: all three, the 2 MiB one included.
    let producer = spark_gateway_harness::kafka::producer(&bootstrap)?;
    for (name, body) in &messages {
        spark_gateway_harness::kafka::produce(&producer, &channels.request_topic, name, body)
            .await
            .with_context(|| format!("producing {name}"))?;
    }
    let kafka_consumer = spark_gateway_consumer::kafka::consumer(
        &fixture.world.kafka()?,
        &unique_name("it-group"),
        &channels.request_topic,
        None,
    )?;
    let (stop, shutdown) = watch::channel(false);
    let dead_topic = TopicReader::new(&bootstrap, &channels.dlq_topic)?;
    let run_consumer = spark_gateway_consumer::kafka::run(
        &kafka_consumer,
        &handlers.processor,
        &handlers.kafka_dead_letter,
        5,
        shutdown,
    );
    let check = async {
        let copies = dead_topic
            .read_until(Duration::from_secs(60), |r| r.len() >= 3)
            .await?;
        let _ = stop.send(true);
        anyhow::Ok(copies)
    };
    let (completed, copies) = tokio::join!(run_consumer, check);
    let copies = copies?;
    ensure!(completed == 3, "{completed} Kafka records completed");
    for copy in &copies {
        ensure!(
            copy.header(attributes::REASON).is_some(),
            "a dead-letter record without its reason"
        );
        ensure!(
            copy.value.len() <= 240 * 1024,
            "a dead-letter record of {} bytes",
            copy.value.len()
        );
    }

    // The Lambda binary: an SQS event and an MSK event with all three.
    let emulator = RuntimeEmulator::start().await?;
    let _process = LambdaProcess::spawn(
        super::lambda::workspace_binary("job-requests")?,
        &emulator,
        fixture.function_env(&channels.events_topic, &channels.queue.dlq_url)?,
    )?;
    let bodies: Vec<(String, u32)> = messages.iter().map(|(_, b)| (b.clone(), 1)).collect();
    let event = serde_json::to_value(sqs_event(&bodies))?;
    let invocation = emulator.invoke(event, Duration::from_secs(60)).await?;
    let Outcome::Response { response } = &invocation.outcome else {
        bail!("{}", invocation.outcome.describe())
    };
    ensure!(response == &json!({"batchItemFailures": []}), "{response}");
    let encode = |text: &str| base64::engine::general_purpose::STANDARD.encode(text);
    let records: Vec<Value> = messages
        .iter()
        .enumerate()
        .map(|(i, (name, body))| {
            json!({"topic": "spark-gateway.requests", "partition": 0, "offset": i, "timestamp": 1732350000000_i64,
                   "timestampType": "CREATE_TIME", "key": encode(name), "value": encode(body), "headers": []})
        })
        .collect();
    let kafka = json!({"eventSource": "aws:kafka", "eventSourceArn": "arn:aws:kafka:us-east-1:000000000000:cluster/local/1",
                       "bootstrapServers": bootstrap, "records": {"spark-gateway.requests-0": records}});
    let invocation = emulator.invoke(kafka, Duration::from_secs(60)).await?;
    let Outcome::Response { response } = &invocation.outcome else {
        bail!("{}", invocation.outcome.describe())
    };
    ensure!(response == &json!({"processed": 3}), "{response}");

    // Every bounded rejection reached the completion topic: 2 over SQS, 3 over Kafka, 3 + 3 from Lambda.
    let reader = TopicReader::new(&bootstrap, &channels.events_topic)?;
    let records = reader
        .read_until(Duration::from_secs(60), |r| {
            completion_events(r)
                .iter()
                .filter(|e| is_bounded_rejection(e))
                .count()
                >= 11
        })
        .await?;
    for record in &records {
        ensure!(
            record.value.len() < 64 * 1024,
            "an event of {} bytes",
            record.value.len()
        );
    }
    fixture.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_approle_secret_never_shows_its_value() -> Result<()> {
    let fixture = Fixture::start().await?;
    let aws = spark_gateway_harness::aws::localstack_config(&fixture.world).await?;
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let marker = format!("s3cr3t-{}", unique_name("approle"));
    let malformed = [
        ("not-json", format!("role_id=r secret_id={marker}")),
        ("a-string", format!("\"{marker}\"")),
        (
            "wrong-types",
            format!(r#"{{"role_id": "{marker}", "secret_id": ["{marker}"]}}"#),
        ),
    ];
    for (shape, value) in &malformed {
        let name = unique_name(&format!("it-approle-{shape}"));
        secrets
            .create_secret()
            .name(&name)
            .secret_string(value)
            .send()
            .await?;
        let events_topic = create_topic(fixture.world.kafka_bootstrap()?, "it-events", 1).await?;
        let queue = spark_gateway_harness::aws::TestQueue::create(&sqs, "it-approle", 5).await?;
        let mut env = fixture.function_env(&events_topic, &queue.dlq_url)?;
        for (key, value) in env.iter_mut() {
            if key == "SPARK_GATEWAY_APPROLE_SECRET_ID" {
                *value = name.clone();
            }
        }
        // One delivery is the last: the request ends in its retries_exhausted rejection at once.
        env.push(("SPARK_GATEWAY_MAX_DELIVERIES".into(), "1".into()));
        env.push(("RUST_LOG".into(), "debug".into()));
        let emulator = RuntimeEmulator::start().await?;
        let process = LambdaProcess::spawn(
            super::lambda::workspace_binary("job-requests")?,
            &emulator,
            env.clone(),
        )?;
        let request = with_scenario(seed_request()?, "stuck");
        let submit = serde_json::to_string(&JobRequest::Submit(Box::new(request.clone())))?;
        let event = serde_json::to_value(sqs_event(&[(submit, 1)]))?;
        let invocation = emulator.invoke(event, Duration::from_secs(30)).await?;
        let mut seen = vec![invocation.outcome.describe()];

        let status_emulator = RuntimeEmulator::start().await?;
        let status_process = LambdaProcess::spawn(
            super::lambda::workspace_binary("job-status")?,
            &status_emulator,
            env,
        )?;
        let status = status_emulator
            .invoke(
                json!({"application_name": request.application_name, "namespace": NAMESPACE}),
                Duration::from_secs(30),
            )
            .await?;
        seen.push(status.outcome.describe());

        let records = TopicReader::new(fixture.world.kafka_bootstrap()?, &events_topic)?
            .read_until(Duration::from_secs(30), |r| !r.is_empty())
            .await?;
        let events = completion_events(&records);
        let CompletionEvent::Rejected(rejected) = &events[0] else {
            bail!("{shape}: expected a rejection, got {events:?}")
        };
        ensure!(
            rejected.data.reason == RejectionReason::RetriesExhausted,
            "{shape}: {:?}",
            rejected.data
        );
        ensure!(
            rejected
                .data
                .message
                .contains("could not read its Vault credentials"),
            "{shape}: {}",
            rejected.data.message
        );
        seen.extend(records.iter().map(|r| r.value.clone()));
        for letter in read_dead_letters(&sqs, &queue.dlq_url, 1, Duration::from_secs(30)).await? {
            seen.push(letter.body);
            seen.extend(letter.attributes.into_values());
        }
        seen.push(process.stdout());
        seen.push(process.stderr());
        seen.push(status_process.stdout());
        seen.push(status_process.stderr());
        ensure!(
            seen.iter().any(|text| text.contains("malformed")),
            "{shape}: the logs should say the credentials are malformed"
        );
        for text in &seen {
            ensure!(
                !text.contains(&marker),
                "{shape}: the secret's value appeared in: {text}"
            );
        }
    }
    fixture.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_is_checked_by_the_cluster_and_creates_nothing() -> Result<()> {
    let fixture = Fixture::start().await?;
    let gateway = fixture.gateway().await?;
    let mut request = with_scenario(seed_request()?, "stuck");
    request.dry_run = true;
    assert_eq!(gateway.submit(&request).await?, Submitted::Validated);
    let stats = fixture.cluster.control().stats();
    ensure!(
        stats.requests.get("create").copied().unwrap_or(0) >= 1,
        "the dry run must reach the API server: {stats:?}"
    );
    ensure!(
        fixture
            .apps()
            .await?
            .get_opt(&request.application_name)
            .await?
            .is_none(),
        "a dry run created it"
    );
    // The policy still refuses before the cluster sees anything.
    let mut hostile = request.clone();
    hostile.spark_conf.insert(
        "spark.kubernetes.file.upload.path".into(),
        "s3a://loot/".into(),
    );
    let Err(GatewayError::Rejected { violations, .. }) = gateway.submit(&hostile).await else {
        bail!("a hostile dry run passed")
    };
    ensure!(
        violations[0].rule == "forbidden_spark_conf",
        "{violations:?}"
    );
    fixture.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_is_a_duplicate_only_when_its_spec_is_the_same() -> Result<()> {
    let fixture = Fixture::start().await?;
    let gateway = fixture.gateway().await?;
    let request = with_scenario(seed_request()?, "stuck");
    let Submitted::Created { uid } = gateway.submit(&request).await? else {
        bail!("not created")
    };
    assert_eq!(
        gateway.submit(&request).await?,
        Submitted::Duplicate { uid }
    );
    let mut changed = request.clone();
    changed.executor.as_mut().context("executor")?.memory = Some("1g".into());
    match gateway.submit(&changed).await {
        Err(GatewayError::Rejected {
            reason, message, ..
        }) => {
            assert_eq!(reason, RejectionReason::Conflict);
            assert!(message.contains("different spec"), "{message}");
        }
        other => bail!("a reused request id with another spec passed: {other:?}"),
    }
    fixture.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_attributes_survive_hostile_text() -> Result<()> {
    // A rejection quoting control characters from the request still reaches the SQS DLQ: SQS refuses
    // such characters in attributes, and the body (SQS-valid text, with JSON escapes) decodes to a key
    // that holds them, which the rejection message quotes; the copy must not fail on every delivery.
    let fixture = Fixture::start().await?;
    let sqs = sqs_client(&fixture).await?;
    let channels = Channels::create(&fixture, &sqs).await?;
    let handlers = handlers(&fixture, &channels).await?;
    let body = r#"{"action":"submit","\u0001evil\u0007":1}"#;
    let event = sqs_event(&[(body.to_string(), 1)]);
    let response = spark_gateway_lambda::requests::handle_sqs_event(
        &handlers.processor,
        &event,
        &handlers.sqs_dead_letter,
        1,
    )
    .await;
    ensure!(response.batch_item_failures.is_empty(), "{response:?}");
    let dead = read_dead_letters(&sqs, &channels.queue.dlq_url, 1, Duration::from_secs(30)).await?;
    ensure!(
        dead[0]
            .attributes
            .get(attributes::REASON)
            .map(String::as_str)
            == Some("invalid_request")
    );
    fixture.cluster.shutdown().await;
    Ok(())
}
