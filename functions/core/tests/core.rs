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

/// The SparkApplication of a request the test policy admits.
fn mapped(request: &SubmitJobRequest) -> Value {
    let admitted = policy()
        .admit(request, "dev")
        .unwrap_or_else(|v| panic!("not admitted: {v:?}"));
    spark_application(&admitted, "dev")
}
use spark_gateway_events::{
    ApplicationState, FailureReason, JobRequest, Outcome, Phase, SubmitJobRequest, decode,
    decode_job_request,
};

fn crate_dir() -> PathBuf {
    // The package directory cargo or nextest names at run time: a binary reused from another checkout
    // (one shared target dir) would otherwise read that checkout's files.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

fn repo_file(path: &str) -> PathBuf {
    crate_dir().join("../..").join(path)
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
    let path = crate_dir()
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
    assert_golden("pi-test", &mapped(&seed_pi_test()));
}

#[test]
fn java_job_maps_to_its_golden_spark_application() {
    assert_golden(
        "spark-pi-java",
        &mapped(&example_submit("submit-java-spark-pi.json")),
    );
}

#[test]
fn r_job_maps_to_its_golden_spark_application() {
    assert_golden(
        "r-dataframe",
        &mapped(&example_submit("submit-r-dataframe.json")),
    );
}

#[test]
fn mapping_follows_the_operator_reference_for_the_seed_request() {
    let app = mapped(&seed_pi_test());
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
        (
            "spark.kubernetes.authenticate.executor.serviceAccountName",
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
        // Retention the request left open is bounded by the policy's cap (a week by default).
        json!({"resourceRetainPolicy": "OnFailure", "ttlAfterStopMillis": 300000,
               "resourceRetainDurationMillis": 604_800_000})
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
    let app = mapped(&request);
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
    assert_eq!(mapped(&request).to_string(), mapped(&request).to_string());
    let mut changed = request.clone();
    changed.executor.as_mut().unwrap().instances = Some(3);
    let hash = |r: &SubmitJobRequest| {
        mapped(r)["metadata"]["annotations"]["spark-gateway.io/spec-hash"].clone()
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
    Policy::allowing_namespaces(["sjns-data-control", "spark-jobs"])
        .with_image_prefixes(["apache/spark:"])
}

fn violations_of(request: &SubmitJobRequest) -> Vec<(String, String)> {
    policy()
        .violations(request, "dev")
        .into_iter()
        .map(|v| (v.field, v.rule))
        .collect()
}

#[test]
fn notification_targets_are_admitted_by_prefix_and_travel_in_an_annotation() {
    let request = example_submit("submit-pi-test-with-callbacks.json");
    // The default policy allows no target at all.
    assert_eq!(
        violations_of(&request),
        [
            (
                "notify[0].queue_url".to_string(),
                "notify_allow_list".to_string()
            ),
            ("notify[1].url".to_string(), "notify_allow_list".to_string()),
        ]
    );
    let mut allowing = policy();
    allowing.notify.allowed_sqs_queue_urls =
        vec!["https://sqs.eu-west-1.amazonaws.com/123456789012/pipeline-".into()];
    allowing.notify.allowed_webhook_urls = vec!["https://hooks.example.com/spark/".into()];
    let admitted = allowing.admit(&request, "dev").unwrap();
    let app = spark_application(&admitted, "dev");
    let annotation = app["metadata"]["annotations"]["spark-gateway.io/notify"]
        .as_str()
        .unwrap();
    let targets: Vec<spark_gateway_events::NotifyTarget> =
        serde_json::from_str(annotation).unwrap();
    assert_eq!(targets, request.notify);
    // The targets are not part of the spec, so they do not change the hash a redelivery is
    // compared by.
    let mut without = request.clone();
    without.notify.clear();
    assert_eq!(
        app["metadata"]["annotations"]["spark-gateway.io/spec-hash"],
        mapped(&without)["metadata"]["annotations"]["spark-gateway.io/spec-hash"]
    );
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
    r.spark_conf.remove("spark.dynamicAllocation.enabled");
    r.executor.as_mut().unwrap().instances = Some(500);
    assert_eq!(single(&r), pair("executor.instances", "max_executors"));
    // Under dynamic allocation the static count is the initial one, held to maxExecutors.
    let mut r = seed_pi_test();
    r.executor.as_mut().unwrap().instances = Some(4);
    assert_eq!(
        single(&r),
        pair("executor.instances", "dynamic_allocation_bounds")
    );
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
fn settings_that_rename_the_driver_are_refused() {
    // Operator 0.5.0 keeps a request's `spark.app.id` (`setIfMissing`) and uses it as the prefix of
    // every resource: every attempt, and every application given the same id, would collide on one
    // driver pod. `spark.kubernetes.driver.pod.name` overrides the pod name outright.
    for key in ["spark.app.id", "spark.kubernetes.driver.pod.name"] {
        let mut r = seed_pi_test();
        r.spark_conf.insert(key.into(), "pi-test-0".into());
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
    r.spark_conf.remove("spark.dynamicAllocation.enabled");
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
    assert_eq!(status.phase, Some(Phase::Running));
    assert_eq!(status.history[0].phase, Some(Phase::Pending));
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
    assert_eq!(status.phase, Some(Phase::Ended));
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
fn driver_pod_name_of_a_long_application_is_the_operators_hashed_id() {
    // `<name>-<attempt>` over 46 characters: operator 0.5.0 names the driver after the hashed app id
    // (value computed with the operator's algorithm on the JDK; see `apache_v1::spark_app_id`).
    let mut app = app_with_history(&["Submitted", "DriverRequested"], 1);
    app["metadata"]["name"] = json!("nightly-customer-churn-feature-engineering-pipeline");
    app["metadata"]["namespace"] = json!("sjns-data-control");
    let status = job_status(&app, "dev").unwrap();
    assert_eq!(
        status.driver_pod_name.as_deref(),
        Some("nightly-c-4qojse9q8pc9j8czzkk6w1ab5t6scry1btqw-driver")
    );
}

#[test]
fn an_unknown_state_is_a_clear_error() {
    let app = app_with_history(&["Submitted", "Exploded"], 0);
    assert!(
        matches!(
            job_status(&app, "dev"),
            Err(StatusError::UnknownState { field, value })
                if field == "stateTransitionHistory.1" && value == "Exploded"
        ),
        "an unknown history state names its entry"
    );
    let mut current = app_with_history(&["Submitted"], 0);
    current["status"]["currentState"]["currentStateSummary"] = json!("Hibernating");
    assert!(matches!(
        job_status(&current, "dev"),
        Err(StatusError::UnknownState { field, .. }) if field == "currentState"
    ));
}

// ---- the hostile corpus, under its strict policy ----

#[path = "../../../tests/hostile-requests/corpus.rs"]
mod corpus;

use spark_gateway_core::Admitted;
use spark_gateway_core::mapping::conf;
use spark_gateway_core::policy::{IMAGE_KEYS, extended_resource_key, resources};
use spark_gateway_core::quantity::parse_memory_bytes;
use spark_gateway_events::{rejection_bounds, truncate_chars};

/// What every admitted request must satisfy once mapped: each sparkConf key is allowed (or written by
/// the gateway from a typed field), the pods Spark would build stay within the caps, images and
/// service accounts are the allowed ones, and no reserved label came from the request.
fn assert_within_policy(policy: &Policy, admitted: &Admitted, context: &str) {
    let app = spark_application(admitted, "dev");
    let spark_conf: std::collections::BTreeMap<String, String> =
        serde_json::from_value(app["spec"]["sparkConf"].clone()).expect("string map");
    for key in spark_conf.keys() {
        let extended_resource_allowed =
            extended_resource_key(key).is_some_and(|(role, name, _)| {
                let vendor_role = if role == "task" { "executor" } else { role };
                spark_conf
                    .get(&format!("spark.{vendor_role}.resource.{name}.vendor"))
                    .is_some_and(|vendor| {
                        policy
                            .allowed_extended_resources
                            .contains_key(&format!("{vendor}/{name}"))
                    })
            });
        assert!(
            policy.allows_spark_conf_key(key)
                || conf::GATEWAY_WRITTEN.contains(&key.as_str())
                || extended_resource_allowed,
            "{context}: sparkConf key {key:?} passed but is not allowed"
        );
    }
    let footprint = resources::footprint(&spark_conf, admitted.request().spark_application_type)
        .unwrap_or_else(|p| panic!("{context}: the mapped conf does not read back: {p:?}"));
    let max_memory = parse_memory_bytes(&policy.max_memory).unwrap();
    for pod in [&footprint.driver, &footprint.executor] {
        assert!(
            pod.memory_bytes <= max_memory,
            "{context}: {pod:?} over {}",
            policy.max_memory
        );
        assert!(
            pod.cpu_millis <= u64::from(policy.max_cores) * 1000,
            "{context}: {pod:?}"
        );
    }
    assert!(
        footprint.max_executors <= policy.max_executors,
        "{context}: {footprint:?}"
    );
    for key in IMAGE_KEYS {
        if let Some(image) = spark_conf.get(key) {
            assert!(
                policy.allows_image(image),
                "{context}: image {image:?} passed"
            );
        }
    }
    for key in [conf::DRIVER_SERVICE_ACCOUNT, conf::EXECUTOR_SERVICE_ACCOUNT] {
        let account = spark_conf
            .get(key)
            .expect("service accounts are always written");
        assert!(
            policy.allowed_service_accounts.contains(account),
            "{context}: {account}"
        );
    }
    for key in admitted.request().labels.keys() {
        assert!(
            !spark_gateway_core::labels::is_reserved_label(key),
            "{context}: reserved label {key}"
        );
    }
}

#[test]
fn every_hostile_corpus_request_trips_its_rule_and_every_legitimate_one_passes() {
    let corpus = corpus::Corpus::load();
    let policy: Policy = serde_json::from_value(corpus.policy.clone()).unwrap();
    assert_eq!(policy.check(), Ok(()));
    let hostile = corpus.cases.iter().filter(|c| !c.is_legitimate()).count();
    assert!(hostile >= 150, "only {hostile} hostile cases");
    assert!(corpus.cases.len() - hostile >= 15);
    for (i, case) in corpus.cases.iter().enumerate() {
        let context = format!("case {i} [{}] {:?}", case.class, case.name);
        let message = case.message(&corpus, &format!("corpus-{i}"), &format!("h-{i}"));
        let expect = &case.expect;
        let violations = match decode_job_request(message.as_bytes()) {
            Err(error) => error.violations(),
            Ok(JobRequest::Submit(request)) => {
                if expect.reason.as_deref() == Some("unknown_cluster") {
                    // The gateway resolves clusters before its policy; the system test covers it.
                    assert!(request.cluster.is_some(), "{context}");
                    continue;
                }
                match policy.admit(&request, "dev") {
                    Ok(admitted) => {
                        assert!(case.is_legitimate(), "{context}: admitted");
                        assert_within_policy(&policy, &admitted, &context);
                        continue;
                    }
                    Err(violations) => violations,
                }
            }
            Ok(JobRequest::Delete(_)) => panic!("{context}: decoded as a delete"),
        };
        // Fields are compared as a rejection event carries them: cut to its bound.
        let shown = |text: &str| truncate_chars(text, rejection_bounds::VIOLATION_FIELD_CHARS);
        let found: Vec<(String, &str)> = violations
            .iter()
            .map(|v| (shown(&v.field), v.rule.as_str()))
            .collect();
        assert!(!case.is_legitimate(), "{context}: refused: {found:?}");
        let (field, rule) = (
            shown(expect.field.as_deref().unwrap()),
            expect.rule.as_deref().unwrap(),
        );
        assert!(
            found.iter().any(|(f, r)| *f == field && *r == rule),
            "{context}: expected {field} / {rule}, got {found:?}"
        );
    }
}

// ---- decode, policy and mapping on arbitrary input ----

mod property {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    use serde_json::{Map, Value, json};
    use spark_gateway_core::Policy;
    use spark_gateway_core::policy::{
        DEFAULT_ALLOWED_SPARK_CONF, DEFAULT_FORBIDDEN_SPARK_CONF, spark_conf,
    };
    use spark_gateway_events::{JobRequest, decode_job_request};

    use super::{assert_within_policy, corpus::Corpus};

    /// Keys an attacker would try: every allowed and denied pattern made concrete, Spark's alternates,
    /// near-misses of them, extended resources, and noise.
    fn keys() -> Vec<String> {
        let concrete = |pattern: &str| pattern.replace('*', "x");
        let mut keys: Vec<String> = DEFAULT_ALLOWED_SPARK_CONF
            .iter()
            .map(|a| concrete(a.pattern))
            .chain(DEFAULT_FORBIDDEN_SPARK_CONF.iter().map(|p| concrete(p)))
            .chain(
                spark_conf::ALTERNATES
                    .iter()
                    .flat_map(|(a, c)| [a.to_string(), c.to_string()]),
            )
            .collect();
        let near: Vec<String> = keys
            .iter()
            .flat_map(|k| [k.to_uppercase(), format!("{k} "), format!(" {k}")])
            .collect();
        keys.extend(near);
        for role in ["driver", "executor", "task"] {
            for setting in ["amount", "vendor", "discoveryScript"] {
                keys.push(format!("spark.{role}.resource.gpu.{setting}"));
                keys.push(format!("spark.{role}.resource.fpga.{setting}"));
            }
        }
        keys.extend(
            [
                "",
                "spark.",
                "spark.sql.",
                "a/b",
                "spark.x\n",
                "spark.hadoop.fs.s3a.access.key",
            ]
            .map(String::from),
        );
        keys
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => prop::sample::select(vec![
                "0", "1", "2", "3", "8", "9", "50", "51", "-1", "4294967296", "18446744073709551616",
                "512m", "1g", "4g", "28g", "32g", "33g", "1.5g", "1t", "8p", "1024", "0.5", "500m",
                "7.5", "8.001", "true", "TRUE", " false ", "yes", "nvidia.com", "xilinx.com", "spark",
                "default", "apache/spark:4.1.0", "apache/spark-evil:1", "docker.io/apache/spark",
                "evil.io/apache/spark:1", "local:///opt/a.py", "s3a://b/k", "https://artifacts.example.com/a.jar",
                "https://evil.example.net/a.jar", "file:///etc/passwd", "/etc/passwd", "a,b", "", "\u{0}",
                "OnFailure", "Always", "Never", "Python", "Java", "R", "sjns-data-control", "kube-system",
            ])
            .prop_map(String::from),
            2 => any::<String>().prop_map(|s| s.chars().take(40).collect()),
            1 => (0u64..u64::MAX).prop_map(|n| n.to_string()),
            1 => (1u32..100_000, prop::sample::select(vec!["k", "m", "g", "t", "b", ""]))
                .prop_map(|(n, unit)| format!("{n}{unit}")),
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            text().prop_map(Value::String),
            any::<i64>().prop_map(|n| json!(n)),
            any::<u32>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|f| json!(f)),
            any::<bool>().prop_map(Value::Bool),
            Just(Value::Null),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(text(), inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    const FIELDS: &[&[&str]] = &[
        &["image"],
        &["image_pull_policy"],
        &["driver", "cores"],
        &["driver", "memory"],
        &["driver", "service_account"],
        &["executor", "instances"],
        &["executor", "cores"],
        &["executor", "memory"],
        &["py_files"],
        &["jars"],
        &["main_application_file"],
        &["main_class"],
        &["arguments"],
        &["labels"],
        &["namespace"],
        &["application_name"],
        &["spark_application_type"],
        &["runtime_versions", "spark_version"],
        &["application_tolerations", "restart_config"],
        &["application_tolerations", "ttl_after_stop_millis"],
        &["application_tolerations", "resource_retain_policy"],
        &["application_tolerations", "resource_retain_duration_millis"],
        &["application_tolerations", "instance_config"],
        &["dry_run"],
        &["submitted_by"],
        &["cluster"],
        &["unknown_field"],
    ];

    #[derive(Debug, Clone)]
    enum Mutation {
        SetConf(String, String),
        RemoveConf(String),
        SetField(usize, Value),
        RemoveField(usize),
    }

    fn mutation(keys: Vec<String>) -> impl Strategy<Value = Mutation> {
        let key = prop::sample::select(keys);
        prop_oneof![
            5 => (key.clone(), text()).prop_map(|(k, v)| Mutation::SetConf(k, v)),
            1 => key.prop_map(Mutation::RemoveConf),
            3 => (0..FIELDS.len(), json_value()).prop_map(|(f, v)| Mutation::SetField(f, v)),
            1 => (0..FIELDS.len()).prop_map(Mutation::RemoveField),
        ]
    }

    fn apply(request: &mut Value, mutation: &Mutation) {
        let object = request.as_object_mut().expect("requests are objects");
        match mutation {
            Mutation::SetConf(key, value) => {
                let conf = object.entry("spark_conf").or_insert_with(|| json!({}));
                if let Some(conf) = conf.as_object_mut() {
                    conf.insert(key.clone(), json!(value));
                }
            }
            Mutation::RemoveConf(key) => {
                if let Some(conf) = object.get_mut("spark_conf").and_then(Value::as_object_mut) {
                    conf.remove(key);
                }
            }
            Mutation::SetField(field, _) | Mutation::RemoveField(field) => {
                let path = FIELDS[*field];
                let mut target = object;
                for step in &path[..path.len() - 1] {
                    let next = target.entry(*step).or_insert_with(|| json!({}));
                    match next.as_object_mut() {
                        Some(next) => target = next,
                        None => return,
                    }
                }
                let last = path[path.len() - 1];
                match mutation {
                    Mutation::SetField(_, value) => {
                        target.insert(last.to_string(), value.clone());
                    }
                    _ => {
                        target.remove(last);
                    }
                }
            }
        }
    }

    /// How many inputs one run tries: `POLICY_PROPERTY_CASES` (1,000,000 for the report in the README),
    /// 10,000 by default so the suite stays quick.
    fn cases() -> u32 {
        std::env::var("POLICY_PROPERTY_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10_000)
    }

    #[test]
    fn arbitrary_requests_never_panic_and_whatever_passes_stays_within_the_policy() {
        let corpus = Corpus::load();
        let strict: Policy = serde_json::from_value(corpus.policy.clone()).unwrap();
        let mut open = strict.clone();
        open.allow_any_image = true;
        open.allowed_spark_conf.push("spark.hadoop.*".into());
        let policies = [strict, open];
        let bases: Vec<Value> = ["python", "java", "r"]
            .iter()
            .map(|b| {
                let mut base = corpus.base(b).clone();
                let object = base.as_object_mut().unwrap();
                object.insert("action".into(), json!("submit"));
                object.insert("request_id".into(), json!("prop-1"));
                object.insert("application_name".into(), json!("prop"));
                base
            })
            .collect();
        let input = prop_oneof![
            19 => (0..bases.len(), prop::collection::vec(mutation(keys()), 0..12), 0..2usize)
                .prop_map(move |(base, mutations, policy)| {
                    let mut request = bases[base].clone();
                    for m in &mutations {
                        apply(&mut request, m);
                    }
                    (request.to_string(), policy)
                }),
            1 => (json_value(), 0..2usize).prop_map(|(value, policy)| (value.to_string(), policy)),
        ];
        let mut runner = TestRunner::new(Config {
            cases: cases(),
            failure_persistence: None,
            ..Config::default()
        });
        let started = std::time::Instant::now();
        let admitted = std::cell::Cell::new(0u64);
        runner
            .run(&input, |(message, policy)| {
                let policy = &policies[policy];
                if let Ok(JobRequest::Submit(request)) = decode_job_request(message.as_bytes())
                    && let Ok(passed) = policy.admit(&request, "dev")
                {
                    admitted.set(admitted.get() + 1);
                    assert_within_policy(policy, &passed, &message);
                }
                Ok(())
            })
            .unwrap();
        eprintln!(
            "{} arbitrary requests in {:.1} s, {} admitted and within the policy",
            cases(),
            started.elapsed().as_secs_f64(),
            admitted.get()
        );
    }
}

#[test]
fn the_readme_documents_every_default_allowed_setting() {
    let readme = std::fs::read_to_string(repo_file("README.md")).unwrap();
    let missing: Vec<&str> = spark_gateway_core::policy::DEFAULT_ALLOWED_SPARK_CONF
        .iter()
        .map(|allowed| allowed.pattern)
        .filter(|pattern| !readme.contains(&format!("`{pattern}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md's allow-list table lacks {missing:?}"
    );
}
