//! Fixture tests of the pure core: golden SparkApplications for the seed's pi-test and for Java and R
//! jobs, one rejecting test per policy rule, and status derivation across a whole lifecycle.
//!
//! `UPDATE_GOLDEN=1 cargo test -p spark-gateway-core` rewrites the golden files after an intended
//! mapping change; review the diff.

use std::path::PathBuf;

use serde_json::{Value, json};
use spark_gateway_core::mapping::spec_hash;
use spark_gateway_core::status::StatusError;
use spark_gateway_core::{Policy, job_status, spark_application};
use spark_gateway_events::{
    ApplicationState, FailureReason, JobRequest, Outcome, SubmitJobRequest, decode,
    decode_job_request,
};

fn repo_file(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn seed_pi_test() -> SubmitJobRequest {
    decode(
        &std::fs::read(repo_file(
            "events-schema/examples/submit-job-request.v1/seed-pi-test.json",
        ))
        .unwrap(),
    )
    .unwrap()
}

fn example_submit(file: &str) -> SubmitJobRequest {
    let bytes = std::fs::read(repo_file(&format!(
        "events-schema/examples/job-request.v1/{file}"
    )))
    .unwrap();
    match decode_job_request(&bytes).unwrap() {
        JobRequest::Submit(request) => *request,
        JobRequest::Delete(_) => panic!("{file} is not a submit"),
    }
}

fn assert_golden(name: &str, actual: &Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.yaml"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, serde_yaml_ng::to_string(actual).unwrap()).unwrap();
    }
    let golden: Value = serde_yaml_ng::from_str(
        &std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display())),
    )
    .unwrap();
    assert_eq!(actual, &golden, "{name} differs from {}", path.display());
}

#[test]
fn seed_pi_test_maps_to_its_golden_spark_application() {
    assert_golden("pi-test", &spark_application(&seed_pi_test(), "dev"));
}

#[test]
fn java_job_maps_to_its_golden_spark_application() {
    assert_golden(
        "spark-pi-java",
        &spark_application(&example_submit("submit-java-spark-pi.json"), "dev"),
    );
}

#[test]
fn r_job_maps_to_its_golden_spark_application() {
    assert_golden(
        "r-dataframe",
        &spark_application(&example_submit("submit-r-dataframe.json"), "dev"),
    );
}

