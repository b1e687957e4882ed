//! `spark-gateway`: the seed gateway's grpcurl examples, event-driven. Submit a request file to SQS or
//! Kafka and watch its states arrive on the completion topic; delete; read the status; follow every
//! event.
//!
//! Configuration comes from the same environment as the functions (`source infra/local/run/env` for the
//! local world): `SPARK_GATEWAY_REQUEST_QUEUE_URL`, `SPARK_GATEWAY_REQUEST_TOPIC`,
//! `KAFKA_BOOTSTRAP_SERVERS`, `SPARK_GATEWAY_EVENTS_TOPIC`, and for `status` the gateway's cluster and
//! Vault settings and `SPARK_GATEWAY_RECORDS_BUCKET` (the job records, for applications already gone).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use spark_gateway_events::{
    CompletionEvent, DeleteJobRequest, GetJobStatusRequest, GetJobStatusResponse, JobLookup,
    JobRequest, NotifyEvents, NotifyTarget, Outcome, RequestId, SubmitJobRequest, decode,
    decode_completion_event,
};
use spark_gateway_handlers::sqs::SqsQueue;
use spark_gateway_handlers::status::{StatusError, job_status};
use spark_gateway_kafka::args::KafkaArgs;
use spark_gateway_kafka::{KafkaContext, KafkaSettings, ProducerProfile};
use spark_gateway_records::RecordsConfig;

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Submit, delete and follow Spark applications through Spark Gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How to reach Kafka (flags before the subcommand, or the KAFKA_* variables).
    #[command(flatten)]
    kafka: KafkaArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Transport {
    Sqs,
    Kafka,
}

/// The application a command is about.
#[derive(Debug, clap::Args)]
struct Application {
    /// Namespace.
    #[arg(long)]
    namespace: String,
    /// Application name.
    #[arg(long)]
    name: String,
    /// Cluster (default: the gateway's default cluster).
    #[arg(long)]
    cluster: Option<String>,
}

impl Application {
    fn query(self) -> GetJobStatusRequest {
        GetJobStatusRequest {
            cluster: self.cluster,
            ..GetJobStatusRequest::by_name(self.namespace, self.name)
        }
    }
}

/// The application a status query is about: by name, or by the request that created it.
#[derive(Debug, clap::Args)]
struct StatusTarget {
    /// Namespace.
    #[arg(long)]
    namespace: String,
    /// Application name.
    #[arg(
        long,
        conflicts_with = "request_id",
        required_unless_present = "request_id"
    )]
    name: Option<String>,
    /// The request id of the submit that created it.
    #[arg(long)]
    request_id: Option<String>,
    /// Cluster (default: the gateway's default cluster).
    #[arg(long)]
    cluster: Option<String>,
}

impl StatusTarget {
    fn query(self) -> Result<GetJobStatusRequest> {
        Ok(GetJobStatusRequest {
            application_name: self.name,
            request_id: self.request_id.map(RequestId::new).transpose()?,
            namespace: self.namespace,
            cluster: self.cluster,
        })
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Submit a request file (the seed's SubmitSparkJob JSON; request_id is generated when missing).
    Submit {
        /// The request file.
        file: PathBuf,
        /// The idempotency key (default: the file's, or a new UUID).
        #[arg(long)]
        request_id: Option<String>,
        /// Where to send it.
        #[arg(long, value_enum, default_value = "sqs")]
        via: Transport,
        /// Show every state as it arrives, until the outcome.
        #[arg(long)]
        wait: bool,
        /// Check the request against the cluster's policy and a server-side dry run without creating
        /// anything; waits for the verdict (exit 0: validated, 2: rejected, with every violation).
        #[arg(long)]
        dry_run: bool,
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// Also deliver the terminal event to this SQS queue (a `notify` target; the cluster's policy
        /// must allow it). Repeatable.
        #[arg(long = "reply-queue", value_name = "QUEUE_URL")]
        reply_queues: Vec<String>,
        /// Also post the terminal event, signed, to this HTTPS URL (a `notify` target). Repeatable.
        #[arg(long = "webhook", value_name = "URL")]
        webhooks: Vec<String>,
    },
    /// Delete an application the gateway created.
    Delete {
        #[command(flatten)]
        application: Application,
        /// Where to send it.
        #[arg(long, value_enum, default_value = "sqs")]
        via: Transport,
        /// Wait until the application is gone.
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = 120)]
        timeout: u64,
    },
    /// Print an application's status (state, outcome, history, failure, usage) as JSON: from the
    /// cluster while the application exists, from its job record afterwards (`"source"` says which).
    Status {
        #[command(flatten)]
        target: StatusTarget,
    },
    /// Print every event on the completion topic, one line each.
    Follow {
        /// Start from the oldest event instead of new ones.
        #[arg(long)]
        from_beginning: bool,
    },
}

