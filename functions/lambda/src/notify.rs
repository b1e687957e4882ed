//! The notifier function's events: a Kafka event source mapping (MSK or self-managed) on the
//! completion topic. Every record goes to [`Notifier::handle`], several at once; when one cannot be
//! finished (its dead-letter copy was not stored) the invocation fails and Lambda delivers the batch
//! again, so targets get each event at least once and never lose one.

use aws_lambda_events::event::kafka::KafkaEvent;
use futures::StreamExt;
use serde_json::Value;
use spark_gateway_notify::{Channels, Handled, Notifier, NotifyDeadLetters, NotifyError};

use crate::requests::{RecordEncodingError, kafka_messages};

/// Records delivered at once.
pub const CONCURRENCY: usize = 16;

/// An event the function cannot handle, or a batch that must be delivered again.
#[derive(Debug, thiserror::Error)]
pub enum NotifyEventError {
    /// Not a Kafka event.
    #[error("not a Kafka event")]
    Shape(#[source] serde_json::Error),
    /// A record is not valid base64.
    #[error(transparent)]
    Encoding(#[from] RecordEncodingError),
    /// Some records must be handled again.
    #[error("{failed} of {total} records must be handled again")]
    Retry {
        /// Records not finished.
        failed: usize,
        /// Records in the batch.
        total: usize,
        /// The first one's error.
        #[source]
        first: NotifyError,
    },
}

/// Handles one invocation; answers `{"records": n, "delivered": d, "dead_lettered": x}`.
pub async fn handle<C: Channels, D: NotifyDeadLetters>(
    notifier: &Notifier<C, D>,
    payload: Value,
) -> Result<Value, NotifyEventError> {
    let event: KafkaEvent = serde_json::from_value(payload).map_err(NotifyEventError::Shape)?;
    let messages = kafka_messages(&event)?;
    let results: Vec<Result<Handled, NotifyError>> = futures::stream::iter(&messages)
        .map(|message| notifier.handle(&message.body))
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let total = results.len();
    let (mut delivered, mut dead_lettered, mut failed, mut first) = (0, 0, 0, None);
    for result in results {
        match result {
            Ok(handled) => {
                delivered += handled.delivered;
                dead_lettered += handled.dead_lettered;
            }
            Err(error) => {
                failed += 1;
                first.get_or_insert(error);
            }
        }
    }
    if let Some(first) = first {
        return Err(NotifyEventError::Retry {
            failed,
            total,
            first,
        });
    }
    Ok(serde_json::json!({
        "records": total,
        "delivered": delivered,
        "dead_lettered": dead_lettered,
    }))
}
