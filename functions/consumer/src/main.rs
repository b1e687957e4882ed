//! `spark-gateway-consumer`: the request handlers as a long-running process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use spark_gateway_consumer::{kafka, notify, sqs};
use spark_gateway_handlers::live::{HandlerConfig, LiveHandlers};
use spark_gateway_handlers::sqs::SqsQueue;
use spark_gateway_ops::Health;
use tokio::sync::watch;

/// Consume Spark Gateway job requests from SQS and/or Kafka.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// SQS request queue to long-poll.
    #[arg(long, env = "SPARK_GATEWAY_REQUEST_QUEUE_URL")]
    sqs_queue_url: Option<String>,
    /// Kafka request topic to consume.
    #[arg(long, env = "SPARK_GATEWAY_REQUEST_TOPIC")]
    kafka_topic: Option<String>,
    /// Kafka consumer group.
    #[arg(
        long,
        env = "SPARK_GATEWAY_CONSUMER_GROUP",
        default_value = "spark-gateway-consumer"
    )]
    kafka_group: String,
    /// Deliver the completion topic's events to the notification targets submits named (the
    /// notifier; see `spark_gateway_notify`), reading this topic.
    #[arg(long, env = "SPARK_GATEWAY_NOTIFY_TOPIC")]
    notify_topic: Option<String>,
    /// The notifier's consumer group.
    #[arg(
        long,
        env = "SPARK_GATEWAY_NOTIFY_GROUP",
        default_value = "spark-gateway-notifier"
    )]
    notify_group: String,
    /// Events the notifier delivers at once (1 keeps the topic's order at every target).
    #[arg(long, env = "SPARK_GATEWAY_NOTIFY_CONCURRENCY", default_value_t = 16)]
    notify_concurrency: usize,
    /// Seconds a received SQS message stays invisible (extended while in flight).
    #[arg(long, default_value_t = 60)]
    visibility_timeout_seconds: u64,
    /// Address of /healthz and /readyz.
    #[arg(
        long,
        env = "SPARK_GATEWAY_HEALTH_LISTEN",
        default_value = "127.0.0.1:8089"
    )]
    health_listen: SocketAddr,
    /// JSON logs (as in Lambda) instead of text.
    #[arg(long)]
    json_logs: bool,
}

// One thread: the work is waiting on SQS, the cluster and Kafka, and with worker threads every answer
// is handed from the thread that read it to the one whose task waits for it. Measured with
// `tests/bench-functions`: 14% less CPU per submit and no fewer submits/s than two workers; at about
// 0.3 ms of CPU per submit one thread carries some 3,000 submits/s, and more consumers share a queue.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if args.json_logs {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    if args.sqs_queue_url.is_none() && args.kafka_topic.is_none() && args.notify_topic.is_none() {
        bail!("nothing to consume: set --sqs-queue-url, --kafka-topic and/or --notify-topic");
    }
    // One AWS configuration for the handlers, the SQS source and the Kafka clients' MSK IAM tokens.
    let aws = spark_gateway::aws_sdk_config().await;
    let handlers = if args.sqs_queue_url.is_some() || args.kafka_topic.is_some() {
        let config = HandlerConfig::from_env().context("reading configuration")?;
        let max_deliveries = config.max_deliveries;
        let handlers = LiveHandlers::connect(config, &aws).await?;
        // The default cluster's Vault login, token and connection, in the background: the first
        // messages would otherwise wait for them after their receive (they join it if it is still under
        // way). A failure only logs; the first message meets it again.
        let gateway = Arc::clone(&handlers.gateway);
        tokio::spawn(async move { gateway.warm_up().await });
        // Wrong credentials or certificates stop the consumer here, by name, before it takes any
        // request.
        handlers
            .processor
            .publisher()
            .check(Duration::from_secs(10))
            .await
            .context("checking the completion topic")?;
        Some((Arc::new(handlers), max_deliveries))
    } else {
        None
    };
    let (stop, shutdown) = watch::channel(false);
    let health = Arc::new(Health::default());
    tokio::spawn(spark_gateway_ops::serve(
        spark_gateway_ops::bind(args.health_listen).await?,
        Arc::clone(&health),
        std::future::pending(),
    ));

    let mut tasks = tokio::task::JoinSet::new();
    if let Some(topic) = args.notify_topic.clone() {
        let lookup = |name: &str| std::env::var(name).ok();
        let notifier = spark_gateway_notify::live_notifier(lookup, &aws)
            .context("configuring the notifier")?;
        let kafka = spark_gateway_handlers::live::kafka_settings(lookup, &aws).await?;
        let consumer = kafka::consumer(
            &kafka,
            &args.notify_group,
            &topic,
            aws.credentials_provider(),
        )?;
        let (shutdown, concurrency) = (shutdown.clone(), args.notify_concurrency);
        tasks.spawn(async move {
            let summary = notify::run(&consumer, &notifier, concurrency, shutdown).await;
            tracing::info!(?summary, "notifier stopped");
            anyhow::Ok(())
        });
    }
    if let Some((queue_url, (handlers, _))) = args.sqs_queue_url.clone().zip(handlers.clone()) {
        let source = sqs::SqsSource {
            queue: SqsQueue::new(aws_sdk_sqs::Client::new(&aws), queue_url),
            wait_seconds: 20,
            visibility_timeout: Duration::from_secs(args.visibility_timeout_seconds),
            max_concurrency: handlers.max_concurrency,
        };
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let done = sqs::run(
                &source,
                &handlers.processor,
                &handlers.sqs_dead_letter,
                shutdown,
            )
            .await?;
            tracing::info!(completed = done, "SQS consumer stopped");
            anyhow::Ok(())
        });
    }
    if let Some((topic, (handlers, max_deliveries))) =
        args.kafka_topic.clone().zip(handlers.clone())
    {
        let consumer = kafka::consumer(
            &handlers.kafka,
            &args.kafka_group,
            &topic,
            aws.credentials_provider(),
        )?;
        let shutdown = shutdown.clone();
        tasks.spawn(async move {
            let done = kafka::run(
                &consumer,
                &handlers.processor,
                &handlers.kafka_dead_letter,
                max_deliveries,
                shutdown,
            )
            .await;
            tracing::info!(completed = done, "Kafka consumer stopped");
            anyhow::Ok(())
        });
    }
    health.set_ready(true);
    tracing::info!(sqs = ?args.sqs_queue_url, kafka = ?args.kafka_topic, notify = ?args.notify_topic, "spark-gateway-consumer ready");

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
        Some(result) = tasks.join_next() => { result??; bail!("a consumer loop ended unexpectedly"); }
    }
    tracing::info!("shutting down: finishing in-flight requests");
    health.set_ready(false);
    let _ = stop.send(true);
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(())
}
