//! The request functions side by side with their Python peer, in one run against the real local world
//! (LocalStack Secrets Manager and SQS, OpenBao, Tansu, the Kubernetes API emulator over TLS). Run it with
//! `tests/bench-functions`, which builds the release binaries, installs the peer's packages and starts the
//! world; absolute times on a shared machine are noisy, so what counts are the ratios of one run.
//!
//! - **Lambda**: the real `job-requests` binary and the Python peer (`peer/job_requests.py`: boto3, hvac, the
//!   kubernetes client and confluent-kafka doing the same submit and publish, clients reused across
//!   invocations), each under the repo's Runtime API emulator. Per round: cold (exec to the first
//!   response, which includes the Secrets Manager read, the AppRole login, the token read, the create and
//!   the acknowledged publish), then `BENCH_WARM` (default 50) single-message submits (median and p99
//!   per event). `BENCH_ROUNDS` rounds (default 3); each round runs every function once, in turn.
//! - **Runtime floor**: `echo-lambda` (a bare `lambda_runtime` binary of the emulator's crate, answering
//!   the same event at once) in the same rounds, and each function's warm median above it: the Runtime
//!   API hand-off is paid by every side alike.
//! - **Memory and CPU**: peak RSS (`VmHWM`) of each function after `BENCH_MEMORY_INVOCATIONS` warm
//!   invocations, and its CPU time (every thread, user and system) per invocation across them.
//! - **Consumer**: `BENCH_SUBMITS` submit messages on a fresh SQS queue, from the consumer process's start
//!   until every message is deleted (so its applied event was acknowledged) and every application exists:
//!   the release `spark-gateway-consumer` and the Python peer's (`peer/consumer.py`), taking turns for
//!   `BENCH_CONSUMER_ROUNDS` rounds (default 3); the median rate of each, and its process's CPU time per
//!   submit and peak RSS.
//!
//! The operator simulator does not run: every side creates its applications in the same API emulator
//! over TLS, and nothing else loads the machine meanwhile.
//!
//! Without `SPARK_GATEWAY_PEER_PYTHON` (the peer's interpreter, which the script sets) only our side runs;
//! `BENCH_PARTS` (default `lambda,consumer`) chooses the parts. `BENCH_BASELINE_DIR`, a folder holding
//! `job-requests` and `spark-gateway-consumer` built from another commit, adds them to the same run, so a
//! change is measured before and after on one machine at one time. A build older than a field of today's
//! configuration refuses it (`unknown field`), so `BENCH_BASELINE_CLUSTER_PATCH`, a JSON merge patch
//! (RFC 7396), is applied to every cluster's entry of `SPARK_GATEWAY_CLUSTERS` for the baseline's
//! processes only: `{"policy":{"notify":null}}` runs the binaries from before callbacks (6375b76).

#[path = "../tests/system/fixture.rs"]
#[allow(dead_code)]
mod fixture;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use fixture::{Fixture, seed_request, with_scenario};
use lambda_runtime_emulator::{LambdaProcess, Outcome, RuntimeEmulator};
use serde_json::{Value, json};
use spark_gateway_events::JobRequest;
use spark_gateway_harness::aws::{TestQueue, localstack_config, queue_message_count};
use spark_gateway_harness::kafka::create_topic;
use spark_gateway_harness::process::{cpu_time, peak_rss_kib};

const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn submit_body() -> Result<String> {
    Ok(serde_json::to_string(&JobRequest::Submit(Box::new(
        with_scenario(seed_request()?, "stuck"),
    )))?)
}

fn sqs_submit_event(id: usize) -> Result<Value> {
    Ok(
        json!({"Records": [{"messageId": format!("m-{id}"), "receiptHandle": format!("h-{id}"), "body": submit_body()?,
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:bench",
        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "", "awsRegion": "us-east-1"}]}),
    )
}

/// A function under test: what to execute under the Runtime API emulator.
struct Function {
    label: &'static str,
    program: PathBuf,
    /// `BENCH_BASELINE_CLUSTER_PATCH`, for the baseline.
    cluster_patch: Option<Value>,
}

