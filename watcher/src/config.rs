//! Command line and environment: every flag has an environment variable fallback, so the same binary
//! runs from a shell and from a Deployment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use kube::{Client, Config};
use spark_gateway_core::links::{LinkTemplates, TemplateError, UrlTemplate};

use crate::WatcherSettings;
use crate::kafka::KafkaSettings;
use crate::keys::DEFAULT_LABEL_SELECTOR;
use crate::lease::LeaseSettings;
use crate::publisher::PublisherSettings;

/// `spark-gateway-watcher`: publishes SparkApplication transitions to Kafka.
#[derive(Debug, Parser)]
#[command(name = "spark-gateway-watcher", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch applications and publish their transitions (the service).
    Run(Box<RunArgs>),
    /// Remove the watcher's finalizer from every application in scope, when retiring the watcher. Run it
    /// after the watcher is stopped: applications being deleted then go at once, with any events not
    /// yet published lost.
    RemoveFinalizers(ClusterArgs),
}

/// Which cluster and which applications.
#[derive(Debug, Clone, Args)]
pub struct ClusterArgs {
    /// Kubeconfig file; without it the in-cluster service account (or `~/.kube/config`) is used.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current one).
    #[arg(long, env = "WATCHER_KUBE_CONTEXT")]
    pub context: Option<String>,
    /// Namespaces to watch, repeated or comma-separated; none means all namespaces.
    #[arg(long = "namespace", env = "WATCHER_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Label selector of the applications to watch; an empty value selects all.
    #[arg(long, env = "WATCHER_LABEL_SELECTOR", default_value = DEFAULT_LABEL_SELECTOR)]
    pub label_selector: String,
}

/// Log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line (for log collectors).
    Json,
    /// Human-readable lines.
    Text,
}

/// Settings of the service.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Cluster and application selection.
    #[command(flatten)]
    pub cluster_args: ClusterArgs,
    /// The cluster's name in events (the gateway's name for it).
    #[arg(long, env = "WATCHER_CLUSTER")]
    pub cluster: String,
    /// How to reach and authenticate to Kafka (`--kafka-*` / `KAFKA_*`, README: Kafka connection).
    #[command(flatten)]
    pub kafka: spark_gateway_kafka::args::KafkaArgs,
    /// The completion topic.
    #[arg(long, env = "WATCHER_TOPIC", default_value = spark_gateway_events::topics::EVENTS)]
    pub topic: String,
    /// How long the producer retries one record before the watcher retries it (`message.timeout.ms`).
    #[arg(long, env = "WATCHER_DELIVERY_TIMEOUT_SECS", default_value_t = 60)]
    pub delivery_timeout_secs: u64,
    /// Name of the Lease that elects the publishing replica.
    #[arg(
        long,
        env = "WATCHER_LEASE_NAME",
        default_value = "spark-gateway-watcher"
    )]
    pub lease_name: String,
    /// Namespace of the Lease (the watcher's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// This replica's identity in the Lease (default: the pod name, else host name and process id).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Seconds a leader stays leader without renewing.
    #[arg(long, env = "WATCHER_LEASE_DURATION_SECS", default_value_t = 15)]
    pub lease_duration_secs: u64,
    /// Seconds between two lease rounds (renewal or contention).
    #[arg(long, env = "WATCHER_LEASE_RENEW_SECS", default_value_t = 2)]
    pub lease_renew_secs: u64,
    /// Do not add the `spark-gateway.io/watcher` finalizer. Applications deleted while the watcher is
    /// down or behind may then go with their last events unpublished. Finalizers added earlier are
    /// still removed as usual.
    #[arg(long, env = "WATCHER_NO_FINALIZER")]
    pub no_finalizer: bool,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "WATCHER_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Applications synced at once.
    #[arg(long, env = "WATCHER_MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,
    /// Log format.
    #[arg(long, env = "WATCHER_LOG_FORMAT", value_enum, default_value = "json")]
    pub log_format: LogFormat,
    /// S3 bucket of the job records (AWS credentials and endpoint from the usual `AWS_*` settings).
    /// Without it no records are written and `job-status` cannot answer once an application is gone.
    #[arg(long, env = spark_gateway_records::BUCKET_VARIABLE)]
    pub records_bucket: Option<String>,
    /// URL template of a running driver's Spark UI, in the events (placeholders: `{cluster}`,
    /// `{namespace}`, `{name}`, `{uid}`, `{attempt}`, `{app_id}`, `{driver_pod}`).
    #[arg(long, env = "WATCHER_SPARK_UI_URL_TEMPLATE", value_parser = url_template)]
    pub spark_ui_url_template: Option<UrlTemplate>,
    /// URL template of the application in the Spark history server, in the events once it stopped
    /// and in the job record.
    #[arg(long, env = "WATCHER_HISTORY_URL_TEMPLATE", value_parser = url_template)]
    pub history_url_template: Option<UrlTemplate>,
    /// URL template of the driver's logs, in every event and the job record.
    #[arg(long, env = "WATCHER_LOGS_URL_TEMPLATE", value_parser = url_template)]
    pub logs_url_template: Option<UrlTemplate>,
    /// Key prefix of the job records in the bucket.
    #[arg(long, env = spark_gateway_records::PREFIX_VARIABLE, default_value = spark_gateway_records::DEFAULT_PREFIX)]
    pub records_prefix: String,
}

