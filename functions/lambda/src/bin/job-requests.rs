//! The job-requests Lambda function: SQS events (partial batch responses) and Kafka events (MSK or
//! self-managed) of submit and delete requests. A failed Kafka batch is replayed by Lambda; the replay
//! ledger (`SPARK_GATEWAY_REPLAY_LEDGER_BUCKET`) keeps that replay from re-applying what it finished.

use aws_lambda_events::event::kafka::KafkaEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use spark_gateway_handlers::lambda_events::{handle_kafka_event, handle_sqs_event, kafka_messages};
use spark_gateway_handlers::live::LiveHandlers;

async fn handle(handlers: &LiveHandlers, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let payload = event.payload;
    let source = payload
        .get("eventSource")
        .or_else(|| payload.pointer("/Records/0/eventSource"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match source.as_str() {
        "aws:sqs" => {
            let event: SqsEvent = serde_json::from_value(payload)?;
            let response =
                handle_sqs_event(&handlers.processor, &event, &handlers.sqs_dead_letter, handlers.max_concurrency).await;
            Ok(serde_json::to_value(response)?)
        }
        "aws:kafka" | "aws:SelfManagedKafka" => {
            let event: KafkaEvent = serde_json::from_value(payload)?;
            let messages = kafka_messages(&event)?;
            let applied =
                handle_kafka_event(&handlers.processor, &messages, &handlers.replay_ledger, &handlers.kafka_dead_letter, handlers.max_concurrency).await?;
            Ok(serde_json::json!({ "processed": applied }))
        }
        other => Err(format!("unsupported event source {other:?}: expected aws:sqs, aws:kafka or aws:SelfManagedKafka").into()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    spark_gateway_lambda::init_logging();
    let handlers = spark_gateway_lambda::live_handlers().await?;
    // Overlaps the first event's set-up (Vault, cluster connection, Kafka metadata) with the runtime's
    // first poll instead of doing it all after the event arrives.
    handlers.warm_up();
    let handlers = &handlers;
    lambda_runtime::run(service_fn(move |event| handle(handlers, event))).await
}