#[test]
fn mapping_follows_the_operator_reference_for_the_seed_request() {
    let app = spark_application(&seed_pi_test(), "dev");
    let spec = &app["spec"];
    assert_eq!(app["apiVersion"], "spark.apache.org/v1");
    assert_eq!(app["metadata"]["name"], "pi-test");
    assert_eq!(app["metadata"]["namespace"], "sjns-data-control");
    assert_eq!(
        spec["pyFiles"],
        "local:///opt/spark/examples/src/main/python/pi.py"
    );
    assert!(spec.get("jars").is_none() && spec.get("mainClass").is_none());
    assert_eq!(spec["runtimeVersions"], json!({"sparkVersion": "4.1.0"}));
    let conf = &spec["sparkConf"];
    for (key, value) in [
        (
            "spark.kubernetes.container.image",
            "apache/spark:4.1.0-python3",
        ),
        (
            "spark.kubernetes.container.image.pullPolicy",
            "IfNotPresent",
        ),
        (
            "spark.kubernetes.authenticate.driver.serviceAccountName",
            "spark",
        ),
        ("spark.driver.cores", "1"),
        ("spark.driver.memory", "512m"),
        ("spark.executor.instances", "2"),
        ("spark.executor.cores", "1"),
        ("spark.executor.memory", "512m"),
        ("spark.dynamicAllocation.enabled", "true"),
    ] {
        assert_eq!(conf[key], value, "{key}");
    }
    assert_eq!(
        spec["applicationTolerations"],
        json!({"resourceRetainPolicy": "OnFailure", "ttlAfterStopMillis": 300000})
    );
    assert_eq!(
        app["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "spark-gateway"
    );
    assert_eq!(
        app["metadata"]["labels"]["spark-gateway.io/request-id"],
        "0b7f9c4e-6a0c-4f57-9e61-3c1de8d6b5a2"
    );
    assert_eq!(
        app["metadata"]["annotations"]["spark-gateway.io/spec-hash"],
        spec_hash(spec)
    );
}

#[test]
fn typed_fields_win_over_spark_conf_and_extra_py_files_become_submit_py_files() {
    let mut request = seed_pi_test();
    request
        .spark_conf
        .insert("spark.executor.memory".into(), "64g".into());
    request.py_files.push("s3a://bucket/deps.zip".into());
    request.py_files.push("s3a://bucket/more.py".into());
    let app = spark_application(&request, "dev");
    assert_eq!(app["spec"]["sparkConf"]["spark.executor.memory"], "512m");
    assert_eq!(
        app["spec"]["sparkConf"]["spark.submit.pyFiles"],
        "s3a://bucket/deps.zip,s3a://bucket/more.py"
    );
    assert_eq!(
        app["spec"]["pyFiles"],
        "local:///opt/spark/examples/src/main/python/pi.py"
    );
}

#[test]
fn mapping_is_deterministic_and_the_hash_tracks_the_spec() {
    let request = seed_pi_test();
    assert_eq!(
        spark_application(&request, "dev").to_string(),
        spark_application(&request, "dev").to_string()
    );
    let mut changed = request.clone();
    changed.executor.as_mut().unwrap().instances = Some(3);
    let hash = |r: &SubmitJobRequest| {
        spark_application(r, "dev")["metadata"]["annotations"]["spark-gateway.io/spec-hash"].clone()
    };
    assert_ne!(hash(&request), hash(&changed));
    let mut relabelled = request.clone();
    relabelled.labels.insert("team".into(), "other".into());
    assert_eq!(
        hash(&request),
        hash(&relabelled),
        "labels are metadata, not spec"
    );
}

// ---- policy ----

fn policy() -> Policy {
    let mut policy = Policy::allowing_namespaces(["sjns-data-control", "spark-jobs"]);
    policy.allowed_image_prefixes = Some(vec!["apache/spark:".into()]);
    policy
}

fn violations_of(request: &SubmitJobRequest) -> Vec<(String, String)> {
    policy()
        .violations(request, "dev")
        .into_iter()
        .map(|v| (v.field, v.rule))
        .collect()
}

fn single(request: &SubmitJobRequest) -> (String, String) {
    let found = violations_of(request);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one violation, got {found:?}"
    );
    found.into_iter().next().unwrap()
}

fn pair(field: &str, rule: &str) -> (String, String) {
    (field.to_string(), rule.to_string())
}

#[test]
fn the_seed_request_and_the_examples_pass_the_policy() {
    assert_eq!(violations_of(&seed_pi_test()), []);
    assert_eq!(
        violations_of(&example_submit("submit-java-spark-pi.json")),
        []
    );
    let mut r = example_submit("submit-r-dataframe.json");
    r.image = Some("apache/spark:4.1.0-r".into());
    assert_eq!(violations_of(&r), []);
    assert_eq!(policy().check(), Ok(()));
}

#[test]
fn application_name_must_be_a_kubernetes_name() {
    let mut r = seed_pi_test();
    r.application_name = "Pi_Test".into();
    assert_eq!(single(&r), pair("application_name", "kubernetes_name"));
}

#[test]
fn namespace_must_be_a_kubernetes_name() {
    let mut r = seed_pi_test();
    r.namespace = "Spark Jobs".into();
    assert_eq!(single(&r), pair("namespace", "kubernetes_name"));
}

#[test]
fn namespace_must_be_allowed_on_the_cluster() {
    let mut r = seed_pi_test();
    r.namespace = "kube-system".into();
    assert_eq!(single(&r), pair("namespace", "namespace_allow_list"));
    let message = &policy().violations(&r, "dev")[0].message;
    assert!(
        message.contains("\"kube-system\"") && message.contains("\"dev\""),
        "{message}"
    );
}

#[test]
fn image_must_come_from_an_allowed_registry() {
    let mut r = seed_pi_test();
    r.image = Some("evil.example.com/miner:latest".into());
    assert_eq!(single(&r), pair("image", "image_allow_list"));
    let mut r = seed_pi_test();
    r.spark_conf.insert(
        "spark.kubernetes.executor.container.image".into(),
        "evil/x".into(),
    );
    assert_eq!(
        single(&r),
        pair(
            "spark_conf.spark.kubernetes.executor.container.image",
            "image_allow_list"
        )
    );
}

#[test]
fn an_image_is_required() {
    let mut r = seed_pi_test();
    r.image = None;
    r.spark_conf.remove("spark.kubernetes.container.image");
    assert_eq!(single(&r), pair("image", "required"));
}

