//! Authenticated Kafka end to end: the job-requests function (the real binary under the Lambda Runtime
//! API emulator), the consumer and the CLI talk to the local world's TLS + SASL/SCRAM broker, configured
//! only through the `KAFKA_*` variables a deployment sets (the watcher's binary is covered in its own
//! test binary). A wrong password stops the consumer at start with an error that names it.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use lambda_runtime_emulator::{LambdaProcess, Outcome, RuntimeEmulator};
use serde_json::{Value, json};
use spark_gateway_events::{CompletionEvent, JobRequest, RejectionReason, decode_completion_event};
use spark_gateway_harness::kafka::{TopicReader, create_topic_with, produce, producer_with};
use spark_gateway_harness::unique_name;
use spark_gateway_kafka::variables as v;

use super::fixture::{Fixture, seed_request};
use super::lambda::workspace_binary;

const MECHANISM: &str = "SCRAM-SHA-512";
const WAIT: Duration = Duration::from_secs(30);

/// The process environment of a function or the consumer pointed at the secure broker: the fixture's
/// gateway settings, with every Kafka variable replaced.
fn secure_env(
    fixture: &Fixture,
    events_topic: &str,
    dlq_url: &str,
) -> Result<Vec<(String, String)>> {
    let mut env: Vec<(String, String)> = fixture
        .function_env(events_topic, dlq_url)?
        .into_iter()
        .filter(|(name, _)| !name.starts_with("KAFKA_"))
        .collect();
    for (name, value) in fixture.world.secure_kafka_vars(MECHANISM)? {
        env.push((name.to_string(), value));
    }
    Ok(env)
}

/// `env` with the SASL user and password replaced by `KAFKA_SASL_SECRET_ID`, naming a new LocalStack
/// secret that holds them in the event source's format.
async fn with_sasl_secret(
    fixture: &Fixture,
    env: Vec<(String, String)>,
) -> Result<Vec<(String, String)>> {
    let aws = spark_gateway_harness::aws::localstack_config(&fixture.world).await?;
    let secret_id = unique_name("kafka-sasl");
    aws_sdk_secretsmanager::Client::new(&aws)
        .create_secret()
        .name(&secret_id)
        .secret_string(
            json!({"username": fixture.world.var("KAFKA_SECURE_SASL_USERNAME")?,
                   "password": fixture.world.var("KAFKA_SECURE_SASL_PASSWORD")?})
            .to_string(),
        )
        .send()
        .await?;
    let mut env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(name, _)| name != v::SASL_PASSWORD && name != v::SASL_USERNAME)
        .collect();
    env.push((v::SASL_SECRET_ID.into(), secret_id));
    Ok(env)
}

