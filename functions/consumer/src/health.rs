//! `/healthz` (the process is alive) and `/readyz` (every configured source is consuming), for
//! Kubernetes probes or a load balancer.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

/// Serves the probes on `listener` until the process ends; `ready` is what `/readyz` reports.
pub async fn serve(listener: TcpListener, ready: Arc<AtomicBool>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let ready = Arc::clone(&ready);
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let ready = ready.load(Ordering::Relaxed);
                async move {
                    let (status, body) = match request.uri().path() {
                        "/healthz" => (StatusCode::OK, "ok"),
                        "/readyz" if ready => (StatusCode::OK, "ok"),
                        "/readyz" => (StatusCode::SERVICE_UNAVAILABLE, "not ready"),
                        _ => (StatusCode::NOT_FOUND, "not found"),
                    };
                    let mut response =
                        Response::new(Full::new(Bytes::from_static(body.as_bytes())));
                    *response.status_mut() = status;
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Binds the probe listener.
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}
