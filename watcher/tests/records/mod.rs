//! Job records through the watcher into LocalStack's S3, over real connections: the record is written
//! before the event that ends an application and before the finalizer lets the object go, so a watcher
//! killed in between leaves, after a restart, one record and one terminal event; the terminal event and
//! the record carry the failure category, the end of the driver's log (through `pods/log`) and the
//! usage.

use std::sync::Arc;

use serde_json::json;
use spark_gateway_core::links::{LinkTemplates, UrlTemplate};
use spark_gateway_events::{ApplicationState, FailureCategory, JobLookup, Outcome};
use spark_gateway_harness::aws::localstack_config;
use spark_gateway_harness::{LocalWorld, unique_name};
use spark_gateway_records::{JobRecordStore, S3Records, s3_client};
use spark_gateway_watcher::keys::FINALIZER;
use spark_gateway_watcher::metrics::Operation;

use super::{
    CLUSTER, Cluster, NAMESPACE, Published, TopicReader, Watcher, current_state, decode,
    eventually, finalizers, kafka_sink, new_topic, read_until_complete, world_bootstrap,
};

async fn s3() -> aws_sdk_s3::Client {
    let world = LocalWorld::from_env().expect("the local world is up");
    s3_client(&localstack_config(&world).await.expect("AWS config"))
}

