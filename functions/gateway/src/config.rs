//! The gateway's configuration: clusters (proxy URL, CA, where their token lives in Vault, policy), Vault,
//! and where the AppRole credentials come from. Parsed once at start; a mistake fails there with the
//! variable or field that is wrong, not on the first request.
//!
//! # Environment
//! - `SPARK_GATEWAY_CLUSTERS`: the clusters as JSON ([`ClustersConfig`]), or `SPARK_GATEWAY_CLUSTERS_FILE`:
//!   a file holding that JSON. Without either, one cluster is built from `SPARK_GATEWAY_CLUSTER_NAME`
//!   (default `local`), `SPARK_GATEWAY_CLUSTER_URL`, `SPARK_GATEWAY_CLUSTER_CA_FILE`,
//!   `SPARK_GATEWAY_VAULT_TOKEN_PATH` and `SPARK_GATEWAY_ALLOWED_NAMESPACES` (comma-separated).
//!   The single cluster's images: `SPARK_GATEWAY_ALLOWED_IMAGE_PREFIXES` (comma-separated), or
//!   `SPARK_GATEWAY_ALLOW_ANY_IMAGE=true`; its notification targets: `SPARK_GATEWAY_NOTIFY_SQS_QUEUE_URLS`
//!   and `SPARK_GATEWAY_NOTIFY_WEBHOOK_URLS` (comma-separated URL prefixes; none by default).
//! - `VAULT_ADDR`, `SPARK_GATEWAY_VAULT_APPROLE_MOUNT` (default `approle`), `SPARK_GATEWAY_VAULT_CA_FILE`.
//!   Vault and the cluster proxies must be `https://` unless they are on the loopback interface, or
//!   `SPARK_GATEWAY_VAULT_ALLOW_INSECURE_HTTP=true` / a cluster's `allow_insecure_http: true` says
//!   plain HTTP is meant (a token and the AppRole secret would cross the network in clear).
//! - `SPARK_GATEWAY_APPROLE_SECRET_ID`: the Secrets Manager secret (name or ARN) holding
//!   `{"role_id": ..., "secret_id": ...}` (the Lambda way), or `SPARK_GATEWAY_APPROLE_FILE`: a file with
//!   that JSON (the seed gateway's way).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use spark_gateway_core::Policy;
use spark_gateway_core::links::LinkTemplates;

/// Configuration that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A required variable is missing.
    #[error("{0} is not set")]
    Missing(&'static str),
    /// A variable or file does not parse.
    #[error("{what} is invalid: {message}")]
    Invalid {
        /// Which variable, file or field.
        what: String,
        /// What is wrong.
        message: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// All clusters the gateway can reach.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClustersConfig {
    /// Used when a request names no cluster.
    pub default_cluster: String,
    /// By the name requests use.
    pub clusters: BTreeMap<String, ClusterConfig>,
}

/// One cluster behind its proxy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The cluster proxy URL, where the Kubernetes API paths start (`https://proxy.example/k8s/clusters/dev`).
    pub proxy_url: String,
    /// PEM CA bundle file for the proxy's certificate; absent means the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// KV v2 path (within `kv_mount`) of the secret holding the bearer token.
    #[serde(default = "default_token_path")]
    pub token_path: String,
    /// Key of the token within that secret.
    #[serde(default = "default_token_key")]
    pub token_key: String,
    /// KV v2 mount.
    #[serde(default = "default_kv_mount")]
    pub kv_mount: String,
    /// What requests may do on this cluster.
    pub policy: Policy,
    /// Link templates for status answers (the Spark UI, history server and logs), as the watcher's
    /// `--*-url-template` flags give them to events.
    #[serde(default)]
    pub links: LinkTemplates,
    /// Allow deleting SparkApplications the gateway did not create.
    #[serde(default)]
    pub allow_delete_unmanaged: bool,
    /// Timeout of one API request, in seconds.
    #[serde(default = "default_timeout_seconds")]
    pub request_timeout_seconds: u64,
    /// Accept an `http://` proxy URL that is not on the loopback interface.
    #[serde(default)]
    pub allow_insecure_http: bool,
}

impl ClusterConfig {
    /// The per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_seconds)
    }
}

fn default_token_path() -> String {
    "spark-gateway/cluster-proxy-service/token".to_string()
}
fn default_token_key() -> String {
    "token".to_string()
}
fn default_kv_mount() -> String {
    "secret".to_string()
}
fn default_timeout_seconds() -> u64 {
    10
}