fn url_template(text: &str) -> Result<UrlTemplate, TemplateError> {
    UrlTemplate::new(text)
}

impl RunArgs {
    /// Where job records are kept, when they are.
    pub fn records(&self) -> Option<spark_gateway_records::RecordsConfig> {
        self.records_bucket
            .clone()
            .map(|bucket| spark_gateway_records::RecordsConfig {
                bucket,
                prefix: self.records_prefix.clone(),
            })
    }

    /// The replica's identity: `--identity`/`POD_NAME`, else `<host name>-<process id>`.
    pub fn identity(&self) -> String {
        self.identity.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "watcher".to_string());
            format!("{host}-{}", std::process::id())
        })
    }

    /// The library settings these arguments describe.
    pub fn watcher_settings(&self) -> WatcherSettings {
        WatcherSettings {
            namespaces: self.cluster_args.namespaces.clone(),
            label_selector: Some(self.cluster_args.label_selector.clone())
                .filter(|s| !s.is_empty()),
            publisher: PublisherSettings {
                cluster: self.cluster.clone(),
                finalizer_enabled: !self.no_finalizer,
                max_in_flight: self.max_in_flight,
                max_retry_delay: Duration::from_secs(5),
                links: LinkTemplates {
                    spark_ui: self.spark_ui_url_template.clone(),
                    history_server: self.history_url_template.clone(),
                    logs: self.logs_url_template.clone(),
                },
            },
            lease: LeaseSettings {
                name: self.lease_name.clone(),
                namespace: self.lease_namespace.clone(),
                identity: self.identity(),
                lease_duration: Duration::from_secs(self.lease_duration_secs.max(1)),
                renew_interval: Duration::from_secs(self.lease_renew_secs.max(1)),
            },
            flush_timeout: Duration::from_secs(10),
        }
    }

    /// The producer settings.
    pub fn kafka_settings(&self) -> Result<KafkaSettings, spark_gateway_kafka::KafkaConfigError> {
        Ok(KafkaSettings {
            connection: self.kafka.settings()?,
            topic: self.topic.clone(),
            delivery_timeout: Duration::from_secs(self.delivery_timeout_secs.max(1)),
        })
    }
}

