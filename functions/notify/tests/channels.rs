//! The live channels over real connections: LocalStack's SQS (reply queue and dead-letter queue) and
//! Secrets Manager (the cluster's signing secret), and an HTTPS receiver that checks Standard
//! Webhooks signatures with its own secret and code (see `spark_gateway_harness::webhook`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use spark_gateway_core::policy::NotifyPolicy;
use spark_gateway_harness::aws::{TestQueue, drain_queue, localstack_config};
use spark_gateway_harness::webhook::WebhookReceiver;
use spark_gateway_harness::{LocalWorld, unique_name};
use spark_gateway_notify::live::attributes;
use spark_gateway_notify::{
    LiveChannels, LiveNotifier, NotifyConfig, RetryPolicy, SqsNotifyDeadLetters,
};

const CLUSTER: &str = "dev";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const OTHER_SECRET: &str = "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

struct Setup {
    notifier: LiveNotifier,
    sqs: aws_sdk_sqs::Client,
    queues: TestQueue,
    receiver: WebhookReceiver,
    wrong_receiver: WebhookReceiver,
}

/// A notifier for cluster `dev` whose signing secret is [`SECRET`], allowed to notify the test's
/// queues and both receivers; `fail_first` makes the good receiver answer 500 that many times.
async fn setup(fail_first: u32) -> Setup {
    spark_gateway_harness::init_tracing();
    let world = LocalWorld::from_env().expect("the local world is up");
    let aws = localstack_config(&world).await.expect("AWS config");
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let queues = TestQueue::create(&sqs, "notify", 5).await.expect("queues");
    let prefix = format!("{}/", unique_name("webhook-signing"));
    aws_sdk_secretsmanager::Client::new(&aws)
        .create_secret()
        .name(format!("{prefix}{CLUSTER}"))
        .secret_string(SECRET)
        .send()
        .await
        .expect("the signing secret");
    let receiver = WebhookReceiver::start(SECRET, Box::new(move |_, _| fail_first))
        .await
        .expect("a receiver");
    // A receiver configured with another secret, as after a rotation nobody told the notifier of.
    let wrong_receiver = WebhookReceiver::start(OTHER_SECRET, Box::new(|_, _| 0))
        .await
        .expect("a receiver");
    // Both receivers' certificates come from one CA directory each; trust the first's, and the
    // second's through a bundle of both.
    let bundle = tempfile::NamedTempFile::new().unwrap();
    let pem = [receiver.ca_file(), wrong_receiver.ca_file()]
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<String>();
    std::fs::write(bundle.path(), pem).unwrap();
    let config = NotifyConfig {
        dead_letter_queue_url: queues.dlq_url.clone(),
        secret_prefix: prefix,
        ca_file: Some(bundle.path().to_path_buf()),
        retry: RetryPolicy {
            attempts: 4,
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
        },
        timeout: Duration::from_secs(5),
    };
    let queue_prefix = format!("{}/", queues.url.rsplit_once('/').unwrap().0);
    let policy = NotifyPolicy {
        allowed_sqs_queue_urls: vec![queue_prefix],
        allowed_webhook_urls: vec![receiver.base_url(), wrong_receiver.base_url()],
        max_targets: 4,
    };
    let notifier = LiveNotifier::new(
        LiveChannels::new(&config, &aws).expect("channels"),
        SqsNotifyDeadLetters(spark_gateway_handlers::sqs::SqsQueue::new(
            sqs.clone(),
            queues.dlq_url.clone(),
        )),
        BTreeMap::from([(CLUSTER.to_string(), policy)]),
        CLUSTER,
        config.retry,
    );
    Setup {
        notifier,
        sqs,
        queues,
        receiver,
        wrong_receiver,
    }
}

fn terminal_event(id: &str, notify: serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "specversion": "1.0", "id": id, "source": "/spark-gateway/clusters/dev",
        "type": spark_gateway_events::STATE_CHANGED_EVENT_TYPE,
        "datacontenttype": "application/json",
        "data": {
            "application_name": "pi", "namespace": "spark-jobs", "cluster": CLUSTER, "uid": "u-1",
            "state": "Succeeded", "attempt": 0, "history_index": 6,
            "outcome": {"result": "succeeded"}, "notify": notify,
        },
    }))
    .unwrap()
}

