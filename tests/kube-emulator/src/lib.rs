//! An in-memory Kubernetes API server emulator for tests, good enough for
//! `kubectl` and kube-rs: discovery, namespaces, leases and any CRD it is
//! given, watches with resourceVersion replay, server-side Tables, structural
//! schema validation, bearer-token auth and fault injection.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kube_emulator::Error> {
//! let emulator = kube_emulator::start(kube_emulator::EmulatorConfig::for_tests()).await?;
//! let url = emulator.base_url();          // https://127.0.0.1:PORT[/prefix]
//! let ca = emulator.ca_pem();             // trust this CA
//! let token = emulator.token();           // Authorization: Bearer <token>
//! emulator.control().compact_history();   // steer it from the test
//! emulator.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`store`]: objects, the global resourceVersion, bounded history (pure).
//! - [`schema`]: structural-schema pruning, defaulting, validation (pure).
//! - [`selector`]: label/field selectors and simple JSONPaths (pure).
//! - [`auth`], [`rbac`]: who a token is, and what RBAC manifests let it do (pure).
//! - [`resources`]: the served types, built from CRDs plus `namespaces`, `leases`.
//! - [`table`], [`discovery`], [`status`]: response documents (pure).
//! - [`proto`]: reading the protobuf bodies kubectl sends for namespaces.
//! - [`watch`]: fan-out of changes to watch connections.
//! - `api`: request handling (authn, authz, faults, get/list/watch/write).
//! - [`server`], [`tls`], `admin`: HTTP(S), certificates, the admin API.
//! - [`Control`]: the in-process handle on a running emulator.
//!
//! # Behaviour worth knowing
//! - Every request is authenticated and authorized like kube-apiserver with
//!   anonymous auth and RBAC: no token is `system:anonymous` (403 but for
//!   `/version` and the health paths), an unknown token 401. Full-access tokens
//!   are in `system:masters`; ServiceAccount tokens may do what the Roles and
//!   bindings of [`EmulatorConfig::rbac_manifests`] grant (CLI `--rbac-manifest`).
//! - resourceVersions are one global integer, starting at the server's start
//!   time in microseconds so versions from an earlier instance are expired
//!   (410) rather than silently reused. A watch from `R` replays every
//!   retained change after `R`; unset or `"0"` starts with synthetic ADDED
//!   events; `sendInitialEvents=true` ends them with a BOOKMARK annotated
//!   `k8s.io/initial-events-end`. A version older than the retained history
//!   gives an ERROR event with a 410 `Expired` Status (and 410 for a list with
//!   `resourceVersionMatch=Exact`).
//! - [`watch::WatchPreset::Realistic`] (CLI `--watch-preset realistic
//!   --watch-time-scale S`) behaves like a real API server, every duration
//!   times `S`: etcd compaction every 5 minutes to the previous round's
//!   resourceVersion (older lists, continue tokens and watches get 410), a
//!   1,000-event watch cache, bookmarks every minute, watches closed after
//!   `timeoutSeconds` (scaled) or 30-60 minutes, with a bookmark 2 s before.
//!   The default (`generous`) keeps 100,000 changes and never expires them.
//! - Objects are stored at the CRD's storage version and served at every
//!   served version with only `apiVersion` changed (no conversion webhook).
//! - Server-side apply is approximated as create-or-merge-patch: no field
//!   managers, no ownership conflicts. Strategic merge patch is refused (415)
//!   for custom resources like the real server, and treated as a merge patch
//!   for built-in types.
//! - There is no garbage collector: `ownerReferences` and `propagationPolicy`
//!   are stored but not acted on. Finalizers are honoured.
//! - `fieldValidation` defaults to `Warn` (unknown fields pruned, `Warning`
//!   headers); `Strict` answers 400 `strict decoding error: unknown field ...`.
//!
//! # Admin API
//! With `admin_listen` set (CLI `--admin-listen`), a plain-HTTP JSON API:
//!
//! | route | body | effect |
//! |---|---|---|
//! | `GET /healthz` | | `{"status":"ok"}` |
//! | `GET /stats` | | requests by verb, open watches, resourceVersion, history, objects, compactions, expired watches |
//! | `GET /tokens` | | `{"count": n}` (token values are never shown) |
//! | `POST /tokens` | `{"token", "user"?, "read_only"?}`, `{"token", "service_account": {"namespace", "name"}}` or `{"token", "user", "groups"}` | accept a token: full access, read-only, a ServiceAccount's or a user's (the last two authorized by RBAC) |
//! | `PUT /tokens` | `{"tokens": [..]}` | replace all tokens |
//! | `DELETE /tokens/{token}` | | revoke (404 if unknown) |
//! | `GET /faults` | | active faults |
//! | `PUT /faults/latency` | `{"millis", "verb"?}` | add latency (0 removes) |
//! | `DELETE /faults/latency` | | remove latency |
//! | `POST /faults/errors` | `{"code", "verb"?, "resource"?, "count"?, "rate"?, "retry_after_seconds"?, "message"?}` | inject errors for the next `count` matching requests or at `rate` |
//! | `DELETE /faults/errors` | | remove error rules |
//! | `DELETE /faults` | | remove all faults |
//! | `POST /watches/drop` | `{"after_events"?}` | close open watches now, or after N more events each |
//! | `POST /history/compact` | | forget history (older resourceVersions give 410) |
//! | `PUT /history/limit` | `{"limit"}` | change the history bound |
//!
//! Verbs for fault rules: `get`, `list`, `watch`, `create`, `update`,
//! `patch`, `delete`, `deletecollection`, `discovery`, or `*`.

mod admin;
mod api;
pub mod auth;
mod config;
mod control;
pub mod discovery;
mod encoding;
pub mod faults;
pub mod proto;
pub mod rbac;
pub mod resources;
pub mod schema;
pub mod selector;
pub mod server;
mod state;
pub mod status;
pub mod store;
pub mod table;
pub mod tls;
pub mod view;
pub mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use config::{
    APACHE_SPARK_CRD_FILE, CRD_PATH_ENV, EmulatorConfig, apache_spark_crd, apache_spark_crd_path,
    load_crd_documents, random_token, try_apache_spark_crd,
};
pub use control::{Control, Stats};
pub use faults::{ErrorRule, LatencyRule};
pub use server::{RunningEmulator, kubeconfig_yaml, start};

/// Errors starting an emulator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("cannot access {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A YAML file could not be parsed.
    #[error("cannot parse YAML in {path}")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_yaml_ng::Error,
    },
    /// A CRD is not usable.
    #[error("invalid CustomResourceDefinition: {0}")]
    InvalidCrd(String),
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// An RBAC manifest could not be loaded.
    #[error("cannot load RBAC manifests")]
    Rbac(#[source] rbac::RbacError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Certificate generation failed.
    #[error("cannot generate certificates")]
    Certificate(#[source] rcgen::Error),
    /// The TLS configuration was rejected.
    #[error("cannot configure TLS")]
    Tls(#[source] rustls::Error),
}
