//! The library's error type: what can go wrong connecting to and talking with the API server.

use std::path::PathBuf;

/// Errors of the simulator library. Request failures during a run are logged and retried by
/// the runner; only failures that stop it are returned from [`crate::run`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig file could not be read or parsed.
    #[error("cannot read kubeconfig {path}")]
    ReadKubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The kubeconfig was read but does not yield a usable configuration (e.g. unknown context).
    #[error("cannot use kubeconfig")]
    Kubeconfig(#[source] kube::config::KubeconfigError),
    /// Neither a kubeconfig (KUBECONFIG, ~/.kube/config) nor an in-cluster configuration exists.
    #[error("no Kubernetes configuration found")]
    InferConfig(#[source] kube::config::InferConfigError),
    /// The client could not be built from the configuration (TLS, proxy ...).
    #[error("cannot build the Kubernetes client")]
    Client(#[source] kube::Error),
    /// A request on one application failed.
    #[error("{action} on {app} failed")]
    Request {
        /// What the simulator tried, e.g. `status Succeeded`.
        action: String,
        /// `namespace/name`.
        app: String,
        /// The API or transport error.
        #[source]
        source: kube::Error,
    },
    /// The SparkApplication watch stream ended, which kube's watcher never does on its own.
    #[error("the SparkApplication watch ended")]
    WatchEnded,
}

impl Error {
    /// The HTTP status code of a failed API request, if the server answered.
    pub fn api_code(&self) -> Option<u16> {
        match self {
            Self::Request {
                source: kube::Error::Api(status),
                ..
            } => Some(status.code),
            _ => None,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
