//! The `spark-gateway-watcher` binary: `run` (the service) and `remove-finalizers` (retiring it).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use spark_gateway_core::error_chain;
use spark_gateway_watcher::config::{Cli, ClusterArgs, Command, LogFormat, RunArgs};
use spark_gateway_watcher::http::{self, Health};
use spark_gateway_watcher::{Applications, KafkaSink, Metrics};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => {
            init_logging(args.log_format);
            run(*args).await
        }
        Command::RemoveFinalizers(args) => {
            init_logging(LogFormat::Text);
            remove_finalizers(args).await
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

async fn run(args: RunArgs) -> Result<()> {
    let settings = args.watcher_settings();
    info!(
        cluster = %args.cluster,
        namespaces = ?settings.namespaces,
        label_selector = ?settings.label_selector,
        topic = %args.topic,
        finalizer = settings.publisher.finalizer_enabled,
        identity = %settings.lease.identity,
        lease = %format!("{}/{}", settings.lease.namespace, settings.lease.name),
        "starting"
    );
    let client = args
        .cluster_args
        .client()
        .await
        .context("connecting to Kubernetes")?;
    let kafka = args
        .kafka_settings()
        .context("reading the Kafka settings")?;
    let sink = Arc::new(KafkaSink::new(&kafka).context("setting up Kafka")?);
    let records = match args.records() {
        Some(records) => {
            info!(bucket = %records.bucket, prefix = %records.prefix, "keeping job records");
            Some(Arc::new(records.s3(&spark_gateway_aws::sdk_config().await)))
        }
        None => {
            warn!("no --records-bucket: job-status cannot answer once an application is gone");
            None
        }
    };
    let metrics = Metrics::new();
    let health = Arc::new(Health::default());

    let (shutdown_sender, shutdown) = watch::channel(false);
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let server = tokio::spawn(http::serve(
        listener,
        Arc::clone(&health),
        metrics.clone(),
        wait_for(shutdown.clone()),
    ));

    // Ready once both servers answer; the checks repeat until they do, so a replica started before the
    // broker is up becomes ready later instead of crash-looping.
    let readiness = {
        let (client, sink, health, mut shutdown) = (
            client.clone(),
            Arc::clone(&sink),
            Arc::clone(&health),
            shutdown.clone(),
        );
        tokio::spawn(async move {
            loop {
                let kube = client.apiserver_version().await;
                let kafka = sink.check_topic(Duration::from_secs(5)).await;
                match (&kube, &kafka) {
                    (Ok(_), Ok(())) => {
                        health.set_ready(true);
                        info!("ready");
                        return;
                    }
                    _ => {
                        if let Err(error) = kube {
                            warn!(error = %error_chain(&error), "Kubernetes API not reachable yet");
                        }
                        if let Err(error) = kafka {
                            warn!(error = %error_chain(&error), "Kafka topic not reachable yet");
                        }
                    }
                }
                tokio::select! {
                    _ = shutdown.wait_for(|stop| *stop) => return,
                    () = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
        })
    };

    let signals = async {
        let mut terminate = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
        tokio::select! {
            _ = terminate.recv() => info!("SIGTERM: shutting down"),
            _ = tokio::signal::ctrl_c() => info!("SIGINT: shutting down"),
        }
        health.set_ready(false);
    };
    spark_gateway_watcher::run(client, sink, records, settings, metrics, signals).await;
    let _ = shutdown_sender.send(true);
    let _ = readiness.await;
    let _ = server.await;
    info!("stopped");
    Ok(())
}

async fn wait_for(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

async fn remove_finalizers(args: ClusterArgs) -> Result<()> {
    let client = args.client().await.context("connecting to Kubernetes")?;
    let selector = Some(args.label_selector.clone()).filter(|s| !s.is_empty());
    let applications = Applications::new(client, &args.namespaces, selector);
    let changed = applications
        .remove_finalizers()
        .await
        .context("removing finalizers")?;
    for name in &changed {
        println!("removed finalizer from {name}");
    }
    println!("{} application(s) changed", changed.len());
    Ok(())
}
