//! The handlers with fakes for the gateway and the sinks: outcomes per message, per-application order,
//! partial batch responses, and what is published and dead-lettered.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use serde_json::json;
use spark_gateway::cluster::ClusterError;
use spark_gateway::{Deleted, GatewayError, Submitted};
use spark_gateway_events::{
    AppliedResult, CloudEvent, DeleteJobRequest, FieldViolation, MessageOrigin, RejectionReason,
    RequestApplied, RequestRejected, SubmitJobRequest,
};
use spark_gateway_handlers::batch::{HELD_BACK, process_batch, process_partitions};
use spark_gateway_handlers::lambda_events::{handle_kafka_event, handle_sqs_event, partition_key};
use spark_gateway_handlers::replay::{LedgerError, MemoryLedger, Partition, PositionLedger};
use spark_gateway_handlers::sinks::{DeadLetterSink, EventPublisher, SinkError};
use spark_gateway_handlers::{Applied, InboundMessage, Operations, Outcome, Processor};

/// Kafka handling without a replay ledger (as without `SPARK_GATEWAY_REPLAY_LEDGER_BUCKET`).
fn no_ledger() -> Option<MemoryLedger> {
    None
}

#[derive(Clone, Copy)]
enum Behaviour {
    Succeed,
    Reject,
    FailTransiently,
}

#[derive(Default)]
struct FakeGateway {
    behaviour: HashMap<String, Behaviour>,
    calls: Mutex<Vec<String>>,
}

impl FakeGateway {
    fn with(pairs: &[(&str, Behaviour)]) -> Self {
        Self {
            behaviour: pairs.iter().map(|(k, b)| (k.to_string(), *b)).collect(),
            ..Self::default()
        }
    }

    fn answer<T>(&self, request_id: &str, label: String, ok: T) -> Result<T, GatewayError> {
        self.calls.lock().unwrap().push(label);
        match self
            .behaviour
            .get(request_id)
            .copied()
            .unwrap_or(Behaviour::Succeed)
        {
            Behaviour::Succeed => Ok(ok),
            Behaviour::Reject => Err(GatewayError::Rejected {
                reason: RejectionReason::PolicyViolation,
                message: "1 policy violation(s)".into(),
                violations: vec![FieldViolation {
                    field: "namespace".into(),
                    rule: "namespace_allow_list".into(),
                    message: "no".into(),
                }],
            }),
            Behaviour::FailTransiently => Err(GatewayError::Cluster(ClusterError::Transport(
                "connection refused".into(),
            ))),
        }
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl Operations for FakeGateway {
    async fn submit(&self, request: &SubmitJobRequest) -> Result<Submitted, GatewayError> {
        let label = format!("submit {}", request.application_name);
        self.answer(
            request.request_id.as_str(),
            label,
            Submitted::Created { uid: "uid".into() },
        )
    }
    async fn delete(&self, request: &DeleteJobRequest) -> Result<Deleted, GatewayError> {
        let label = format!("delete {}", request.application_name);
        self.answer(
            request.request_id.as_str(),
            label,
            Deleted::Deleted { uid: "uid".into() },
        )
    }
}

#[derive(Default)]
struct FakeSinks {
    fail: bool,
    events: Mutex<Vec<CloudEvent<RequestRejected>>>,
    applied: Mutex<Vec<CloudEvent<RequestApplied>>>,
    dead: Mutex<Vec<(Vec<u8>, RequestRejected, bool)>>,
}

impl EventPublisher for FakeSinks {
    async fn publish_applied(&self, event: &CloudEvent<RequestApplied>) -> Result<(), SinkError> {
        if self.fail {
            return Err(SinkError::Kafka {
                topic: "events".into(),
                detail: "broker down".into(),
            });
        }
        self.applied.lock().unwrap().push(event.clone());
        Ok(())
    }

    async fn publish_rejection(
        &self,
        event: &CloudEvent<RequestRejected>,
    ) -> Result<(), SinkError> {
        if self.fail {
            return Err(SinkError::Kafka {
                topic: "events".into(),
                detail: "broker down".into(),
            });
        }
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }
}

impl DeadLetterSink for FakeSinks {
    async fn dead_letter(
        &self,
        message: &InboundMessage,
        rejection: &RequestRejected,
        event_published: bool,
    ) -> Result<(), SinkError> {
        self.dead
            .lock()
            .unwrap()
            .push((message.body.clone(), rejection.clone(), event_published));
        Ok(())
    }
}

fn submit(id: &str, name: &str) -> String {
    json!({"action": "submit", "request_id": id, "application_name": name, "namespace": "ns",
           "spark_application_type": "Python", "py_files": ["local:///pi.py"], "runtime_versions": {"spark_version": "4.1.0"}})
    .to_string()
}

fn delete(id: &str, name: &str) -> String {
    json!({"action": "delete", "request_id": id, "application_name": name, "namespace": "ns"})
        .to_string()
}

fn sqs(body: &str, id: usize, receives: u32) -> InboundMessage {
    InboundMessage {
        body: body.as_bytes().to_vec(),
        origin: MessageOrigin::Sqs {
            queue: "arn:queue".into(),
            message_id: format!("m-{id}"),
        },
        key: None,
        delivery_count: Some(receives),
    }
}

#[tokio::test]
async fn invalid_json_is_rejected_published_and_dead_lettered_without_touching_the_cluster() {
    let gateway = FakeGateway::default();
    let sinks = FakeSinks::default();
    let processor = Processor::new(&gateway, &sinks, 5);
    let outcome = processor.process(&sqs("{not json", 1, 1), &sinks).await;
    let Outcome::Rejected(rejected) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(rejected.reason, RejectionReason::MalformedMessage);
    assert!(gateway.calls().is_empty());
    let events = sinks.events.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].id, "rejected/sqs/arn:queue/m-1");
    assert_eq!(sinks.dead.lock().unwrap()[0].0, b"{not json");
}