fn env(name: &str) -> Result<String> {
    std::env::var(name).with_context(|| {
        format!("{name} is not set (for the local world: source infra/local/run/env)")
    })
}

fn events_topic() -> String {
    std::env::var("SPARK_GATEWAY_EVENTS_TOPIC")
        .unwrap_or_else(|_| spark_gateway_events::topics::EVENTS.into())
}

fn kafka_settings(kafka: &KafkaArgs) -> Result<KafkaSettings> {
    kafka.settings().context(
        "the Kafka settings (for the local world: source infra/local/run/env; README: Kafka connection)",
    )
}

async fn send(via: Transport, kafka: &KafkaArgs, key: &str, body: &str) -> Result<String> {
    match via {
        Transport::Sqs => {
            spark_gateway::install_crypto_provider();
            let queue = SqsQueue::new(
                aws_sdk_sqs::Client::new(&spark_gateway::aws_sdk_config().await),
                env("SPARK_GATEWAY_REQUEST_QUEUE_URL")?,
            );
            let message_id = queue.send(body.to_string(), []).await?;
            Ok(format!("SQS message {message_id}"))
        }
        Transport::Kafka => {
            let topic = env("SPARK_GATEWAY_REQUEST_TOPIC")?;
            let producer = kafka_settings(kafka)?.producer(
                "spark-gateway-cli",
                ProducerProfile::AwaitEachSend {
                    delivery_timeout: Duration::from_secs(10),
                },
                None,
            )?;
            let record = rdkafka::producer::FutureRecord::to(&topic)
                .key(key)
                .payload(body);
            let (partition, offset) = producer
                .send(record, Duration::from_secs(10))
                .await
                .map(|d| (d.partition, d.offset))
                .map_err(|error| producer.explain(error))?;
            Ok(format!("Kafka record {topic}/{partition}/{offset}"))
        }
    }
}

/// A consumer of the completion topic's partitions.
type Reader = BaseConsumer<KafkaContext>;

/// A consumer positioned at the current end of the completion topic, so nothing published after this
/// point is missed (however long the broker takes to assign a group).
fn completion_reader(kafka: &KafkaArgs, from_beginning: bool) -> Result<Reader> {
    let topic = events_topic();
    let settings = kafka_settings(kafka)?;
    let consumer = settings.reader(&format!("spark-gateway-cli-{}", uuid::Uuid::new_v4()))?;
    let partitions = spark_gateway_kafka::check_topic(
        consumer.client(),
        consumer.context().failures(),
        &settings,
        &topic,
        Duration::from_secs(10),
    )
    .with_context(|| format!("the completion topic {topic}"))?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions as i32 {
        let offset = if from_beginning {
            Offset::Beginning
        } else {
            Offset::Offset(
                consumer
                    .fetch_watermarks(&topic, partition, Duration::from_secs(10))?
                    .1,
            )
        };
        assignment.add_partition_offset(&topic, partition, offset)?;
    }
    consumer.assign(&assignment)?;
    Ok(consumer)
}

