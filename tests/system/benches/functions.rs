//! Benchmark of the request functions against the real local world (run `infra/local/up` first):
//!
//! - cold start of the real `job-requests` Lambda binary under the Runtime API emulator: process start to
//!   its first invocation being polled (init) and to its first response, for an SQS event with one submit
//!   (so the first response includes the Secrets Manager read, the Vault login and the create);
//! - submits per second through the consumer: N submit messages on a fresh SQS queue, consumed into a
//!   private emulator, timed from the consumer's start until all N applications exist.
//!
//! `cargo bench -p spark-gateway-system-tests --bench functions` (release build). Settings:
//! `BENCH_SUBMITS` (default 500), `BENCH_COLD_STARTS` (default 5).

#[path = "../tests/system/fixture.rs"]
#[allow(dead_code)]
mod fixture;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use fixture::{Fixture, seed_request, with_scenario};
use serde_json::json;
use spark_gateway_consumer::sqs::{SqsSource, run};
use spark_gateway_events::JobRequest;
use spark_gateway_handlers::live::{HandlerConfig, LiveHandlers};
use spark_gateway_harness::aws::{TestQueue, localstack_config};
use spark_gateway_harness::kafka::create_topic;
use tokio::sync::watch;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn submit_body() -> Result<String> {
    Ok(serde_json::to_string(&JobRequest::Submit(Box::new(
        with_scenario(seed_request()?, "stuck"),
    )))?)
}

async fn cold_starts(fixture: &Fixture, runs: usize) -> Result<()> {
    let binary = std::env::current_exe()?
        .parent()
        .and_then(|deps| deps.parent())
        .context("bench binary location")?
        .join("job-requests");
    anyhow::ensure!(
        binary.exists(),
        "{} missing: cargo build --release --bins",
        binary.display()
    );
    let events_topic = create_topic(fixture.world.kafka_bootstrap()?, "bench-events", 1).await?;
    let mut env = fixture.function_env(&events_topic, "")?;
    env.push(("RUST_LOG".to_string(), "warn".to_string()));
    let (mut init, mut first) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let event = json!({"Records": [{"messageId": format!("m-{i}"), "body": submit_body()?, "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:bench", "attributes": {"ApproximateReceiveCount": "1"}}]});
        let measured =
            lambda_runtime_emulator::cold_start_with_env(&binary, event, env.clone()).await?;
        measured
            .invocation
            .clone()
            .into_response()
            .context("cold-start invocation failed")?;
        init.push(measured.init);
        first.push(measured.first_response);
    }
    init.sort();
    first.sort();
    println!(
        "cold start ({runs} runs): init median {:?} p90 {:?}; first response median {:?} p90 {:?}",
        percentile(&init, 0.5),
        percentile(&init, 0.9),
        percentile(&first, 0.5),
        percentile(&first, 0.9)
    );
    Ok(())
}

async fn consumer_throughput(fixture: &Fixture, submits: usize) -> Result<()> {
    let aws = localstack_config(&fixture.world).await?;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let queue = TestQueue::create(&sqs, "bench-requests", 5).await?;
    for chunk in (0..submits).collect::<Vec<_>>().chunks(10) {
        let entries = chunk
            .iter()
            .map(|i| {
                Ok(SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(submit_body()?)
                    .build()?)
            })
            .collect::<Result<Vec<_>>>()?;
        sqs.send_message_batch()
            .queue_url(&queue.url)
            .set_entries(Some(entries))
            .send()
            .await?;
    }
    let config = HandlerConfig {
        gateway: fixture.gateway_config()?,
        kafka_bootstrap: fixture.world.kafka_bootstrap()?.to_string(),
        events_topic: create_topic(fixture.world.kafka_bootstrap()?, "bench-events", 1).await?,
        dlq_url: Some(queue.dlq_url.clone()),
        dlq_topic: "unused".into(),
        max_deliveries: 5,
        max_concurrency: 8,
        max_message_bytes: spark_gateway_events::DEFAULT_MAX_MESSAGE_BYTES,
    };
    let handlers = Arc::new(LiveHandlers::with_aws(config, &aws)?);
    let (stop, shutdown) = watch::channel(false);
    let started = Instant::now();
    let consumer = {
        let handlers = Arc::clone(&handlers);
        let source = SqsSource {
            client: sqs.clone(),
            queue_url: queue.url.clone(),
            wait_seconds: 1,
            visibility_timeout: Duration::from_secs(60),
            max_concurrency: 8,
        };
        tokio::spawn(async move {
            run(
                &source,
                &handlers.processor,
                &handlers.sqs_dead_letter,
                shutdown,
            )
            .await
        })
    };
    let control = fixture.cluster.control();
    while control
        .objects("spark.apache.org", "sparkapplications")
        .len()
        < submits
    {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "not all {submits} applications after 600 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(true);
    consumer.await??;
    println!(
        "consumer: {submits} submits from SQS to created SparkApplications in {elapsed:?} = {:.1} submits/s",
        submits as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let fixture = Fixture::start().await?;
    cold_starts(&fixture, env_number("BENCH_COLD_STARTS", 5)).await?;
    consumer_throughput(&fixture, env_number("BENCH_SUBMITS", 500)).await?;
    fixture.cluster.shutdown().await;
    Ok(())
}