/// The Kubernetes client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The kubeconfig file is unreadable or invalid.
    #[error("cannot read kubeconfig {path}")]
    ReadKubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: KubeconfigError,
    },
    /// The kubeconfig does not describe a usable cluster or context.
    #[error("cannot use the kubeconfig")]
    Kubeconfig(#[source] KubeconfigError),
    /// Neither a kubeconfig nor an in-cluster service account was found.
    #[error("cannot find a Kubernetes configuration (no kubeconfig, not in a cluster)")]
    Infer(#[source] kube::config::InferConfigError),
    /// The client could not be built (TLS setup).
    #[error("cannot create the Kubernetes client")]
    Client(#[source] kube::Error),
}

impl ClusterArgs {
    /// A client for the configured cluster.
    pub async fn client(&self) -> Result<Client, ConnectError> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..KubeConfigOptions::default()
        };
        let config = match (&self.kubeconfig, &self.context) {
            (Some(path), _) => {
                let file =
                    Kubeconfig::read_from(path).map_err(|source| ConnectError::ReadKubeconfig {
                        path: path.clone(),
                        source,
                    })?;
                Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(ConnectError::Kubeconfig)?
            }
            (None, Some(_)) => Config::from_kubeconfig(&options)
                .await
                .map_err(ConnectError::Kubeconfig)?,
            (None, None) => Config::infer().await.map_err(ConnectError::Infer)?,
        };
        Client::try_from(config).map_err(ConnectError::Client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).unwrap()
    }

    /// `run --cluster dev --kafka-bootstrap-servers <bootstrap>` and `extra`.
    fn run_args(bootstrap: &str, extra: &[&str]) -> Box<RunArgs> {
        let mut args = vec![
            "spark-gateway-watcher",
            "run",
            "--cluster",
            "dev",
            "--kafka-bootstrap-servers",
            bootstrap,
        ];
        args.extend_from_slice(extra);
        let Command::Run(args) = parse(&args).command else {
            panic!("expected run")
        };
        args
    }

    #[test]
    fn run_takes_flags_with_defaults() {
        let args = run_args(
            "127.0.0.1:9092",
            &[
                "--namespace",
                "a,b",
                "--kafka-security-protocol",
                "sasl_ssl",
                "--kafka-sasl-mechanism",
                "SCRAM-SHA-512",
                "--kafka-sasl-username",
                "watcher",
                "--kafka-sasl-password",
                "pw",
                "--kafka-property",
                "client.rack=use1-az1",
                "--no-finalizer",
            ],
        );
        assert_eq!(args.cluster_args.namespaces, ["a", "b"]);
        assert_eq!(args.cluster_args.label_selector, DEFAULT_LABEL_SELECTOR);
        assert_eq!(args.topic, "spark-gateway.events");
        let kafka = args
            .kafka_settings()
            .expect("valid Kafka settings")
            .connection;
        assert_eq!(kafka.bootstrap_servers, "127.0.0.1:9092");
        assert_eq!(kafka.mechanism(), Some("SCRAM-SHA-512"));
        assert_eq!(
            kafka.properties,
            [("client.rack".to_string(), "use1-az1".to_string())]
        );
        let settings = args.watcher_settings();
        assert!(!settings.publisher.finalizer_enabled);
        assert_eq!(
            settings.label_selector.as_deref(),
            Some(DEFAULT_LABEL_SELECTOR)
        );
        assert_eq!(settings.lease.lease_duration, Duration::from_secs(15));
    }

    #[test]
    fn an_empty_selector_selects_everything() {
        let cli = parse(&[
            "spark-gateway-watcher",
            "remove-finalizers",
            "--label-selector",
            "",
        ]);
        let Command::RemoveFinalizers(args) = cli.command else {
            panic!("expected remove-finalizers")
        };
        assert_eq!(args.label_selector, "");
    }

    #[test]
    fn malformed_or_managed_kafka_properties_are_refused() {
        for property in [
            "novalue",
            "acks=1",
            "ssl.endpoint.identification.algorithm=none",
        ] {
            let args = run_args("x", &["--kafka-property", property]);
            assert!(args.kafka_settings().is_err(), "{property} was accepted");
        }
    }
}