/// `BENCH_BASELINE_CLUSTER_PATCH`: the merge patch a baseline's cluster configuration gets.
fn baseline_cluster_patch() -> Result<Option<Value>> {
    std::env::var("BENCH_BASELINE_CLUSTER_PATCH")
        .ok()
        .map(|patch| {
            serde_json::from_str(&patch)
                .context("BENCH_BASELINE_CLUSTER_PATCH is not JSON (a merge patch, RFC 7396)")
        })
        .transpose()
}

/// `env` with `patch` merged into every cluster's entry of `SPARK_GATEWAY_CLUSTERS`.
fn with_cluster_patch(
    mut env: Vec<(String, String)>,
    patch: Option<&Value>,
) -> Result<Vec<(String, String)>> {
    let Some(patch) = patch else {
        return Ok(env);
    };
    let (_, clusters) = env
        .iter_mut()
        .find(|(name, _)| name == "SPARK_GATEWAY_CLUSTERS")
        .context("the function environment has no SPARK_GATEWAY_CLUSTERS")?;
    let mut config: Value = serde_json::from_str(clusters)?;
    for entry in config
        .get_mut("clusters")
        .and_then(Value::as_object_mut)
        .context("SPARK_GATEWAY_CLUSTERS has no clusters")?
        .values_mut()
    {
        json_patch::merge(entry, patch);
    }
    *clusters = config.to_string();
    Ok(env)
}

/// Our binary, built next to this benchmark (`cargo build --release --bins`).
fn workspace_binary(name: &str) -> Result<PathBuf> {
    let binary = std::env::current_exe()?
        .parent()
        .and_then(|deps| deps.parent())
        .context("bench binary location")?
        .join(name);
    ensure!(
        binary.exists(),
        "{} missing: run tests/bench-functions (it builds the release binaries)",
        binary.display()
    );
    Ok(binary)
}

fn peer_dir() -> PathBuf {
    // The package directory cargo or nextest names at run time: a binary reused from another checkout
    // (one shared target dir) would otherwise read that checkout's files.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("benches/peer")
}

/// The peer started as Lambda starts a function: one executable (a two-line wrapper around its
/// interpreter and script).
fn peer_program(python: &str, script: &str, scratch: &Path) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let wrapper = scratch.join(script.replace(".py", ""));
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec {python} {}\n",
            peer_dir().join(script).display()
        ),
    )?;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))?;
    Ok(wrapper)
}

fn expect_all_applied(outcome: &Outcome) -> Result<()> {
    match outcome {
        Outcome::Response { response } if response == &json!({"batchItemFailures": []}) => Ok(()),
        other => bail!("unexpected answer: {}", other.describe()),
    }
}

/// The peak RSS of a function's process tree (the peer's wrapper execs, so it is one process).
fn function_peak_rss_kib(process: &LambdaProcess) -> Result<u64> {
    peak_rss_kib(process.id().context("process gone")?).context("no VmHWM")
}

fn function_cpu_time(process: &LambdaProcess) -> Result<Duration> {
    cpu_time(process.id().context("process gone")?).context("no CPU time in /proc")
}

#[derive(Default)]
struct LambdaStats {
    cold: Vec<Duration>,
    warm: Vec<Duration>,
    peak_rss_kib: u64,
    /// CPU time per warm event over the memory round's invocations.
    cpu_per_event: Duration,
}

/// What one process of a function measured: its cold start, its warm events, and its peak RSS and CPU
/// time per event across them.
struct LambdaRound {
    cold: Duration,
    warm: Vec<Duration>,
    peak_rss_kib: u64,
    cpu_per_event: Duration,
}