fn terminal(events: &[Published], uid: &str) -> Vec<Published> {
    events
        .iter()
        .filter(|p| p.event.data.uid == uid && p.event.data.outcome.is_some())
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_killed_before_the_record_write_leaves_one_record_and_one_terminal_event() {
    let bootstrap = world_bootstrap();
    let topic = new_topic(&bootstrap).await;
    let cluster = Cluster::start().await;
    let s3 = s3().await;
    // The bucket does not exist yet: every record write fails until it does.
    let bucket = unique_name("records");
    let records = Arc::new(S3Records::new(s3.clone(), bucket.clone(), "job-records/"));
    let first = Watcher::start_recording(
        &cluster,
        kafka_sink(&bootstrap, &topic),
        "records-a",
        true,
        Some(Arc::clone(&records)),
        LinkTemplates::default(),
    );
    // The operator deletes it at once after ResourceReleased (ttlAfterStopMillis: 0).
    let uid = cluster
        .create("recorded", "success", 300, json!({"ttlAfterStopMillis": 0}))
        .await;

    // The terminal status is written and the TTL delete has come; the record cannot be written, so the
    // watcher keeps retrying it and holds the object.
    eventually(
        "the ended application held while its record cannot be written",
        async || {
            let object = cluster.get("recorded").await?;
            (current_state(&object).as_deref() == Some("ResourceReleased")
                && object.metadata.deletion_timestamp.is_some()
                && finalizers(&object) == [FINALIZER]
                && first.metrics.errors_total(Operation::Record) >= 2)
                .then_some(())
        },
    )
    .await;
    // Nothing the first watcher published ends the application: it may not before the record exists.
    let before_the_kill: Vec<Published> = TopicReader::new(&bootstrap, &topic)
        .expect("a consumer")
        .read_for(std::time::Duration::from_secs(3))
        .await
        .iter()
        .map(decode)
        .collect();
    assert!(
        terminal(&before_the_kill, &uid).is_empty(),
        "a terminal event went out without a record: {before_the_kill:#?}"
    );
    first.kill().await;

    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("the bucket");
    let second = Watcher::start_recording(
        &cluster,
        kafka_sink(&bootstrap, &topic),
        "records-b",
        true,
        Some(Arc::clone(&records)),
        LinkTemplates::default(),
    );
    let reader = TopicReader::new(&bootstrap, &topic).expect("a consumer");
    let events = read_until_complete(&reader, &[(&uid, 7)]).await;
    eventually("the application to be gone", async || {
        cluster.get("recorded").await.is_none().then_some(())
    })
    .await;
    second.stop().await;

    // Everything on the topic, from the start: the terminal event went out once, by the second watcher.
    let everything = TopicReader::new(&bootstrap, &topic)
        .expect("a consumer")
        .read_until(std::time::Duration::from_secs(30), |records| {
            records.len() >= events.len()
        })
        .await
        .expect("the topic");
    let everything: Vec<Published> = everything.iter().map(decode).collect();
    let ended = terminal(&everything, &uid);
    assert_eq!(ended.len(), 1, "terminal events: {ended:#?}");
    let ended = &ended[0].event.data;
    assert_eq!(ended.outcome, Some(Outcome::Succeeded));
    assert_eq!(ended.failure, None);
    let usage = ended.usage.as_ref().expect("usage on the terminal event");
    // The test's spec: a Python job with Spark's defaults (1 core, 1 GiB + 40% overhead, 2 executors).
    assert_eq!((usage.driver.instances, usage.driver.memory_mib), (1, 1433));
    assert_eq!(usage.executors.instances, 2);
    assert!(usage.driver.seconds > 0.0, "{usage:?}");

    let record = records
        .find(CLUSTER, NAMESPACE, JobLookup::Name("recorded"))
        .await
        .expect("the store")
        .expect("the record outlives the object");
    assert_eq!(record.status.uid, uid);
    assert_eq!(record.through.history_index, 6);
    assert_eq!(record.status.outcome, Some(Outcome::Succeeded));
    assert_eq!(record.status.history.len(), 7);
    assert_eq!(record.status.usage.as_ref(), Some(usage));
    assert_eq!(record.submitted_by.as_deref(), Some("integration-test"));
    let stored = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("job-records/applications/")
        .send()
        .await
        .expect("list");
    assert_eq!(stored.key_count(), Some(1), "{stored:?}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_application_is_recorded_with_its_category() {
    let bootstrap = world_bootstrap();
    let topic = new_topic(&bootstrap).await;
    let cluster = Cluster::start().await;
    let s3 = s3().await;
    let bucket = unique_name("records");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("the bucket");
    let records = Arc::new(S3Records::new(s3, bucket, ""));
    let watcher = Watcher::start_recording(
        &cluster,
        kafka_sink(&bootstrap, &topic),
        "records-f",
        true,
        Some(Arc::clone(&records)),
        LinkTemplates {
            spark_ui: Some(
                UrlTemplate::new("https://ui.example.com/{namespace}/{driver_pod}").unwrap(),
            ),
            history_server: Some(
                UrlTemplate::new("https://history.example.com/history/{app_id}").unwrap(),
            ),
            logs: Some(
                UrlTemplate::new("https://logs.example.com/{cluster}/{driver_pod}").unwrap(),
            ),
        },
    );
    // Failed pods are retained (the seed's policy), so the driver pod is there to read at the end.
    let uid = cluster
        .create(
            "fails",
            "failure",
            200,
            json!({"resourceRetainPolicy": "OnFailure"}),
        )
        .await;
    let reader = TopicReader::new(&bootstrap, &topic).expect("a consumer");
    let events = read_until_complete(&reader, &[(&uid, 7)]).await;
    let ended = terminal(&events, &uid);
    let failure = ended[0]
        .event
        .data
        .failure
        .as_ref()
        .expect("failure detail");
    assert_eq!(failure.category, FailureCategory::UserError);
    // From the pod status the operator copies into the Failed entry (lastObservedDriverStatus).
    assert_eq!(failure.exit_code, Some(1));
    assert_eq!(failure.reason.as_deref(), Some("Error"));
    // Read through pods/log (the watcher's Role has `get` on pods/log only) from the retained pod:
    // the simulator's scripted driver ends its log with the error line.
    let log_tail = failure.log_tail.as_deref().expect("the driver log's end");
    assert!(
        log_tail.ends_with("RuntimeError: operator-sim scripted driver failure (exit code 1)"),
        "{log_tail}"
    );
    assert_eq!(
        ended[0].event.data.state,
        ApplicationState::TerminatedWithoutReleaseResources
    );
    // The UI while it runs, the history server once it stopped, the logs on every event.
    let running = events
        .iter()
        .find(|p| p.event.data.uid == uid && p.event.data.state == ApplicationState::RunningHealthy)
        .and_then(|p| p.event.data.links.clone())
        .expect("links on the running event");
    assert_eq!(
        running.spark_ui.as_deref(),
        Some("https://ui.example.com/spark-jobs/fails-0-driver")
    );
    assert_eq!(running.history_server, None);
    let links = ended[0]
        .event
        .data
        .links
        .clone()
        .expect("links on the terminal event");
    assert_eq!(
        (links.spark_ui, links.history_server.as_deref()),
        (None, Some("https://history.example.com/history/fails-0"))
    );
    assert_eq!(
        links.logs.as_deref(),
        Some("https://logs.example.com/it/fails-0-driver")
    );
    // Not gone (no TTL), yet recorded: the record exists as soon as the application has ended.
    let record = records
        .find(CLUSTER, NAMESPACE, JobLookup::Name("fails"))
        .await
        .expect("the store")
        .expect("a record of the ended application");
    let recorded_failure = record.status.failure.as_ref().expect("failure detail");
    assert_eq!(recorded_failure.category, FailureCategory::UserError);
    assert_eq!(recorded_failure.log_tail.as_deref(), Some(log_tail));
    assert!(matches!(
        record.status.outcome,
        Some(Outcome::Failed { .. })
    ));
    assert_eq!(
        record
            .status
            .links
            .and_then(|l| l.history_server)
            .as_deref(),
        Some("https://history.example.com/history/fails-0")
    );
    watcher.stop().await;
    cluster.shutdown().await;
}
