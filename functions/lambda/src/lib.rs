//! Spark Gateway's AWS Lambda functions. This crate is the only one that knows Lambda's event shapes:
//! [`requests`] (the job-requests function: SQS and Kafka events in, partial-batch responses out) and
//! [`status`] (the job-status function: direct invocations and function URLs) and [`notify`] (the
//! notifier function: Kafka events of the completion topic); the binaries only wire
//! them to `lambda_runtime`. Also the functions' shared start-up: JSON logs for CloudWatch and the
//! handlers built once per execution environment (configuration parsed at init; clients connect on
//! first use and are reused by every later invocation).

pub mod notify;
pub mod requests;
pub mod status;

use spark_gateway_handlers::live::{HandlerConfig, LiveHandlers, SetupError};

/// JSON logs, one object per line, level from `RUST_LOG` (default `info`).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_current_span(false)
        .without_time()
        .init();
}

/// Reads the configuration and builds the handlers; an error here is an init error Lambda reports.
pub async fn live_handlers() -> Result<LiveHandlers, SetupError> {
    LiveHandlers::new(HandlerConfig::from_env()?).await
}
