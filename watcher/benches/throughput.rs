//! Watcher benchmark: transitions per second, publish latency and resident memory with 10,000
//! applications, against the Kubernetes emulator and operator simulator (in this process) and the
//! local world's Kafka (Tansu), with the watcher binary as a separate process so its memory and CPU
//! are its own.
//!
//! Two phases:
//! 1. **Backlog**: 10,000 applications run to completion while no watcher runs; then the watcher starts
//!    and must publish all 70,000 transitions from the checkpoints (none yet). This measures the
//!    watcher's own throughput, not the simulator's pace.
//! 2. **Live**: with those 10,000 applications tracked, 1,000 more start at 100 per second; the latency
//!    of each event is measured from its transition's `lastTransitionTime` to its arrival at a Kafka
//!    consumer, alongside the watcher's own publish-to-acknowledgement histogram.
//!
//! Run: `cargo bench -p spark-gateway-watcher --bench throughput` with the local world up. Sizes:
//! `WATCHER_BENCH_APPS` (10000), `WATCHER_BENCH_LIVE_APPS` (1000). `WATCHER_BENCH_BINARY` runs another
//! watcher binary (one built from an earlier commit) under the same harness, for before/after numbers.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use jiff::Timestamp;
use kube::api::{Api, DynamicObject, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use kube_emulator::EmulatorConfig;
use operator_sim::{SCENARIO_KEY, STEP_MILLIS_KEY, Scenario, Settings, SimConfig};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use serde_json::json;
use spark_gateway_events::{CompletionEvent, decode_completion_event};
use spark_gateway_harness::kafka::create_topic;
use spark_gateway_harness::process::{self, rss_kib};
use spark_gateway_harness::{LocalWorld, unique_name};
use spark_gateway_watcher::keys::{MANAGED_BY_LABEL, MANAGED_BY_VALUE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

const NAMESPACE: &str = "bench";
const STATES_PER_APP: usize = 7;

fn main() -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn run() -> Result<()> {
    let apps = env_count("WATCHER_BENCH_APPS", 10_000);
    let live_apps = env_count("WATCHER_BENCH_LIVE_APPS", 1_000);
    let bootstrap = LocalWorld::from_env()
        .context("the benchmark needs the local world's Kafka")?
        .kafka_bootstrap()?
        .to_string();
    let topic = tokio::time::timeout(
        Duration::from_secs(30),
        create_topic(&bootstrap, "watcher-bench", 3),
    )
    .await
    .with_context(|| format!("Kafka at {bootstrap} is not reachable; start infra/local/up"))??;

    let emulator = kube_emulator::start(EmulatorConfig {
        history_limit: 2_000_000,
        watch_buffer: 1_000_000,
        ..EmulatorConfig::for_tests().with_namespace(NAMESPACE)
    })
    .await?;
    let yaml = emulator.kubeconfig_yaml(&emulator.token());
    let config = Config::from_custom_kubeconfig(
        Kubeconfig::from_yaml(&yaml)?,
        &KubeConfigOptions::default(),
    )
    .await?;
    let client = Client::try_from(config)?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, &yaml)?;

    let (sim_stop, sim_stopped) = tokio::sync::oneshot::channel::<()>();
    let sim_client = client.clone();
    let simulator = tokio::spawn(async move {
        let config = SimConfig {
            defaults: Settings {
                scenario: Scenario::Success,
                step: Duration::from_millis(200),
            },
            max_in_flight: 128,
            // The benchmark measures the watcher, which reads no pod of a succeeding application:
            // the simulator's pod writes would only load the shared emulator.
            driver_pods: false,
            ..SimConfig::default()
        };
        operator_sim::run(sim_client, config, async {
            let _ = sim_stopped.await;
        })
        .await
    });
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NAMESPACE, &operator_sim::api_resource());

    // Baseline: a watcher with nothing to watch.
    let idle_listen = free_address()?;
    let mut idle = spawn_watcher(
        &kubeconfig,
        "default",
        "bench-idle",
        &bootstrap,
        &topic,
        idle_listen,
        &dir.path().join("idle.log"),
    )?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while http_get(idle_listen, "/readyz").await.as_deref() != Some("ready\n") {
        if Instant::now() > deadline {
            bail!("the idle watcher never became ready");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = idle.id().and_then(rss_kib).unwrap_or(0);
    if let Some(pid) = idle.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), idle.wait()).await;

    // Phase 1: the backlog.
    println!("creating {apps} applications (no watcher running)");
    let started = Instant::now();
    create_apps(&api, "backlog", apps, 200, None).await?;
    println!("  created in {:.1} s", started.elapsed().as_secs_f64());
    let control = emulator.control();
    loop {
        let done = control
            .objects("spark.apache.org", "sparkapplications")
            .iter()
            .filter(|o| o["status"]["currentState"]["currentStateSummary"] == "ResourceReleased")
            .count();
        if done >= apps {
            break;
        }
        println!(
            "  {done}/{apps} finished ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    println!(
        "  all finished after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let consumer = Arc::new(EventCounter::start(&bootstrap, &topic)?);
    let listen = free_address()?;
    let log = dir.path().join("watcher.log");
    let mut watcher = spawn_watcher(
        &kubeconfig,
        NAMESPACE,
        "bench",
        &bootstrap,
        &topic,
        listen,
        &log,
    )?;
    let pid = watcher.id().context("watcher pid")?;
    let memory = Arc::new(Mutex::new(MemorySamples::default()));
    let sampler = {
        let memory = Arc::clone(&memory);
        tokio::spawn(async move {
            loop {
                if let Some(kib) = rss_kib(pid) {
                    memory.lock().unwrap().record(kib);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };

    let backlog_events = apps * STATES_PER_APP;
    let phase_start = Instant::now();
    let first = consumer.wait_for(1, Duration::from_secs(300)).await?;
    let all = consumer
        .wait_for(backlog_events, Duration::from_secs(1800))
        .await?;
    let backlog_seconds = (all - phase_start).as_secs_f64();
    let publishing_seconds = (all - first).as_secs_f64();
    let backlog_rss = memory.lock().unwrap().clone();
    let backlog_cpu = cpu_seconds(pid);
    println!("backlog: {backlog_events} events in {backlog_seconds:.1} s after start");

    // Phase 2: live applications on top of the 10,000 tracked ones.
    let metrics_before_live = http_get(listen, "/metrics").await.unwrap_or_default();
    consumer.start_latency_window();
    let live_start = Instant::now();
    create_apps(&api, "live", live_apps, 300, Some(100)).await?;
    consumer
        .wait_for(
            backlog_events + live_apps * STATES_PER_APP,
            Duration::from_secs(900),
        )
        .await?;
    let live_seconds = live_start.elapsed().as_secs_f64();
    let latencies = consumer.latencies();
    let metrics = http_get(listen, "/metrics").await.unwrap_or_default();
    let final_rss = rss_kib(pid).unwrap_or(0);
    let peak_rss = memory.lock().unwrap().peak_kib;

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let _ = tokio::time::timeout(Duration::from_secs(30), watcher.wait()).await;
    sampler.abort();

    println!();
    println!("== spark-gateway-watcher benchmark ({apps} applications + {live_apps} live) ==");
    println!(
        "backlog publish: {backlog_events} transitions in {publishing_seconds:.1} s from first to last event"
    );
    println!(
        "  = {:.0} transitions/s (time to first event {:.1} s, incl. listing {apps} applications)",
        backlog_events as f64 / publishing_seconds,
        (first - phase_start).as_secs_f64()
    );
    println!("  watcher CPU for the backlog: {:.1} s", backlog_cpu);
    println!(
        "live: {} transitions of {live_apps} applications in {live_seconds:.1} s",
        live_apps * STATES_PER_APP
    );
    println!(
        "  transition -> consumer latency: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} samples)",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.90),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0),
        latencies.len()
    );
    for (name, label) in [
        ("publish_seconds", "hand-over to producer -> broker ack"),
        (
            "transition_to_ack_seconds",
            "lastTransitionTime -> broker ack",
        ),
    ] {
        let before = histogram(&metrics_before_live, name);
        let backlog = histogram_quantiles(&before, &[0.5, 0.99]);
        let live = histogram_quantiles(
            &difference(&histogram(&metrics, name), &before),
            &[0.5, 0.99],
        );
        println!(
            "  {label} (watcher histogram): live p50 <= {} s, p99 <= {} s; backlog p50 <= {} s, p99 <= {} s",
            live[0], live[1], backlog[0], backlog[1]
        );
    }
    println!(
        "resident memory of the watcher: {:.1} MiB idle (no applications), {:.1} MiB after the backlog, {:.1} MiB peak, {:.1} MiB at the end ({} applications tracked)",
        idle_rss as f64 / 1024.0,
        backlog_rss.last_kib as f64 / 1024.0,
        peak_rss as f64 / 1024.0,
        final_rss as f64 / 1024.0,
        apps + live_apps
    );

    let _ = sim_stop.send(());
    let _ = simulator.await;
    emulator.shutdown().await;
    Ok(())
}

/// Starts the watcher binary for `namespace`, logging to `log`.
fn spawn_watcher(
    kubeconfig: &std::path::Path,
    namespace: &str,
    lease: &str,
    bootstrap: &str,
    topic: &str,
    listen: SocketAddr,
    log: &std::path::Path,
) -> Result<tokio::process::Child> {
    let binary = std::env::var_os("WATCHER_BENCH_BINARY")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_spark-gateway-watcher").into());
    tokio::process::Command::new(binary)
        .arg("run")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "--namespace",
            namespace,
            "--cluster",
            "bench",
            "--kafka-bootstrap-servers",
            bootstrap,
        ])
        .args([
            "--topic",
            topic,
            "--lease-namespace",
            "default",
            "--lease-name",
            lease,
            "--identity",
            lease,
        ])
        .args([
            "--lease-duration-secs",
            "5",
            "--lease-renew-secs",
            "1",
            "--listen",
            &listen.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .kill_on_drop(true)
        .spawn()
        .context("starting the watcher binary")
}

async fn create_apps(
    api: &Api<DynamicObject>,
    prefix: &str,
    count: usize,
    step_millis: u64,
    per_second: Option<u64>,
) -> Result<()> {
    let prefix = unique_name(prefix);
    let pace = per_second.map(|rate| Duration::from_secs_f64(1.0 / rate as f64));
    let started = Instant::now();
    let results: Vec<Result<()>> = futures::stream::iter(0..count)
        .map(|i| {
            let name = format!("{prefix}-{i}");
            let due = pace.map(|p| started + p * u32::try_from(i).unwrap_or(u32::MAX));
            async move {
                if let Some(due) = due {
                    tokio::time::sleep_until(due).await;
                }
                let object: DynamicObject = serde_json::from_value(json!({
                    "apiVersion": "spark.apache.org/v1",
                    "kind": "SparkApplication",
                    "metadata": {
                        "name": name,
                        "namespace": NAMESPACE,
                        "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, "spark-gateway.io/request-id": name},
                        "annotations": {SCENARIO_KEY: "success", STEP_MILLIS_KEY: step_millis.to_string()},
                    },
                    "spec": {"pyFiles": "local:///opt/spark/pi.py", "runtimeVersions": {"sparkVersion": "4.1.0"}},
                }))?;
                api.create(&PostParams::default(), &object).await?;
                Ok(())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Counts distinct event ids on the topic and, during the latency window, how late each arrived.
struct EventCounter {
    state: Arc<Mutex<CounterState>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct CounterState {
    ids: HashSet<String>,
    latency_window: bool,
    latencies_ms: Vec<f64>,
}

impl EventCounter {
    fn start(bootstrap: &str, topic: &str) -> Result<Self> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", unique_name("watcher-bench"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            // Return fetches at once: the latency measured should be the watcher's, not the poll's.
            .set("fetch.wait.max.ms", "5")
            .create()?;
        consumer.subscribe(&[topic])?;
        let state = Arc::new(Mutex::new(CounterState::default()));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok(message) = consumer.recv().await else {
                    continue;
                };
                let arrived = Timestamp::now();
                let Some(payload) = message.payload() else {
                    continue;
                };
                let Ok(CompletionEvent::StateChanged(event)) = decode_completion_event(payload)
                else {
                    continue;
                };
                let mut state = shared.lock().unwrap();
                let new = state.ids.insert(event.id);
                if new
                    && state.latency_window
                    && let Some(time) = event.time
                {
                    let ms = arrived.duration_since(time).as_secs_f64() * 1000.0;
                    state.latencies_ms.push(ms);
                }
            }
        });
        Ok(Self { state, task })
    }

    async fn wait_for(&self, count: usize, timeout: Duration) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            let have = self.state.lock().unwrap().ids.len();
            if have >= count {
                return Ok(Instant::now());
            }
            if Instant::now() > deadline {
                bail!("only {have} of {count} events arrived within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn start_latency_window(&self) {
        self.state.lock().unwrap().latency_window = true;
    }

    fn latencies(&self) -> Vec<f64> {
        let mut latencies = self.state.lock().unwrap().latencies_ms.clone();
        latencies.sort_by(f64::total_cmp);
        latencies
    }
}

impl Drop for EventCounter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Debug, Clone, Default)]
struct MemorySamples {
    peak_kib: u64,
    last_kib: u64,
}

impl MemorySamples {
    fn record(&mut self, kib: u64) {
        self.peak_kib = self.peak_kib.max(kib);
        self.last_kib = kib;
    }
}

/// User plus system CPU seconds of a process (0 once it is gone).
fn cpu_seconds(pid: u32) -> f64 {
    process::cpu_time(pid).map_or(0.0, |t| t.as_secs_f64())
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index]
}

/// The cumulative buckets `(upper bound, count)` of a Prometheus histogram in `text`.
fn histogram(text: &str, name: &str) -> Vec<(String, f64)> {
    let prefix = format!("spark_gateway_watcher_{name}_bucket{{le=\"");
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(&prefix)?;
            let (bound, count) = rest.split_once("\"} ")?;
            Some((bound.to_string(), count.trim().parse().ok()?))
        })
        .collect()
}

/// Bucket counts of `after` minus those of `before` (the observations in between).
fn difference(after: &[(String, f64)], before: &[(String, f64)]) -> Vec<(String, f64)> {
    after
        .iter()
        .map(|(bound, count)| {
            let earlier = before
                .iter()
                .find(|(b, _)| b == bound)
                .map_or(0.0, |(_, c)| *c);
            (bound.clone(), count - earlier)
        })
        .collect()
}

/// Upper bucket bounds containing the quantiles.
fn histogram_quantiles(buckets: &[(String, f64)], quantiles: &[f64]) -> Vec<String> {
    let total = buckets.last().map_or(0.0, |(_, count)| *count);
    quantiles
        .iter()
        .map(|q| {
            buckets
                .iter()
                .find(|(_, count)| *count >= q * total && total > 0.0)
                .map_or_else(|| "n/a".to_string(), |(bound, _)| bound.clone())
        })
        .collect()
}

fn free_address() -> Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

async fn http_get(address: SocketAddr, path: &str) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}
