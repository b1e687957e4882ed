//! `operator-sim`: runs the operator simulator against the cluster of a kubeconfig until SIGINT
//! or SIGTERM. Prints `operator-sim ready` on stdout once its watch has listed the existing
//! applications; logs go to stderr (`RUST_LOG`, default `info`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use operator_sim::real::LocalTarget;
use operator_sim::{RealConfig, Scenario, Settings, SimConfig};
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

/// Simulates the Apache Spark Kubernetes Operator 0.5.0: drives the status of
/// spark.apache.org/v1 SparkApplications through scripted lifecycles, or from real
/// spark-submit runs on this machine (--spark-home).
#[derive(Debug, Parser)]
#[command(name = "operator-sim", version)]
struct Cli {
    /// Kubeconfig file; without it KUBECONFIG, ~/.kube/config, then the in-cluster config.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig to use instead of its current context.
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Scenario of applications without the operator-sim.spark-gateway.io/scenario annotation
    /// (success, failure, scheduling-failure, driver-removed, ...: see the crate docs).
    #[arg(long, value_name = "SCENARIO", default_value = "success")]
    default_scenario: Scenario,
    /// Delay between two states of applications without the
    /// operator-sim.spark-gateway.io/step-millis annotation.
    #[arg(long, value_name = "MILLIS", default_value_t = 300)]
    step_millis: u64,
    /// Namespace to watch (repeat or separate with commas); all namespaces when absent.
    #[arg(long = "namespace", value_name = "NS", value_delimiter = ',')]
    namespaces: Vec<String>,
    /// Requests to the API server in flight at once.
    #[arg(long, value_name = "N", default_value_t = 64)]
    max_in_flight: usize,
    /// A Spark distribution (bin/spark-submit): enables real execution for applications with
    /// the operator-sim.spark-gateway.io/execution=real annotation or label.
    #[arg(long, value_name = "DIR")]
    spark_home: Option<PathBuf>,
    /// Python for PySpark drivers (PYSPARK_PYTHON).
    #[arg(long, value_name = "FILE", requires = "spark_home")]
    spark_python: Option<PathBuf>,
    /// A directory standing in for the image's /opt/spark (repeat; searched in order).
    #[arg(long = "spark-jobs", value_name = "DIR", requires = "spark_home")]
    spark_jobs: Vec<PathBuf>,
    /// Where driver logs go (<dir>/<namespace>/<driver pod>.log).
    #[arg(long, value_name = "DIR", default_value = "spark-drivers")]
    spark_log_dir: PathBuf,
    /// Applications without the execution annotation run for real too.
    #[arg(long, requires = "spark_home")]
    real_by_default: bool,
    /// Where scripted drivers' logs go (<dir>/<namespace>/<driver pod>.log; point the API server's
    /// pods/log there). Default: --spark-log-dir with --spark-home, else none.
    #[arg(long, value_name = "DIR")]
    pod_log_dir: Option<PathBuf>,
    /// Do not keep driver pods (status only, as before pods were simulated).
    #[arg(long)]
    no_driver_pods: bool,
    /// spark-submit processes running at once; more drivers wait as DriverRequested.
    #[arg(long, value_name = "N", default_value_t = 1)]
    max_spark_submits: usize,
    /// N of the local[N] master.
    #[arg(long, value_name = "N", default_value_t = 2)]
    spark_threads: u32,
    /// Upper bound of spark.driver.memory, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    spark_max_driver_memory_mib: u64,
    /// A driver still running after this many seconds is killed (and fails).
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    spark_run_timeout_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let client = operator_sim::connect::client(cli.kubeconfig.as_deref(), cli.context.as_deref())
        .await
        .context("cannot connect to Kubernetes")?;
    let pod_log_dir = cli.pod_log_dir.clone();
    let driver_pods = !cli.no_driver_pods;
    let config = SimConfig {
        defaults: Settings {
            scenario: cli.default_scenario,
            step: Duration::from_millis(cli.step_millis),
        },
        namespaces: cli.namespaces,
        max_in_flight: cli.max_in_flight.max(1),
        real: cli.spark_home.map(|spark_home| RealConfig {
            spark_home,
            python: cli.spark_python,
            target: LocalTarget {
                job_roots: cli.spark_jobs,
                threads: cli.spark_threads,
                max_driver_memory_mib: cli.spark_max_driver_memory_mib,
            },
            log_dir: cli.spark_log_dir,
            max_submits: cli.max_spark_submits.max(1),
            run_timeout: Duration::from_secs(cli.spark_run_timeout_secs),
            by_default: cli.real_by_default,
        }),
        driver_pods,
        pod_log_dir,
        ..SimConfig::default()
    };

    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let shutdown = async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    };
    let ready = || {
        // Scripts wait for this exact line; flush because stdout may be a pipe or a file.
        let mut out = std::io::stdout();
        let _ = writeln!(out, "operator-sim ready");
        let _ = out.flush();
    };
    operator_sim::run_with_ready(client, config, ready, shutdown)
        .await
        .context("operator simulator stopped")
}
