//! The gateway's submit, delete and status decisions against the in-memory cluster (`fake`): created,
//! duplicate, conflict, unmanaged, gone, and every class of cluster error, each to the outcome the
//! handlers act on (a permanent rejection with its reason, or a transient error that is retried).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};
use spark_gateway::cluster::ClusterError;
use spark_gateway::config::{ClusterConfig, ClustersConfig};
use spark_gateway::fake::{Call, FakeCluster, api_error};
use spark_gateway::{Deleted, Gateway, GatewayError, Submitted};
use spark_gateway_core::{Classify, Disposition};
use spark_gateway_events::{
    DeleteJobRequest, GetJobStatusRequest, RejectionReason, RequestId, SubmitJobRequest, decode,
};

const NAMESPACE: &str = "sjns-data-control";

fn repo_file(path: &str) -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("../..")
        .join(path)
}

/// The seed's pi-test request (the repository's example).
fn seed() -> SubmitJobRequest {
    decode(
        &std::fs::read(repo_file(
            "events-schema/examples/submit-job-request.v1/seed-pi-test.json",
        ))
        .unwrap(),
    )
    .unwrap()
}

fn config(extra: Value) -> ClusterConfig {
    let mut config = json!({
        "proxy_url": "https://proxy.invalid/k8s/clusters/dev",
        "policy": {"allowed_namespaces": [NAMESPACE], "allowed_image_prefixes": ["apache/spark:"]}
    });
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    serde_json::from_value(config).expect("cluster config")
}

fn gateway_with(config: ClusterConfig) -> Gateway<FakeCluster> {
    let clusters = ClustersConfig {
        default_cluster: "dev".into(),
        clusters: BTreeMap::from([("dev".to_string(), config)]),
    };
    Gateway::new(clusters, FakeCluster::default())
}

fn gateway() -> Gateway<FakeCluster> {
    gateway_with(config(json!({})))
}

fn delete_of(request: &SubmitJobRequest, id: &str) -> DeleteJobRequest {
    DeleteJobRequest {
        request_id: RequestId::new(id.to_string()).unwrap(),
        application_name: request.application_name.clone(),
        namespace: request.namespace.clone(),
        cluster: None,
        submitted_by: None,
        reason: None,
        traceparent: None,
    }
}

fn status_of(request: &SubmitJobRequest) -> GetJobStatusRequest {
    GetJobStatusRequest::by_name(&request.namespace, &request.application_name)
}

fn rejection(error: &GatewayError) -> RejectionReason {
    match error.disposition() {
        Disposition::Permanent(reason) => reason,
        Disposition::Transient { .. } | Disposition::Configuration => {
            panic!("retried, expected a rejection: {error}")
        }
    }
}

fn assert_transient(error: &GatewayError) {
    assert!(
        error.disposition().is_transient(),
        "expected a transient failure: {error} ({:?})",
        error.disposition()
    );
}

/// A stored application that some other client created under the seed's name.
fn unmanaged_app() -> Value {
    json!({"apiVersion": "spark.apache.org/v1", "kind": "SparkApplication",
           "metadata": {"name": "pi-test", "namespace": NAMESPACE, "uid": "theirs"}, "spec": {}})
}

#[tokio::test]
async fn a_submit_creates_once_and_a_redelivery_is_a_duplicate() {
    let gateway = gateway();
    let request = seed();
    let Submitted::Created { uid } = gateway.submit(&request).await.unwrap() else {
        panic!("not created")
    };
    assert_eq!(
        gateway.submit(&request).await.unwrap(),
        Submitted::Duplicate { uid },
        "the same request delivered again"
    );
}

#[tokio::test]
async fn the_same_request_id_with_another_spec_is_a_conflict() {
    let gateway = gateway();
    let request = seed();
    gateway.submit(&request).await.unwrap();
    let mut changed = request.clone();
    changed.executor.as_mut().unwrap().instances = Some(1);
    let error = gateway.submit(&changed).await.unwrap_err();
    assert_eq!(rejection(&error), RejectionReason::Conflict);
    assert!(
        error.to_string().contains("with a different spec"),
        "{error}"
    );
}

#[tokio::test]
async fn another_request_for_a_taken_name_is_a_conflict() {
    let gateway = gateway();
    gateway.submit(&seed()).await.unwrap();
    let mut other = seed();
    other.request_id = RequestId::new("another-request".to_string()).unwrap();
    let error = gateway.submit(&other).await.unwrap_err();
    assert_eq!(rejection(&error), RejectionReason::Conflict);
    assert!(error.to_string().contains("created by request"), "{error}");
}

