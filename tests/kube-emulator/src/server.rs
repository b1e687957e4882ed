//! The HTTP(S) server: binds the listener, terminates TLS (h2 or HTTP/1.1 by
//! ALPN), strips the path prefix, hands requests to `api::handle` and
//! streams watch bodies. Also runs the bookmark ticker and, when configured,
//! the admin API; [`RunningEmulator`] owns all of it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::api::{self, Body, Reply};
use crate::auth::{Identity, Tokens};
use crate::config::EmulatorConfig;
use crate::control::Control;
use crate::encoding::{base64_encode, parse_query};
use crate::rbac::Policy;
use crate::resources::Registry;
use crate::state::{Settings, Shared};
use crate::status::ApiError;
use crate::store::{ObjectKey, Store};
use crate::{Error, admin, tls};

/// User name of the configured read-only tokens (in `kube-emulator:viewers`).
pub const READ_ONLY_USER: &str = "kube-emulator-viewer";

/// The HTTP response body: a whole document or a streamed watch.
pub type ResponseBody = UnsyncBoxBody<Bytes, Infallible>;

/// A running emulator. Dropping it without [`shutdown`] leaves it serving
/// until the runtime ends.
///
/// [`shutdown`]: RunningEmulator::shutdown
pub struct RunningEmulator {
    base_url: String,
    local_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    ca_pem: Option<String>,
    control: Control,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningEmulator")
            .field("base_url", &self.base_url)
            .field("admin_addr", &self.admin_addr)
            .finish_non_exhaustive()
    }
}

impl RunningEmulator {
    /// The API server URL, including the path prefix (no trailing slash).
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The bound API address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound admin API address, when one was configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The CA certificate (PEM) clients must trust; `None` for plain HTTP.
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// The CA certificate in DER form (for `kube::Config::root_cert`).
    pub fn ca_der(&self) -> Option<Vec<u8>> {
        let pem = self.ca_pem.as_deref()?;
        let body: String = pem
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        crate::encoding::base64_decode(body.trim())
    }

    /// The oldest still-accepted full-access token (empty if none is left).
    pub fn token(&self) -> String {
        self.control.first_token().unwrap_or_default()
    }

    /// A handle to steer the emulator.
    pub fn control(&self) -> Control {
        self.control.clone()
    }

    /// A kubeconfig with one cluster, user and context named `kube-emulator`.
    pub fn kubeconfig_yaml(&self, token: &str) -> String {
        kubeconfig_yaml(&self.base_url, self.ca_pem.as_deref(), token)
    }

    /// Stops serving: closes the listeners and every open connection.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        self.control.drop_watches();
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// A kubeconfig for a server URL, CA and token.
pub fn kubeconfig_yaml(server: &str, ca_pem: Option<&str>, token: &str) -> String {
    let mut cluster = json!({"server": server});
    if let Some(ca) = ca_pem {
        cluster["certificate-authority-data"] = json!(base64_encode(ca.as_bytes()));
    }
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kube-emulator", "cluster": cluster}],
        "users": [{"name": "kube-emulator", "user": {"token": token}}],
        "contexts": [{"name": "kube-emulator", "context": {"cluster": "kube-emulator", "user": "kube-emulator", "namespace": "default"}}],
        "current-context": "kube-emulator",
        "preferences": {},
    });
    serde_yaml_ng::to_string(&config).unwrap_or_default()
}

fn normalize_prefix(prefix: Option<&str>) -> String {
    let trimmed = prefix.unwrap_or_default().trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}

fn url_host(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(v4) if v4.ip().is_unspecified() => format!("127.0.0.1:{}", v4.port()),
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => format!("[::1]:{}", v6.port()),
        other => other.to_string(),
    }
}

fn initial_store(registry: &Registry, config: &EmulatorConfig) -> Result<Store, Error> {
    let epoch_micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2));
    let mut store = Store::starting_at(config.history_limit, epoch_micros);
    store.set_watch_window(config.watch_window);
    let namespaces = registry.namespaces();
    let mut seen = Vec::new();
    for name in &config.namespaces {
        if seen.contains(name) {
            continue;
        }
        if !api::valid_namespace_name(name) {
            return Err(Error::Config(format!("invalid namespace name {name:?}")));
        }
        seen.push(name.clone());
        store.put(
            namespaces.id,
            ObjectKey::new("", name),
            api::new_namespace_object(name),
        );
    }
    Ok(store)
}

