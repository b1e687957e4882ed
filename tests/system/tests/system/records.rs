//! Outcomes that outlive the cluster object: the watcher binary writes each application's job record to
//! LocalStack's S3, and the `job-status` binary answers from it once the operator's
//! `ttlAfterStopMillis: 0` has deleted the SparkApplication (operator 0.5.0 deletes a stopped
//! application as soon as its TTL has passed; the simulator does the same, see `operator-sim`'s
//! `lib.rs`), by name and by request id, in the shape of a live answer with `source: record`.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use lambda_runtime_emulator::{LambdaProcess, Outcome, RuntimeEmulator};
use serde_json::{Value, json};
use spark_gateway_core::apache_v1::HAPPY_PATH;
use spark_gateway_events::ApplicationTolerations;
use spark_gateway_harness::aws::localstack_config;
use spark_gateway_harness::kafka::create_topic;
use spark_gateway_harness::unique_name;

use super::fixture::{Fixture, NAMESPACE, seed_request, with_scenario};
use super::lambda::workspace_binary;

const TIMEOUT: Duration = Duration::from_secs(30);

fn response(outcome: &Outcome) -> Result<&Value> {
    match outcome {
        Outcome::Response { response } => Ok(response),
        other => bail!("expected a response, got {}", other.describe()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_status_answers_from_the_record_after_the_ttl_deleted_the_application() -> Result<()> {
    let fixture = Fixture::start().await?;
    let world = &fixture.world;
    let bootstrap = world.kafka_bootstrap()?.to_string();
    let s3 = spark_gateway_records::s3_client(&localstack_config(world).await?);
    let bucket = unique_name("records");
    s3.create_bucket().bucket(&bucket).send().await?;
    let topic = create_topic(&bootstrap, "records-events", 1).await?;
    let aws_env: Vec<(String, String)> = [
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
    ]
    .into_iter()
    .map(|name| Ok((name.to_string(), world.var(name)?.to_string())))
    .collect::<Result<_>>()?;

    // The watcher as deployed: its own service account, the gateway's name for the cluster.
    let log_dir = tempfile::tempdir()?;
    let log = log_dir.path().join("watcher.log");
    let _watcher = fixture.spawn_watcher(
        &topic,
        "records",
        &["--records-bucket", &bucket],
        &aws_env,
        &log,
    )?;

    let mut request = with_scenario(seed_request()?, "success");
    request.application_tolerations = Some(ApplicationTolerations {
        ttl_after_stop_millis: Some(0),
        ..Default::default()
    });
    let gateway = fixture.gateway().await?;
    gateway.submit(&request).await?;
    let name = request.application_name.clone();

    // Its terminal event, with the usage, then the object goes.
    let terminal = fixture
        .terminal_event(&topic, Duration::from_secs(90), &log)
        .await?;
    assert!(terminal.data.usage.is_some(), "{terminal:?}");
    fixture.wait_for_app(&name, false).await?;

    let emulator = RuntimeEmulator::start().await?;
    let mut env = fixture.function_env("unused", "unused")?;
    env.push(("SPARK_GATEWAY_RECORDS_BUCKET".into(), bucket.clone()));
    let _status = LambdaProcess::spawn(workspace_binary("job-status")?, &emulator, env)?;
    for query in [
        json!({"application_name": name, "namespace": NAMESPACE}),
        json!({"request_id": request.request_id.as_str(), "namespace": NAMESPACE}),
    ] {
        let answer = emulator.invoke(query.clone(), TIMEOUT).await?;
        let status = response(&answer.outcome)?;
        assert_eq!(status["source"], "record", "{query}: {status}");
        assert_eq!(
            status["outcome"],
            json!({"result": "succeeded"}),
            "{status}"
        );
        assert_eq!(status["state"], "ResourceReleased");
        assert_eq!(status["uid"], terminal.data.uid.as_str());
        let states: Vec<&str> = status["history"]
            .as_array()
            .context("history")?
            .iter()
            .filter_map(|entry| entry["state"].as_str())
            .collect();
        let happy_path: Vec<String> = HAPPY_PATH.iter().map(ToString::to_string).collect();
        assert_eq!(states, happy_path);
        assert_eq!(
            status["usage"],
            serde_json::to_value(&terminal.data.usage)?,
            "the record and the event agree"
        );
    }
    // An application that never existed is still a 404, records or not.
    let missing = emulator
        .invoke(
            json!({"request_id": "never-submitted", "namespace": NAMESPACE}),
            TIMEOUT,
        )
        .await?;
    let Outcome::Error(error) = &missing.outcome else {
        bail!("{}", missing.outcome.describe())
    };
    assert_eq!(error.error_type, "NotFound");
    fixture.cluster.shutdown().await;
    Ok(())
}
