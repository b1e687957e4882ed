//! Callbacks end to end: submits on a real SQS queue name an SQS reply queue and an HTTPS webhook;
//! the gateway admits them against the cluster's allow-list and writes them on the application; the
//! simulator runs the applications; the watcher binary publishes their state changes (targets
//! included) to Tansu; `spark-gateway-consumer --notify-topic` delivers each terminal event to both
//! targets, signed with the cluster's secret from LocalStack's Secrets Manager, through a receiver
//! that answers 500 to the first two tries of some. The `notifier` Lambda binary handles a Kafka
//! event of the same topic under the Lambda runtime emulator.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use lambda_runtime_emulator::{LambdaProcess, Outcome, RuntimeEmulator};
use serde_json::json;
use spark_gateway_core::policy::NotifyPolicy;
use spark_gateway_events::{
    CompletionEvent, JobRequest, NotifyEvents, NotifyTarget, Outcome as JobOutcome,
    RejectionReason, decode_completion_event,
};
use spark_gateway_harness::aws::{TestQueue, drain_queue, localstack_config};
use spark_gateway_harness::kafka::TopicReader;
use spark_gateway_harness::unique_name;
use spark_gateway_harness::webhook::WebhookReceiver;

use super::fixture::{CLUSTER, Fixture, NAMESPACE, default_policy, seed_request, with_scenario};
use super::functions::{Channels, handlers, spawn_sqs_consumer, sqs_client};
use super::lambda::workspace_binary;

const APPLICATIONS: usize = 100;
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Every tenth application's webhook answers 500 twice before it is looked at.
fn flaky(index: usize) -> bool {
    index.is_multiple_of(10)
}

fn index_of_path(path: &str) -> Option<usize> {
    path.strip_prefix("/hooks/app-")?.parse().ok()
}

struct World {
    fixture: Fixture,
    sqs: aws_sdk_sqs::Client,
    channels: Channels,
    replies: TestQueue,
    receiver: WebhookReceiver,
    secret_prefix: String,
}

/// A fixture whose cluster allows the test's reply queues and the receiver, and whose signing
/// secret is in Secrets Manager under a prefix of the test's own.
async fn world() -> Result<World> {
    let receiver = WebhookReceiver::start(
        SECRET,
        Box::new(|path, _| {
            if index_of_path(path).is_some_and(flaky) {
                2
            } else {
                0
            }
        }),
    )
    .await?;
    let mut fixture = Fixture::start().await?;
    let sqs = sqs_client(&fixture).await?;
    let replies = TestQueue::create(&sqs, "replies", 5).await?;
    fixture.policy = default_policy();
    fixture.policy.notify = NotifyPolicy {
        allowed_sqs_queue_urls: vec![replies.url.clone()],
        allowed_webhook_urls: vec![format!("{}hooks/", receiver.base_url())],
        max_targets: 4,
    };
    let channels = Channels::create(&fixture, &sqs).await?;
    let secret_prefix = format!("{}/", unique_name("webhook-signing"));
    aws_sdk_secretsmanager::Client::new(&localstack_config(&fixture.world).await?)
        .create_secret()
        .name(format!("{secret_prefix}{CLUSTER}"))
        .secret_string(SECRET)
        .send()
        .await?;
    Ok(World {
        fixture,
        sqs,
        channels,
        replies,
        receiver,
        secret_prefix,
    })
}

impl World {
    /// The environment of the notifier (consumer or Lambda), as a deployment sets it.
    fn notifier_env(&self) -> Result<Vec<(String, String)>> {
        let mut env = self
            .fixture
            .function_env(&self.channels.events_topic, &self.channels.queue.dlq_url)?;
        env.extend([
            (
                "SPARK_GATEWAY_NOTIFY_DLQ_URL".to_string(),
                self.replies.dlq_url.clone(),
            ),
            (
                "SPARK_GATEWAY_WEBHOOK_SECRET_PREFIX".to_string(),
                self.secret_prefix.clone(),
            ),
            (
                "SPARK_GATEWAY_NOTIFY_CA_FILE".to_string(),
                self.receiver.ca_file().display().to_string(),
            ),
        ]);
        Ok(env)
    }
}