/// One process of `function` under a fresh Runtime API emulator: a cold start, then `warm_count` warm
/// single-message submits. `next_id` numbers the submits across rounds, so every application is new.
async fn lambda_round(
    function: &Function,
    env: &[(String, String)],
    warm_count: usize,
    next_id: &mut usize,
) -> Result<LambdaRound> {
    let mut event = || {
        *next_id += 1;
        sqs_submit_event(*next_id)
    };
    let emulator = RuntimeEmulator::start().await?;
    let mut process = LambdaProcess::spawn(&function.program, &emulator, env.to_vec())?;
    // Queued before the process can poll, so its first `GET /next` is answered at once.
    let first = process.invoke(event()?, INVOKE_TIMEOUT).await?;
    expect_all_applied(&first.outcome)
        .with_context(|| format!("{} cold start: {}", function.label, process.stderr()))?;
    let mut warm = Vec::with_capacity(warm_count);
    let cpu_before = function_cpu_time(&process)?;
    for _ in 0..warm_count {
        let invocation = process.invoke(event()?, INVOKE_TIMEOUT).await?;
        expect_all_applied(&invocation.outcome)?;
        warm.push(
            invocation
                .finished_at
                .saturating_duration_since(invocation.queued_at),
        );
    }
    let round = LambdaRound {
        cold: first
            .finished_at
            .saturating_duration_since(process.spawned_at()),
        warm,
        peak_rss_kib: function_peak_rss_kib(&process)?,
        cpu_per_event: (function_cpu_time(&process)? - cpu_before)
            / u32::try_from(warm_count.max(1))?,
    };
    process.kill().await?;
    emulator.shutdown().await;
    Ok(round)
}

/// `rounds` rounds of a cold start and `warm_per_round` warm events, then one round of
/// `memory_invocations` warm events for the peak RSS and the CPU per event. Every round runs each
/// function once, in turn, so a change in the machine's load between rounds weighs on every side alike
/// (one function's rounds after another's let the same binary score 1.9x and 2.2x the peer in one run).
async fn lambda_rounds(
    fixture: &Fixture,
    functions: &[Function],
    rounds: usize,
    warm_per_round: usize,
    memory_invocations: usize,
) -> Result<Vec<LambdaStats>> {
    let mut envs = Vec::with_capacity(functions.len());
    for function in functions {
        let events_topic =
            create_topic(fixture.world.kafka_bootstrap()?, "bench-events", 1).await?;
        let mut env = with_cluster_patch(
            fixture.function_env(&events_topic, "")?,
            function.cluster_patch.as_ref(),
        )?;
        env.push(("RUST_LOG".to_string(), "warn".to_string()));
        envs.push(env);
    }
    let mut stats: Vec<LambdaStats> = functions.iter().map(|_| LambdaStats::default()).collect();
    let mut next_id = 0;
    for round in 0..=rounds {
        let memory_round = round == rounds;
        for ((function, env), stats) in functions.iter().zip(&envs).zip(&mut stats) {
            let warm_count = if memory_round {
                memory_invocations
            } else {
                warm_per_round
            };
            let measured = lambda_round(function, env, warm_count, &mut next_id).await?;
            if memory_round {
                // The last round only measures memory and CPU across many warm invocations.
                stats.peak_rss_kib = measured.peak_rss_kib;
                stats.cpu_per_event = measured.cpu_per_event;
            } else {
                stats.cold.push(measured.cold);
                stats.warm.extend(measured.warm);
            }
        }
    }
    for stats in &mut stats {
        stats.cold.sort();
        stats.warm.sort();
    }
    Ok(stats)
}

/// Puts `submits` submit messages on the queue; returns the applications they ask for.
async fn fill_queue(
    sqs: &aws_sdk_sqs::Client,
    queue: &TestQueue,
    submits: usize,
) -> Result<Vec<String>> {
    let mut names = Vec::with_capacity(submits);
    for chunk in (0..submits).collect::<Vec<_>>().chunks(10) {
        let entries = chunk
            .iter()
            .map(|i| {
                let request = with_scenario(seed_request()?, "stuck");
                names.push(request.application_name.clone());
                Ok(SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(serde_json::to_string(&JobRequest::Submit(Box::new(
                        request,
                    )))?)
                    .build()?)
            })
            .collect::<Result<Vec<_>>>()?;
        sqs.send_message_batch()
            .queue_url(&queue.url)
            .set_entries(Some(entries))
            .send()
            .await?;
    }
    Ok(names)
}

