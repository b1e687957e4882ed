//! Replays never undo later requests, in the long-running consumer: after a crash its group re-reads
//! what it had not committed (Kafka's at-least-once delivery), and what pins it is that the replay
//! starts after every record whose application a later record changed.

use std::time::Duration;

use anyhow::{Result, bail};
use rdkafka::consumer::{Consumer, StreamConsumer};
use serde_json::json;
use spark_gateway::config::ClusterConfig;
use spark_gateway_consumer::kafka as kafka_consumer;
use spark_gateway_events::JobRequest;
use spark_gateway_handlers::live::LiveHandlers;
use spark_gateway_harness::aws::localstack_config;
use spark_gateway_harness::kafka::{TopicReader, produce, producer};
use spark_gateway_harness::unique_name;
use tokio::sync::watch;

use super::fixture::{Fixture, NAMESPACE, seed_request, with_scenario};
use super::functions::{Channels, handler_config, sqs_client};
use super::lambda::{applied_events, store_token_at};

/// The consumer's settings, except that nothing is committed behind the loop's back (no auto-commit):
/// dropping it is a crash at the worst moment, when only what the loop committed itself survives.
fn crash_prone_consumer(bootstrap: &str, group: &str, topic: &str) -> Result<StreamConsumer> {
    let consumer: StreamConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .create()?;
    consumer.subscribe(&[topic])?;
    Ok(consumer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_replaying_after_a_crash_does_not_recreate_an_application_a_later_record_deleted()
-> Result<()> {
    let fixture = Fixture::start().await?;
    let sqs = sqs_client(&fixture).await?;
    let channels = Channels::create(&fixture, &sqs).await?;
    let flaky_token_path = format!("spark-gateway/tests/{}/token", unique_name("flaky"));
    let mut config = handler_config(&fixture, &channels)?;
    // `flaky`: the same cluster through a Vault secret that is missing until the test stores it.
    config.gateway.clusters.clusters.insert(
        "flaky".into(),
        ClusterConfig {
            token_path: flaky_token_path.clone(),
            ..fixture.cluster_config()
        },
    );
    let handlers = LiveHandlers::with_aws(config, &localstack_config(&fixture.world).await?)?;
    let bootstrap = fixture.world.kafka_bootstrap()?;

    let request = with_scenario(seed_request()?, "stuck");
    let delete_id = unique_name("del");
    let flaky_id = unique_name("flaky-del");
    let records = [
        serde_json::to_string(&JobRequest::Submit(Box::new(request.clone())))?,
        json!({"action": "delete", "request_id": delete_id, "namespace": NAMESPACE,
               "application_name": request.application_name})
        .to_string(),
        json!({"action": "delete", "request_id": flaky_id, "namespace": NAMESPACE, "cluster": "flaky",
               "application_name": unique_name("other")})
        .to_string(),
    ];
    let key = format!("{NAMESPACE}/{}", request.application_name);
    let kafka = producer(bootstrap)?;
    for value in &records {
        produce(&kafka, &channels.request_topic, &key, value).await?;
    }
    let events = TopicReader::new(bootstrap, &channels.events_topic)?;
    let announced = |ids: &[&str]| {
        let ids: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
        move |records: &[spark_gateway_harness::kafka::Record]| {
            let seen = applied_events(records);
            ids.iter().all(|id| seen.iter().any(|(s, _)| s == id))
        }
    };

    // The first consumer applies the submit and the delete, then crashes while the third record waits
    // for its retry.
    let group = unique_name("it-group");
    let first = crash_prone_consumer(bootstrap, &group, &channels.request_topic)?;
    let (_stop, shutdown) = watch::channel(false);
    tokio::select! {
        _ = kafka_consumer::run(&first, &handlers.processor, &handlers.kafka_dead_letter, 5, shutdown) => {
            bail!("the consumer stopped on its own")
        }
        read = events.read_until(Duration::from_secs(30), announced(&[&delete_id])) => { read?; }
    }
    drop(first);
    fixture
        .wait_for_app(&request.application_name, false)
        .await?;

    // Fixed and restarted: the group re-reads from its committed offset.
    store_token_at(&fixture, &flaky_token_path, &fixture.gateway_token).await?;
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
    let second = crash_prone_consumer(bootstrap, &group, &channels.request_topic)?;
    let (stop, shutdown) = watch::channel(false);
    let run = kafka_consumer::run(
        &second,
        &handlers.processor,
        &handlers.kafka_dead_letter,
        5,
        shutdown,
    );
    let wait = async {
        let read = TopicReader::new(bootstrap, &channels.events_topic)?
            .read_until(Duration::from_secs(60), announced(&[&flaky_id]))
            .await;
        let _ = stop.send(true);
        read
    };
    let (_, read) = tokio::join!(run, wait);
    let read = read?;

    assert!(
        fixture
            .apps()
            .await?
            .get_opt(&request.application_name)
            .await?
            .is_none(),
        "A came back"
    );
    assert_eq!(creates(), creates_before, "the replay created A again");
    let seen = applied_events(&read);
    let count = |id: &str| seen.iter().filter(|(s, _)| s == id).count();
    assert_eq!(
        count(request.request_id.as_str()),
        1,
        "the submit was applied again: {seen:?}"
    );
    // The delete may be re-read (the crash can come before the commit the retry makes): a repeat is
    // harmless and announced under the same event id.
    assert!(count(&delete_id) >= 1 && count(&flaky_id) == 1, "{seen:?}");
    assert!(
        seen.iter()
            .filter(|(s, _)| *s == delete_id || *s == flaky_id)
            .all(|(_, terminal)| *terminal)
    );
    fixture.cluster.shutdown().await;
    Ok(())
}