#[tokio::test]
async fn a_policy_rejection_carries_its_violations_and_request_identity() {
    let gateway = FakeGateway::with(&[("r-1", Behaviour::Reject)]);
    let sinks = FakeSinks::default();
    let processor = Processor::new(&gateway, &sinks, 5);
    let Outcome::Rejected(rejected) = processor
        .process(&sqs(&submit("r-1", "pi"), 1, 1), &sinks)
        .await
    else {
        panic!()
    };
    assert_eq!(rejected.reason, RejectionReason::PolicyViolation);
    assert_eq!(rejected.request_id.as_deref(), Some("r-1"));
    assert_eq!(rejected.violations[0].field, "namespace");
    let events = sinks.events.lock().unwrap();
    assert_eq!(events[0].subject.as_deref(), Some("ns/pi"));
    assert_eq!(events[0].partitionkey.as_deref(), Some("r-1"));
}

#[tokio::test]
async fn transient_failures_are_retried_until_the_last_delivery_then_rejected() {
    let gateway = FakeGateway::with(&[("r-1", Behaviour::FailTransiently)]);
    let sinks = FakeSinks::default();
    let processor = Processor::new(&gateway, &sinks, 3);
    assert!(matches!(
        processor
            .process(&sqs(&submit("r-1", "pi"), 1, 2), &sinks)
            .await,
        Outcome::Retry(_)
    ));
    assert!(sinks.events.lock().unwrap().is_empty());
    let Outcome::Rejected(rejected) = processor
        .process(&sqs(&submit("r-1", "pi"), 1, 3), &sinks)
        .await
    else {
        panic!()
    };
    assert_eq!(rejected.reason, RejectionReason::RetriesExhausted);
    // The category, not the cause's text (which names internal addresses).
    assert_eq!(
        rejected.message,
        "gave up after 3 deliveries: the cluster was unavailable; the request may be sent again once it is fixed"
    );
}

