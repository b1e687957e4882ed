//! The job-requests function's event handling with the handlers' fakes: events in the JSON shapes
//! Lambda's SQS and Kafka event source mappings deliver (as AWS documents them), told apart by their
//! `eventSource`, and answered as Lambda expects (partial-batch responses; a failed invocation for a
//! Kafka batch with records to retry).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use spark_gateway_handlers::Processor;
use spark_gateway_handlers::fakes::{Behaviour, FakeGateway, FakeSinks, delete, submit};
use spark_gateway_handlers::replay::MemoryLedger;
use spark_gateway_lambda::requests::{RequestEventError, RequestFunction, partition_key};

/// Handles `payload` with `gateway`, fake sinks and no replay ledger.
async fn handle(
    gateway: &FakeGateway,
    sinks: &FakeSinks,
    payload: Value,
) -> Result<Value, RequestEventError> {
    let processor = Processor::new(gateway, sinks, 5);
    let function = RequestFunction {
        processor: &processor,
        sqs_dead_letter: sinks,
        kafka_dead_letter: sinks,
        replay_ledger: &None::<MemoryLedger>,
        max_concurrency: 4,
    };
    function.handle(payload).await
}

fn sqs_event(messages: &[(&str, String)]) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|(id, body)| {
            json!({"messageId": id, "receiptHandle": format!("h-{id}"), "body": body,
                   "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
                   "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                   "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:requests", "awsRegion": "us-east-1"})
        })
        .collect();
    json!({ "Records": records })
}

fn kafka_event(source: &str, records: &[(i32, i64, String)]) -> Value {
    let mut by_partition = serde_json::Map::new();
    for (partition, offset, body) in records {
        let entry = by_partition
            .entry(format!("requests-{partition}"))
            .or_insert_with(|| json!([]));
        entry.as_array_mut().unwrap().push(json!({
            "topic": "requests", "partition": partition, "offset": offset,
            "timestamp": 1_700_000_000_000_i64, "timestampType": "CREATE_TIME",
            "value": BASE64.encode(body), "headers": []
        }));
    }
    json!({"eventSource": source, "eventSourceArn": "arn:aws:kafka:us-east-1:000000000000:cluster/c/1",
           "bootstrapServers": "b-1.example:9092", "records": by_partition})
}

#[tokio::test]
async fn an_sqs_event_answers_with_exactly_the_messages_to_retry() {
    let gateway = FakeGateway::with(&[
        ("bad", Behaviour::Reject),
        ("later", Behaviour::FailTransiently),
    ]);
    let sinks = FakeSinks::default();
    let event = sqs_event(&[
        ("ok", submit("ok", "x")),
        ("bad", submit("bad", "y")),
        ("later", submit("later", "z")),
    ]);
    let response = handle(&gateway, &sinks, event).await.unwrap();
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": "later"}]})
    );
    assert_eq!(
        sinks.dead.lock().unwrap().len(),
        1,
        "the rejected one is dead-lettered"
    );
    assert_eq!(sinks.applied.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn kafka_partitions_stop_at_their_first_retry_and_fail_the_invocation() {
    let gateway = FakeGateway::with(&[("p0-1", Behaviour::FailTransiently)]);
    let sinks = FakeSinks::default();
    let records = [
        (0, 10, submit("p0-0", "a")),
        (0, 11, submit("p0-1", "b")),
        (0, 12, submit("p0-2", "c")),
        (1, 5, submit("p1-0", "d")),
    ];
    let error = handle(&gateway, &sinks, kafka_event("aws:kafka", &records))
        .await
        .unwrap_err();
    let RequestEventError::Retry(failed) = &error else {
        panic!("{error}")
    };
    assert_eq!((failed.retry, failed.total), (2, 4));
    let calls = gateway.calls();
    assert!(calls.contains(&"submit a".into()) && calls.contains(&"submit d".into()));
    assert!(
        !calls.contains(&"submit c".into()),
        "partition 0 continued past its failure: {calls:?}"
    );
    let fine = handle(
        &gateway,
        &sinks,
        kafka_event("aws:SelfManagedKafka", &records[..1]),
    )
    .await
    .unwrap();
    assert_eq!(fine, json!({"processed": 1}));
}

#[tokio::test]
async fn kafka_records_are_decoded_and_ordered_per_partition() {
    let messages = spark_gateway_lambda::requests::kafka_messages(
        &serde_json::from_value(kafka_event(
            "aws:kafka",
            &[
                (1, 7, delete("d", "x")),
                (0, 3, submit("s", "y")),
                (0, 2, submit("t", "z")),
            ],
        ))
        .unwrap(),
    )
    .unwrap();
    let places: Vec<(String, String)> = messages
        .iter()
        .map(|m| (partition_key(m), m.origin.locator()))
        .collect();
    assert_eq!(
        places,
        [
            ("requests/0".into(), "kafka/requests/0/2".into()),
            ("requests/0".into(), "kafka/requests/0/3".into()),
            ("requests/1".into(), "kafka/requests/1/7".into()),
        ]
    );
    assert_eq!(messages[0].body, submit("t", "z").into_bytes());
}

#[tokio::test]
async fn events_that_are_not_sqs_or_kafka_are_refused_by_name() {
    let gateway = FakeGateway::default();
    let sinks = FakeSinks::default();
    let error = handle(
        &gateway,
        &sinks,
        json!({"source": "aws.events", "detail": {}}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "unsupported event source \"\": expected aws:sqs, aws:kafka or aws:SelfManagedKafka"
    );
    let error = handle(
        &gateway,
        &sinks,
        json!({"eventSource": "aws:dynamodb", "Records": []}),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, RequestEventError::UnsupportedSource(ref s) if s == "aws:dynamodb"));
    // Says Kafka, is not shaped like it: nothing is applied.
    let error = handle(
        &gateway,
        &sinks,
        json!({"eventSource": "aws:kafka", "records": [1, 2]}),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, RequestEventError::Shape { .. }), "{error}");
    let bad_base64 = json!({"eventSource": "aws:kafka", "records": {"requests-0": [
        {"topic": "requests", "partition": 0, "offset": 1, "timestamp": 0, "timestampType": "CREATE_TIME",
         "value": "not base64!", "headers": []}]}});
    let error = handle(&gateway, &sinks, bad_base64).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "Kafka record requests/0/1 has invalid base64 in its value"
    );
    assert!(gateway.calls().is_empty());
}
