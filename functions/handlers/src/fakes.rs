//! Fakes of the handlers' two seams, for unit tests here and in the crates that drive the handlers (the
//! Lambda functions, the consumer): [`FakeGateway`] answers submits and deletes as told per request id
//! and records the calls; [`FakeSinks`] keeps what was published and dead-lettered, or fails on command.
//! Plus builders of the request messages the tests send. Compiled only with the `fakes` feature.

use std::collections::HashMap;
use std::sync::Mutex;

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use serde_json::json;
use spark_gateway::cluster::ClusterError;
use spark_gateway::{Deleted, GatewayError, Submitted};
use spark_gateway_events::{
    CloudEvent, DeleteJobRequest, FieldViolation, MessageOrigin, RejectionReason, RequestApplied,
    RequestRejected, SubmitJobRequest,
};

use crate::message::InboundMessage;
use crate::processor::Operations;
use crate::sinks::{DeadLetterCopy, DeadLetterSink, EventPublisher, SinkError};

/// How the fake gateway answers one request id.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// Created / deleted (uid `uid`).
    Succeed,
    /// A policy violation on `namespace`.
    Reject,
    /// A policy rejection of the submit's first notification target.
    RejectTarget,
    /// The cluster proxy cannot be reached ("connection refused").
    FailTransiently,
}

/// Submits and deletes answered per request id (default: [`Behaviour::Succeed`]), every call recorded
/// as `submit <name>` / `delete <name>`.
#[derive(Default)]
pub struct FakeGateway {
    behaviour: HashMap<String, Behaviour>,
    calls: Mutex<Vec<String>>,
}

impl FakeGateway {
    /// A gateway answering the request ids of `pairs` as given.
    pub fn with(pairs: &[(&str, Behaviour)]) -> Self {
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
            Behaviour::RejectTarget => Err(GatewayError::Rejected {
                reason: RejectionReason::PolicyViolation,
                message: "1 policy violation(s)".into(),
                violations: vec![FieldViolation {
                    field: "notify[0].url".into(),
                    rule: "notify_allow_list".into(),
                    message: "no".into(),
                }],
            }),
            Behaviour::FailTransiently => Err(GatewayError::Cluster(ClusterError::Transport(
                std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into(),
            ))),
        }
    }

    /// The calls so far, in order.
    pub fn calls(&self) -> Vec<String> {
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

/// The completion topic and the dead-letter destination in memory; with `fail`, every publish fails as
/// an unreachable broker does (dead-lettering still works).
#[derive(Default)]
pub struct FakeSinks {
    /// Fail every publish.
    pub fail: bool,
    /// Published rejections.
    pub events: Mutex<Vec<CloudEvent<RequestRejected>>>,
    /// Published applied events.
    pub applied: Mutex<Vec<CloudEvent<RequestApplied>>>,
    /// Dead-letter copies: body, rejection, whether its event was published.
    pub dead: Mutex<Vec<(Vec<u8>, RequestRejected, bool)>>,
}

impl FakeSinks {
    fn check(&self) -> Result<(), SinkError> {
        if !self.fail {
            return Ok(());
        }
        Err(SinkError::Kafka {
            topic: "events".into(),
            source: spark_gateway_kafka::ConnectError::Unavailable {
                bootstrap: "broker.invalid:9092".into(),
                what: "a send".into(),
                source: Box::new(KafkaError::MessageProduction(
                    RDKafkaErrorCode::BrokerTransportFailure,
                )),
            },
        })
    }
}

impl EventPublisher for FakeSinks {
    async fn publish_applied(&self, event: &CloudEvent<RequestApplied>) -> Result<(), SinkError> {
        self.check()?;
        self.applied.lock().unwrap().push(event.clone());
        Ok(())
    }

    async fn publish_rejection(
        &self,
        event: &CloudEvent<RequestRejected>,
    ) -> Result<(), SinkError> {
        self.check()?;
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }
}

impl DeadLetterSink for FakeSinks {
    async fn dead_letter(&self, copy: &DeadLetterCopy<'_>) -> Result<(), SinkError> {
        self.dead.lock().unwrap().push((
            copy.message.body.clone(),
            copy.rejection.clone(),
            copy.event_published,
        ));
        Ok(())
    }
}

/// A valid submit of application `name` in namespace `ns`, as JSON text.
pub fn submit(id: &str, name: &str) -> String {
    json!({"action": "submit", "request_id": id, "application_name": name, "namespace": "ns",
           "spark_application_type": "Python", "py_files": ["local:///pi.py"], "runtime_versions": {"spark_version": "4.1.0"}})
    .to_string()
}

/// A delete of application `name` in namespace `ns`, as JSON text.
pub fn delete(id: &str, name: &str) -> String {
    json!({"action": "delete", "request_id": id, "application_name": name, "namespace": "ns"})
        .to_string()
}

/// `body` as SQS message `m-<id>` of queue `arn:queue`, delivered `receives` times.
pub fn sqs(body: &str, id: usize, receives: u32) -> InboundMessage {
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

/// `body` as the record at `offset` of partition `partition` of topic `requests`.
pub fn kafka_record(partition: i32, offset: i64, body: String) -> InboundMessage {
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
