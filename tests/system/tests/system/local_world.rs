//! The local world itself: the real `kubectl` against the emulator and simulator, a kube-rs watcher
//! across a forced 410 Gone, and round trips through LocalStack SQS, Tansu and OpenBao as started by
//! `infra/local/up`.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use kube::api::{Api, DynamicObject, PostParams};
use kube::runtime::watcher;
use operator_sim::api_resource;
use secrecy::ExposeSecret;
use serde_json::json;
use spark_gateway::approle::{CredentialsSource, SecretsManagerCredentials};
use spark_gateway_harness::aws::{TestQueue, localstack_config};
use spark_gateway_harness::kafka::{TopicReader, create_topic, produce, producer};
use spark_gateway_harness::{LocalWorld, SimDefaults, TestCluster, unique_name};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const STEP_MILLIS: u64 = 300;

fn manifest(name: &str, namespace: &str) -> String {
    format!(
        r#"apiVersion: spark.apache.org/v1
kind: SparkApplication
metadata:
  name: {name}
  namespace: {namespace}
  annotations:
    operator-sim.spark-gateway.io/scenario: success
    operator-sim.spark-gateway.io/step-millis: "{STEP_MILLIS}"
spec:
  pyFiles: "local:///opt/spark/examples/src/main/python/pi.py"
  runtimeVersions: {{sparkVersion: "4.1.0"}}
  sparkConf:
    spark.kubernetes.container.image: "apache/spark:4.1.0-python3"
    spark.executor.instances: "2"
"#
    )
}

async fn kubectl(
    kubeconfig: &std::path::Path,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String> {
    let mut command = Command::new("kubectl");
    command
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = command
        .spawn()
        .context("running kubectl (is it installed?)")?;
    if let Some(input) = stdin {
        use tokio::io::AsyncWriteExt;
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input.as_bytes()).await?;
    }
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .context("kubectl did not finish in 60 s")??;
    if !output.status.success() {
        bail!(
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_against_the_local_world_applies_lists_watches_and_deletes() -> Result<()> {
    // Exactly what a person does after `infra/local/up` and `. infra/local/run/env`: the world's
    // kubeconfig (TLS with the emulator's CA, bearer token) and the world's operator simulator.
    let world = LocalWorld::from_env()?;
    let kubeconfig = std::path::PathBuf::from(world.var("KUBECONFIG")?);
    let name = unique_name("pi");

    let applied = kubectl(
        &kubeconfig,
        &["apply", "-f", "-"],
        Some(&manifest(&name, "spark-jobs")),
    )
    .await?;
    assert!(
        applied.contains(&format!("sparkapplication.spark.apache.org/{name} created")),
        "{applied}"
    );

    // Watch from the start: every state the simulator writes must stream by, in order.
    let mut watch = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args([
            "get",
            "sparkapp",
            &name,
            "-n",
            "spark-jobs",
            "-w",
            "--no-headers",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(watch.stdout.take().expect("piped")).lines();
    let mut seen: Vec<String> = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            let state = line
                .split_whitespace()
                .nth(1)
                .unwrap_or_default()
                .to_string();
            if seen.last() != Some(&state) {
                seen.push(state.clone());
            }
            if state == "ResourceReleased" {
                break;
            }
        }
        anyhow::Ok(())
    })
    .await
    .with_context(|| {
        format!("kubectl get -w did not show ResourceReleased in 60 s; saw {seen:?}")
    })??;
    watch.kill().await.ok();
    let expected = [
        "DriverRequested",
        "DriverStarted",
        "DriverReady",
        "RunningHealthy",
        "Succeeded",
        "ResourceReleased",
    ];
    let positions: Vec<usize> = expected
        .iter()
        .map(|state| {
            seen.iter()
                .position(|s| s == state)
                .with_context(|| format!("{state} never shown; saw {seen:?}"))
        })
        .collect::<Result<_>>()?;
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "states out of order: {seen:?}"
    );

    let listed = kubectl(&kubeconfig, &["get", "sparkapp", "-A"], None).await?;
    let header = listed.lines().next().unwrap_or_default();
    assert!(
        header.contains("NAMESPACE") && header.contains("CURRENT STATE") && header.contains("AGE"),
        "{listed}"
    );
    let row = listed
        .lines()
        .find(|l| l.contains(&name))
        .context("application not listed")?;
    assert!(
        row.contains("spark-jobs") && row.contains("ResourceReleased"),
        "{row}"
    );

    // The simulator's finalizer holds the object until it has recorded the shutdown; delete waits.
    let deleted = kubectl(
        &kubeconfig,
        &[
            "delete",
            "sparkapp",
            &name,
            "-n",
            "spark-jobs",
            "--timeout=30s",
        ],
        None,
    )
    .await?;
    assert!(
        deleted.contains(&format!("\"{name}\" deleted")),
        "{deleted}"
    );
    let gone = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["get", "sparkapp", &name, "-n", "spark-jobs"])
        .output()
        .await?;
    assert!(!gone.status.success());
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("NotFound"),
        "{}",
        String::from_utf8_lossy(&gone.stderr)
    );
    Ok(())
}

