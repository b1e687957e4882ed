//! The status function: a [`GetJobStatusRequest`] by direct invocation, or by HTTP through a Lambda
//! function URL (`GET ?namespace=..&application_name=..[&cluster=..]` or `POST` with the JSON body).

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use serde_json::{Value, json};
use spark_gateway::cluster::ClusterApi;
use spark_gateway::{Gateway, GatewayError};
use spark_gateway_events::{GetJobStatusRequest, GetJobStatusResponse, decode};

/// A status query that failed, with the HTTP status and Lambda error type that describe it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StatusFailure {
    /// HTTP status for a function URL.
    pub http_status: u16,
    /// Lambda `errorType` for a direct invocation.
    pub error_type: &'static str,
    /// For people.
    pub message: String,
}

impl From<GatewayError> for StatusFailure {
    fn from(error: GatewayError) -> Self {
        let (http_status, error_type) = match &error {
            GatewayError::NotFound { .. } => (404, "NotFound"),
            GatewayError::Rejected { .. } => (400, "InvalidRequest"),
            GatewayError::Cluster(_) => (503, "Unavailable"),
            GatewayError::Status(_) => (502, "InvalidApplicationStatus"),
        };
        Self {
            http_status,
            error_type,
            message: error.to_string(),
        }
    }
}

/// Answers status queries.
pub trait StatusOperations: Send + Sync {
    /// The status of one application.
    fn status(
        &self,
        request: &GetJobStatusRequest,
    ) -> impl Future<Output = Result<GetJobStatusResponse, GatewayError>> + Send;
}

impl<A: ClusterApi> StatusOperations for Gateway<A> {
    fn status(
        &self,
        request: &GetJobStatusRequest,
    ) -> impl Future<Output = Result<GetJobStatusResponse, GatewayError>> + Send {
        Gateway::status(self, request)
    }
}

fn invalid(message: String) -> StatusFailure {
    StatusFailure {
        http_status: 400,
        error_type: "InvalidRequest",
        message,
    }
}

/// Handles one invocation of the status function; function-URL events get an HTTP response, direct
/// invocations the status or an error.
pub async fn handle_status_event<S: StatusOperations>(
    operations: &S,
    event: Value,
) -> Result<Value, StatusFailure> {
    if event.get("requestContext").is_some() && event.get("rawPath").is_some() {
        let request: LambdaFunctionUrlRequest = serde_json::from_value(event)
            .map_err(|e| invalid(format!("not a function URL event: {e}")))?;
        return Ok(
            serde_json::to_value(handle_url_request(operations, &request).await)
                .expect("responses serialize"),
        );
    }
    let request: GetJobStatusRequest =
        decode(event.to_string().as_bytes()).map_err(|e| invalid(e.to_string()))?;
    let status = operations.status(&request).await?;
    Ok(serde_json::to_value(status).expect("responses serialize"))
}

async fn handle_url_request<S: StatusOperations>(
    operations: &S,
    request: &LambdaFunctionUrlRequest,
) -> LambdaFunctionUrlResponse {
    let query = || -> Result<GetJobStatusRequest, StatusFailure> {
        match request.body.as_deref().filter(|b| !b.trim().is_empty()) {
            Some(body) => decode(body.as_bytes()).map_err(|e| invalid(e.to_string())),
            None => {
                let params = &request.query_string_parameters;
                let required = |key: &str| {
                    params
                        .get(key)
                        .cloned()
                        .ok_or_else(|| invalid(format!("{key}: missing query parameter `{key}`")))
                };
                Ok(GetJobStatusRequest {
                    application_name: required("application_name")?,
                    namespace: required("namespace")?,
                    cluster: params.get("cluster").cloned(),
                })
            }
        }
    };
    let result = match query() {
        Ok(query) => operations.status(&query).await.map_err(StatusFailure::from),
        Err(failure) => Err(failure),
    };
    let (status_code, body) = match result {
        Ok(status) => (
            200,
            serde_json::to_value(status).expect("responses serialize"),
        ),
        Err(failure) => (
            failure.http_status,
            json!({"error": failure.error_type, "message": failure.message}),
        ),
    };
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = i64::from(status_code);
    response.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response.body = Some(body.to_string());
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use spark_gateway::config::{ClusterConfig, ClustersConfig};
    use spark_gateway::fake::FakeCluster;

    use super::*;

    /// A cluster holding `app`, so the whole path from the stored object to the function's answer runs.
    fn gateway(app: Value) -> Gateway<FakeCluster> {
        let config: ClusterConfig = serde_json::from_value(json!({
            "proxy_url": "https://proxy.invalid/k8s/clusters/dev",
            "policy": {"allowed_namespaces": ["sjns-data-control"]}
        }))
        .expect("cluster config");
        let clusters = ClustersConfig {
            default_cluster: "dev".into(),
            clusters: BTreeMap::from([("dev".to_string(), config)]),
        };
        let gateway = Gateway::new(clusters, FakeCluster::default());
        gateway.api().insert(app);
        gateway
    }

    /// An application whose `<name>-<attempt>` (53 characters) is over operator 0.5.0's 46, on its
    /// second attempt.
    fn long_named_app() -> Value {
        let running = json!({"currentStateSummary": "RunningHealthy",
                             "lastTransitionTime": "2026-11-23T10:00:05Z"});
        json!({
            "apiVersion": "spark.apache.org/v1",
            "kind": "SparkApplication",
            "metadata": {"name": "nightly-customer-churn-feature-engineering-pipeline",
                         "namespace": "sjns-data-control", "uid": "u-1"},
            "status": {
                "currentState": running,
                "stateTransitionHistory": {"7": running},
                "currentAttemptSummary": {"attemptInfo": {"id": 1}}
            }
        })
    }

    #[tokio::test]
    async fn job_status_names_the_driver_pod_the_operator_creates() {
        // Operator 0.5.0 hashes the app id of this attempt; the pod is `<app id>-driver`. The
        // expected name was computed with the operator's algorithm (see
        // `spark_gateway_core::apache_v1::spark_app_id`); the old answer was
        // `nightly-customer-churn-feature-engineering-pipeline-1-driver`, a pod that never exists.
        let expected = "nightly-c-4qojse9q8pc9j8czzkk6w1ab5t6scry1btqw-driver";
        let gateway = gateway(long_named_app());

        let direct = handle_status_event(
            &gateway,
            json!({"namespace": "sjns-data-control",
                   "application_name": "nightly-customer-churn-feature-engineering-pipeline"}),
        )
        .await
        .expect("status");
        assert_eq!(direct["driver_pod_name"], expected, "{direct}");
        assert_eq!(direct["attempt"], 1);
    }
}
