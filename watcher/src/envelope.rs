//! Turning a planned transition into the CloudEvent and the Kafka record that carries it (pure).
//!
//! Structured mode of the CloudEvents Kafka binding: the whole event is the record value, the
//! `content-type` header says `application/cloudevents+json`, the key is the application's uid (so one
//! application's events share a partition and stay ordered), and the request's `traceparent` travels
//! both as a header and as the distributed-tracing extension attribute.

use jiff::Timestamp;
use spark_gateway_core::apache_v1::StateMeaning;
use spark_gateway_core::links::{LinkTarget, LinkTemplates};
use spark_gateway_events::{
    ApplicationStateChanged, CloudEvent, KafkaRecord, Usage, cluster_event_source,
};

use crate::observation::AppIdentity;
use crate::transitions::Transition;

/// The CloudEvent for `transition` of the application `identity` on `cluster`.
///
/// The event that ends the application (the one with an outcome) also carries the failure detail and
/// `usage`, which the caller computes from the whole observation.
pub fn state_changed_event(
    identity: &AppIdentity,
    cluster: &str,
    transition: &Transition,
    usage: Option<Usage>,
    links: &LinkTemplates,
) -> CloudEvent<ApplicationStateChanged> {
    let target = LinkTarget {
        cluster,
        namespace: &identity.namespace,
        name: &identity.name,
        uid: &identity.uid,
        attempt: transition.attempt,
    };
    let data = ApplicationStateChanged {
        application_name: identity.name.clone(),
        namespace: identity.namespace.clone(),
        cluster: cluster.to_string(),
        uid: identity.uid.clone(),
        request_id: identity.request_id.clone(),
        submitted_by: identity.submitted_by.clone(),
        state: transition.state,
        phase: Some(transition.state.phase()),
        previous_state: transition.previous_state,
        attempt: transition.attempt,
        history_index: transition.history_index,
        message: transition.message.clone(),
        failure: transition.failure.clone(),
        usage: usage.filter(|_| transition.outcome.is_some()),
        links: links.links(&target, transition.state.phase()),
        outcome: transition.outcome.clone(),
        notify: identity.notify.clone(),
    };
    let mut event = CloudEvent::new(data.event_id(), cluster_event_source(cluster), data);
    event.subject = Some(event.data.subject());
    event.time = transition.time;
    event.partitionkey = Some(identity.uid.clone());
    event.traceparent = identity
        .traceparent
        .as_ref()
        .map(|t| t.as_str().to_string());
    event
}

/// A record ready for the broker.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingRecord {
    /// The CloudEvent id (for logs and metrics; the broker does not see it apart from the value).
    pub event_id: String,
    /// The structured-mode record; its key is the application's uid (the event's `partitionkey`).
    pub record: KafkaRecord,
    /// When the transition happened, to measure how far behind publishing runs.
    pub transition_time: Option<Timestamp>,
}

impl OutgoingRecord {
    /// The record for `event`.
    pub fn new(event: &CloudEvent<ApplicationStateChanged>) -> Self {
        Self {
            event_id: event.id.clone(),
            record: KafkaRecord::structured(event),
            transition_time: event.time,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use serde_json::Value;
    use spark_gateway_events::{ApplicationState, Outcome, decode_completion_event};

    use super::*;
    use crate::observation::{Observation, SparkApplication};
    use crate::transitions::{Step, plan};

    fn last_event_of(fixture: &str) -> CloudEvent<ApplicationStateChanged> {
        let path = std::env::var_os("CARGO_MANIFEST_DIR")
            .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
            .join("tests/fixtures")
            .join(fixture);
        let object: SparkApplication =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let observation = Observation::from_object(&object).unwrap();
        let plan = plan(&observation.status, None);
        let Some(Step::Publish(last)) = plan.steps.last() else {
            panic!("nothing to publish")
        };
        state_changed_event(
            &observation.identity,
            "dev",
            last,
            None,
            &LinkTemplates::default(),
        )
    }

    #[test]
    fn the_terminal_event_matches_the_contract_example() {
        let event = last_event_of("succeeded.json");
        let example: Value = serde_json::from_str(include_str!(
            "../../events-schema/examples/application-state-changed.v1/succeeded-outcome.json"
        ))
        .unwrap();
        let ours = serde_json::to_value(&event).unwrap();
        for attribute in [
            "specversion",
            "type",
            "source",
            "datacontenttype",
            "id",
            "partitionkey",
        ] {
            assert_eq!(ours[attribute], example[attribute], "{attribute}");
        }
        assert_eq!(ours["time"], "2026-11-23T10:00:06Z");
        assert_eq!(ours["data"]["state"], "ResourceReleased");
        assert_eq!(ours["data"]["outcome"], example["data"]["outcome"]);
        assert_eq!(event.subject.as_deref(), Some("spark-jobs/pi-ok"));
        assert_eq!(
            event.traceparent.as_deref(),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
    }

    #[test]
    fn the_record_is_a_structured_mode_cloudevent_keyed_by_uid() {
        let event = last_event_of("failed.json");
        let outgoing = OutgoingRecord::new(&event);
        let record = &outgoing.record;
        assert_eq!(record.key, "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f");
        assert_eq!(
            outgoing.event_id,
            "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f/0/6"
        );
        assert_eq!(
            record.headers(),
            [
                ("content-type", "application/cloudevents+json"),
                (
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                )
            ]
        );
        // Subscribers' decoder reads it back as the same event.
        let decoded = decode_completion_event(&record.payload).unwrap();
        assert!(decoded.is_terminal());
        assert_eq!(decoded.id(), outgoing.event_id);
        let spark_gateway_events::CompletionEvent::StateChanged(decoded) = decoded else {
            panic!("wrong type")
        };
        assert_eq!(decoded.data.state, ApplicationState::ResourceReleased);
        assert!(matches!(decoded.data.outcome, Some(Outcome::Failed { .. })));
    }
}
