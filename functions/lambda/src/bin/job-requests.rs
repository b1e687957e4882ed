//! The job-requests Lambda function: SQS events (partial batch responses) and Kafka events (MSK or
//! self-managed) of submit and delete requests. A failed Kafka batch is replayed by Lambda; the replay
//! ledger (`SPARK_GATEWAY_REPLAY_LEDGER_BUCKET`) keeps that replay from re-applying what it finished.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use spark_gateway_lambda::requests::RequestFunction;

// One thread: a Lambda sandbox has at most a vCPU or two, and with worker threads every answer is
// read on one thread and handed to the task waiting for it on another, a wake-up that a small VM pays
// for in latency and CPU (`tests/bench-functions` measures both).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    spark_gateway_lambda::init_logging();
    let handlers = spark_gateway_lambda::live_handlers().await?;
    // Overlaps the first event's set-up (Vault, cluster connection, Kafka metadata) with the runtime's
    // first poll instead of doing it all after the event arrives.
    handlers.warm_up();
    let function = &RequestFunction {
        processor: &handlers.processor,
        sqs_dead_letter: &handlers.sqs_dead_letter,
        kafka_dead_letter: &handlers.kafka_dead_letter,
        replay_ledger: &handlers.replay_ledger,
        max_concurrency: handlers.max_concurrency,
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        function.handle(event.payload).await.map_err(Error::from)
    }))
    .await
}
