//! `kube-emulator`: runs the Kubernetes API emulator as a process for the
//! local world scripts. Prints `kube-emulator ready on <url>` once serving and
//! exits cleanly on SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use kube_emulator::EmulatorConfig;

/// An in-memory Kubernetes API server for tests.
#[derive(Debug, Parser)]
#[command(name = "kube-emulator", version)]
struct Args {
    /// Address of the API server.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Where pods/log reads logs: <dir>/<namespace>/<pod>.log (as the kubelet reads the node's
    /// files); without it every log is empty.
    #[arg(long, value_name = "DIR")]
    pod_log_dir: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long)]
    plain_http: bool,
    /// Address of the plain-HTTP admin API.
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// Directory for ca.crt (an existing CA there is reused).
    #[arg(long)]
    cert_dir: Option<PathBuf>,
    /// Extra host name or IP for the server certificate.
    #[arg(long = "tls-hostname")]
    tls_hostnames: Vec<String>,
    /// CRD YAML file (multi-document allowed); repeatable.
    #[arg(long = "crd")]
    crds: Vec<PathBuf>,
    /// Accepted bearer token; repeatable.
    #[arg(
        long = "token",
        env = "KUBE_EMULATOR_TOKENS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    tokens: Vec<String>,
    /// Accepted read-only bearer token; repeatable.
    #[arg(long = "read-only-token", hide_env_values = true)]
    read_only_tokens: Vec<String>,
    /// Manifest whose Roles, ClusterRoles and bindings authorize requests (`FILE`, or `FILE=NAMESPACE`
    /// for namespaced documents without one; by default the `namespace:` of the kustomization.yaml
    /// beside FILE that lists it); repeatable.
    #[arg(long = "rbac-manifest")]
    rbac_manifests: Vec<String>,
    /// Namespace to create at start (default: "default"); repeatable.
    #[arg(long = "namespace")]
    namespaces: Vec<String>,
    /// Serve every API path under this prefix, e.g. /k8s/clusters/dev.
    #[arg(long)]
    path_prefix: Option<String>,
    /// Write a kubeconfig for the first token here.
    #[arg(long)]
    kubeconfig_out: Option<PathBuf>,
    /// Changes kept for watch replay.
    #[arg(long)]
    history_limit: Option<usize>,
    /// Seconds between watch bookmarks.
    #[arg(long)]
    bookmark_interval_secs: Option<u64>,
    /// Watch behaviour: `generous` (long history, nothing expires) or `realistic` (a real API server's
    /// compaction, watch cache, bookmarks and watch timeouts, time-scaled).
    #[arg(long, default_value = "generous")]
    watch_preset: String,
    /// Multiplier of every duration of the realistic preset (0.01: compaction every 3 s).
    #[arg(long, default_value_t = 1.0)]
    watch_time_scale: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    if args.tokens.is_empty() && args.read_only_tokens.is_empty() {
        bail!("no token given: pass --token or set KUBE_EMULATOR_TOKENS");
    }
    if !(args.watch_time_scale.is_finite() && args.watch_time_scale > 0.0) {
        bail!(
            "--watch-time-scale must be a positive number, not {}",
            args.watch_time_scale
        );
    }
    let Some(preset) =
        kube_emulator::watch::WatchPreset::from_name(&args.watch_preset, args.watch_time_scale)
    else {
        bail!(
            "unknown --watch-preset {:?} (generous or realistic)",
            args.watch_preset
        );
    };
    let defaults = EmulatorConfig::default().with_watch_preset(preset);
    let mut config = EmulatorConfig {
        listen: args.listen,
        tls: !args.plain_http,
        cert_dir: args.cert_dir.clone(),
        tls_hostnames: args.tls_hostnames,
        path_prefix: args.path_prefix,
        tokens: args.tokens,
        read_only_tokens: args.read_only_tokens,
        rbac_manifests: args
            .rbac_manifests
            .iter()
            .map(|spec| kube_emulator::rbac::RbacManifest::parse(spec))
            .collect(),
        namespaces: if args.namespaces.is_empty() {
            defaults.namespaces.clone()
        } else {
            args.namespaces
        },
        history_limit: args.history_limit.unwrap_or(defaults.history_limit),
        bookmark_interval: args
            .bookmark_interval_secs
            .map_or(defaults.bookmark_interval, Duration::from_secs),
        admin_listen: args.admin_listen,
        pod_log_dir: args.pod_log_dir,
        ..defaults
    };
    for crd in &args.crds {
        config = config
            .with_crd_file(crd)
            .with_context(|| format!("loading CRDs from {}", crd.display()))?;
    }
    let emulator = kube_emulator::start(config)
        .await
        .context("starting the emulator")?;
    if let Some(path) = &args.kubeconfig_out {
        std::fs::write(path, emulator.kubeconfig_yaml(&emulator.token()))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(admin) = emulator.admin_addr() {
        tracing::info!(%admin, "admin API listening");
    }
    println!("kube-emulator ready on {}", emulator.base_url());
    wait_for_signal().await?;
    tracing::info!("shutting down");
    emulator.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for SIGINT")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
