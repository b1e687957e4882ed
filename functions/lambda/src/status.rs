//! The status function: a [`GetJobStatusRequest`] by direct invocation, or by HTTP through a Lambda
//! function URL (`GET ?namespace=..&application_name=..[&cluster=..]`, `GET ?namespace=..&request_id=..`,
//! or `POST` with the JSON body). Once the application is gone from the cluster the answer comes from
//! its job record (`source: record`).

use aws_lambda_events::event::lambda_function_urls::{
    LambdaFunctionUrlRequest, LambdaFunctionUrlResponse,
};
use serde_json::{Value, json};
use spark_gateway::cluster::ClusterApi;
use spark_gateway::{Gateway, GatewayError};
use spark_gateway_events::{GetJobStatusRequest, GetJobStatusResponse, RequestId, decode};
use spark_gateway_handlers::status::{StatusError, job_status};
use spark_gateway_records::JobRecordStore;

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

impl From<StatusError> for StatusFailure {
    fn from(error: StatusError) -> Self {
        match error {
            StatusError::Gateway(error) => error.into(),
            StatusError::Records(_) => Self {
                http_status: 503,
                error_type: "Unavailable",
                message: spark_gateway_core::error_chain(&error),
            },
        }
    }
}

/// Answers status queries.
pub trait StatusOperations: Send + Sync {
    /// The status of one application.
    fn status(
        &self,
        request: &GetJobStatusRequest,
    ) -> impl Future<Output = Result<GetJobStatusResponse, StatusError>> + Send;
}

/// The status function's lookup: the gateway's cluster, then the job records once the object is gone.
pub struct StatusService<'a, A, R> {
    /// The gateway.
    pub gateway: &'a Gateway<A>,
    /// The job records, when they are kept.
    pub records: Option<&'a R>,
}