fn history_states(object: &DynamicObject) -> BTreeMap<u64, String> {
    object
        .data
        .pointer("/status/stateTransitionHistory")
        .and_then(|h| h.as_object())
        .map(|history| {
            history
                .iter()
                .filter_map(|(key, entry)| {
                    Some((
                        key.parse().ok()?,
                        entry.get("currentStateSummary")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_watcher_sees_every_transition_in_order_and_recovers_after_410_gone() -> Result<()>
{
    spark_gateway_harness::init_tracing();
    let cluster = TestCluster::start(&["spark-jobs"], SimDefaults::default()).await?;
    let client = cluster.client().await?;
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), "spark-jobs", &api_resource());
    let name = unique_name("watched");

    let stream = watcher(
        api.clone(),
        watcher::Config::default().fields(&format!("metadata.name={name}")),
    );
    let mut stream = std::pin::pin!(stream);
    let app: DynamicObject = serde_json::from_value(serde_yaml_ng::from_str::<serde_json::Value>(
        &manifest(&name, "spark-jobs"),
    )?)?;
    api.create(&PostParams::default(), &app).await?;

    let mut summaries: Vec<String> = Vec::new();
    let mut history = BTreeMap::new();
    let mut forced_gone = false;
    let lists_before = cluster
        .control()
        .stats()
        .requests
        .get("list")
        .copied()
        .unwrap_or(0);
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(event) = stream.next().await {
            let objects = match event {
                Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
                    vec![object]
                }
                Ok(_) => continue,
                // The watcher reports the 410 and re-lists on its own; keep polling it.
                Err(error) => {
                    tracing::info!(%error, "watcher error (expected once after compaction)");
                    continue;
                }
            };
            for object in objects {
                let summary = object
                    .data
                    .pointer("/status/currentState/currentStateSummary")
                    .and_then(|s| s.as_str())
                    .unwrap_or_default()
                    .to_string();
                history.extend(history_states(&object));
                if summaries.last() != Some(&summary) {
                    summaries.push(summary.clone());
                }
                if summary == "DriverStarted" && !forced_gone {
                    // Everything the watcher could resume from is compacted away, then its connection
                    // drops: the next watch gets 410 Gone and the watcher must re-list.
                    cluster.control().compact_history();
                    cluster.control().drop_watches();
                    forced_gone = true;
                }
                if summary == "ResourceReleased" {
                    return anyhow::Ok(());
                }
            }
        }
        bail!("watch stream ended")
    })
    .await
    .with_context(|| format!("no ResourceReleased in 60 s; saw {summaries:?}"))??;

    assert!(forced_gone, "the test never forced a 410");
    let lists_after = cluster
        .control()
        .stats()
        .requests
        .get("list")
        .copied()
        .unwrap_or(0);
    assert!(
        lists_after > lists_before,
        "the watcher did not re-list after 410 Gone"
    );
    let states: Vec<&str> = history.values().map(String::as_str).collect();
    assert_eq!(
        states,
        [
            "Submitted",
            "DriverRequested",
            "DriverStarted",
            "DriverReady",
            "RunningHealthy",
            "Succeeded",
            "ResourceReleased"
        ]
    );
    let keys: Vec<u64> = history.keys().copied().collect();
    assert_eq!(keys, (0..7).collect::<Vec<_>>());
    // currentState as the watcher saw it only moves forward, whatever it missed while re-listing.
    let order = |state: &str| states.iter().position(|s| *s == state);
    let seen: Vec<usize> = summaries.iter().filter_map(|s| order(s)).collect();
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "watcher saw states out of order: {summaries:?}"
    );
    cluster.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localstack_sqs_delivers_and_redrives_to_the_dead_letter_queue() -> Result<()> {
    let world = LocalWorld::from_env()?;
    let sqs = aws_sdk_sqs::Client::new(&localstack_config(&world).await?);
    let queue = TestQueue::create(&sqs, "it-sqs", 1).await?;
    sqs.send_message()
        .queue_url(&queue.url)
        .message_body("hello")
        .send()
        .await?;
    let received = sqs
        .receive_message()
        .queue_url(&queue.url)
        .wait_time_seconds(5)
        .visibility_timeout(1)
        .send()
        .await?;
    let messages = received.messages.unwrap_or_default();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].body.as_deref(), Some("hello"));
    // Not deleted: after maxReceiveCount (1) receives SQS moves it to the dead-letter queue.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _ = sqs
        .receive_message()
        .queue_url(&queue.url)
        .wait_time_seconds(1)
        .send()
        .await?;
    let dead = sqs
        .receive_message()
        .queue_url(&queue.dlq_url)
        .wait_time_seconds(10)
        .send()
        .await?;
    let dead = dead.messages.unwrap_or_default();
    assert_eq!(dead.len(), 1, "message not redriven to the DLQ");
    assert_eq!(dead[0].body.as_deref(), Some("hello"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tansu_round_trips_a_record() -> Result<()> {
    let world = LocalWorld::from_env()?;
    let topic = create_topic(world.kafka_bootstrap()?, "it-topic", 2).await?;
    let producer = producer(world.kafka_bootstrap()?)?;
    let value = json!({"hello": unique_name("v")}).to_string();
    produce(&producer, &topic, "key-1", &value).await?;
    let reader = TopicReader::new(world.kafka_bootstrap()?, &topic)?;
    let records = reader
        .read_until(Duration::from_secs(30), |records| !records.is_empty())
        .await?;
    assert_eq!(records[0].value, value);
    assert_eq!(records[0].key.as_deref(), Some("key-1"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openbao_gives_the_cluster_token_to_the_approle_from_secrets_manager() -> Result<()> {
    spark_gateway::install_crypto_provider();
    let world = LocalWorld::from_env()?;
    let aws = localstack_config(&world).await?;
    let credentials = SecretsManagerCredentials::new(
        aws_sdk_secretsmanager::Client::new(&aws),
        world.var("SPARK_GATEWAY_APPROLE_SECRET_ID")?,
    )
    .credentials()
    .await?;
    let client = vaultrs::client::VaultClient::new(
        vaultrs::client::VaultClientSettingsBuilder::default()
            .address(world.vault_addr()?)
            .token("")
            .build()?,
    )?;
    let login = vaultrs::auth::approle::login(
        &client,
        "approle",
        credentials.role_id.expose_secret(),
        credentials.secret_id.expose_secret(),
    )
    .await?;
    assert!(
        login.policies.iter().any(|p| p == "spark-gateway"),
        "{:?}",
        login.policies
    );
    let mut client = client;
    vaultrs::client::Client::set_token(&mut client, &login.client_token);
    let secret: BTreeMap<String, String> = vaultrs::kv2::read(
        &client,
        "secret",
        world.var("SPARK_GATEWAY_VAULT_TOKEN_PATH")?,
    )
    .await?;
    assert_eq!(
        secret.get("token").map(String::as_str),
        Some(world.var("SPARK_GATEWAY_CLUSTER_TOKEN")?)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_emulator_started_by_up_answers_kubectl() -> Result<()> {
    let world = LocalWorld::from_env()?;
    let kubeconfig = std::path::PathBuf::from(world.var("KUBECONFIG")?);
    let namespaces = kubectl(&kubeconfig, &["get", "namespaces", "-o", "name"], None).await?;
    assert!(namespaces.contains("namespace/spark-jobs"), "{namespaces}");
    let resources = kubectl(
        &kubeconfig,
        &[
            "api-resources",
            "--api-group=spark.apache.org",
            "--no-headers",
        ],
        None,
    )
    .await?;
    assert!(
        resources.contains("sparkapplications") && resources.contains("sparkapp"),
        "{resources}"
    );
    Ok(())
}