#[tokio::test]
async fn a_name_taken_by_an_application_the_gateway_did_not_create_is_a_conflict() {
    let gateway = gateway();
    gateway.api().insert(unmanaged_app());
    let error = gateway.submit(&seed()).await.unwrap_err();
    assert_eq!(rejection(&error), RejectionReason::Conflict);
    assert!(
        error.to_string().contains("not created by Spark Gateway"),
        "{error}"
    );
}

#[tokio::test]
async fn an_application_deleted_between_the_conflict_and_the_read_is_retried() {
    let gateway = gateway();
    gateway.api().fail_next(
        Call::Create,
        api_error(409, "AlreadyExists", "already exists"),
    );
    let error = gateway.submit(&seed()).await.unwrap_err();
    assert_transient(&error);
    assert!(
        matches!(error, GatewayError::Cluster(ClusterError::Vanished { .. })),
        "{error}"
    );
    // The retry creates it.
    assert!(matches!(
        gateway.submit(&seed()).await.unwrap(),
        Submitted::Created { .. }
    ));
}

#[tokio::test]
async fn a_policy_violation_never_reaches_the_cluster() {
    let gateway = gateway();
    let mut request = seed();
    request.namespace = "kube-system".into();
    let error = gateway.submit(&request).await.unwrap_err();
    assert_eq!(rejection(&error), RejectionReason::PolicyViolation);
    let mut unknown = seed();
    unknown.cluster = Some("prod".into());
    assert_eq!(
        rejection(&gateway.submit(&unknown).await.unwrap_err()),
        RejectionReason::UnknownCluster
    );
    assert!(gateway.api().calls().is_empty());
}

#[tokio::test]
async fn a_dry_run_is_validated_and_stores_nothing() {
    let gateway = gateway();
    let mut request = seed();
    request.dry_run = true;
    assert_eq!(
        gateway.submit(&request).await.unwrap(),
        Submitted::Validated
    );
    assert!(gateway.api().object(NAMESPACE, "pi-test").is_none());
}

/// Every class of cluster failure of a create, and what the handlers are told to do with it.
#[tokio::test]
async fn cluster_errors_are_rejections_or_retries_by_the_api_conventions() {
    let permanent = [
        (
            api_error(403, "Forbidden", "no"),
            RejectionReason::Forbidden,
        ),
        (
            api_error(404, "NotFound", "namespaces \"x\" not found"),
            RejectionReason::RejectedByCluster,
        ),
        (
            api_error(422, "Invalid", "spec.x: Invalid value"),
            RejectionReason::RejectedByCluster,
        ),
        (
            api_error(400, "BadRequest", "bad"),
            RejectionReason::RejectedByCluster,
        ),
        (
            api_error(413, "RequestEntityTooLarge", "too large"),
            RejectionReason::RejectedByCluster,
        ),
    ];
    for (error, reason) in permanent {
        let gateway = gateway();
        let code = error.code();
        gateway.api().fail_next(Call::Create, error);
        let error = gateway.submit(&seed()).await.unwrap_err();
        assert_eq!(rejection(&error), reason, "{code:?}: {error}");
    }
    let transient = [
        api_error(429, "TooManyRequests", "slow down"),
        api_error(500, "InternalError", "etcd"),
        api_error(503, "ServiceUnavailable", "unavailable"),
        api_error(504, "Timeout", "timeout"),
        ClusterError::Transport(std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into()),
    ];
    for error in transient {
        let gateway = gateway();
        gateway.api().fail_next(Call::Create, error);
        assert_transient(&gateway.submit(&seed()).await.unwrap_err());
    }
    // The proxy refusing a freshly read token, or a cluster the gateway cannot even connect to as
    // configured, is the deployment's fault: the message waits for the fix instead of being refused.
    let configuration = [
        ClusterError::Unauthorized,
        ClusterError::Setup {
            what: "the cluster's CA file".into(),
            source: None,
        },
    ];
    for error in configuration {
        let gateway = gateway();
        gateway.api().fail_next(Call::Create, error);
        let error = gateway.submit(&seed()).await.unwrap_err();
        assert_eq!(error.disposition(), Disposition::Configuration, "{error}");
        assert!(error.disposition().is_retried());
    }
}

#[tokio::test]
async fn transient_errors_keep_their_cause_and_the_summary_names_only_the_category() {
    let gateway = gateway();
    gateway.api().fail_next(
        Call::Create,
        ClusterError::Transport(std::io::Error::other("connect to 10.0.0.7:443 refused").into()),
    );
    let error = gateway.submit(&seed()).await.unwrap_err();
    assert_eq!(
        spark_gateway_core::error_chain(&error),
        "cannot reach the cluster proxy: connect to 10.0.0.7:443 refused"
    );
    assert_eq!(error.unavailable_summary(), "the cluster was unavailable");
}