fn describe(event: &CompletionEvent) -> String {
    let time = |t: Option<jiff::Timestamp>| {
        t.map(|t| t.strftime("%H:%M:%S").to_string())
            .unwrap_or_else(|| "--:--:--".into())
    };
    match event {
        CompletionEvent::StateChanged(e) => {
            let d = &e.data;
            let outcome = match &d.outcome {
                Some(Outcome::Succeeded) => "  => SUCCEEDED".to_string(),
                Some(Outcome::Failed { reason, .. }) => format!("  => FAILED ({reason:?})"),
                Some(Outcome::Cancelled { .. }) => "  => CANCELLED".to_string(),
                None => String::new(),
            };
            format!(
                "{}  {}/{}  attempt {}  {:<36} {}{}",
                time(e.time),
                d.namespace,
                d.application_name,
                d.attempt,
                d.state.as_str(),
                d.message.as_deref().unwrap_or(""),
                outcome
            )
        }
        CompletionEvent::Rejected(e) => {
            let d = &e.data;
            let mut line = format!("{}  REJECTED ({:?}): {}", time(e.time), d.reason, d.message);
            for violation in &d.violations {
                line.push_str(&format!(
                    "\n    {}: {} [{}]",
                    violation.field, violation.message, violation.rule
                ));
            }
            line
        }
        CompletionEvent::Applied(e) => {
            let d = &e.data;
            let uid = d
                .uid
                .as_deref()
                .map(|uid| format!(" (uid {uid})"))
                .unwrap_or_default();
            format!(
                "{}  {}/{}  {} request applied: {:?}{uid}",
                time(e.time),
                d.namespace,
                d.application_name,
                d.action.as_str(),
                d.result
            )
        }
    }
}

/// Prints the events of `request_id` until its terminal one; the exit status says how it ended.
fn wait_for(consumer: &Reader, request_id: &str, timeout: Duration) -> Result<i32> {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let message = message?;
        let Ok(event) = decode_completion_event(message.payload().unwrap_or_default()) else {
            continue;
        };
        if event.request_id() != Some(request_id) {
            continue;
        }
        println!("{}", describe(&event));
        if event.is_terminal() {
            return Ok(match &event {
                CompletionEvent::StateChanged(e)
                    if e.data.outcome.as_ref().is_some_and(Outcome::is_success) =>
                {
                    0
                }
                CompletionEvent::Rejected(_) => 2,
                CompletionEvent::StateChanged(_) => 1,
                CompletionEvent::Applied(_) => 0,
            });
        }
    }
    bail!("no outcome for request {request_id} within {timeout:?}")
}

fn read_submit(file: &PathBuf, request_id: Option<String>) -> Result<SubmitJobRequest> {
    let mut value: Value = serde_json::from_slice(
        &std::fs::read(file).with_context(|| format!("reading {}", file.display()))?,
    )?;
    let object = value
        .as_object_mut()
        .context("the request file must hold a JSON object")?;
    object.remove("action");
    match request_id {
        Some(id) => {
            object.insert("request_id".into(), json!(id));
        }
        None => {
            object
                .entry("request_id")
                .or_insert_with(|| json!(uuid::Uuid::new_v4().to_string()));
        }
    }
    Ok(decode(value.to_string().as_bytes())?)
}

/// Where a status may come from: the cluster only (has the object gone yet?), or also the job
/// records (what happened to it?).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sources {
    Live,
    LiveThenRecord,
}

