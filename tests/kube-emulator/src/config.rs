//! Emulator configuration, CRD loading and the shared Apache Spark CRD.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::Error;

/// File name of the Apache Spark operator 0.5.0 CRD in `infra/k8s/overlays/dev/crds`.
pub const APACHE_SPARK_CRD_FILE: &str = "sparkapplications.spark.apache.org-v1.yaml";

/// Environment variable naming the Apache Spark CRD file explicitly.
pub const CRD_PATH_ENV: &str = "SPARK_GATEWAY_CRD";

/// How to run an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// Address to serve the API on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Serve HTTPS with a generated CA (otherwise plain HTTP).
    pub tls: bool,
    /// Where `ca.crt`/`ca.key`/`server.crt`/`server.key` are written; an
    /// existing CA there is reused.
    pub cert_dir: Option<PathBuf>,
    /// Extra DNS names or IPs for the server certificate.
    pub tls_hostnames: Vec<String>,
    /// Every API path lives under this prefix (e.g. `/k8s/clusters/dev`).
    pub path_prefix: Option<String>,
    /// Accepted full-access bearer tokens; the first is [`token`].
    ///
    /// [`token`]: crate::RunningEmulator::token
    pub tokens: Vec<String>,
    /// Accepted read-only tokens (user `kube-emulator-viewer`).
    pub read_only_tokens: Vec<String>,
    /// Manifests whose Roles, ClusterRoles and bindings authorize every request (besides the
    /// bootstrap discovery roles); tokens of `system:masters` (the full-access ones) bypass them.
    pub rbac_manifests: Vec<crate::rbac::RbacManifest>,
    /// CustomResourceDefinition documents (`apiextensions.k8s.io/v1`).
    pub crds: Vec<Value>,
    /// Namespaces that exist at start.
    pub namespaces: Vec<String>,
    /// How many changes are kept for watch replay.
    pub history_limit: usize,
    /// Interval of BOOKMARK events for watches that allow them.
    pub bookmark_interval: Duration,
    /// Events buffered per watcher before a slow watcher is closed.
    pub watch_buffer: usize,
    /// Address of the plain-HTTP admin API, if wanted.
    pub admin_listen: Option<SocketAddr>,
    /// Changes a watch can resume over (the watch cache); `None`: all history.
    pub watch_window: Option<usize>,
    /// Interval of the periodic compaction (`--etcd-compaction-interval`); `None`: never.
    pub compaction_interval: Option<Duration>,
    /// Server-side watch timeouts (`--min-request-timeout`); `None`: only `timeoutSeconds`.
    pub watch_timeouts: Option<crate::watch::WatchTimeouts>,
    /// Where `pods/log` reads container logs: `<dir>/<namespace>/<pod>.log`, as the kubelet reads
    /// them from files on the node; `None`: every log is empty.
    pub pod_log_dir: Option<PathBuf>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: true,
            cert_dir: None,
            tls_hostnames: Vec::new(),
            path_prefix: None,
            tokens: Vec::new(),
            read_only_tokens: Vec::new(),
            rbac_manifests: Vec::new(),
            crds: Vec::new(),
            namespaces: vec!["default".to_string()],
            history_limit: 100_000,
            bookmark_interval: Duration::from_secs(5),
            watch_buffer: 10_000,
            admin_listen: None,
            watch_window: None,
            compaction_interval: None,
            watch_timeouts: None,
            pod_log_dir: None,
        }
    }
}

impl EmulatorConfig {
    /// 127.0.0.1 on a free port, TLS on, one random token, the Apache Spark
    /// CRD and the `default` namespace.
    ///
    /// # Panics
    /// When the Apache Spark CRD cannot be found (see [`apache_spark_crd`]).
    pub fn for_tests() -> Self {
        Self {
            tokens: vec![random_token()],
            crds: vec![apache_spark_crd()],
            ..Self::default()
        }
    }

    /// Adds every CRD document of a YAML file (multi-document allowed).
    pub fn with_crd_file(mut self, path: impl AsRef<Path>) -> Result<Self, Error> {
        self.crds.extend(load_crd_documents(path.as_ref())?);
        Ok(self)
    }