/// Waits until the queue is drained (a message is deleted only once its outcome is final, its applied
/// event acknowledged) and then checks that every application it asked for exists; returns the time
/// since `started`. The queue is what is polled, not the cluster: listing thousands of objects every few
/// milliseconds would load the machine the measurement runs on. Each poll costs LocalStack as much CPU
/// as a receive, so it polls at the pace of the draining: about twice per the time the messages left
/// would take at the rate so far, every 10 ms near the end and never less often than every 250 ms.
async fn until_done(
    fixture: &Fixture,
    sqs: &aws_sdk_sqs::Client,
    queue: &TestQueue,
    names: &[String],
    started: Instant,
) -> Result<Duration> {
    loop {
        let left = queue_message_count(sqs, &queue.url).await?;
        if left == 0 {
            break;
        }
        let elapsed = started.elapsed();
        ensure!(
            elapsed < Duration::from_secs(600),
            "the queue still holds {left} messages after 600 s"
        );
        let done = (names.len() as u64).saturating_sub(left);
        let pause = if done == 0 {
            Duration::from_millis(50)
        } else {
            elapsed.mul_f64(left as f64 / done as f64 / 2.0)
        };
        tokio::time::sleep(pause.clamp(Duration::from_millis(10), Duration::from_millis(250)))
            .await;
    }
    let elapsed = started.elapsed();
    let existing: std::collections::HashSet<String> = fixture
        .cluster
        .control()
        .objects("spark.apache.org", "sparkapplications")
        .iter()
        .filter_map(|o| o.pointer("/metadata/name")?.as_str().map(str::to_string))
        .collect();
    let missing = names.iter().filter(|n| !existing.contains(*n)).count();
    ensure!(
        missing == 0,
        "{missing} of {} applications were not created",
        names.len()
    );
    Ok(elapsed)
}

/// One consumer run: how long it took to drain the queue, and the CPU time and peak RSS of its process.
struct Drained {
    elapsed: Duration,
    cpu: Duration,
    peak_rss_kib: u64,
}

/// A consumer under test: what to start, with which arguments and cluster patch.
struct Consumer {
    label: &'static str,
    program: PathBuf,
    args: &'static [&'static str],
    cluster_patch: Option<Value>,
}

/// One consumer process (ours or the peer's) draining `submits` messages from a fresh queue.
async fn consumer_throughput(
    fixture: &Fixture,
    consumer: &Consumer,
    submits: usize,
) -> Result<Drained> {
    let aws = localstack_config(&fixture.world).await?;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let queue = TestQueue::create(&sqs, "bench-requests", 5).await?;
    let names = fill_queue(&sqs, &queue, submits).await?;
    let events_topic = create_topic(fixture.world.kafka_bootstrap()?, "bench-events", 1).await?;
    let mut env = with_cluster_patch(
        fixture.function_env(&events_topic, &queue.dlq_url)?,
        consumer.cluster_patch.as_ref(),
    )?;
    env.push(("SPARK_GATEWAY_REQUEST_QUEUE_URL".into(), queue.url.clone()));
    // boto3 reads the region from AWS_DEFAULT_REGION (Lambda sets both).
    env.push((
        "AWS_DEFAULT_REGION".into(),
        fixture.world.var("AWS_REGION")?.to_string(),
    ));
    env.push(("RUST_LOG".into(), "warn".into()));
    let started = Instant::now();
    let mut child = tokio::process::Command::new(&consumer.program)
        .args(consumer.args)
        .envs(env)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let elapsed = tokio::select! {
        elapsed = until_done(fixture, &sqs, &queue, &names, started) => elapsed?,
        status = child.wait() => bail!("{} exited: {status:?}", consumer.program.display()),
    };
    let pid = child.id().context("the consumer is gone")?;
    let cpu = cpu_time(pid).context("the consumer's CPU time")?;
    let peak_rss_kib = peak_rss_kib(pid).context("the consumer's VmHWM")?;
    child.kill().await?;
    Ok(Drained {
        elapsed,
        cpu,
        peak_rss_kib,
    })
}

fn summary(sorted: &[Duration]) -> String {
    format!(
        "{:>8.2} ms (min {:.2}, max {:.2})",
        millis(percentile(sorted, 0.5)),
        millis(sorted[0]),
        millis(sorted[sorted.len() - 1])
    )
}