async fn gateway_status(
    request: &GetJobStatusRequest,
    sources: Sources,
) -> Result<Option<GetJobStatusResponse>> {
    let config = spark_gateway::GatewayConfig::from_env()?;
    let aws = spark_gateway::aws_sdk_config().await;
    let gateway = spark_gateway::live_gateway(config, &aws);
    let records = match sources {
        Sources::Live => None,
        Sources::LiveThenRecord => {
            RecordsConfig::from_lookup(|name| std::env::var(name).ok()).map(|c| c.s3(&aws))
        }
    };
    match job_status(&gateway, records.as_ref(), request).await {
        Ok(status) => Ok(Some(status)),
        Err(StatusError::Gateway(spark_gateway::GatewayError::NotFound { .. })) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let kafka = &cli.kafka;
    let code = match cli.command {
        Command::Submit {
            file,
            request_id,
            via,
            wait,
            dry_run,
            timeout,
            reply_queues,
            webhooks,
        } => {
            let mut request = read_submit(&file, request_id)?;
            request.dry_run |= dry_run;
            request
                .notify
                .extend(reply_queues.into_iter().map(|queue_url| NotifyTarget::Sqs {
                    queue_url,
                    events: NotifyEvents::Terminal,
                }));
            request
                .notify
                .extend(webhooks.into_iter().map(|url| NotifyTarget::Webhook {
                    url,
                    events: NotifyEvents::Terminal,
                }));
            // A dry run's only result is its verdict on the completion topic.
            let wait = wait || request.dry_run;
            let request_id = request.request_id.to_string();
            let key = format!("{}/{}", request.namespace, request.application_name);
            let reader = if wait {
                Some(completion_reader(kafka, false)?)
            } else {
                None
            };
            let body = serde_json::to_string(&JobRequest::Submit(Box::new(request)))?;
            println!(
                "submitted request {request_id} for {key} as {}",
                send(via, kafka, &key, &body).await?
            );
            match reader {
                Some(reader) => tokio::task::block_in_place(|| {
                    wait_for(&reader, &request_id, Duration::from_secs(timeout))
                })?,
                None => 0,
            }
        }
        Command::Delete {
            application,
            via,
            wait,
            timeout,
        } => {
            let query = application.query();
            let namespace = &query.namespace;
            let name = query
                .application_name
                .as_ref()
                .expect("a delete names its application");
            let request = DeleteJobRequest {
                request_id: RequestId::new(uuid::Uuid::new_v4().to_string())?,
                cluster: query.cluster.clone(),
                application_name: name.clone(),
                namespace: namespace.clone(),
                submitted_by: std::env::var("USER").ok(),
                reason: Some("spark-gateway delete".into()),
                traceparent: None,
            };
            let body = serde_json::to_string(&JobRequest::Delete(request.clone()))?;
            println!(
                "delete request {} for {namespace}/{name} as {}",
                request.request_id,
                send(via, kafka, &format!("{namespace}/{name}"), &body).await?
            );
            if wait {
                let deadline = std::time::Instant::now() + Duration::from_secs(timeout);
                while gateway_status(&query, Sources::Live).await?.is_some() {
                    if std::time::Instant::now() > deadline {
                        bail!("{namespace}/{name} still exists after {timeout} s");
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                println!("{namespace}/{name} is gone");
            }
            0
        }
        Command::Status { target } => {
            let query = target.query()?;
            match gateway_status(&query, Sources::LiveThenRecord).await? {
                Some(status) => {
                    println!("{}", serde_json::to_string_pretty(&status)?);
                    0
                }
                None => {
                    let what = match query.lookup()? {
                        JobLookup::Name(name) => name.to_string(),
                        JobLookup::RequestId(id) => format!("the application of request {id}"),
                    };
                    eprintln!("{what} not found in {}", query.namespace);
                    3
                }
            }
        }
        Command::Follow { from_beginning } => {
            let reader = completion_reader(kafka, from_beginning)?;
            tokio::task::block_in_place(|| -> Result<i32> {
                loop {
                    if let Some(message) = reader.poll(Duration::from_millis(500)) {
                        let message = message?;
                        match decode_completion_event(message.payload().unwrap_or_default()) {
                            Ok(event) => println!("{}", describe(&event)),
                            Err(error) => println!("(undecodable event: {error})"),
                        }
                    }
                }
            })?
        }
    };
    std::process::exit(code)
}