#[tokio::test]
async fn a_rejection_that_cannot_be_published_is_retried_not_acknowledged() {
    let gateway = FakeGateway::default();
    let sinks = FakeSinks {
        fail: true,
        ..FakeSinks::default()
    };
    let processor = Processor::new(&gateway, &sinks, 5);
    assert!(matches!(
        processor.process(&sqs("[]", 1, 1), &sinks).await,
        Outcome::Retry(_)
    ));
    assert!(
        sinks.dead.lock().unwrap().is_empty(),
        "dead-lettered without a published event before the last delivery"
    );
    // At the last delivery it is dead-lettered with its reason anyway, marked unpublished, and done.
    let outcome = processor.process(&sqs("[]", 1, 5), &sinks).await;
    assert!(matches!(outcome, Outcome::Rejected(_)), "{outcome:?}");
    let dead = sinks.dead.lock().unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].1.reason, RejectionReason::MalformedMessage);
    assert!(!dead[0].2, "the copy must say its event was not published");
}

#[tokio::test]
async fn oversized_and_huge_requests_end_in_one_bounded_rejection() {
    let gateway = FakeGateway::default();
    let sinks = FakeSinks::default();
    let processor = Processor::new(&gateway, &sinks, 5);
    // A 2 MiB message is refused unread.
    let huge = format!(
        r#"{{"action":"submit","request_id":"big","pad":"{}"}}"#,
        "x".repeat(2 << 20)
    );
    let Outcome::Rejected(rejected) = processor.process(&sqs(&huge, 1, 1), &sinks).await else {
        panic!()
    };
    assert_eq!(rejected.violations[0].rule, "max_message_bytes");
    assert_eq!(
        rejected.request_id, None,
        "an oversized message is not read for its id"
    );
    // A long unknown key (under the size limit) is named, but only so far.
    let long_key = format!(
        r#"{{"action":"delete","request_id":"k","{}":1}}"#,
        "k".repeat(200_000)
    );
    let Outcome::Rejected(rejected) = processor.process(&sqs(&long_key, 2, 1), &sinks).await else {
        panic!()
    };
    assert_eq!(rejected.violations[0].rule, "unknown_field");
    assert!(serde_json::to_vec(&*rejected).unwrap().len() < 8 * 1024);
    assert!(gateway.calls().is_empty());
    for event in sinks.events.lock().unwrap().iter() {
        assert!(serde_json::to_vec(event).unwrap().len() < 16 * 1024);
    }
}

#[tokio::test]
async fn a_rejection_lists_at_most_fifty_violations() {
    let many: Vec<FieldViolation> = (0..10_000)
        .map(|i| FieldViolation {
            field: format!("spark_conf.k{i}"),
            rule: "spark_conf_allow_list".into(),
            message: "m".repeat(2000),
        })
        .collect();
    let rejected = RequestRejected {
        request_id: Some("r".into()),
        action: None,
        application_name: Some("a".repeat(100_000)),
        namespace: None,
        cluster: None,
        submitted_by: None,
        reason: RejectionReason::PolicyViolation,
        message: "x".repeat(1_000_000),
        violations: many,
        origin: MessageOrigin::Direct {
            invocation_id: "i".into(),
        },
    }
    .bounded();
    assert_eq!(rejected.violations.len(), 50);
    assert_eq!(rejected.violations[49].rule, "more_violations");
    assert_eq!(
        rejected.violations[49].message,
        "9951 more violations are not listed"
    );
    assert!(serde_json::to_vec(&rejected).unwrap().len() < 64 * 1024);
}

#[tokio::test]
async fn messages_for_one_application_keep_their_order_and_wait_for_a_retried_predecessor() {
    let gateway = FakeGateway::with(&[("s-a", Behaviour::FailTransiently)]);
    let sinks = FakeSinks::default();
    let processor = Processor::new(&gateway, &sinks, 5);
    let messages = vec![
        sqs(&submit("s-a", "a"), 0, 1),
        sqs(&submit("s-b", "b"), 1, 1),
        sqs(&delete("d-a", "a"), 2, 1),
        sqs(&delete("d-b", "b"), 3, 1),
    ];
    let outcomes = process_batch(
        &processor,
        &messages,
        InboundMessage::ordering_key,
        &sinks,
        4,
    )
    .await;
    assert!(
        matches!(&outcomes[0], Outcome::Retry(reason) if reason.contains("connection refused"))
    );
    assert_eq!(
        outcomes[1],
        Outcome::Applied(Applied::Submitted(Submitted::Created { uid: "uid".into() }))
    );
    assert_eq!(outcomes[2], Outcome::Retry(HELD_BACK.into()));
    assert_eq!(
        outcomes[3],
        Outcome::Applied(Applied::Deleted(Deleted::Deleted { uid: "uid".into() }))
    );
    let calls = gateway.calls();
    assert!(
        !calls.contains(&"delete a".to_string()),
        "delete overtook its submit: {calls:?}"
    );
    let b: Vec<&String> = calls.iter().filter(|c| c.ends_with(" b")).collect();
    assert_eq!(b, ["submit b", "delete b"]);
}