impl ClustersConfig {
    /// The clusters alone, read and checked as [`GatewayConfig::from_lookup`] reads them: for a
    /// component that needs their policies but never calls a cluster (the notifier).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let clusters = clusters_from(&lookup)?;
        clusters.check()?;
        Ok(clusters)
    }

    /// The cluster a request names, or the default one.
    pub fn resolve(&self, requested: Option<&str>) -> Option<(&str, &ClusterConfig)> {
        let name = requested.unwrap_or(&self.default_cluster);
        self.clusters
            .get_key_value(name)
            .map(|(name, config)| (name.as_str(), config))
    }

    fn check(&self) -> Result<(), ConfigError> {
        if !self.clusters.contains_key(&self.default_cluster) {
            return Err(ConfigError::Invalid {
                what: "clusters.default_cluster".into(),
                message: format!(
                    "{:?} is not one of the configured clusters",
                    self.default_cluster
                ),
            });
        }
        for (name, cluster) in &self.clusters {
            cluster
                .policy
                .check()
                .map_err(|message| ConfigError::Invalid {
                    what: format!("clusters.{name}.policy"),
                    message,
                })?;
            check_transport(
                &format!("clusters.{name}.proxy_url"),
                &cluster.proxy_url,
                cluster.allow_insecure_http,
                "allow_insecure_http: true",
            )?;
        }
        Ok(())
    }
}

/// Where Vault is.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// Vault's address.
    pub addr: String,
    /// Mount of the AppRole auth method.
    pub approle_mount: String,
    /// PEM CA bundle for Vault's certificate.
    pub ca_file: Option<PathBuf>,
    /// Timeout of one Vault request.
    pub timeout: Duration,
}

/// Where the AppRole role_id and secret_id come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppRoleSource {
    /// An AWS Secrets Manager secret (name or ARN) with `role_id` and `secret_id`.
    SecretsManager(String),
    /// A JSON file with `role_id` and `secret_id`.
    File(PathBuf),
}

/// Everything the submission service needs.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The clusters.
    pub clusters: ClustersConfig,
    /// Vault.
    pub vault: VaultConfig,
    /// The AppRole credentials' source.
    pub approle: AppRoleSource,
}

impl GatewayConfig {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let clusters = ClustersConfig::from_lookup(&lookup)?;
        let vault_addr = lookup("VAULT_ADDR").ok_or(ConfigError::Missing("VAULT_ADDR"))?;
        check_transport(
            "VAULT_ADDR",
            &vault_addr,
            flag(&lookup, "SPARK_GATEWAY_VAULT_ALLOW_INSECURE_HTTP")?,
            "SPARK_GATEWAY_VAULT_ALLOW_INSECURE_HTTP=true",
        )?;
        let vault = VaultConfig {
            addr: vault_addr,
            approle_mount: lookup("SPARK_GATEWAY_VAULT_APPROLE_MOUNT")
                .unwrap_or_else(|| "approle".into()),
            ca_file: lookup("SPARK_GATEWAY_VAULT_CA_FILE").map(PathBuf::from),
            timeout: Duration::from_secs(5),
        };
        let approle = match (
            lookup("SPARK_GATEWAY_APPROLE_SECRET_ID"),
            lookup("SPARK_GATEWAY_APPROLE_FILE"),
        ) {
            (Some(secret), _) => AppRoleSource::SecretsManager(secret),
            (None, Some(file)) => AppRoleSource::File(file.into()),
            (None, None) => {
                return Err(ConfigError::Missing(
                    "SPARK_GATEWAY_APPROLE_SECRET_ID or SPARK_GATEWAY_APPROLE_FILE",
                ));
            }
        };
        Ok(Self {
            clusters,
            vault,
            approle,
        })
    }
}

/// `true` or `false` (absent: false).
fn flag(lookup: &impl Fn(&str) -> Option<String>, name: &str) -> Result<bool, ConfigError> {
    match lookup(name).as_deref().map(str::trim) {
        None | Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ConfigError::Invalid {
            what: name.into(),
            message: format!("{other:?} is not true or false"),
        }),
    }
}

/// `https://`, or `http://` to the loopback interface, or `http://` anywhere when explicitly allowed.
fn check_transport(
    what: &str,
    address: &str,
    allow_insecure_http: bool,
    how_to_allow: &str,
) -> Result<(), ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        what: what.to_string(),
        message,
    };
    let url =
        url::Url::parse(address).map_err(|e| invalid(format!("{address:?} is not a URL: {e}")))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback || allow_insecure_http => Ok(()),
        "http" => Err(invalid(format!(
            "{address:?} is plain HTTP to another host: credentials would cross the network in clear; use https:// (or set {how_to_allow})"
        ))),
        other => Err(invalid(format!(
            "{address:?}: scheme {other} is not http(s)"
        ))),
    }
}

