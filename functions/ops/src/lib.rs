//! The operations endpoint of the long-running processes (the consumer and the watcher), written once:
//! `/healthz` (the process serves), `/readyz` (start-up checks passed and not shutting down) and, for a
//! process that keeps metrics, `/metrics` (OpenMetrics text). What a process reports is the narrow
//! [`Report`] trait; [`Health`] is the readiness flag both share.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
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

/// The content type of the OpenMetrics text format.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PLAIN: &str = "text/plain; charset=utf-8";

/// What a process tells its operators.
pub trait Report: Send + Sync + 'static {
    /// `/readyz` answers 200.
    fn is_ready(&self) -> bool;
    /// The body of `/metrics`; `None` when the process keeps none (then `/metrics` is 404).
    fn metrics(&self) -> Option<String> {
        None
    }
}

/// Readiness shared between a process's start-up code and its endpoint.
#[derive(Debug, Default)]
pub struct Health {
    ready: AtomicBool,
}

impl Health {
    /// Marks the process ready or not.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }
}

impl Report for Health {
    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// The response to one request.
pub fn respond(method: &Method, path: &str, report: &impl Report) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, body: Bytes, content_type: &'static str| {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, content_type)
            .body(Full::new(body))
            .expect("a response of a status, one static header and a body is valid")
    };
    let plain =
        |status, body: &'static str| text(status, Bytes::from_static(body.as_bytes()), PLAIN);
    if method != Method::GET {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
    }
    match path {
        "/healthz" => plain(StatusCode::OK, "ok\n"),
        "/readyz" if report.is_ready() => plain(StatusCode::OK, "ready\n"),
        "/readyz" => plain(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        "/metrics" => match report.metrics() {
            Some(body) => text(StatusCode::OK, Bytes::from(body), OPENMETRICS_CONTENT_TYPE),
            None => plain(StatusCode::NOT_FOUND, "not found\n"),
        },
        _ => plain(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Binds the endpoint's listener (before start-up work, so a bad address fails the process at once).
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}

/// Serves `report` on `listener` until `shutdown` completes.
pub async fn serve<R: Report>(
    listener: TcpListener,
    report: Arc<R>,
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
        let report = Arc::clone(&report);
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let response = respond(request.method(), request.uri().path(), report.as_ref());
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
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    struct WithMetrics(Health);

    impl Report for WithMetrics {
        fn is_ready(&self) -> bool {
            self.0.is_ready()
        }
        fn metrics(&self) -> Option<String> {
            Some("# EOF\n".into())
        }
    }

    fn status(method: Method, path: &str, report: &impl Report) -> StatusCode {
        respond(&method, path, report).status()
    }

    #[test]
    fn endpoints_answer_by_state() {
        let health = Health::default();
        assert_eq!(status(Method::GET, "/healthz", &health), StatusCode::OK);
        assert_eq!(
            status(Method::GET, "/readyz", &health),
            StatusCode::SERVICE_UNAVAILABLE
        );
        health.set_ready(true);
        assert_eq!(status(Method::GET, "/readyz", &health), StatusCode::OK);
        assert_eq!(
            status(Method::GET, "/other", &health),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(Method::POST, "/healthz", &health),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[test]
    fn metrics_are_served_only_by_a_process_that_keeps_them() {
        assert_eq!(
            status(Method::GET, "/metrics", &Health::default()),
            StatusCode::NOT_FOUND
        );
        let response = respond(&Method::GET, "/metrics", &WithMetrics(Health::default()));
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            OPENMETRICS_CONTENT_TYPE
        );
    }

    #[tokio::test]
    async fn serves_http_until_shut_down() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let address = listener.local_addr().unwrap();
        let health = Arc::new(Health::default());
        health.set_ready(true);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, health, async {
            let _ = stopped.await;
        }));
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream
            .write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("ready\n"), "{answer}");
        stop.send(()).unwrap();
        server.await.unwrap();
    }
}
