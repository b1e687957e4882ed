//! The request handlers end to end: real SQS (LocalStack) and Kafka (Tansu) in, a private cluster
//! (emulator + simulator) behind OpenBao-issued tokens, rejections on a real completion topic and
//! copies on real dead-letter channels.

use std::time::Duration;

use anyhow::{Context, Result};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use kube_emulator::ErrorRule;
use serde_json::json;
use spark_gateway_consumer::sqs::SqsSource;
use spark_gateway_consumer::{kafka as kafka_consumer, sqs as sqs_consumer};
use spark_gateway_events::{
    AppliedResult, CompletionEvent, JobRequest, RejectionReason, RequestAction, SubmitJobRequest,
    decode_completion_event,
};
use spark_gateway_handlers::live::{HandlerConfig, LiveHandlers};
use spark_gateway_harness::aws::{TestQueue, localstack_config, queue_is_empty};
use spark_gateway_harness::kafka::{Record, TopicReader, create_topic, produce, producer};
use spark_gateway_harness::unique_name;
use spark_gateway_lambda::requests::handle_sqs_event;
use tokio::sync::watch;

use super::fixture::{Fixture, seed_request, with_scenario};

/// Unique channels for one test.
pub(super) struct Channels {
    pub queue: TestQueue,
    pub request_topic: String,
    pub events_topic: String,
    pub dlq_topic: String,
}

impl Channels {
    pub async fn create(fixture: &Fixture, sqs: &aws_sdk_sqs::Client) -> Result<Self> {
        let bootstrap = fixture.world.kafka_bootstrap()?;
        Ok(Self {
            queue: TestQueue::create(sqs, "it-requests", 5).await?,
            request_topic: create_topic(bootstrap, "it-requests", 2).await?,
            events_topic: create_topic(bootstrap, "it-events", 1).await?,
            dlq_topic: create_topic(bootstrap, "it-requests-dlq", 1).await?,
        })
    }
}

pub(super) async fn sqs_client(fixture: &Fixture) -> Result<aws_sdk_sqs::Client> {
    Ok(aws_sdk_sqs::Client::new(
        &localstack_config(&fixture.world).await?,
    ))
}

pub(super) fn handler_config(fixture: &Fixture, channels: &Channels) -> Result<HandlerConfig> {
    Ok(HandlerConfig {
        gateway: fixture.gateway_config()?,
        kafka: fixture.world.kafka()?,
        kafka_sasl_secret_id: None,
        events_topic: channels.events_topic.clone(),
        dlq_url: Some(channels.queue.dlq_url.clone()),
        dlq_topic: channels.dlq_topic.clone(),
        max_deliveries: 5,
        max_concurrency: 4,
        max_message_bytes: spark_gateway_events::DEFAULT_MAX_MESSAGE_BYTES,
        replay_ledger: None,
        records: None,
    })
}

pub(super) async fn handlers(fixture: &Fixture, channels: &Channels) -> Result<LiveHandlers> {
    Ok(LiveHandlers::with_aws(
        handler_config(fixture, channels)?,
        &localstack_config(&fixture.world).await?,
    )?)
}

fn submit_message(request: &SubmitJobRequest) -> String {
    serde_json::to_string(&JobRequest::Submit(Box::new(request.clone())))
        .expect("requests serialize")
}

fn delete_message(request: &SubmitJobRequest) -> String {
    json!({"action": "delete", "request_id": unique_name("del"), "application_name": request.application_name,
           "namespace": request.namespace})
    .to_string()
}

/// Runs the SQS consumer loop in the background until the returned sender is told to stop.
pub(super) fn spawn_sqs_consumer(
    handlers: std::sync::Arc<LiveHandlers>,
    client: aws_sdk_sqs::Client,
    queue_url: String,
) -> (watch::Sender<bool>, tokio::task::JoinHandle<Result<u64>>) {
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(async move {
        let source = SqsSource {
            queue: spark_gateway_handlers::sqs::SqsQueue::new(client, queue_url),
            wait_seconds: 1,
            visibility_timeout: Duration::from_secs(30),
            max_concurrency: 4,
        };
        Ok(sqs_consumer::run(
            &source,
            &handlers.processor,
            &handlers.sqs_dead_letter,
            shutdown,
        )
        .await?)
    });
    (stop, task)
}