/// Starts an emulator; it serves until [`RunningEmulator::shutdown`].
pub async fn start(config: EmulatorConfig) -> Result<RunningEmulator, Error> {
    let registry = Registry::new(&config.crds)?;
    let store = initial_store(&registry, &config)?;
    let mut tokens = Tokens::new(&config.tokens);
    for token in &config.read_only_tokens {
        tokens.add(token, Identity::viewer(READ_ONLY_USER));
    }
    let mut rbac = Policy::with_defaults();
    for manifest in &config.rbac_manifests {
        rbac.load(manifest).map_err(Error::Rbac)?;
    }
    let shared = Arc::new(Shared::new(
        registry,
        store,
        tokens,
        Settings {
            watch_buffer: config.watch_buffer,
            watch_timeouts: config.watch_timeouts,
            pod_log_dir: config.pod_log_dir.clone(),
        },
        rbac,
    ));
    let prefix: Arc<str> = normalize_prefix(config.path_prefix.as_deref()).into();
    let tls = if config.tls {
        Some(tls::prepare(
            config.cert_dir.as_deref(),
            &config.tls_hostnames,
        )?)
    } else {
        None
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Bind {
            addr: config.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: config.listen,
        source,
    })?;
    let (shutdown, shutdown_signal) = watch::channel(false);
    let control = Control::new(Arc::clone(&shared));
    let acceptor = tls
        .as_ref()
        .map(|t| TlsAcceptor::from(Arc::clone(&t.server_config)));
    let mut tasks = vec![
        tokio::spawn(accept_loop(
            listener,
            acceptor,
            Arc::clone(&shared),
            Arc::clone(&prefix),
            shutdown_signal.clone(),
        )),
        tokio::spawn(bookmark_ticker(
            Arc::downgrade(&shared),
            config.bookmark_interval,
            shutdown_signal.clone(),
        )),
    ];
    if let Some(interval) = config.compaction_interval {
        tasks.push(tokio::spawn(compactor(
            Arc::downgrade(&shared),
            interval,
            shutdown_signal.clone(),
        )));
    }
    let admin_addr = match config.admin_listen {
        Some(addr) => {
            let admin_listener = TcpListener::bind(addr)
                .await
                .map_err(|source| Error::Bind { addr, source })?;
            let bound = admin_listener
                .local_addr()
                .map_err(|source| Error::Bind { addr, source })?;
            tasks.push(tokio::spawn(admin::serve(
                admin_listener,
                control.clone(),
                shutdown_signal,
            )));
            Some(bound)
        }
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    Ok(RunningEmulator {
        base_url: format!("{scheme}://{}{prefix}", url_host(local_addr)),
        local_addr,
        admin_addr,
        ca_pem: tls.map(|t| t.ca_pem),
        control,
        shutdown,
        tasks,
    })
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    prefix: Arc<str>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve_connection(
                        stream,
                        acceptor.clone(),
                        Arc::clone(&shared),
                        Arc::clone(&prefix),
                    ));
                }
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    connections.shutdown().await;
}