#[tokio::test]
async fn sqs_batch_response_lists_exactly_the_messages_to_retry() {
    let gateway = FakeGateway::with(&[
        ("bad", Behaviour::Reject),
        ("later", Behaviour::FailTransiently),
    ]);
    let sinks = FakeSinks::default();
    let processor = Processor::new(&gateway, &sinks, 5);
    let mut event = SqsEvent::default();
    for (id, body) in [
        ("ok", submit("ok", "x")),
        ("bad", submit("bad", "y")),
        ("later", submit("later", "z")),
    ] {
        let mut message = SqsMessage::default();
        message.message_id = Some(id.into());
        message.body = Some(body);
        message.event_source_arn = Some("arn:aws:sqs:us-east-1:000000000000:requests".into());
        message
            .attributes
            .insert("ApproximateReceiveCount".into(), "1".into());
        event.records.push(message);
    }
    let response = handle_sqs_event(&processor, &event, &sinks, 4).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["later"]);
    assert_eq!(sinks.dead.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn kafka_partitions_stop_at_their_first_retry_and_fail_the_invocation() {
    let gateway = FakeGateway::with(&[("p0-1", Behaviour::FailTransiently)]);
    let sinks = FakeSinks::default();
    let processor = Processor::new(&gateway, &sinks, 5);
    let record = |partition: i32, offset: i64, body: String| InboundMessage {
        body: body.into_bytes(),
        origin: MessageOrigin::Kafka {
            topic: "requests".into(),
            partition,
            offset,
        },
        key: None,
        delivery_count: None,
    };
    let messages = vec![
        record(0, 10, submit("p0-0", "a")),
        record(0, 11, submit("p0-1", "b")),
        record(0, 12, submit("p0-2", "c")),
        record(1, 5, submit("p1-0", "d")),
    ];
    assert_eq!(partition_key(&messages[0]), "requests/0");
    let error = handle_kafka_event(&processor, &messages, &no_ledger(), &sinks, 4)
        .await
        .unwrap_err();
    assert_eq!((error.retry, error.total), (2, 4));
    let calls = gateway.calls();
    assert!(calls.contains(&"submit a".into()) && calls.contains(&"submit d".into()));
    assert!(
        !calls.contains(&"submit c".into()),
        "partition 0 continued past its failure: {calls:?}"
    );
    let fine = &messages[..1];
    assert_eq!(
        handle_kafka_event(&processor, fine, &no_ledger(), &sinks, 4)
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn applied_requests_are_announced_and_a_lost_announcement_means_retry() {
    let gateway = FakeGateway::default();
    let sinks = FakeSinks::default();
    let processor = Processor::new(&gateway, &sinks, 5);
    let outcome = processor
        .process(&sqs(&delete("d-1", "pi"), 1, 1), &sinks)
        .await;
    assert_eq!(
        outcome,
        Outcome::Applied(Applied::Deleted(Deleted::Deleted { uid: "uid".into() }))
    );
    {
        let applied = sinks.applied.lock().unwrap();
        assert_eq!(applied.len(), 1);
        assert_eq!(applied[0].id, "applied/d-1");
        assert_eq!(applied[0].data.result, AppliedResult::Deleted);
        assert_eq!(applied[0].subject.as_deref(), Some("ns/pi"));
    }

    let down = FakeSinks {
        fail: true,
        ..FakeSinks::default()
    };
    let processor = Processor::new(&gateway, &down, 5);
    assert!(matches!(
        processor
            .process(&sqs(&submit("s-1", "pi"), 1, 1), &down)
            .await,
        Outcome::Retry(_)
    ));
}

fn kafka_record(partition: i32, offset: i64, body: String) -> InboundMessage {
    InboundMessage {
        body: body.into_bytes(),
        origin: MessageOrigin::Kafka {
            topic: "requests".into(),
            partition,
            offset,
        },
        key: None,
        delivery_count: None,
    }
}

#[tokio::test]
async fn a_replayed_kafka_batch_does_not_re_apply_what_a_later_record_changed() {
    // [submit A, delete A, X] with X failing transiently: Lambda replays the whole batch.
    let batch = vec![
        kafka_record(0, 20, submit("s-a", "a")),
        kafka_record(0, 21, delete("d-a", "a")),
        kafka_record(0, 22, submit("x", "x")),
        kafka_record(1, 3, submit("s-b", "b")),
    ];
    let ledger = MemoryLedger::default();
    let sinks = FakeSinks::default();
    let first = FakeGateway::with(&[("x", Behaviour::FailTransiently)]);
    let error = handle_kafka_event(
        &Processor::new(&first, &sinks, 5),
        &batch,
        &ledger,
        &sinks,
        4,
    )
    .await
    .unwrap_err();
    assert_eq!((error.retry, error.total), (1, 4));
    let partition = |partition| Partition {
        topic: "requests".into(),
        partition,
    };
    // The delete waited for the submit to be recorded; the failure recorded the delete. Partition 1
    // had nothing to record.
    assert_eq!(ledger.writes(), [(partition(0), 20), (partition(0), 21)]);

    let replay = FakeGateway::default();
    let processed = handle_kafka_event(
        &Processor::new(&replay, &sinks, 5),
        &batch,
        &ledger,
        &sinks,
        4,
    )
    .await
    .unwrap();
    assert_eq!(processed, 4);
    let mut calls = replay.calls();
    calls.sort();
    // Partition 1 had no ledger entry: its replay is a harmless duplicate.
    assert_eq!(calls, ["submit b", "submit x"], "A was applied again");
    // Each request announced once per application of it: A's submit and delete only by the first pass.
    let announced: Vec<String> = sinks
        .applied
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.id.clone())
        .collect();
    for id in ["applied/s-a", "applied/d-a", "applied/x"] {
        assert_eq!(
            announced.iter().filter(|a| *a == id).count(),
            1,
            "{id}: {announced:?}"
        );
    }
    let outcomes = process_partitions(
        &Processor::new(&replay, &sinks, 5),
        &batch[..2],
        &ledger,
        &sinks,
        4,
    )
    .await;
    assert_eq!(outcomes, [Outcome::Replayed, Outcome::Replayed]);
}

struct BrokenLedger;

impl PositionLedger for BrokenLedger {
    async fn done_through(&self, _: &Partition) -> Result<Option<i64>, LedgerError> {
        Ok(None)
    }
    async fn record(&self, partition: &Partition, offset: i64) -> Result<(), LedgerError> {
        Err(LedgerError::Store {
            operation: "PutObject",
            bucket: "b".into(),
            key: format!("{}/{}", partition.topic, partition.partition),
            detail: format!("unavailable ({offset})"),
        })
    }
}

#[tokio::test]
async fn a_second_change_of_an_application_waits_while_the_ledger_cannot_record_the_first() {
    let gateway = FakeGateway::default();
    let sinks = FakeSinks::default();
    let batch = vec![
        kafka_record(0, 1, submit("s-a", "a")),
        kafka_record(0, 2, submit("s-b", "b")),
        kafka_record(0, 3, delete("d-a", "a")),
        kafka_record(0, 4, delete("d-b", "b")),
    ];
    let outcomes = process_partitions(
        &Processor::new(&gateway, &sinks, 5),
        &batch,
        &BrokenLedger,
        &sinks,
        4,
    )
    .await;
    assert!(outcomes[0].is_final() && outcomes[1].is_final());
    assert!(matches!(&outcomes[2], Outcome::Retry(reason) if reason.contains("unavailable")));
    assert_eq!(outcomes[3], Outcome::Retry(HELD_BACK.into()));
    assert_eq!(gateway.calls(), ["submit a", "submit b"]);
}