#[tokio::main]
async fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let mut fixture = Fixture::start().await?;
    // The operator's reaction to each created application (status updates, its driver pod) is not part
    // of the submit path, and on two cores it would take the CPU the functions are measured with; the
    // applications stay as they were created, in the same API emulator, for every side.
    fixture.cluster.stop_simulator().await;
    let rounds = env_number("BENCH_ROUNDS", 3);
    let warm = env_number("BENCH_WARM", 50);
    let memory = env_number("BENCH_MEMORY_INVOCATIONS", 1000);
    let submits = env_number("BENCH_SUBMITS", 1000);
    let scratch = tempfile::tempdir()?;
    let python = std::env::var("SPARK_GATEWAY_PEER_PYTHON").ok();
    let parts = std::env::var("BENCH_PARTS").unwrap_or_else(|_| "lambda,consumer".into());

    let baseline = std::env::var_os("BENCH_BASELINE_DIR").map(PathBuf::from);
    let baseline_patch = baseline_cluster_patch()?;
    let mut functions = vec![Function {
        label: "job-requests (Rust)",
        program: workspace_binary("job-requests")?,
        cluster_patch: None,
    }];
    if let Some(dir) = &baseline {
        functions.push(Function {
            label: "job-requests (baseline)",
            program: dir.join("job-requests"),
            cluster_patch: baseline_patch.clone(),
        });
    }
    if let Some(python) = &python {
        functions.push(Function {
            label: "Python peer",
            program: peer_program(python, "job_requests.py", scratch.path())?,
            cluster_patch: None,
        });
    }
    // A bare lambda_runtime binary (`echo-lambda`, which answers an SQS event with no failures at once)
    // in the same rounds: what the Runtime API hand-off alone costs every function here.
    let floor = match workspace_binary("echo-lambda") {
        Ok(program) => {
            functions.push(Function {
                label: "runtime floor (echo-lambda)",
                program,
                cluster_patch: None,
            });
            true
        }
        Err(missing) => {
            println!("(no runtime floor: {missing:#})");
            false
        }
    };
    let mut results = if parts.contains("lambda") {
        lambda_rounds(&fixture, &functions, rounds, warm, memory).await?
    } else {
        Vec::new()
    };
    // Taken out again so that the table's other rows and the ratios are the functions' alone.
    let floor = if floor {
        functions.pop().zip(results.pop())
    } else {
        None
    };
    if results.is_empty() {
        println!("(Lambda part skipped)");
    } else {
        println!(
            "\nLambda, {rounds} rounds of one cold start and {warm} warm single-message SQS submits each:"
        );
        let columns = [
            "cold: exec -> first response",
            "warm: per event, median",
            "warm: p99",
        ];
        println!(
            "{:<28} {:<36} {:<36} {:<12} {:<14} peak RSS after {memory} warm",
            "", columns[0], columns[1], columns[2], "CPU per warm"
        );
        let row = |label: &str, stats: &LambdaStats| {
            println!(
                "{:<28} {:<36} {:<36} {:<12} {:<14} {} MiB",
                label,
                summary(&stats.cold),
                summary(&stats.warm),
                format!("{:.2} ms", millis(percentile(&stats.warm, 0.99))),
                format!("{:.0} µs", stats.cpu_per_event.as_secs_f64() * 1e6),
                stats.peak_rss_kib / 1024
            );
        };
        for (function, stats) in functions.iter().zip(&results) {
            row(function.label, stats);
        }
        if let Some((echo, floor)) = &floor {
            row(echo.label, floor);
        }
        // Every Rust build against the peer (the last function, when it ran).
        if let (Some(peer), true) = (results.last(), python.is_some()) {
            let ratio = |a: Duration, b: Duration| b.as_secs_f64() / a.as_secs_f64();
            for (function, ours) in functions.iter().zip(&results[..results.len() - 1]) {
                // CPU time moves in 10 ms ticks: over a few invocations one side can read zero.
                let cpu_ratio = if ours.cpu_per_event.is_zero() || peer.cpu_per_event.is_zero() {
                    "n/a (under one CPU tick; raise BENCH_MEMORY_INVOCATIONS)".to_string()
                } else {
                    format!("{:.1}x", ratio(ours.cpu_per_event, peer.cpu_per_event))
                };
                println!(
                    "ratio (peer / {}): cold {:.1}x, warm median {:.1}x, warm p99 {:.1}x, CPU per warm event {cpu_ratio}, peak RSS {:.1}x",
                    function.label,
                    ratio(percentile(&ours.cold, 0.5), percentile(&peer.cold, 0.5)),
                    ratio(percentile(&ours.warm, 0.5), percentile(&peer.warm, 0.5)),
                    ratio(percentile(&ours.warm, 0.99), percentile(&peer.warm, 0.99)),
                    peer.peak_rss_kib as f64 / ours.peak_rss_kib.max(1) as f64
                );
            }
            // The ratio of what each function adds to the hand-off both pay.
            if let Some((_, floor)) = &floor {
                let floor_warm = percentile(&floor.warm, 0.5);
                let peer_above = percentile(&peer.warm, 0.5).saturating_sub(floor_warm);
                for (function, ours) in functions.iter().zip(&results[..results.len() - 1]) {
                    let ours_above = percentile(&ours.warm, 0.5).saturating_sub(floor_warm);
                    println!(
                        "above the runtime floor ({:.2} ms): warm median {:.2} ms ({}) vs {:.2} ms (peer), {:.1}x",
                        millis(floor_warm),
                        millis(ours_above),
                        function.label,
                        millis(peer_above),
                        ratio(ours_above.max(Duration::from_micros(1)), peer_above)
                    );
                }
            }
        }
    }

    if !parts.contains("consumer") {
        fixture.cluster.shutdown().await;
        return Ok(());
    }
    // Ours serve health and metrics on a port of their own; the peer has none.
    let ours: &'static [&'static str] = &["--health-listen", "127.0.0.1:0"];
    let mut consumers = vec![Consumer {
        label: "spark-gateway-consumer",
        program: workspace_binary("spark-gateway-consumer")?,
        args: ours,
        cluster_patch: None,
    }];
    if let Some(dir) = &baseline {
        consumers.push(Consumer {
            label: "consumer (baseline)",
            program: dir.join("spark-gateway-consumer"),
            args: ours,
            cluster_patch: baseline_patch,
        });
    }
    if let Some(python) = &python {
        consumers.push(Consumer {
            label: "Python peer consumer",
            program: peer_program(python, "consumer.py", scratch.path())?,
            args: &[],
            cluster_patch: None,
        });
    }
    let consumer_rounds = env_number("BENCH_CONSUMER_ROUNDS", 3).max(1);
    // Rounds alternate between the consumers, so a slow spell of the machine is shared among them.
    let mut runs: Vec<Vec<Drained>> = consumers.iter().map(|_| Vec::new()).collect();
    for _ in 0..consumer_rounds {
        for (consumer, runs) in consumers.iter().zip(&mut runs) {
            runs.push(consumer_throughput(&fixture, consumer, submits).await?);
        }
    }
    println!(
        "\nconsumer: {submits} submits from SQS to created SparkApplications, applied events acknowledged, messages deleted; median of {consumer_rounds} runs each:"
    );
    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let mut rates = Vec::new();
    for (Consumer { label, .. }, runs) in consumers.iter().zip(&runs) {
        let rate = median(
            runs.iter()
                .map(|r| submits as f64 / r.elapsed.as_secs_f64())
                .collect(),
        );
        let cpu = median(
            runs.iter()
                .map(|r| r.cpu.as_secs_f64() * 1e6 / submits as f64)
                .collect(),
        );
        let peak_rss_mib = median(
            runs.iter()
                .map(|r| r.peak_rss_kib as f64 / 1024.0)
                .collect(),
        );
        let all: Vec<String> = runs
            .iter()
            .map(|r| format!("{:.0}", submits as f64 / r.elapsed.as_secs_f64()))
            .collect();
        println!(
            "  {label:<24} {rate:>7.1} submits/s (runs: {}), CPU {cpu:.0} µs per submit, peak RSS {peak_rss_mib:.0} MiB",
            all.join(", ")
        );
        rates.push((label, rate, cpu, peak_rss_mib));
    }
    if let Some((_, peer_rate, peer_cpu, peer_rss)) = rates.last().filter(|_| python.is_some()) {
        for (label, rate, cpu, rss) in &rates[..rates.len() - 1] {
            println!(
                "  ratio ({label} / peer): {:.1}x the submits/s, {:.1}x less CPU per submit, {:.1}x less peak RSS",
                rate / peer_rate,
                peer_cpu / cpu,
                peer_rss / rss.max(1.0)
            );
        }
    }
    fixture.cluster.shutdown().await;
    Ok(())
}
