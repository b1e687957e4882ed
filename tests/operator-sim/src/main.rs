//! `operator-sim`: runs the operator simulator against the cluster of a kubeconfig until SIGINT
//! or SIGTERM. Prints `operator-sim ready` on stdout once its watch has listed the existing
//! applications; logs go to stderr (`RUST_LOG`, default `info`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use operator_sim::{Scenario, Settings, SimConfig};
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

/// Simulates the Apache Spark Kubernetes Operator 0.5.0: drives the status of
/// spark.apache.org/v1 SparkApplications through scripted lifecycles.
#[derive(Debug, Parser)]
#[command(name = "operator-sim", version)]
struct Cli {
    /// Kubeconfig file; without it KUBECONFIG, ~/.kube/config, then the in-cluster config.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Context of the kubeconfig to use instead of its current context.
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// Scenario of applications without the operator-sim.spark-gateway.io/scenario annotation:
    /// success, failure, driver-start-timeout, eviction, restart-then-success or stuck.
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
    let config = SimConfig {
        defaults: Settings {
            scenario: cli.default_scenario,
            step: Duration::from_millis(cli.step_millis),
        },
        namespaces: cli.namespaces,
        max_in_flight: cli.max_in_flight.max(1),
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