#[test]
fn service_account_must_be_allowed() {
    let mut r = seed_pi_test();
    r.driver.as_mut().unwrap().service_account = Some("cluster-admin".into());
    assert_eq!(
        single(&r),
        pair("driver.service_account", "service_account_allow_list")
    );
    let mut r = seed_pi_test();
    r.spark_conf.insert(
        "spark.kubernetes.authenticate.executor.serviceAccountName".into(),
        "root".into(),
    );
    assert_eq!(
        single(&r),
        pair(
            "spark_conf.spark.kubernetes.authenticate.executor.serviceAccountName",
            "service_account_allow_list"
        )
    );
}

#[test]
fn executor_count_is_capped_from_typed_fields_and_from_spark_conf() {
    let mut r = seed_pi_test();
    r.executor.as_mut().unwrap().instances = Some(500);
    assert_eq!(single(&r), pair("executor.instances", "max_executors"));
    let mut r = seed_pi_test();
    r.spark_conf
        .insert("spark.dynamicAllocation.maxExecutors".into(), "1000".into());
    assert_eq!(
        single(&r),
        pair(
            "spark_conf.spark.dynamicAllocation.maxExecutors",
            "max_executors"
        )
    );
}

#[test]
fn cores_and_memory_are_capped() {
    let mut r = seed_pi_test();
    r.executor.as_mut().unwrap().cores = Some("64".into());
    assert_eq!(single(&r), pair("executor.cores", "max_cores"));
    let mut r = seed_pi_test();
    r.driver.as_mut().unwrap().memory = Some("512g".into());
    assert_eq!(single(&r), pair("driver.memory", "max_memory"));
    let mut r = seed_pi_test();
    r.executor.as_mut().unwrap().memory = Some("lots".into());
    assert_eq!(single(&r), pair("executor.memory", "invalid_quantity"));
}

#[test]
fn settings_that_escape_the_platform_are_refused() {
    for key in [
        "spark.master",
        "spark.kubernetes.namespace",
        "spark.kubernetes.authenticate.driver.oauthToken",
        "spark.kubernetes.driver.podTemplateFile",
        "spark.kubernetes.executor.volumes.hostPath.data.mount.path",
    ] {
        let mut r = seed_pi_test();
        r.spark_conf.insert(key.into(), "x".into());
        assert_eq!(
            single(&r),
            pair(&format!("spark_conf.{key}"), "forbidden_spark_conf"),
            "{key}"
        );
    }
}

#[test]
fn main_resource_follows_the_application_type() {
    let mut r = seed_pi_test();
    r.py_files.clear();
    assert_eq!(single(&r), pair("py_files", "required_for_type"));
    let mut r = example_submit("submit-java-spark-pi.json");
    r.main_class = None;
    assert_eq!(single(&r), pair("main_class", "required_for_type"));
    let mut r = seed_pi_test();
    r.main_class = Some("org.example.Main".into());
    assert_eq!(single(&r), pair("main_class", "not_allowed_for_type"));
}

#[test]
fn labels_must_be_valid_and_not_reserved() {
    let mut r = seed_pi_test();
    r.labels
        .insert("spark-gateway.io/request-id".into(), "forged".into());
    assert_eq!(
        single(&r),
        pair("labels.spark-gateway.io/request-id", "reserved_label")
    );
    let mut r = seed_pi_test();
    r.labels.insert("team".into(), "has spaces".into());
    assert_eq!(single(&r), pair("labels.team", "label"));
}

#[test]
fn spark_version_must_look_like_a_version() {
    let mut r = seed_pi_test();
    r.runtime_versions.spark_version = "latest".into();
    assert_eq!(single(&r), pair("runtime_versions.spark_version", "format"));
}

#[test]
fn a_request_breaking_three_rules_reports_three_violations() {
    let mut r = seed_pi_test();
    r.namespace = "kube-system".into();
    r.spark_conf.insert(
        "spark.kubernetes.driver.podTemplateFile".into(),
        "/etc/evil.yaml".into(),
    );
    r.executor.as_mut().unwrap().instances = Some(500);
    let found = violations_of(&r);
    assert_eq!(
        found,
        [
            pair("namespace", "namespace_allow_list"),
            pair(
                "spark_conf.spark.kubernetes.driver.podTemplateFile",
                "forbidden_spark_conf"
            ),
            pair("executor.instances", "max_executors"),
        ]
    );
}

