//! The job-status Lambda function: GetJobStatus by direct invocation or through a function URL.

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;
use spark_gateway_lambda::status::{StatusFailure, StatusService, handle_status_event};

/// A failed direct invocation, reported to the caller with a specific `errorType`.
#[derive(Debug)]
struct Failure(StatusFailure);

impl From<Failure> for Diagnostic {
    fn from(failure: Failure) -> Self {
        Diagnostic {
            error_type: failure.0.error_type.to_string(),
            error_message: failure.0.message,
        }
    }
}

// One thread: a Lambda sandbox has at most a vCPU or two, and with worker threads every answer is
// read on one thread and handed to the task waiting for it on another, a wake-up that a small VM pays
// for in latency and CPU (`tests/bench-functions` measures both).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    spark_gateway_lambda::init_logging();
    let handlers = spark_gateway_lambda::live_handlers().await?;
    let warm = std::sync::Arc::clone(&handlers.gateway);
    tokio::spawn(async move { warm.warm_up().await });
    let service = &StatusService {
        gateway: &handlers.gateway,
        records: handlers.records.as_ref(),
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // Boxed: the gateway's future is deep enough to exceed the compiler's type-layout depth otherwise.
        Box::pin(handle_status_event(service, event.payload))
            .await
            .map_err(Failure)
    }))
    .await
}