impl<A: ClusterApi, R: JobRecordStore> StatusOperations for StatusService<'_, A, R> {
    fn status(
        &self,
        request: &GetJobStatusRequest,
    ) -> impl Future<Output = Result<GetJobStatusResponse, StatusError>> + Send {
        job_status(self.gateway, self.records, request)
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
                let request_id = params
                    .get("request_id")
                    .map(|id| {
                        RequestId::new(id.clone()).map_err(|e| invalid(format!("request_id: {e}")))
                    })
                    .transpose()?;
                let request = GetJobStatusRequest {
                    application_name: params.get("application_name").cloned(),
                    request_id,
                    namespace: required("namespace")?,
                    cluster: params.get("cluster").cloned(),
                };
                request.lookup().map_err(|e| invalid(e.to_string()))?;
                Ok(request)
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
    use spark_gateway_core::apache_v1::StatusView;
    use spark_gateway_core::status::{ObjectFacts, RecordFacts, job_record};
    use spark_gateway_records::MemoryRecords;

    use super::*;

    /// A cluster holding `apps`, so the whole path from the stored object to the function's answer
    /// runs.
    fn gateway(apps: impl IntoIterator<Item = Value>) -> Gateway<FakeCluster> {
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
        for app in apps {
            gateway.api().insert(app);
        }
        gateway
    }

    fn service<'a>(
        gateway: &'a Gateway<FakeCluster>,
        records: &'a MemoryRecords,
    ) -> StatusService<'a, FakeCluster, MemoryRecords> {
        StatusService {
            gateway,
            records: Some(records),
        }
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
                         "namespace": "sjns-data-control", "uid": "u-1",
                         "labels": {"spark-gateway.io/request-id": "req-long"}},
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
        let gateway = gateway([long_named_app()]);
        let records = MemoryRecords::default();

        let direct = handle_status_event(
            &service(&gateway, &records),
            json!({"namespace": "sjns-data-control",
                   "application_name": "nightly-customer-churn-feature-engineering-pipeline"}),
        )
        .await
        .expect("status");
        assert_eq!(direct["driver_pod_name"], expected, "{direct}");
        assert_eq!(direct["attempt"], 1);
        assert_eq!(direct["source"], "live");

        let by_request = handle_status_event(
            &service(&gateway, &records),
            json!({"namespace": "sjns-data-control", "request_id": "req-long"}),
        )
        .await
        .expect("status by request id");
        assert_eq!(by_request["uid"], "u-1");
    }

    fn succeeded_record(name: &str, request_id: &str) -> spark_gateway_events::JobRecord {
        let entry = |state: &str, second: u32| {
            json!({"currentStateSummary": state,
                   "lastTransitionTime": format!("2026-11-23T10:00:{second:02}Z")})
        };
        let view = StatusView::from_status(Some(&json!({
            "currentState": entry("ResourceReleased", 9),
            "stateTransitionHistory": {
                "0": entry("Submitted", 0), "1": entry("DriverStarted", 1),
                "2": entry("RunningHealthy", 2), "3": entry("Succeeded", 8),
                "4": entry("ResourceReleased", 9)
            }
        })))
        .unwrap();
        let facts = ObjectFacts {
            name: name.into(),
            namespace: "sjns-data-control".into(),
            uid: format!("uid-of-{name}"),
            request_id: Some(request_id.into()),
            created_at: None,
        };
        job_record(
            &facts,
            &RecordFacts::default(),
            &view,
            None,
            "dev",
            "2026-11-23T10:00:10Z".parse().unwrap(),
        )
        .unwrap()
        .unwrap()
    }

    #[tokio::test]
    async fn a_gone_application_is_answered_from_its_record_by_name_and_by_request_id() {
        let gateway = gateway([]);
        let records = MemoryRecords::default();
        records
            .put(&succeeded_record("pi-done", "req-done"))
            .await
            .unwrap();

        for query in [
            json!({"namespace": "sjns-data-control", "application_name": "pi-done"}),
            json!({"namespace": "sjns-data-control", "request_id": "req-done"}),
        ] {
            let answer = handle_status_event(&service(&gateway, &records), query.clone())
                .await
                .expect("an answer from the record");
            assert_eq!(answer["source"], "record", "{query}");
            assert_eq!(answer["outcome"]["result"], "succeeded");
            assert_eq!(answer["history"].as_array().unwrap().len(), 5);
        }

        let unknown = handle_status_event(
            &service(&gateway, &records),
            json!({"namespace": "sjns-data-control", "request_id": "req-never"}),
        )
        .await
        .unwrap_err();
        assert_eq!((unknown.http_status, unknown.error_type), (404, "NotFound"));
        assert!(
            unknown.message.contains("with request id req-never"),
            "{}",
            unknown.message
        );
    }

    #[tokio::test]
    async fn records_are_not_read_for_a_namespace_the_policy_refuses() {
        let gateway = gateway([]);
        let records = MemoryRecords::default();
        let mut elsewhere = succeeded_record("pi-done", "req-done");
        elsewhere.status.namespace = "kube-system".into();
        records.put(&elsewhere).await.unwrap();
        let refused = handle_status_event(
            &service(&gateway, &records),
            json!({"namespace": "kube-system", "application_name": "pi-done"}),
        )
        .await
        .unwrap_err();
        assert_eq!(refused.http_status, 400, "{}", refused.message);
    }

    #[tokio::test]
    async fn a_query_names_exactly_one_of_name_and_request_id() {
        let gateway = gateway([]);
        let records = MemoryRecords::default();
        for query in [
            json!({"namespace": "sjns-data-control"}),
            json!({"namespace": "sjns-data-control", "application_name": "a", "request_id": "b"}),
        ] {
            let refused = handle_status_event(&service(&gateway, &records), query)
                .await
                .unwrap_err();
            assert_eq!(refused.http_status, 400);
            assert!(
                refused.message.contains("exactly one"),
                "{}",
                refused.message
            );
        }
    }
}