fn attribute(message: &aws_sdk_sqs::types::Message, name: &str) -> String {
    message
        .message_attributes
        .as_ref()
        .and_then(|a| a.get(name))
        .and_then(|v| v.string_value.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_reaches_the_reply_queue_and_the_signed_webhook_after_two_failures() {
    let setup = setup(2).await;
    let hook = format!("{}hooks/pipeline-a", setup.receiver.base_url());
    let body = terminal_event(
        "u-1/0/6",
        json!([{"type": "webhook", "url": hook}, {"type": "sqs", "queue_url": setup.queues.url}]),
    );
    let handled = setup.notifier.handle(&body).await.unwrap();
    assert_eq!((handled.delivered, handled.dead_lettered), (2, 0));

    // 500, 500, then accepted: the body forwarded byte for byte, the event id as webhook-id.
    assert_eq!(setup.receiver.attempts("/hooks/pipeline-a", "u-1/0/6"), 3);
    let accepted = setup.receiver.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(
        (accepted[0].id.as_str(), &accepted[0].body),
        ("u-1/0/6", &body)
    );

    let replies = drain_queue(&setup.sqs, &setup.queues.url, 1, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(replies.len(), 1);
    assert_eq!(
        replies[0].body.as_deref().unwrap().as_bytes(),
        body.as_slice()
    );
    assert_eq!(attribute(&replies[0], attributes::EVENT_ID), "u-1/0/6");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_with_another_secret_refuses_and_the_delivery_is_dead_lettered_once() {
    let setup = setup(0).await;
    let hook = format!("{}hooks/rotated", setup.wrong_receiver.base_url());
    let body = terminal_event("u-1/0/6", json!([{"type": "webhook", "url": hook}]));
    let handled = setup.notifier.handle(&body).await.unwrap();
    assert_eq!((handled.delivered, handled.dead_lettered), (0, 1));
    // 401 is the receiver's refusal: not retried.
    assert_eq!(
        setup.wrong_receiver.refused(),
        [("/hooks/rotated".to_string(), "u-1/0/6".to_string())]
    );
    assert!(setup.wrong_receiver.accepted().is_empty());

    let copies = drain_queue(
        &setup.sqs,
        &setup.queues.dlq_url,
        1,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(copies.len(), 1);
    assert_eq!(
        copies[0].body.as_deref().unwrap().as_bytes(),
        body.as_slice()
    );
    assert_eq!(attribute(&copies[0], attributes::TARGET), hook);
    assert_eq!(attribute(&copies[0], attributes::TARGET_TYPE), "webhook");
    assert_eq!(attribute(&copies[0], attributes::ATTEMPTS), "1");
    assert!(attribute(&copies[0], attributes::ERROR).contains("HTTP 401"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_through_every_retry_and_a_missing_queue_end_on_the_dead_letter_queue() {
    let setup = setup(100).await;
    let hook = format!("{}hooks/down", setup.receiver.base_url());
    let missing = format!("{}-missing", setup.queues.url);
    let body = terminal_event(
        "u-1/0/6",
        json!([{"type": "webhook", "url": hook}, {"type": "sqs", "queue_url": missing}]),
    );
    let handled = setup.notifier.handle(&body).await.unwrap();
    assert_eq!(handled.dead_lettered, 2);
    assert_eq!(setup.receiver.attempts("/hooks/down", "u-1/0/6"), 4);
    let mut copies: Vec<(String, String)> = drain_queue(
        &setup.sqs,
        &setup.queues.dlq_url,
        2,
        Duration::from_secs(10),
    )
    .await
    .unwrap()
    .iter()
    .map(|m| {
        (
            attribute(m, attributes::TARGET_TYPE),
            attribute(m, attributes::ATTEMPTS),
        )
    })
    .collect();
    copies.sort();
    // The queue that does not exist is not retried; the 500s are, up to the bound.
    assert_eq!(
        copies,
        [("sqs".into(), "1".into()), ("webhook".into(), "4".into())]
    );
}