    /// Adds a namespace to create at start.
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespaces.push(namespace.into());
        self
    }

    /// Serves under a path prefix.
    pub fn with_path_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.path_prefix = Some(prefix.into());
        self
    }

    /// Serves plain HTTP.
    pub fn plain_http(mut self) -> Self {
        self.tls = false;
        self
    }

    /// Authorizes requests with the RBAC documents of a manifest file as well.
    pub fn with_rbac_manifest(mut self, manifest: crate::rbac::RbacManifest) -> Self {
        self.rbac_manifests.push(manifest);
        self
    }

    /// Takes history, bookmark, compaction and watch-timeout settings from a
    /// preset (see [`WatchPreset`](crate::watch::WatchPreset)).
    pub fn with_watch_preset(mut self, preset: crate::watch::WatchPreset) -> Self {
        let behaviour = preset.behaviour();
        self.history_limit = behaviour.history_limit;
        self.watch_window = behaviour.watch_window;
        self.bookmark_interval = behaviour.bookmark_interval;
        self.compaction_interval = behaviour.compaction_interval;
        self.watch_timeouts = behaviour.timeouts;
        self
    }
}

/// A random bearer token.
pub fn random_token() -> String {
    format!("kube-emulator-{}", uuid::Uuid::new_v4().simple())
}

/// Reads every non-empty YAML document of a file as JSON.
pub fn load_crd_documents(path: &Path) -> Result<Vec<Value>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_yaml_documents(&text).map_err(|source| Error::Yaml {
        path: path.to_path_buf(),
        source,
    })
}

pub(crate) fn parse_yaml_documents(text: &str) -> Result<Vec<Value>, serde_yaml_ng::Error> {
    let mut documents = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Value::deserialize(document)?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    Ok(documents)
}

/// The Apache Spark operator 0.5.0 CRD as the repository deploys it (the dev overlay of `infra/k8s`): one
/// copy in the repository, compiled in, so the emulator serves exactly what a development cluster gets and
/// needs no file beside the clone.
const APACHE_SPARK_CRD_YAML: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../infra/k8s/overlays/dev/crds/sparkapplications.spark.apache.org-v1.yaml"
));

/// `$SPARK_GATEWAY_CRD` when set: a platform engineer testing another revision of the CRD.
pub fn apache_spark_crd_path() -> Option<PathBuf> {
    std::env::var_os(CRD_PATH_ENV).map(PathBuf::from)
}

/// The Apache Spark operator's SparkApplication CRD (`$SPARK_GATEWAY_CRD`, or the repository's own copy),
/// parsed once per process.
pub fn try_apache_spark_crd() -> Result<Value, Error> {
    static CRD: OnceLock<Value> = OnceLock::new();
    if let Some(crd) = CRD.get() {
        return Ok(crd.clone());
    }
    let crd = match apache_spark_crd_path() {
        Some(path) => load_crd_documents(&path)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::InvalidCrd(format!("{} holds no document", path.display())))?,
        None => parse_yaml_documents(APACHE_SPARK_CRD_YAML)
            .map_err(|source| Error::Yaml {
                path: PathBuf::from(APACHE_SPARK_CRD_FILE),
                source,
            })?
            .into_iter()
            .next()
            .ok_or_else(|| {
                Error::InvalidCrd(format!("{APACHE_SPARK_CRD_FILE} holds no document"))
            })?,
    };
    Ok(CRD.get_or_init(|| crd).clone())
}

/// [`try_apache_spark_crd`] for tests.
///
/// # Panics
/// When the CRD file cannot be found or parsed.
pub fn apache_spark_crd() -> Value {
    try_apache_spark_crd().unwrap_or_else(|e| panic!("cannot load the Apache Spark CRD: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_files_are_split() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("crds.yaml");
        std::fs::write(&path, "---\na: 1\n---\n---\nb: 2\n").unwrap();
        let documents = load_crd_documents(&path).unwrap();
        assert_eq!(
            documents,
            vec![serde_json::json!({"a": 1}), serde_json::json!({"b": 2})]
        );
    }

    #[test]
    fn the_repository_crd_is_compiled_in_and_parsed() {
        let crd = apache_spark_crd();
        assert_eq!(crd["spec"]["group"], "spark.apache.org");
        assert_eq!(crd["spec"]["names"]["shortNames"][0], "sparkapp");
    }
}
