//! An [`Admitted`] request to the `spark.apache.org/v1` SparkApplication the Apache operator runs. Pure
//! and deterministic: the same request always gives the same object, byte for byte.
//!
//! The operator has no typed fields for image, resources or service account: everything but the main
//! resource, arguments, versions and tolerations goes through `sparkConf`, where the request's typed
//! fields win over the same keys in `spark_conf`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use spark_gateway_events::{ApplicationTolerations, SparkApplicationType, SubmitJobRequest};

use crate::apache_v1::{self, API_VERSION, KIND};
use crate::policy::Admitted;

use crate::labels::{
    CLUSTER_ANNOTATION, MANAGED_BY_LABEL, MANAGED_BY_VALUE, NOTIFY_ANNOTATION, REQUEST_ID_LABEL,
    SPEC_HASH_ANNOTATION, SUBMITTED_BY_ANNOTATION, TRACEPARENT_ANNOTATION,
};

/// Spark configuration keys the typed request fields set.
pub mod conf {
    /// Container image of driver and executors.
    pub const IMAGE: &str = "spark.kubernetes.container.image";
    /// Image pull policy.
    pub const IMAGE_PULL_POLICY: &str = "spark.kubernetes.container.image.pullPolicy";
    /// Driver cores.
    pub const DRIVER_CORES: &str = "spark.driver.cores";
    /// Driver memory.
    pub const DRIVER_MEMORY: &str = "spark.driver.memory";
    /// Driver service account.
    pub const DRIVER_SERVICE_ACCOUNT: &str =
        "spark.kubernetes.authenticate.driver.serviceAccountName";
    /// Executor service account.
    pub const EXECUTOR_SERVICE_ACCOUNT: &str =
        "spark.kubernetes.authenticate.executor.serviceAccountName";
    /// Executor count.
    pub const EXECUTOR_INSTANCES: &str = "spark.executor.instances";
    /// Executor cores.
    pub const EXECUTOR_CORES: &str = "spark.executor.cores";
    /// Executor memory.
    pub const EXECUTOR_MEMORY: &str = "spark.executor.memory";
    /// Most executors under dynamic allocation.
    pub const MAX_EXECUTORS: &str = "spark.dynamicAllocation.maxExecutors";
    /// Python dependencies.
    pub const SUBMIT_PY_FILES: &str = "spark.submit.pyFiles";
    /// The application jar and extra jars.
    pub const JARS: &str = "spark.jars";

    /// Keys the mapping writes from typed fields that requests may not set through `spark_conf`.
    pub const GATEWAY_WRITTEN: [&str; 2] = [SUBMIT_PY_FILES, JARS];
}

/// The SparkApplication for an admitted request on the cluster the gateway calls `cluster`.
pub fn spark_application(admitted: &Admitted, cluster: &str) -> Value {
    let request = admitted.request();
    let spec = spec(request);
    let mut labels: BTreeMap<&str, &str> = request
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    labels.insert(MANAGED_BY_LABEL, MANAGED_BY_VALUE);
    labels.insert(REQUEST_ID_LABEL, request.request_id.as_str());

    let mut annotations = BTreeMap::new();
    annotations.insert(CLUSTER_ANNOTATION, cluster.to_string());
    annotations.insert(SPEC_HASH_ANNOTATION, spec_hash(&spec));
    if let Some(submitted_by) = &request.submitted_by {
        annotations.insert(SUBMITTED_BY_ANNOTATION, submitted_by.clone());
    }
    if let Some(traceparent) = &request.traceparent {
        annotations.insert(TRACEPARENT_ANNOTATION, traceparent.to_string());
    }
    if !request.notify.is_empty() {
        annotations.insert(
            NOTIFY_ANNOTATION,
            serde_json::to_string(&request.notify).expect("targets serialize"),
        );
    }

    json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": request.application_name,
            "namespace": request.namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    })
}

