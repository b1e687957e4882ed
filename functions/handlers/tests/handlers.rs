//! The handlers with fakes for the gateway and the sinks: outcomes per message, per-application order,
//! what is published and dead-lettered, and replays.

use spark_gateway::{Deleted, Submitted};
use spark_gateway_events::{
    AppliedResult, FieldViolation, MessageOrigin, RejectionReason, RequestRejected,
};
use spark_gateway_handlers::batch::{BatchRunner, HELD_BACK};
use spark_gateway_handlers::fakes::{
    Behaviour, FakeGateway, FakeSinks, delete, kafka_record, sqs, submit,
};
use spark_gateway_handlers::replay::{LedgerError, MemoryLedger, Partition, PositionLedger};
use spark_gateway_handlers::{Applied, InboundMessage, Outcome, Processor};

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
async fn a_rejection_carries_the_submits_targets_only_when_the_policy_admitted_them() {
    let with_targets = |id: &str| {
        let mut request: serde_json::Value = serde_json::from_str(&submit(id, "pi")).unwrap();
        request["notify"] =
            serde_json::json!([{"type": "sqs", "queue_url": "https://sqs.example/q"}]);
        request.to_string()
    };
    let gateway =
        FakeGateway::with(&[("r-1", Behaviour::Reject), ("r-2", Behaviour::RejectTarget)]);
    let sinks = FakeSinks::default();
    let processor = Processor::new(&gateway, &sinks, 5);
    // Refused for its namespace: its (admitted) reply queue hears of it.
    let Outcome::Rejected(rejected) = processor
        .process(&sqs(&with_targets("r-1"), 1, 1), &sinks)
        .await
    else {
        panic!()
    };
    assert_eq!(rejected.notify.len(), 1);
    assert_eq!(rejected.notify[0].address(), "https://sqs.example/q");
    // Refused for the target itself: nobody is notified at it.
    let Outcome::Rejected(rejected) = processor
        .process(&sqs(&with_targets("r-2"), 2, 1), &sinks)
        .await
    else {
        panic!()
    };
    assert!(rejected.notify.is_empty());
    // Applied: the event that announces it names the targets too.
    let outcome = processor
        .process(&sqs(&with_targets("r-3"), 3, 1), &sinks)
        .await;
    assert!(matches!(outcome, Outcome::Applied(_)), "{outcome:?}");
    let applied = sinks.applied.lock().unwrap();
    assert_eq!(applied.last().unwrap().data.notify.len(), 1);
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
        notify: Vec::new(),
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
    let outcomes = BatchRunner {
        processor: &processor,
        dead_letters: &sinks,
        max_concurrency: 4,
    }
    .process_batch(&messages, InboundMessage::ordering_key)
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
    let outcomes = BatchRunner {
        processor: &Processor::new(&first, &sinks, 5),
        dead_letters: &sinks,
        max_concurrency: 4,
    }
    .process_partitions(&batch, &ledger)
    .await;
    let retries: Vec<usize> = (0..outcomes.len())
        .filter(|i| !outcomes[*i].is_final())
        .collect();
    assert_eq!(retries, [2], "{outcomes:?}");
    let partition = |partition| Partition {
        topic: "requests".into(),
        partition,
    };
    // The delete waited for the submit to be recorded; the failure recorded the delete. Partition 1
    // had nothing to record.
    assert_eq!(ledger.writes(), [(partition(0), 20), (partition(0), 21)]);

    let replay = FakeGateway::default();
    let outcomes = BatchRunner {
        processor: &Processor::new(&replay, &sinks, 5),
        dead_letters: &sinks,
        max_concurrency: 4,
    }
    .process_partitions(&batch, &ledger)
    .await;
    assert!(outcomes.iter().all(Outcome::is_final), "{outcomes:?}");
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
    let outcomes = BatchRunner {
        processor: &Processor::new(&replay, &sinks, 5),
        dead_letters: &sinks,
        max_concurrency: 4,
    }
    .process_partitions(&batch[..2], &ledger)
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
            source: format!("unavailable ({offset})").into(),
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
    let outcomes = BatchRunner {
        processor: &Processor::new(&gateway, &sinks, 5),
        dead_letters: &sinks,
        max_concurrency: 4,
    }
    .process_partitions(&batch, &BrokenLedger)
    .await;
    assert!(outcomes[0].is_final() && outcomes[1].is_final());
    assert!(matches!(&outcomes[2], Outcome::Retry(reason) if reason.contains("unavailable")));
    assert_eq!(outcomes[3], Outcome::Retry(HELD_BACK.into()));
    assert_eq!(gateway.calls(), ["submit a", "submit b"]);
}
