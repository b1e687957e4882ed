//! The notifier Lambda function: a Kafka event source mapping on the completion topic delivers each
//! event to the notification targets its submit named (see `spark_gateway_notify`).

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

// One thread: a Lambda sandbox has at most a vCPU or two, and with worker threads every answer is
// read on one thread and handed to the task waiting for it on another, a wake-up that a small VM pays
// for in latency and CPU (`tests/bench-functions` measures both).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    spark_gateway_lambda::init_logging();
    let aws = spark_gateway::aws_sdk_config().await;
    let notifier = &spark_gateway_notify::live_notifier(|name| std::env::var(name).ok(), &aws)?;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        spark_gateway_lambda::notify::handle(notifier, event.payload)
            .await
            .map_err(Error::from)
    }))
    .await
}
