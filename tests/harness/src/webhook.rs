//! A webhook receiver as a subscriber would run one: HTTPS (a certificate from its own CA, which the
//! notifier is told to trust), a Standard Webhooks signature check with its own secret, and a
//! timestamp tolerance. It can be told to fail the first tries of some deliveries with HTTP 500.
//!
//! The signature check is written here from the specification (HMAC-SHA256 over
//! `id.timestamp.body`, base64, `v1,` entries) rather than with the notifier's own `verify`, so a
//! mistake in the notifier cannot be mirrored by the receiver that tests it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// The reference libraries' tolerance, in seconds.
const TOLERANCE_SECONDS: i64 = 300;

/// One request the receiver accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The request path.
    pub path: String,
    /// `webhook-id`.
    pub id: String,
    /// The body.
    pub body: Vec<u8>,
}

/// How many times a delivery (path, id) fails with 500 before it is looked at.
pub type FailFirst = dyn Fn(&str, &str) -> u32 + Send + Sync;

#[derive(Default)]
struct Seen {
    attempts: HashMap<(String, String), u32>,
    accepted: Vec<Accepted>,
    refused: Vec<(String, String)>,
}

/// A running receiver; stops when dropped.
pub struct WebhookReceiver {
    addr: SocketAddr,
    ca_dir: tempfile::TempDir,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl WebhookReceiver {
    /// Starts on a free loopback port, checking signatures with `secret` (`whsec_<base64>`).
    pub async fn start(secret: &str, fail_first: Box<FailFirst>) -> Result<Self> {
        let key = BASE64
            .decode(secret.trim_start_matches("whsec_"))
            .context("the receiver's secret is base64")?;
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
        let ca_dir = tempfile::tempdir()?;
        let tls = kube_emulator::tls::prepare(Some(ca_dir.path()), &[])?;
        let acceptor = TlsAcceptor::from(tls.server_config);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Seen::default()));
        let fail_first: Arc<FailFirst> = Arc::from(fail_first);
        let state = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, key, seen, fail_first) = (
                    acceptor.clone(),
                    key.clone(),
                    Arc::clone(&state),
                    Arc::clone(&fail_first),
                );
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = service_fn(move |request| {
                        let (key, seen, fail_first) =
                            (key.clone(), Arc::clone(&seen), Arc::clone(&fail_first));
                        async move {
                            Ok::<_, std::convert::Infallible>(
                                receive(request, &key, &seen, fail_first.as_ref()).await,
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            ca_dir,
            seen,
            task,
        })
    }

    /// `https://127.0.0.1:<port>/`.
    pub fn base_url(&self) -> String {
        format!("https://{}/", self.addr)
    }

    /// The CA certificate (PEM) the receiver's certificate chains to.
    pub fn ca_file(&self) -> PathBuf {
        self.ca_dir.path().join("ca.crt")
    }

    /// Every accepted request, in arrival order.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.seen.lock().expect("not poisoned").accepted.clone()
    }

    /// `(path, id)` of every request refused for its signature or timestamp.
    pub fn refused(&self) -> Vec<(String, String)> {
        self.seen.lock().expect("not poisoned").refused.clone()
    }

    /// How many requests (path, id) arrived, failed ones included.
    pub fn attempts(&self, path: &str, id: &str) -> u32 {
        self.seen
            .lock()
            .expect("not poisoned")
            .attempts
            .get(&(path.to_string(), id.to_string()))
            .copied()
            .unwrap_or(0)
    }
}

async fn receive(
    request: Request<Incoming>,
    key: &ring::hmac::Key,
    seen: &Mutex<Seen>,
    fail_first: &FailFirst,
) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (id, timestamp, signature) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let path = request.uri().path().to_string();
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes().to_vec(),
        Err(_) => return answer(StatusCode::BAD_REQUEST),
    };
    let mut seen = seen.lock().expect("not poisoned");
    let attempt = {
        let count = seen.attempts.entry((path.clone(), id.clone())).or_default();
        *count += 1;
        *count
    };
    if attempt <= fail_first(&path, &id) {
        return answer(StatusCode::INTERNAL_SERVER_ERROR);
    }
    if !signed(key, &id, &timestamp, &signature, &body) {
        seen.refused.push((path, id));
        return answer(StatusCode::UNAUTHORIZED);
    }
    seen.accepted.push(Accepted { path, id, body });
    answer(StatusCode::NO_CONTENT)
}

fn signed(key: &ring::hmac::Key, id: &str, timestamp: &str, header: &str, body: &[u8]) -> bool {
    let Ok(seconds) = timestamp.parse::<i64>() else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if (now - seconds).abs() > TOLERANCE_SECONDS {
        return false;
    }
    let mut content = format!("{id}.{timestamp}.").into_bytes();
    content.extend_from_slice(body);
    header
        .split(' ')
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|encoded| BASE64.decode(encoded).ok())
        .any(|tag| ring::hmac::verify(key, &content, &tag).is_ok())
}

fn answer(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}
