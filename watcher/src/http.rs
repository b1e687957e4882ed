//! The watcher's operations endpoint (`spark_gateway_ops`): `/healthz`, `/readyz` (start-up checks
//! passed and not shutting down; replicas that do not lead are ready too) and `/metrics` (the
//! watcher's [`Metrics`] as OpenMetrics text).

use std::future::Future;
use std::sync::Arc;

pub use spark_gateway_ops::Health;
use spark_gateway_ops::Report;
use tokio::net::TcpListener;

use crate::metrics::Metrics;

/// What the watcher reports: its readiness and its metrics.
struct Endpoint {
    health: Arc<Health>,
    metrics: Metrics,
}

impl Report for Endpoint {
    fn is_ready(&self) -> bool {
        self.health.is_ready()
    }

    fn metrics(&self) -> Option<String> {
        Some(self.metrics.encode())
    }
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    health: Arc<Health>,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) {
    spark_gateway_ops::serve(listener, Arc::new(Endpoint { health, metrics }), shutdown).await;
}

#[cfg(test)]
mod tests {
    use http::{Method, StatusCode};

    use super::*;

    #[test]
    fn metrics_are_served_with_readiness() {
        let endpoint = Endpoint {
            health: Arc::default(),
            metrics: Metrics::new(),
        };
        let status = |path| spark_gateway_ops::respond(&Method::GET, path, &endpoint).status();
        assert_eq!(status("/readyz"), StatusCode::SERVICE_UNAVAILABLE);
        endpoint.health.set_ready(true);
        assert_eq!(status("/readyz"), StatusCode::OK);
        assert_eq!(status("/metrics"), StatusCode::OK);
    }
}
