//! The S3 store against LocalStack's S3 over a real connection: conditional writes (`If-None-Match`,
//! `If-Match`, as AWS S3 has them since 2024), the never-roll-back rule under racing writers, lookups
//! by name and by request id, and how failures are classified.

use std::sync::Arc;

use jiff::Timestamp;
use spark_gateway_core::{Classify, Disposition};
use spark_gateway_events::{
    ApplicationState, GetJobStatusResponse, HistoryPosition, JOB_RECORD_VERSION, JobLookup,
    JobRecord, Outcome, RequestId,
};
use spark_gateway_harness::aws::localstack_config;
use spark_gateway_harness::{LocalWorld, unique_name};
use spark_gateway_records::{JobRecordStore, S3Records, Stored, s3_client};

const CLUSTER: &str = "dev";
const NAMESPACE: &str = "spark-jobs";

async fn store() -> (S3Records, aws_sdk_s3::Client, String) {
    let world = LocalWorld::from_env().expect("the local world is up");
    let client = s3_client(&localstack_config(&world).await.expect("AWS config"));
    let bucket = unique_name("records");
    client
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("a bucket");
    (
        S3Records::new(client.clone(), bucket.clone(), "job-records/"),
        client,
        bucket,
    )
}

fn record(name: &str, uid: &str, request_id: &str, through: u64, created_second: u32) -> JobRecord {
    let ended = through >= 6;
    JobRecord {
        record_version: JOB_RECORD_VERSION,
        recorded_at: Timestamp::now(),
        through: HistoryPosition {
            attempt: 0,
            history_index: through,
        },
        submitted_by: Some("pipeline".into()),
        spec_hash: None,
        status: GetJobStatusResponse {
            application_name: name.into(),
            namespace: NAMESPACE.into(),
            cluster: CLUSTER.into(),
            uid: uid.into(),
            request_id: Some(request_id.into()),
            state: Some(if ended {
                ApplicationState::ResourceReleased
            } else {
                ApplicationState::RunningHealthy
            }),
            phase: None,
            outcome: ended.then_some(Outcome::Succeeded),
            message: None,
            attempt: 0,
            history: Vec::new(),
            driver_pod_name: None,
            created_at: Some(
                format!("2026-11-23T10:00:{created_second:02}Z")
                    .parse()
                    .unwrap(),
            ),
            last_transition_time: None,
            failure: None,
            usage: None,
            links: None,
            source: None,
        },
        earlier_attempts: Vec::new(),
    }
}

fn by_name(name: &str) -> JobLookup<'_> {
    JobLookup::Name(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_is_written_once_and_never_replaced_by_one_that_covers_less() {
    let (store, _, _) = store().await;
    let running = record("pi", "uid-1", "req-1", 4, 0);
    let ended = record("pi", "uid-1", "req-1", 6, 0);

    assert_eq!(store.put(&running).await.unwrap(), Stored::Written);
    assert_eq!(store.put(&ended).await.unwrap(), Stored::Written);
    // A replay of the same, and a stale observation from a second leader, change nothing.
    assert_eq!(store.put(&ended).await.unwrap(), Stored::KeptNewer);
    assert_eq!(store.put(&running).await.unwrap(), Stored::KeptNewer);

    let found = store
        .find(CLUSTER, NAMESPACE, by_name("pi"))
        .await
        .unwrap()
        .expect("the record");
    assert_eq!(found.through.history_index, 6);
    assert_eq!(found.status.outcome, Some(Outcome::Succeeded));
    let request_id = RequestId::new("req-1").unwrap();
    let by_request = store
        .find(CLUSTER, NAMESPACE, JobLookup::RequestId(&request_id))
        .await
        .unwrap()
        .expect("found by request id");
    assert_eq!(by_request, found);
    assert_eq!(
        store
            .find(CLUSTER, "elsewhere", by_name("pi"))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_writers_leave_the_record_that_covers_the_most() {
    let (store, _, _) = store().await;
    let store = Arc::new(store);
    // Eight writers at once, each with a different amount of history; conditional writes make the
    // losers re-read, so whatever the interleaving the widest record stays.
    let writers: Vec<_> = (0..8u64)
        .map(|through| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .put(&record("race", "uid-r", "req-r", through, 0))
                    .await
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap().unwrap();
    }
    let found = store
        .find(CLUSTER, NAMESPACE, by_name("race"))
        .await
        .unwrap()
        .expect("the record");
    assert_eq!(found.through.history_index, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_name_finds_the_newest_application() {
    let (store, _, _) = store().await;
    store
        .put(&record("nightly", "uid-old", "req-a", 6, 0))
        .await
        .unwrap();
    store
        .put(&record("nightly", "uid-new", "req-b", 6, 30))
        .await
        .unwrap();
    let found = store
        .find(CLUSTER, NAMESPACE, by_name("nightly"))
        .await
        .unwrap()
        .expect("a record");
    assert_eq!(found.status.uid, "uid-new");
    let old = RequestId::new("req-a").unwrap();
    let found = store
        .find(CLUSTER, NAMESPACE, JobLookup::RequestId(&old))
        .await
        .unwrap()
        .expect("the old one by its request id");
    assert_eq!(found.status.uid, "uid-old");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_needs_a_person_and_a_foreign_object_is_named() {
    let (store, client, bucket) = store().await;
    let nowhere = S3Records::new(client.clone(), unique_name("no-such-bucket"), "");
    let error = nowhere
        .put(&record("pi", "uid-1", "req-1", 6, 0))
        .await
        .unwrap_err();
    assert_eq!(error.disposition(), Disposition::Configuration, "{error}");
    assert!(error.to_string().contains("no-such-bucket"), "{error}");

    client
        .put_object()
        .bucket(&bucket)
        .key("job-records/applications/dev/spark-jobs/odd/uid-x.json")
        .body(b"not a record".to_vec().into())
        .send()
        .await
        .unwrap();
    let error = store
        .find(CLUSTER, NAMESPACE, by_name("odd"))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("is not a job record"), "{error}");
    assert_eq!(error.disposition(), Disposition::Configuration);
}

/// What the store's race safety rests on: S3 refuses a create over an existing object and a replace
/// of a changed one with `412 PreconditionFailed` (AWS documents both for PutObject; LocalStack's S3
/// implements them), rather than silently overwriting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refuses_conditional_writes_that_lost_the_race() {
    let (_, client, bucket) = store().await;
    let put = || {
        client
            .put_object()
            .bucket(&bucket)
            .key("k")
            .body(b"{}".to_vec().into())
    };
    let first = put().if_none_match("*").send().await.expect("a create");
    let code = |error: aws_sdk_s3::error::SdkError<_, _>| {
        aws_sdk_s3::error::ProvideErrorMetadata::code(&error.into_service_error())
            .map(str::to_string)
    };
    let again = put().if_none_match("*").send().await.unwrap_err();
    assert_eq!(code(again).as_deref(), Some("PreconditionFailed"));
    let stale = put().if_match("\"not-the-etag\"").send().await.unwrap_err();
    assert_eq!(code(stale).as_deref(), Some("PreconditionFailed"));
    put()
        .if_match(first.e_tag().expect("an etag"))
        .send()
        .await
        .expect("a replace of the version read");
}