fn terminal_request_ids(bodies: &[Vec<u8>]) -> Result<BTreeMap<String, BTreeSet<String>>> {
    // request id → the distinct event ids delivered for it
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for body in bodies {
        let event = decode_completion_event(body)?;
        if !event.is_terminal() {
            bail!("a target that asked for terminal events got {}", event.id());
        }
        let request_id = event.request_id().context("a request id")?.to_string();
        seen.entry(request_id)
            .or_default()
            .insert(event.id().to_string());
    }
    Ok(seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_queue_and_a_signed_webhook_each_get_every_terminal_event() -> Result<()> {
    let world = world().await?;
    let logs = tempfile::tempdir()?;
    let _watcher = world.fixture.spawn_watcher(
        &world.channels.events_topic,
        "callbacks",
        &[],
        &[],
        &logs.path().join("watcher.log"),
    )?;
    let notifier_log = logs.path().join("notifier.log");
    let _notifier = tokio::process::Command::new(workspace_binary("spark-gateway-consumer")?)
        .args(["--notify-topic", &world.channels.events_topic])
        .args(["--notify-group", &unique_name("notifier")])
        .args(["--health-listen", "127.0.0.1:0"])
        .envs(world.notifier_env()?)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&notifier_log)?)
        .kill_on_drop(true)
        .spawn()
        .context("the consumer binary starts")?;
    let handlers = Arc::new(handlers(&world.fixture, &world.channels).await?);
    let (stop, consumer) = spawn_sqs_consumer(
        handlers,
        world.sqs.clone(),
        world.channels.queue.url.clone(),
    );

    // 100 submits naming both targets; one naming a webhook outside the allow-list; one the policy
    // refuses for its Spark configuration, whose targets are fine and hear of the rejection.
    let mut expected = BTreeSet::new();
    let submit = |request: spark_gateway_events::SubmitJobRequest| {
        serde_json::to_string(&JobRequest::Submit(Box::new(request))).expect("serializes")
    };
    let mut bodies = Vec::new();
    for index in 0..APPLICATIONS {
        let mut request = with_scenario(seed_request()?, "success");
        request.notify = vec![
            NotifyTarget::Sqs {
                queue_url: world.replies.url.clone(),
                events: NotifyEvents::Terminal,
            },
            NotifyTarget::Webhook {
                url: format!("{}hooks/app-{index}", world.receiver.base_url()),
                events: NotifyEvents::Terminal,
            },
        ];
        expected.insert(request.request_id.to_string());
        bodies.push(submit(request));
    }
    let mut outside = seed_request()?;
    outside.notify = vec![NotifyTarget::Webhook {
        url: "https://hooks.example.test/spark/".into(),
        events: NotifyEvents::Terminal,
    }];
    let outside_id = outside.request_id.to_string();
    bodies.push(submit(outside));
    let mut refused = seed_request()?;
    refused
        .spark_conf
        .insert("spark.master".into(), "local[*]".into());
    refused.notify = vec![NotifyTarget::Sqs {
        queue_url: world.replies.url.clone(),
        events: NotifyEvents::Terminal,
    }];
    let refused_id = refused.request_id.to_string();
    bodies.push(submit(refused));
    for chunk in bodies.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, body)| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        world
            .sqs
            .send_message_batch()
            .queue_url(&world.channels.queue.url)
            .set_entries(Some(entries))
            .send()
            .await?;
    }

    // The reply queue: one terminal event per application (after de-duplication by event id), and
    // the rejection of the refused submit.
    let replies = drain_queue(
        &world.sqs,
        &world.replies.url,
        APPLICATIONS + 1,
        Duration::from_secs(240),
    )
    .await?;
    let reply_bodies: Vec<Vec<u8>> = replies
        .iter()
        .map(|m| m.body.clone().unwrap_or_default().into_bytes())
        .collect();
    let by_request = terminal_request_ids(&reply_bodies).with_context(|| {
        format!(
            "notifier log: {}",
            std::fs::read_to_string(&notifier_log).unwrap_or_default()
        )
    })?;
    let mut delivered: BTreeSet<String> = by_request.keys().cloned().collect();
    assert!(
        delivered.remove(&refused_id),
        "the refused submit's rejection reached the reply queue"
    );
    assert_eq!(
        delivered, expected,
        "every application's terminal event reached the reply queue"
    );
    assert!(
        by_request.values().all(|ids| ids.len() == 1),
        "{by_request:?}"
    );
    for body in &reply_bodies {
        match decode_completion_event(body)? {
            CompletionEvent::StateChanged(event) => {
                assert_eq!(event.data.outcome, Some(JobOutcome::Succeeded));
            }
            CompletionEvent::Rejected(event) => {
                assert_eq!(event.data.reason, RejectionReason::PolicyViolation);
                assert_eq!(event.data.request_id.as_deref(), Some(refused_id.as_str()));
            }
            CompletionEvent::Applied(event) => bail!("unexpected {}", event.id),
        }
    }

    // The webhook: the same 100, each accepted (signature and timestamp checked) under its own
    // path; the flaky ones after exactly two 500s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while world.receiver.accepted().len() < APPLICATIONS && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let accepted = world.receiver.accepted();
    let hook_bodies: Vec<Vec<u8>> = accepted.iter().map(|a| a.body.clone()).collect();
    let by_request = terminal_request_ids(&hook_bodies)?;
    assert_eq!(
        by_request.keys().cloned().collect::<BTreeSet<_>>(),
        expected
    );
    assert!(
        by_request.values().all(|ids| ids.len() == 1),
        "{by_request:?}"
    );
    assert!(
        world.receiver.refused().is_empty(),
        "{:?}",
        world.receiver.refused()
    );
    for hit in &accepted {
        let index = index_of_path(&hit.path).context("a path per application")?;
        let expected_attempts = if flaky(index) { 3 } else { 1 };
        assert!(
            world.receiver.attempts(&hit.path, &hit.id) >= expected_attempts,
            "{} {}",
            hit.path,
            hit.id
        );
        if flaky(index) {
            assert_eq!(world.receiver.attempts(&hit.path, &hit.id), 3);
        }
    }

    // The submit naming a target outside the allow-list was refused at submit, naming the field.
    let reader = TopicReader::new(
        world.fixture.world.kafka_bootstrap()?,
        &world.channels.events_topic,
    )?;
    let records = reader
        .read_until(Duration::from_secs(30), |records| {
            records.iter().any(|r| r.value.contains(&outside_id))
        })
        .await?;
    let rejection = records
        .iter()
        .find_map(
            |r| match decode_completion_event(r.value.as_bytes()).ok()? {
                CompletionEvent::Rejected(event)
                    if event.data.request_id.as_deref() == Some(outside_id.as_str()) =>
                {
                    Some(event)
                }
                _ => None,
            },
        )
        .context("the outside target's rejection")?;
    assert_eq!(rejection.data.reason, RejectionReason::PolicyViolation);
    assert!(
        rejection.data.notify.is_empty(),
        "refused targets are not notified"
    );
    assert!(
        rejection
            .data
            .violations
            .iter()
            .any(|v| v.field == "notify[0].url" && v.rule == "notify_allow_list"),
        "{:?}",
        rejection.data.violations
    );
    // Nothing was dead-lettered by the notifier.
    let copies = drain_queue(
        &world.sqs,
        &world.replies.dlq_url,
        1,
        Duration::from_secs(2),
    )
    .await?;
    assert!(copies.is_empty(), "{copies:?}");

    stop.send(true)?;
    consumer.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_notifier_function_delivers_a_kafka_batch_of_the_completion_topic() -> Result<()> {
    let world = world().await?;
    let hook = format!("{}hooks/app-10", world.receiver.base_url());
    let event = json!({
        "specversion": "1.0", "id": "u-9/0/6", "source": "/spark-gateway/clusters/dev",
        "type": spark_gateway_events::STATE_CHANGED_EVENT_TYPE,
        "data": {
            "application_name": "pi", "namespace": NAMESPACE, "cluster": CLUSTER, "uid": "u-9",
            "request_id": "req-9", "state": "Succeeded", "attempt": 0, "history_index": 6,
            "outcome": {"result": "succeeded"},
            "notify": [{"type": "webhook", "url": hook}, {"type": "sqs", "queue_url": world.replies.url}],
        },
    })
    .to_string();
    let topic = &world.channels.events_topic;
    // The shape of an event source mapping's invocation (self-managed Kafka).
    let kafka_event = json!({
        "eventSource": "aws:SelfManagedKafka",
        "bootstrapServers": world.fixture.world.kafka_bootstrap()?,
        "records": {format!("{topic}-0"): [{
            "topic": topic, "partition": 0, "offset": 7, "timestamp": 0,
            "timestampType": "CREATE_TIME",
            "key": base64::engine::general_purpose::STANDARD.encode("u-9"),
            "value": base64::engine::general_purpose::STANDARD.encode(&event),
            "headers": [],
        }]},
    });
    let emulator = RuntimeEmulator::start().await?;
    let _function = LambdaProcess::spawn(
        workspace_binary("notifier")?,
        &emulator,
        world.notifier_env()?,
    )?;
    let invocation = emulator
        .invoke(kafka_event, Duration::from_secs(60))
        .await?;
    match &invocation.outcome {
        Outcome::Response { response } => {
            assert_eq!(
                response,
                &json!({"records": 1, "delivered": 2, "dead_lettered": 0})
            );
        }
        other => bail!("expected a response, got {}", other.describe()),
    }
    // The webhook answered 500 twice first (app-10 is flaky): the function retried within the
    // invocation.
    assert_eq!(world.receiver.attempts("/hooks/app-10", "u-9/0/6"), 3);
    let accepted = world.receiver.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].body, event.as_bytes());
    let replies = drain_queue(&world.sqs, &world.replies.url, 1, Duration::from_secs(10)).await?;
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].body.as_deref(), Some(event.as_str()));
    Ok(())
}
