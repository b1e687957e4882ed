//! The operations endpoint: `/healthz` (the process serves), `/readyz` (start-up checks passed and
//! not shutting down; replicas that do not lead are ready too) and `/metrics` (Prometheus text).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tracing::debug;

use crate::metrics::Metrics;

/// Readiness shared between the start-up code and the endpoint.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
}

impl Health {
    /// Marks the replica ready or not.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Whether the replica is ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// The response to one request.
pub fn respond(
    method: &Method,
    path: &str,
    health: &Health,
    metrics: &Metrics,
) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, body: String, content_type: &'static str| {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("a response of a status, one static header and a body is valid")
    };
    const PLAIN: &str = "text/plain; charset=utf-8";
    if method != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "use GET\n".into(), PLAIN);
    }
    match path {
        "/healthz" => text(StatusCode::OK, "ok\n".into(), PLAIN),
        "/readyz" if health.is_ready() => text(StatusCode::OK, "ready\n".into(), PLAIN),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n".into(), PLAIN),
        "/metrics" => text(
            StatusCode::OK,
            metrics.encode(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        ),
        _ => text(StatusCode::NOT_FOUND, "not found\n".into(), PLAIN),
    }
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    health: Arc<Health>,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(connection) => connection,
            Err(error) => {
                debug!(%error, "accept failed");
                continue;
            }
        };
        let health = Arc::clone(&health);
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let response = respond(request.method(), request.uri().path(), &health, &metrics);
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(error) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(%peer, error = %error, "connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_answer_by_state() {
        let health = Health::default();
        let metrics = Metrics::new();
        assert_eq!(
            respond(&Method::GET, "/healthz", &health, &metrics).status(),
            StatusCode::OK
        );
        assert_eq!(
            respond(&Method::GET, "/readyz", &health, &metrics).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        health.set_ready(true);
        assert_eq!(
            respond(&Method::GET, "/readyz", &health, &metrics).status(),
            StatusCode::OK
        );
        assert_eq!(
            respond(&Method::GET, "/metrics", &health, &metrics).status(),
            StatusCode::OK
        );
        assert_eq!(
            respond(&Method::GET, "/other", &health, &metrics).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            respond(&Method::POST, "/healthz", &health, &metrics).status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