#[test]
fn a_policy_with_a_bad_memory_cap_is_refused_at_load() {
    let mut p = policy();
    p.max_memory = "a lot".into();
    assert!(p.check().unwrap_err().contains("max_memory"));
}

// ---- status ----

fn entry(state: &str, time: &str, message: Option<&str>) -> Value {
    let mut e = json!({"currentStateSummary": state, "lastTransitionTime": time});
    if let Some(m) = message {
        e["message"] = json!(m);
    }
    e
}

fn app_with_history(states: &[&str], attempt: u64) -> Value {
    let history: serde_json::Map<String, Value> = states
        .iter()
        .enumerate()
        .map(|(i, s)| {
            (
                i.to_string(),
                entry(s, &format!("2026-11-23T10:00:{i:02}Z"), None),
            )
        })
        .collect();
    let last = states.last().map(|s| {
        entry(
            s,
            &format!("2026-11-23T10:00:{:02}Z", states.len() - 1),
            None,
        )
    });
    let mut app = json!({
        "apiVersion": "spark.apache.org/v1",
        "kind": "SparkApplication",
        "metadata": {"name": "pi-test", "namespace": "spark-jobs", "uid": "u-1",
                     "creationTimestamp": "2026-11-23T09:59:59Z",
                     "labels": {"spark-gateway.io/request-id": "r-1"}},
        "spec": {},
    });
    if let Some(last) = last {
        app["status"] = json!({
            "currentState": last,
            "stateTransitionHistory": history,
            "currentAttemptSummary": {"attemptInfo": {"id": attempt}},
        });
    }
    app
}

#[test]
fn status_follows_a_running_application() {
    let status = job_status(
        &app_with_history(&["Submitted", "DriverRequested", "RunningHealthy"], 0),
        "dev",
    )
    .unwrap();
    assert_eq!(status.state, Some(ApplicationState::RunningHealthy));
    assert_eq!(status.outcome, None);
    assert_eq!(status.history.len(), 3);
    assert_eq!(status.history[2].index, 2);
    assert_eq!(status.request_id.as_deref(), Some("r-1"));
    assert_eq!(status.driver_pod_name.as_deref(), Some("pi-test-0-driver"));
    assert_eq!(
        status.last_transition_time,
        Some("2026-11-23T10:00:02Z".parse().unwrap())
    );
}

#[test]
fn status_reports_success_after_resource_released() {
    let states = [
        "Submitted",
        "DriverRequested",
        "DriverStarted",
        "DriverReady",
        "RunningHealthy",
        "Succeeded",
        "ResourceReleased",
    ];
    let status = job_status(&app_with_history(&states, 0), "dev").unwrap();
    assert_eq!(status.state, Some(ApplicationState::ResourceReleased));
    assert_eq!(status.outcome, Some(Outcome::Succeeded));
}

#[test]
fn status_reports_failure_after_resource_released() {
    let states = [
        "Submitted",
        "DriverRequested",
        "RunningHealthy",
        "Failed",
        "ResourceReleased",
    ];
    let status = job_status(&app_with_history(&states, 0), "dev").unwrap();
    assert_eq!(
        status.outcome,
        Some(Outcome::Failed {
            reason: FailureReason::Failed,
            message: None
        })
    );
}

#[test]
fn status_before_the_operator_saw_the_application_has_no_state() {
    let status = job_status(&app_with_history(&[], 0), "dev").unwrap();
    assert_eq!(status.state, None);
    assert!(status.history.is_empty());
    assert_eq!(status.driver_pod_name, None);
}

#[test]
fn history_is_ordered_numerically_not_textually() {
    let states: Vec<&str> = std::iter::repeat_n("RunningHealthy", 12).collect();
    let status = job_status(&app_with_history(&states, 1), "dev").unwrap();
    let indexes: Vec<u64> = status.history.iter().map(|h| h.index).collect();
    assert_eq!(indexes, (0..12).collect::<Vec<_>>());
    assert_eq!(status.attempt, 1);
    assert_eq!(status.driver_pod_name.as_deref(), Some("pi-test-1-driver"));
}

#[test]
fn an_unknown_state_is_a_clear_error() {
    let app = app_with_history(&["Submitted", "Exploded"], 0);
    assert_eq!(
        job_status(&app, "dev").unwrap_err(),
        StatusError::UnknownState {
            field: "stateTransitionHistory.1".into(),
            value: "Exploded".into()
        }
    );
}