fn clusters_from(lookup: &impl Fn(&str) -> Option<String>) -> Result<ClustersConfig, ConfigError> {
    let parse = |what: String, text: &str| {
        serde_json::from_str::<ClustersConfig>(text).map_err(|e| ConfigError::Invalid {
            what,
            message: e.to_string(),
        })
    };
    if let Some(json) = lookup("SPARK_GATEWAY_CLUSTERS") {
        return parse("SPARK_GATEWAY_CLUSTERS".into(), &json);
    }
    if let Some(path) = lookup("SPARK_GATEWAY_CLUSTERS_FILE") {
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone().into(),
            source,
        })?;
        return parse(path, &text);
    }
    let url = lookup("SPARK_GATEWAY_CLUSTER_URL").ok_or(ConfigError::Missing(
        "SPARK_GATEWAY_CLUSTERS, SPARK_GATEWAY_CLUSTERS_FILE or SPARK_GATEWAY_CLUSTER_URL",
    ))?;
    let name = lookup("SPARK_GATEWAY_CLUSTER_NAME").unwrap_or_else(|| "local".into());
    let namespaces = lookup("SPARK_GATEWAY_ALLOWED_NAMESPACES")
        .ok_or(ConfigError::Missing("SPARK_GATEWAY_ALLOWED_NAMESPACES"))?;
    let mut policy = Policy::allowing_namespaces(
        namespaces
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty()),
    );
    policy.allow_any_image = flag(lookup, "SPARK_GATEWAY_ALLOW_ANY_IMAGE")?;
    if let Some(prefixes) = lookup("SPARK_GATEWAY_ALLOWED_IMAGE_PREFIXES") {
        policy = policy
            .with_image_prefixes(prefixes.split(',').map(str::trim).filter(|p| !p.is_empty()));
    }
    let list = |name: &str| -> Vec<String> {
        lookup(name)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    };
    policy.notify.allowed_sqs_queue_urls = list("SPARK_GATEWAY_NOTIFY_SQS_QUEUE_URLS");
    policy.notify.allowed_webhook_urls = list("SPARK_GATEWAY_NOTIFY_WEBHOOK_URLS");
    let cluster = ClusterConfig {
        proxy_url: url,
        ca_file: lookup("SPARK_GATEWAY_CLUSTER_CA_FILE").map(PathBuf::from),
        token_path: lookup("SPARK_GATEWAY_VAULT_TOKEN_PATH").unwrap_or_else(default_token_path),
        token_key: default_token_key(),
        kv_mount: default_kv_mount(),
        policy,
        links: LinkTemplates::default(),
        allow_delete_unmanaged: false,
        request_timeout_seconds: default_timeout_seconds(),
        allow_insecure_http: flag(lookup, "SPARK_GATEWAY_CLUSTER_ALLOW_INSECURE_HTTP")?,
    };
    Ok(ClustersConfig {
        default_cluster: name.clone(),
        clusters: BTreeMap::from([(name, cluster)]),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn a_single_cluster_comes_from_plain_variables() {
        let config = GatewayConfig::from_lookup(lookup(&[
            ("SPARK_GATEWAY_CLUSTER_URL", "https://127.0.0.1:6443"),
            (
                "SPARK_GATEWAY_ALLOWED_NAMESPACES",
                "spark-jobs, sjns-data-control",
            ),
            ("SPARK_GATEWAY_ALLOWED_IMAGE_PREFIXES", "apache/spark:"),
            (
                "SPARK_GATEWAY_NOTIFY_SQS_QUEUE_URLS",
                "http://127.0.0.1:4566/000000000000/replies-, http://127.0.0.1:4566/000000000000/other",
            ),
            ("VAULT_ADDR", "http://127.0.0.1:8200"),
            (
                "SPARK_GATEWAY_APPROLE_SECRET_ID",
                "spark-gateway/vault-approle",
            ),
        ]))
        .unwrap();
        let (name, cluster) = config.clusters.resolve(None).unwrap();
        assert_eq!(name, "local");
        assert_eq!(cluster.policy.notify.allowed_sqs_queue_urls.len(), 2);
        assert!(cluster.policy.notify.allowed_webhook_urls.is_empty());
        assert_eq!(
            cluster.policy.allowed_namespaces,
            ["spark-jobs", "sjns-data-control"]
        );
        assert_eq!(
            cluster.token_path,
            "spark-gateway/cluster-proxy-service/token"
        );
        assert_eq!(
            config.approle,
            AppRoleSource::SecretsManager("spark-gateway/vault-approle".into())
        );
        assert!(config.clusters.resolve(Some("elsewhere")).is_none());
    }

    #[test]
    fn clusters_json_is_checked_at_load() {
        let json = r#"{"default_cluster": "prod", "clusters": {"dev": {"proxy_url": "https://dev", "policy": {"allowed_namespaces": ["a"], "allow_any_image": true}}}}"#;
        let error = GatewayConfig::from_lookup(lookup(&[
            ("SPARK_GATEWAY_CLUSTERS", json),
            ("VAULT_ADDR", "https://v"),
            ("SPARK_GATEWAY_APPROLE_FILE", "/etc/approle.json"),
        ]))
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "clusters.default_cluster is invalid: \"prod\" is not one of the configured clusters"
        );
        let typo = r#"{"default_cluster": "dev", "clusters": {"dev": {"proxy_url": "https://dev", "polcy": {}}}}"#;
        let error = GatewayConfig::from_lookup(lookup(&[
            ("SPARK_GATEWAY_CLUSTERS", typo),
            ("VAULT_ADDR", "https://v"),
        ]))
        .unwrap_err();
        assert!(
            error.to_string().contains("unknown field `polcy`"),
            "{error}"
        );
    }

    #[test]
    fn plain_http_is_refused_off_loopback_unless_explicitly_allowed() {
        let base = [
            ("SPARK_GATEWAY_ALLOWED_NAMESPACES", "a"),
            ("SPARK_GATEWAY_ALLOW_ANY_IMAGE", "true"),
            ("SPARK_GATEWAY_APPROLE_FILE", "/etc/approle.json"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = base.to_vec();
            pairs.extend_from_slice(extra);
            GatewayConfig::from_lookup(lookup(&pairs))
        };
        let error = with(&[
            ("SPARK_GATEWAY_CLUSTER_URL", "https://proxy"),
            ("VAULT_ADDR", "http://vault.internal:8200"),
        ])
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("VAULT_ADDR is invalid: \"http://vault.internal:8200\" is plain HTTP"),
            "{error}"
        );
        let error = with(&[
            ("SPARK_GATEWAY_CLUSTER_URL", "http://proxy.internal"),
            ("VAULT_ADDR", "https://vault"),
        ])
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("clusters.local.proxy_url is invalid"),
            "{error}"
        );
        for (cluster, vault) in [
            ("http://127.0.0.1:6443", "http://localhost:8200"),
            ("http://[::1]:1", "http://127.0.0.2"),
        ] {
            assert!(
                with(&[
                    ("SPARK_GATEWAY_CLUSTER_URL", cluster),
                    ("VAULT_ADDR", vault)
                ])
                .is_ok(),
                "{cluster} {vault}"
            );
        }
        assert!(
            with(&[
                ("SPARK_GATEWAY_CLUSTER_URL", "http://proxy.internal"),
                ("SPARK_GATEWAY_CLUSTER_ALLOW_INSECURE_HTTP", "true"),
                ("VAULT_ADDR", "http://vault.internal"),
                ("SPARK_GATEWAY_VAULT_ALLOW_INSECURE_HTTP", "true"),
            ])
            .is_ok()
        );
    }

    #[test]
    fn an_image_allow_list_is_required() {
        let error = GatewayConfig::from_lookup(lookup(&[
            ("SPARK_GATEWAY_CLUSTER_URL", "https://x"),
            ("SPARK_GATEWAY_ALLOWED_NAMESPACES", "a"),
            ("VAULT_ADDR", "https://v"),
            ("SPARK_GATEWAY_APPROLE_FILE", "/etc/approle.json"),
        ]))
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("allowed_image_prefixes is required"),
            "{error}"
        );
    }

    #[test]
    fn missing_credentials_source_is_named() {
        let error = GatewayConfig::from_lookup(lookup(&[
            ("SPARK_GATEWAY_CLUSTER_URL", "https://x"),
            ("SPARK_GATEWAY_ALLOWED_NAMESPACES", "a"),
            ("SPARK_GATEWAY_ALLOW_ANY_IMAGE", "true"),
            ("VAULT_ADDR", "https://v"),
        ]))
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "SPARK_GATEWAY_APPROLE_SECRET_ID or SPARK_GATEWAY_APPROLE_FILE is not set"
        );
    }
}
