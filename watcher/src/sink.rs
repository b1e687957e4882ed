//! Where events go: the narrow [`EventSink`] trait the publishing loop depends on, and its error.
//!
//! The production sink is [`KafkaSink`](crate::kafka::KafkaSink); tests substitute fakes (for example
//! one that fails on command) without touching the loop.

use std::future::Future;
use std::time::Duration;

use rdkafka::error::KafkaError;
use spark_gateway_core::{Classify, Disposition};

use crate::envelope::OutgoingRecord;

/// Publishes records and reports when the broker has them.
pub trait EventSink: Send + Sync + 'static {
    /// Publishes one record; resolves once the broker acknowledged it (for Kafka: written to all
    /// in-sync replicas), or with the reason it was not.
    fn publish(
        &self,
        record: &OutgoingRecord,
    ) -> impl Future<Output = Result<(), SinkError>> + Send;

    /// Waits until every record handed over so far is acknowledged or failed, at most `timeout`.
    fn flush(&self, timeout: Duration) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// A record the sink could not publish.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The broker did not acknowledge the record.
    #[error("the broker did not acknowledge event {event_id}")]
    Delivery {
        /// The CloudEvent id.
        event_id: String,
        /// Why.
        #[source]
        source: KafkaError,
    },
    /// Flushing did not finish.
    #[error("flushing the producer did not finish")]
    Flush(#[source] KafkaError),
    /// The brokers refused the connection (credentials, certificate) or did not answer.
    #[error(transparent)]
    Connect(spark_gateway_kafka::ConnectError),
    /// A sink other than Kafka (a test fake) is unavailable.
    #[error("the event sink is unavailable: {0}")]
    Unavailable(String),
}

/// Transient when retrying may succeed without anyone changing anything (a broker restart, a leader
/// election, a network blip), by the Kafka table (`spark_gateway_kafka::is_transient`); otherwise
/// (authorization, a missing topic, a record the broker refuses) configuration: it needs a person, and
/// the watcher retries it too, more slowly, because skipping an event would be a gap.
impl Classify for SinkError {
    fn disposition(&self) -> Disposition {
        Disposition::transient_or_configuration(match self {
            Self::Delivery { source, .. } | Self::Flush(source) => {
                spark_gateway_kafka::is_transient(source)
            }
            Self::Connect(error) => error.is_transient(),
            Self::Unavailable(_) => true,
        })
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::error::RDKafkaErrorCode;

    use super::*;

    fn delivery(code: RDKafkaErrorCode) -> SinkError {
        SinkError::Delivery {
            event_id: "u/0/1".into(),
            source: KafkaError::MessageProduction(code),
        }
    }

    #[test]
    fn outages_are_transient_and_refusals_need_a_person() {
        for code in [
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::BrokerTransportFailure,
            RDKafkaErrorCode::NotEnoughReplicas,
        ] {
            assert_eq!(
                delivery(code).disposition(),
                Disposition::TRANSIENT,
                "{code:?}"
            );
        }
        for code in [
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::MessageSizeTooLarge,
        ] {
            assert_eq!(
                delivery(code).disposition(),
                Disposition::Configuration,
                "{code:?}"
            );
        }
        let cancelled = SinkError::Delivery {
            event_id: "x".into(),
            source: KafkaError::Canceled,
        };
        assert_eq!(cancelled.disposition(), Disposition::Configuration);
    }

    #[test]
    fn messages_name_the_event() {
        assert_eq!(
            delivery(RDKafkaErrorCode::MessageTimedOut).to_string(),
            "the broker did not acknowledge event u/0/1"
        );
    }
}