fn rejections(records: &[Record]) -> Vec<(Option<String>, RejectionReason)> {
    records
        .iter()
        .filter_map(
            |r| match decode_completion_event(r.value.as_bytes()).ok()? {
                CompletionEvent::Rejected(event) => {
                    Some((event.data.request_id, event.data.reason))
                }
                CompletionEvent::StateChanged(_) | CompletionEvent::Applied(_) => None,
            },
        )
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_on_sqs_becomes_an_application_and_the_message_is_deleted() -> Result<()> {
    let fixture = Fixture::start().await?;
    let sqs = sqs_client(&fixture).await?;
    let channels = Channels::create(&fixture, &sqs).await?;
    let handlers = std::sync::Arc::new(handlers(&fixture, &channels).await?);
    let (stop, consumer) = spawn_sqs_consumer(handlers, sqs.clone(), channels.queue.url.clone());

    let request = with_scenario(seed_request()?, "stuck");
    sqs.send_message()
        .queue_url(&channels.queue.url)
        .message_body(submit_message(&request))
        .send()
        .await?;
    fixture
        .wait_for_app(&request.application_name, true)
        .await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !queue_is_empty(&sqs, &channels.queue.url).await? {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the message was not deleted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop.send(true);
    assert_eq!(consumer.await??, 1);
    assert!(
        queue_is_empty(&sqs, &channels.queue.dlq_url).await?,
        "nothing may be dead-lettered"
    );
    fixture.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_on_the_kafka_topic_becomes_an_application() -> Result<()> {
    let fixture = Fixture::start().await?;
    let sqs = sqs_client(&fixture).await?;
    let channels = Channels::create(&fixture, &sqs).await?;
    let handlers = handlers(&fixture, &channels).await?;
    let bootstrap = fixture.world.kafka_bootstrap()?;
    let consumer = kafka_consumer::consumer(
        &fixture.world.kafka()?,
        &unique_name("it-group"),
        &channels.request_topic,
        None,
    )?;

    let request = with_scenario(seed_request()?, "stuck");
    let key = format!("{}/{}", request.namespace, request.application_name);
    produce(
        &producer(bootstrap)?,
        &channels.request_topic,
        &key,
        &submit_message(&request),
    )
    .await?;
    let (stop, shutdown) = watch::channel(false);
    let run = kafka_consumer::run(
        &consumer,
        &handlers.processor,
        &handlers.kafka_dead_letter,
        5,
        shutdown,
    );
    let wait = async {
        fixture
            .wait_for_app(&request.application_name, true)
            .await?;
        let _ = stop.send(true);
        anyhow::Ok(())
    };
    let (completed, waited) = tokio::join!(run, wait);
    waited?;
    assert_eq!(completed, 1);
    fixture.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_dead_lettered_with_their_reason_and_rejected_on_the_completion_topic()
-> Result<()> {
    let fixture = Fixture::start().await?;
    let sqs = sqs_client(&fixture).await?;
    let channels = Channels::create(&fixture, &sqs).await?;
    let handlers = std::sync::Arc::new(handlers(&fixture, &channels).await?);
    let (stop, consumer) = spawn_sqs_consumer(
        std::sync::Arc::clone(&handlers),
        sqs.clone(),
        channels.queue.url.clone(),
    );

    let unknown_field = {
        let mut message: serde_json::Value =
            serde_json::from_str(&submit_message(&seed_request()?))?;
        message["driver"]["gpus"] = json!("1");
        message
    };
    let mut forbidden = seed_request()?;
    forbidden.spark_conf.insert(
        "spark.kubernetes.driver.podTemplateFile".into(),
        "/etc/evil.yaml".into(),
    );
    let poison = [
        (
            "{\"action\": \"submit\", broken".to_string(),
            RejectionReason::MalformedMessage,
        ),
        (unknown_field.to_string(), RejectionReason::InvalidRequest),
        (submit_message(&forbidden), RejectionReason::PolicyViolation),
    ];
    for (body, _) in &poison {
        sqs.send_message()
            .queue_url(&channels.queue.url)
            .message_body(body)
            .send()
            .await?;
    }

    // Each poison message arrives on the dead-letter queue, body unchanged, reason attached.
    let mut dead = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while dead.len() < poison.len() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "only {} dead letters: {dead:?}",
            dead.len()
        );
        let received = sqs
            .receive_message()
            .queue_url(&channels.queue.dlq_url)
            .message_attribute_names("All")
            .max_number_of_messages(10)
            .wait_time_seconds(2)
            .send()
            .await?;
        for message in received.messages.unwrap_or_default() {
            let attribute = |name: &str| {
                message
                    .message_attributes
                    .as_ref()
                    .and_then(|a| a.get(name))
                    .and_then(|v| v.string_value.clone())
            };
            dead.push((
                message.body.clone().unwrap_or_default(),
                attribute("spark-gateway-rejection-reason"),
                attribute("spark-gateway-rejection-message"),
            ));
        }
    }
    for (body, reason) in &poison {
        let code = serde_json::to_value(reason)?
            .as_str()
            .context("reason code")?
            .to_string();
        let found = dead
            .iter()
            .find(|(b, _, _)| b == body)
            .with_context(|| format!("{body} not dead-lettered"))?;
        assert_eq!(found.1.as_deref(), Some(code.as_str()), "{body}");
        assert!(found.2.as_deref().is_some_and(|m| !m.is_empty()));
    }
    let unknown_body = unknown_field.to_string();
    let unknown = dead
        .iter()
        .find(|(b, _, _)| *b == unknown_body)
        .context("unknown-field message")?;
    assert!(
        unknown
            .2
            .as_deref()
            .unwrap_or_default()
            .contains("driver.gpus"),
        "{unknown:?}"
    );

    // And each has its terminal RequestRejected event.
    let reader = TopicReader::new(fixture.world.kafka_bootstrap()?, &channels.events_topic)?;
    let records = reader
        .read_until(Duration::from_secs(30), |r| {
            rejections(r).len() >= poison.len()
        })
        .await?;
    let mut reasons: Vec<RejectionReason> = rejections(&records)
        .into_iter()
        .map(|(_, reason)| reason)
        .collect();
    reasons.sort_by_key(|r| format!("{r:?}"));
    let mut expected: Vec<RejectionReason> = poison.iter().map(|(_, r)| *r).collect();
    expected.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(reasons, expected);
    assert!(
        records
            .iter()
            .all(|r| r.header("content-type") == Some("application/cloudevents+json"))
    );

    let _ = stop.send(true);
    consumer.await??;
    assert!(
        fixture
            .apps()
            .await?
            .list(&Default::default())
            .await?
            .items
            .is_empty(),
        "a poison message created something"
    );
    fixture.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_kafka_record_goes_to_the_dead_letter_topic_with_its_reason() -> Result<()> {
    let fixture = Fixture::start().await?;
    let sqs = sqs_client(&fixture).await?;
    let channels = Channels::create(&fixture, &sqs).await?;
    let handlers = handlers(&fixture, &channels).await?;
    let bootstrap = fixture.world.kafka_bootstrap()?;
    let consumer = kafka_consumer::consumer(
        &fixture.world.kafka()?,
        &unique_name("it-group"),
        &channels.request_topic,
        None,
    )?;
    produce(
        &producer(bootstrap)?,
        &channels.request_topic,
        "ns/app",
        "not json at all",
    )
    .await?;

    let (stop, shutdown) = watch::channel(false);
    let run = kafka_consumer::run(
        &consumer,
        &handlers.processor,
        &handlers.kafka_dead_letter,
        5,
        shutdown,
    );
    let check = async {
        let dead = TopicReader::new(bootstrap, &channels.dlq_topic)?
            .read_until(Duration::from_secs(30), |r| !r.is_empty())
            .await?;
        let _ = stop.send(true);
        anyhow::Ok(dead)
    };
    let (_, dead) = tokio::join!(run, check);
    let dead = dead?;
    assert_eq!(dead[0].value, "not json at all");
    assert_eq!(dead[0].key.as_deref(), Some("ns/app"));
    assert_eq!(
        dead[0].header("spark-gateway-rejection-reason"),
        Some("malformed_message")
    );
    let events = TopicReader::new(bootstrap, &channels.events_topic)?
        .read_until(Duration::from_secs(30), |r| !rejections(r).is_empty())
        .await?;
    assert_eq!(rejections(&events)[0].1, RejectionReason::MalformedMessage);
    fixture.cluster.shutdown().await;
    Ok(())
}

pub(super) fn sqs_event(bodies: &[(String, u32)]) -> SqsEvent {
    let mut event = SqsEvent::default();
    for (i, (body, receives)) in bodies.iter().enumerate() {
        let mut message = SqsMessage::default();
        message.message_id = Some(format!("m-{i}"));
        message.body = Some(body.clone());
        message.event_source = Some("aws:sqs".into());
        message.event_source_arn =
            Some("arn:aws:sqs:us-east-1:000000000000:spark-gateway-requests".into());
        message
            .attributes
            .insert("ApproximateReceiveCount".into(), receives.to_string());
        event.records.push(message);
    }
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_then_delete_in_one_batch_applies_in_that_order() -> Result<()> {
    let fixture = Fixture::start().await?;
    let sqs = sqs_client(&fixture).await?;
    let channels = Channels::create(&fixture, &sqs).await?;
    let handlers = handlers(&fixture, &channels).await?;
    let request = with_scenario(seed_request()?, "stuck");
    let event = sqs_event(&[(submit_message(&request), 1), (delete_message(&request), 1)]);
    let response =
        handle_sqs_event(&handlers.processor, &event, &handlers.sqs_dead_letter, 4).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    // Delete before submit would have left the application running; in order, it is gone.
    fixture
        .wait_for_app(&request.application_name, false)
        .await?;
    let stats = fixture.cluster.control().stats();
    assert!(
        stats.requests.get("create").copied().unwrap_or(0) >= 1,
        "{stats:?}"
    );
    // Each request announced what it did, in order: the submit created, the delete deleted (the
    // delete's terminal event).
    let reader = TopicReader::new(fixture.world.kafka_bootstrap()?, &channels.events_topic)?;
    let records = reader
        .read_until(Duration::from_secs(30), |r| applied(r).len() >= 2)
        .await?;
    let results: Vec<(RequestAction, AppliedResult, bool)> = records
        .iter()
        .filter_map(
            |r| match decode_completion_event(r.value.as_bytes()).ok()? {
                CompletionEvent::Applied(event) => {
                    let terminal = CompletionEvent::Applied(event.clone()).is_terminal();
                    Some((event.data.action, event.data.result, terminal))
                }
                _ => None,
            },
        )
        .collect();
    assert_eq!(
        results,
        [
            (RequestAction::Submit, AppliedResult::Created, false),
            (RequestAction::Delete, AppliedResult::Deleted, true)
        ]
    );
    fixture.cluster.shutdown().await;
    Ok(())
}

fn applied(records: &[Record]) -> Vec<String> {
    records
        .iter()
        .filter_map(
            |r| match decode_completion_event(r.value.as_bytes()).ok()? {
                CompletionEvent::Applied(event) => Some(event.id),
                _ => None,
            },
        )
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_errors_become_batch_item_failures_and_succeed_on_redelivery() -> Result<()> {
    let fixture = Fixture::start().await?;
    let sqs = sqs_client(&fixture).await?;
    let channels = Channels::create(&fixture, &sqs).await?;
    let handlers = handlers(&fixture, &channels).await?;
    let first = with_scenario(seed_request()?, "stuck");
    let second = with_scenario(seed_request()?, "stuck");
    for code in [500, 429] {
        fixture
            .cluster
            .control()
            .inject_errors(ErrorRule::next("create", code, 2));
        let event = sqs_event(&[(submit_message(&first), 1), (submit_message(&second), 1)]);
        let response =
            handle_sqs_event(&handlers.processor, &event, &handlers.sqs_dead_letter, 1).await;
        let mut failed: Vec<&str> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        failed.sort();
        assert_eq!(failed, ["m-0", "m-1"], "{code}");
        fixture.cluster.control().clear_faults();
    }
    // Redelivery: both succeed, and each application exists exactly once.
    let event = sqs_event(&[
        (submit_message(&first), 2),
        (submit_message(&second), 2),
        (submit_message(&first), 3),
    ]);
    let response =
        handle_sqs_event(&handlers.processor, &event, &handlers.sqs_dead_letter, 4).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let apps = fixture.apps().await?.list(&Default::default()).await?;
    let mut names: Vec<String> = apps
        .items
        .iter()
        .filter_map(|a| a.metadata.name.clone())
        .collect();
    names.sort();
    let mut expected = vec![
        first.application_name.clone(),
        second.application_name.clone(),
    ];
    expected.sort();
    assert_eq!(names, expected);
    assert!(queue_is_empty(&sqs, &channels.queue.dlq_url).await?);
    fixture.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_event_cannot_be_published_is_not_acknowledged() -> Result<()> {
    let fixture = Fixture::start().await?;
    let sqs = sqs_client(&fixture).await?;
    let channels = Channels::create(&fixture, &sqs).await?;
    let request = with_scenario(seed_request()?, "stuck");
    let event = sqs_event(&[(submit_message(&request), 1)]);

    // A broker nobody listens on: the create succeeds, its RequestApplied cannot be published.
    let mut config = handler_config(&fixture, &channels)?;
    config.kafka = spark_gateway_kafka::KafkaSettings::plaintext("127.0.0.1:1");
    let handlers =
        LiveHandlers::with_aws(config.clone(), &localstack_config(&fixture.world).await?)?;
    let response =
        handle_sqs_event(&handlers.processor, &event, &handlers.sqs_dead_letter, 4).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["m-0"], "the message must come back");
    fixture
        .wait_for_app(&request.application_name, true)
        .await?;

    // Redelivered with the broker back: a duplicate, announced once, and now acknowledged.
    config.kafka = fixture.world.kafka()?;
    let handlers = LiveHandlers::with_aws(config, &localstack_config(&fixture.world).await?)?;
    let event = sqs_event(&[(submit_message(&request), 2)]);
    let response =
        handle_sqs_event(&handlers.processor, &event, &handlers.sqs_dead_letter, 4).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let records = TopicReader::new(fixture.world.kafka_bootstrap()?, &channels.events_topic)?
        .read_until(Duration::from_secs(30), |r| !applied(r).is_empty())
        .await?;
    assert_eq!(
        applied(&records),
        [format!("applied/{}", request.request_id)]
    );
    fixture.cluster.shutdown().await;
    Ok(())
}