/// `sha256:<hex>` of a spec's canonical JSON text (object keys sorted), so equal specs hash equally
/// whatever order their keys were built or read in.
pub fn spec_hash(spec: &Value) -> String {
    let mut canonical = String::new();
    write_canonical(spec, &mut canonical);
    let digest = Sha256::digest(canonical.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn spec(request: &SubmitJobRequest) -> Value {
    let mut spec = Map::new();
    match request.spark_application_type {
        SparkApplicationType::Python => {
            if let Some(main) = request.py_files.first() {
                spec.insert("pyFiles".into(), json!(main));
            }
        }
        SparkApplicationType::Java | SparkApplicationType::Scala => {
            if let Some(jar) = &request.main_application_file {
                spec.insert("jars".into(), json!(jar));
            }
            if let Some(main_class) = &request.main_class {
                spec.insert("mainClass".into(), json!(main_class));
            }
        }
        SparkApplicationType::R => {
            if let Some(file) = &request.main_application_file {
                spec.insert("sparkRFiles".into(), json!(file));
            }
        }
    }
    if !request.arguments.is_empty() {
        spec.insert("driverArgs".into(), json!(request.arguments));
    }
    let versions = &request.runtime_versions;
    let mut runtime = Map::new();
    runtime.insert("sparkVersion".into(), json!(versions.spark_version));
    insert_some(
        &mut runtime,
        "scalaVersion",
        versions.scala_version.as_ref(),
    );
    insert_some(&mut runtime, "jdkVersion", versions.jdk_version.as_ref());
    spec.insert("runtimeVersions".into(), Value::Object(runtime));
    spec.insert("sparkConf".into(), json!(spark_conf(request)));
    // Spark writes no termination message of its own; with this policy the kubelet puts the end of
    // the driver's log there when it fails, and the operator copies it into the failing state's
    // `lastObservedDriverStatus`: the exception line survives the pod. Spark keeps a template
    // container's name and fields when it builds the driver container.
    spec.insert(
        "driverSpec".into(),
        json!({"podTemplateSpec": {"spec": {"containers": [{
            "name": apache_v1::DRIVER_CONTAINER,
            "terminationMessagePolicy": "FallbackToLogsOnError",
        }]}}}),
    );
    if let Some(tolerations) = request.application_tolerations.as_ref().map(tolerations)
        && !tolerations.is_empty()
    {
        spec.insert("applicationTolerations".into(), Value::Object(tolerations));
    }
    Value::Object(spec)
}

/// The effective Spark configuration: the request's `spark_conf` overridden by its typed fields.
pub fn spark_conf(request: &SubmitJobRequest) -> BTreeMap<String, String> {
    let mut conf = request.spark_conf.clone();
    let mut set = |key: &str, value: Option<String>| {
        if let Some(value) = value {
            conf.insert(key.to_string(), value);
        }
    };
    set(conf::IMAGE, request.image.clone());
    set(
        conf::IMAGE_PULL_POLICY,
        request.image_pull_policy.map(|p| p.as_str().to_string()),
    );
    if let Some(driver) = &request.driver {
        set(conf::DRIVER_CORES, driver.cores.clone());
        set(conf::DRIVER_MEMORY, driver.memory.clone());
        set(conf::DRIVER_SERVICE_ACCOUNT, driver.service_account.clone());
    }
    if let Some(executor) = &request.executor {
        set(
            conf::EXECUTOR_INSTANCES,
            executor.instances.map(|n| n.to_string()),
        );
        set(conf::EXECUTOR_CORES, executor.cores.clone());
        set(conf::EXECUTOR_MEMORY, executor.memory.clone());
    }
    if request.py_files.len() > 1 {
        set(conf::SUBMIT_PY_FILES, Some(request.py_files[1..].join(",")));
    }
    // Operator 0.5.0 sets spark.jars to the main jar only when the key is absent (`setIfMissing`), so
    // extras written alone would replace it; the main jar is written first, explicitly.
    let main_jar = match request.spark_application_type {
        SparkApplicationType::Java | SparkApplicationType::Scala => {
            request.main_application_file.as_ref()
        }
        SparkApplicationType::Python | SparkApplicationType::R => None,
    };
    let jars: Vec<&str> = main_jar
        .into_iter()
        .chain(&request.jars)
        .map(String::as_str)
        .collect();
    if !jars.is_empty() {
        set(conf::JARS, Some(jars.join(",")));
    }
    conf
}

fn tolerations(request: &ApplicationTolerations) -> Map<String, Value> {
    let mut out = Map::new();
    if let Some(policy) = request.resource_retain_policy {
        out.insert("resourceRetainPolicy".into(), json!(policy));
    }
    insert_some(
        &mut out,
        "resourceRetainDurationMillis",
        request.resource_retain_duration_millis.as_ref(),
    );
    insert_some(
        &mut out,
        "ttlAfterStopMillis",
        request.ttl_after_stop_millis.as_ref(),
    );
    if let Some(restart) = &request.restart_config {
        let mut config = Map::new();
        if let Some(policy) = restart.restart_policy {
            config.insert("restartPolicy".into(), json!(policy));
        }
        insert_some(
            &mut config,
            "maxRestartAttempts",
            restart.max_restart_attempts.as_ref(),
        );
        insert_some(
            &mut config,
            "restartBackoffMillis",
            restart.restart_backoff_millis.as_ref(),
        );
        out.insert("restartConfig".into(), Value::Object(config));
    }
    if let Some(timeouts) = &request.application_timeout_config {
        let mut config = Map::new();
        insert_some(
            &mut config,
            "driverStartTimeoutMillis",
            timeouts.driver_start_timeout_millis.as_ref(),
        );
        insert_some(
            &mut config,
            "driverReadyTimeoutMillis",
            timeouts.driver_ready_timeout_millis.as_ref(),
        );
        insert_some(
            &mut config,
            "executorStartTimeoutMillis",
            timeouts.executor_start_timeout_millis.as_ref(),
        );
        insert_some(
            &mut config,
            "forceTerminationGracePeriodMillis",
            timeouts.force_termination_grace_period_millis.as_ref(),
        );
        out.insert("applicationTimeoutConfig".into(), Value::Object(config));
    }
    if let Some(instances) = &request.instance_config {
        let mut config = Map::new();
        insert_some(
            &mut config,
            "initExecutors",
            instances.init_executors.as_ref(),
        );
        insert_some(
            &mut config,
            "minExecutors",
            instances.min_executors.as_ref(),
        );
        insert_some(
            &mut config,
            "maxExecutors",
            instances.max_executors.as_ref(),
        );
        out.insert("instanceConfig".into(), Value::Object(config));
    }
    out
}

fn insert_some<T: serde::Serialize>(map: &mut Map<String, Value>, key: &str, value: Option<&T>) {
    if let Some(value) = value {
        map.insert(key.to_string(), json!(value));
    }
}