fn rejection_of(records: &[spark_gateway_harness::kafka::Record]) -> Option<RejectionReason> {
    records.iter().find_map(
        |r| match decode_completion_event(r.value.as_bytes()).ok()? {
            CompletionEvent::Rejected(event) => Some(event.data.reason),
            _ => None,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_requests_function_publishes_over_tls_with_scram_credentials_from_secrets_manager()
-> Result<()> {
    let fixture = Fixture::start().await?;
    let kafka = fixture.world.secure_kafka(MECHANISM)?;
    let events_topic = create_topic_with(&kafka, "secure-events", 1).await?;
    // The SAM template gives the function the event source's secret, not the password itself.
    let env = with_sasl_secret(&fixture, secure_env(&fixture, &events_topic, "unused")?).await?;
    let emulator = RuntimeEmulator::start().await?;
    let _process = LambdaProcess::spawn(workspace_binary("job-requests")?, &emulator, env)?;

    let record = |value: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(value)
    };
    let event = json!({
        "eventSource": "aws:SelfManagedKafka",
        "bootstrapServers": fixture.world.var("KAFKA_SECURE_BOOTSTRAP_SERVERS")?,
        "records": {"spark-gateway.requests-0": [{
            "topic": "spark-gateway.requests", "partition": 0, "offset": 3, "timestamp": 1732350000000_i64,
            "timestampType": "CREATE_TIME", "key": record("ns/app"), "value": record("{not json"), "headers": [],
        }]},
    });
    let invocation = emulator.invoke(event, WAIT).await?;
    let Outcome::Response { response } = &invocation.outcome else {
        bail!("{}", invocation.outcome.describe())
    };
    assert_eq!(response, &json!({"processed": 1}));
    let records = TopicReader::with_settings(&kafka, &events_topic)?
        .read_until(WAIT, |records| rejection_of(records).is_some())
        .await?;
    assert_eq!(
        rejection_of(&records),
        Some(RejectionReason::MalformedMessage)
    );
    fixture.cluster.shutdown().await;
    Ok(())
}

fn consumer_command(env: &[(String, String)], topic: &str) -> Result<tokio::process::Command> {
    let mut command = tokio::process::Command::new(workspace_binary("spark-gateway-consumer")?);
    command
        .args([
            "--kafka-topic",
            topic,
            "--kafka-group",
            &unique_name("secure-group"),
        ])
        .args(["--health-listen", "127.0.0.1:0"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    Ok(command)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_reads_and_dead_letters_over_tls_and_stops_on_a_wrong_password() -> Result<()>
{
    let fixture = Fixture::start().await?;
    let kafka = fixture.world.secure_kafka(MECHANISM)?;
    let request_topic = create_topic_with(&kafka, "secure-requests", 1).await?;
    let events_topic = create_topic_with(&kafka, "secure-events", 1).await?;
    let dlq_topic = create_topic_with(&kafka, "secure-dlq", 1).await?;
    let mut env = secure_env(&fixture, &events_topic, "unused")?;
    env.push(("SPARK_GATEWAY_DLQ_TOPIC".into(), dlq_topic.clone()));

    // Credentials from the secret: the group member must connect with them as the producer does.
    let mut consumer = consumer_command(
        &with_sasl_secret(&fixture, env.clone()).await?,
        &request_topic,
    )?
    .spawn()?;
    produce(
        &producer_with(&kafka)?,
        &request_topic,
        "ns/app",
        "{not json",
    )
    .await?;
    let events = TopicReader::with_settings(&kafka, &events_topic)?
        .read_until(WAIT, |records| rejection_of(records).is_some())
        .await?;
    assert_eq!(
        rejection_of(&events),
        Some(RejectionReason::MalformedMessage)
    );
    let dead = TopicReader::with_settings(&kafka, &dlq_topic)?
        .read_until(WAIT, |records| !records.is_empty())
        .await?;
    assert_eq!(dead[0].value, "{not json");
    consumer.start_kill()?;

    let password = fixture.world.var("KAFKA_SECURE_SASL_PASSWORD")?.to_string();
    for (name, value) in &mut env {
        if name == v::SASL_PASSWORD {
            *value = "not-the-password".into();
        }
    }
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        consumer_command(&env, &request_topic)?.output(),
    )
    .await
    .context("the consumer should stop by itself")??;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("Kafka authentication with SCRAM-SHA-512 failed"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&password) && !stderr.contains("not-the-password"),
        "{stderr}"
    );
    fixture.cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_submits_over_tls_with_scram() -> Result<()> {
    let world = spark_gateway_harness::world::LocalWorld::from_env()?;
    let kafka = world.secure_kafka(MECHANISM)?;
    let topic = create_topic_with(&kafka, "secure-cli", 1).await?;
    let request = seed_request()?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("request.json");
    std::fs::write(&file, serde_json::to_vec(&request)?)?;
    let output = tokio::process::Command::new(workspace_binary("spark-gateway")?)
        .arg("submit")
        .arg(&file)
        .args(["--via", "kafka"])
        .env("SPARK_GATEWAY_REQUEST_TOPIC", &topic)
        .envs(world.secure_kafka_vars(MECHANISM)?)
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("Kafka record {topic}/0/")),
        "{stdout}"
    );
    let records = TopicReader::with_settings(&kafka, &topic)?
        .read_until(WAIT, |records| !records.is_empty())
        .await?;
    let sent: Value = serde_json::from_str(&records[0].value)?;
    let JobRequest::Submit(sent) = serde_json::from_value(sent)? else {
        bail!("not a submit")
    };
    assert_eq!(sent.request_id, request.request_id);
    Ok(())
}