async fn serve_connection(
    stream: TcpStream,
    acceptor: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    prefix: Arc<str>,
) {
    let service = service_fn(move |request| {
        let shared = Arc::clone(&shared);
        let prefix = Arc::clone(&prefix);
        async move { Ok::<_, Infallible>(respond(&shared, &prefix, request).await) }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    let result = match acceptor {
        Some(acceptor) => match acceptor.accept(stream).await {
            Ok(tls_stream) => {
                builder
                    .serve_connection(TokioIo::new(tls_stream), service)
                    .await
            }
            Err(error) => {
                tracing::debug!(%error, "TLS handshake failed");
                return;
            }
        },
        None => {
            builder
                .serve_connection(TokioIo::new(stream), service)
                .await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}

fn header(parts: &http::request::Parts, name: http::header::HeaderName) -> Option<String> {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn respond(
    shared: &Arc<Shared>,
    prefix: &str,
    request: hyper::Request<Incoming>,
) -> Response<ResponseBody> {
    let (parts, body) = request.into_parts();
    let full_path = parts.uri.path().to_string();
    let relative = if prefix.is_empty() {
        Some(full_path.as_str())
    } else {
        full_path
            .strip_prefix(prefix)
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    let Some(relative) = relative else {
        return into_response(Reply::error(&ApiError::path_not_found()));
    };
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return into_response(Reply::error(&ApiError::bad_request(format!(
                "failed to read the request body: {error}"
            ))));
        }
    };
    let request = api::Request {
        method: parts.method.clone(),
        path: if relative.is_empty() {
            "/".to_string()
        } else {
            relative.to_string()
        },
        query: parse_query(parts.uri.query()),
        accept: header(&parts, http::header::ACCEPT).unwrap_or_default(),
        content_type: header(&parts, CONTENT_TYPE).unwrap_or_default(),
        authorization: header(&parts, http::header::AUTHORIZATION),
        body,
    };
    let reply = api::handle(shared, request).await;
    tracing::debug!(method = %parts.method, path = %full_path, status = reply.status, "request");
    into_response(reply)
}

/// Converts a reply into an HTTP response.
pub(crate) fn into_response(reply: Reply) -> Response<ResponseBody> {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (content_type, body): (&str, ResponseBody) = match reply.body {
        Body::Json(value) => (
            reply.content_type.unwrap_or("application/json"),
            Full::new(Bytes::from(serde_json::to_vec(&value).unwrap_or_default())).boxed_unsync(),
        ),
        Body::Text(text) => (
            reply.content_type.unwrap_or("text/plain; charset=utf-8"),
            Full::new(Bytes::from(text)).boxed_unsync(),
        ),
        Body::Stream(events) => (
            reply.content_type.unwrap_or("application/json"),
            StreamBody::new(ReceiverStream::new(events).map(|chunk| Ok(Frame::data(chunk))))
                .boxed_unsync(),
        ),
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(name, value);
        }
    }
    response
}

async fn bookmark_ticker(
    shared: Weak<Shared>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let Some(shared) = shared.upgrade() else { break };
                let mut state = shared.state();
                let resource_version = state.store.resource_version();
                state.hub.bookmark(resource_version);
            }
            _ = shutdown.changed() => break,
        }
    }
}

/// kube-apiserver's etcd compactor (`storage/etcd3/compact.go`): every
/// interval it compacts to the revision it saw at the previous round, so the
/// last interval's history always survives; the first round only records.
async fn compactor(shared: Weak<Shared>, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    let mut previous: Option<u64> = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let Some(shared) = shared.upgrade() else { break };
                let mut state = shared.state();
                if let Some(revision) = previous {
                    let through = state.store.compact_through(revision);
                    tracing::debug!(through, "compacted");
                }
                previous = Some(state.store.resource_version());
            }
            _ = shutdown.changed() => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_normalized() {
        assert_eq!(normalize_prefix(None), "");
        assert_eq!(normalize_prefix(Some("/")), "");
        assert_eq!(
            normalize_prefix(Some("k8s/clusters/dev/")),
            "/k8s/clusters/dev"
        );
    }

    #[test]
    fn kubeconfig_has_server_ca_and_token() {
        let yaml = kubeconfig_yaml("https://127.0.0.1:1", Some("PEM"), "tok");
        let parsed: serde_json::Value = serde_yaml_ng::from_str(&yaml).unwrap();
        assert_eq!(
            parsed["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:1"
        );
        assert_eq!(
            parsed["clusters"][0]["cluster"]["certificate-authority-data"],
            "UEVN"
        );
        assert_eq!(parsed["users"][0]["user"]["token"], "tok");
        assert_eq!(parsed["current-context"], "kube-emulator");
    }

    #[test]
    fn unspecified_addresses_become_loopback_urls() {
        assert_eq!(url_host("0.0.0.0:6443".parse().unwrap()), "127.0.0.1:6443");
        assert_eq!(url_host("[::]:6443".parse().unwrap()), "[::1]:6443");
        assert_eq!(url_host("127.0.0.1:1".parse().unwrap()), "127.0.0.1:1");
    }
}