#[tokio::test]
async fn a_delete_removes_what_the_gateway_created_and_finds_nothing_the_second_time() {
    let gateway = gateway();
    let request = seed();
    let Submitted::Created { uid } = gateway.submit(&request).await.unwrap() else {
        panic!()
    };
    assert_eq!(
        gateway.delete(&delete_of(&request, "d-1")).await.unwrap(),
        Deleted::Deleted { uid }
    );
    assert_eq!(
        gateway.delete(&delete_of(&request, "d-1")).await.unwrap(),
        Deleted::AlreadyGone
    );
}

#[tokio::test]
async fn a_delete_of_an_application_the_gateway_did_not_create_is_forbidden_unless_allowed() {
    let request = seed();
    let gateway = gateway();
    gateway.api().insert(unmanaged_app());
    let error = gateway
        .delete(&delete_of(&request, "d-1"))
        .await
        .unwrap_err();
    assert_eq!(rejection(&error), RejectionReason::Forbidden);
    assert!(gateway.api().object(NAMESPACE, "pi-test").is_some());

    let permissive = gateway_with(config(json!({"allow_delete_unmanaged": true})));
    permissive.api().insert(unmanaged_app());
    assert_eq!(
        permissive
            .delete(&delete_of(&request, "d-1"))
            .await
            .unwrap(),
        Deleted::Deleted {
            uid: "theirs".into()
        }
    );
}

#[tokio::test]
async fn a_delete_racing_a_re_creation_is_decided_again() {
    // The uid read before the delete is no longer the stored one: the API refuses the precondition
    // with 409 and the retry reads the new application.
    let gateway = gateway();
    let request = seed();
    gateway.submit(&request).await.unwrap();
    gateway.api().fail_next(
        Call::Delete,
        api_error(409, "Conflict", "Precondition failed: UID in precondition"),
    );
    assert_transient(
        &gateway
            .delete(&delete_of(&request, "d-1"))
            .await
            .unwrap_err(),
    );
    assert!(matches!(
        gateway.delete(&delete_of(&request, "d-1")).await.unwrap(),
        Deleted::Deleted { .. }
    ));
}

#[tokio::test]
async fn status_of_a_missing_application_is_not_found_and_of_a_stored_one_its_state() {
    let gateway = gateway();
    let request = seed();
    let error = gateway.status(&status_of(&request)).await.unwrap_err();
    assert!(matches!(error, GatewayError::NotFound { .. }), "{error}");
    assert_eq!(rejection(&error), RejectionReason::RejectedByCluster);

    gateway.submit(&request).await.unwrap();
    let status = gateway.status(&status_of(&request)).await.unwrap();
    assert_eq!(status.application_name, "pi-test");
    assert_eq!(
        status.request_id.as_deref(),
        Some(request.request_id.as_str())
    );
    assert_eq!(status.state, None, "the operator has not seen it yet");

    gateway
        .api()
        .fail_next(Call::Get, api_error(503, "ServiceUnavailable", "down"));
    assert_transient(&gateway.status(&status_of(&request)).await.unwrap_err());
}

#[tokio::test]
async fn a_live_status_answer_carries_the_clusters_links() {
    let gateway = gateway_with(config(json!({"links": {
        "spark_ui": "https://ui.example.com/{namespace}/{driver_pod}",
        "history_server": "https://history.example.com/history/{app_id}",
        "logs": "https://logs.example.com/{cluster}/{namespace}/{name}/{attempt}",
    }})));
    let request = seed();
    gateway.submit(&request).await.unwrap();
    let status = gateway.status(&status_of(&request)).await.unwrap();
    // Not started yet: the UI to come and the logs, no history-server page.
    let links = status.links.expect("links");
    assert_eq!(
        links.spark_ui.as_deref(),
        Some(format!("https://ui.example.com/{NAMESPACE}/pi-test-0-driver").as_str())
    );
    assert_eq!(links.history_server, None);
    assert_eq!(
        links.logs.as_deref(),
        Some(format!("https://logs.example.com/dev/{NAMESPACE}/pi-test/0").as_str())
    );
    // A template with a typo is refused when the configuration is read.
    let bad = serde_json::from_value::<ClusterConfig>(json!({
        "proxy_url": "https://proxy.invalid", "policy": {"allowed_namespaces": ["a"], "allow_any_image": true},
        "links": {"logs": "https://logs.example.com/{pod_name}"},
    }));
    assert!(bad.unwrap_err().to_string().contains("unknown placeholder"));
}
