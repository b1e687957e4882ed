//! Whether a request may run: Kubernetes name rules, per-cluster allow-lists, resource caps and Spark
//! settings that would escape the platform. Pure; every violation of a request is reported at once,
//! each naming its field and rule, so a producer fixes everything in one round.

use serde::{Deserialize, Serialize};
use spark_gateway_events::{FieldViolation, SparkApplicationType, SubmitJobRequest};

use crate::labels::{MANAGED_BY_LABEL, RESERVED_PREFIX};
use crate::mapping::{conf, spark_conf};
use crate::names::{is_dns1035_label, is_dns1123_label, is_label_key, is_label_value};
use crate::quantity::{parse_cores, parse_memory_bytes};

/// Spark settings refused by default: they pick the cluster, namespace or credentials, mount the host,
/// or replace the pod spec the platform controls. A trailing `*` matches any suffix.
pub const DEFAULT_FORBIDDEN_SPARK_CONF: &[&str] = &[
    "spark.master",
    "spark.kubernetes.namespace",
    "spark.kubernetes.context",
    "spark.kubernetes.authenticate.*",
    "spark.kubernetes.driver.podTemplateFile",
    "spark.kubernetes.executor.podTemplateFile",
    "spark.kubernetes.driver.podTemplateContainerName",
    "spark.kubernetes.executor.podTemplateContainerName",
    "spark.kubernetes.driver.volumes.hostPath.*",
    "spark.kubernetes.executor.volumes.hostPath.*",
    "spark.kubernetes.driver.pod.name",
    "spark.kubernetes.executor.podNamePrefix",
    "spark.kubernetes.driver.master",
];

/// Keys under `spark.kubernetes.authenticate.` that stay allowed, because they only name the service
/// account, which the allow-list checks.
const SERVICE_ACCOUNT_KEYS: [&str; 2] =
    [conf::DRIVER_SERVICE_ACCOUNT, conf::EXECUTOR_SERVICE_ACCOUNT];

/// Keys that name an image, all checked against the registry allow-list.
const IMAGE_KEYS: [&str; 3] = [
    conf::IMAGE,
    "spark.kubernetes.driver.container.image",
    "spark.kubernetes.executor.container.image",
];

/// What one cluster allows. Deserialized from the gateway's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Namespaces applications may run in.
    pub allowed_namespaces: Vec<String>,
    /// Image prefixes allowed (`apache/spark:`, `123456789012.dkr.ecr.us-east-1.amazonaws.com/`);
    /// absent means any image.
    #[serde(default)]
    pub allowed_image_prefixes: Option<Vec<String>>,
    /// Service accounts drivers and executors may run as.
    #[serde(default = "default_service_accounts")]
    pub allowed_service_accounts: Vec<String>,
    /// Most executors (static count, or dynamic allocation's maximum).
    #[serde(default = "default_max_executors")]
    pub max_executors: u32,
    /// Most cores of the driver or of one executor.
    #[serde(default = "default_max_cores")]
    pub max_cores: u32,
    /// Most memory of the driver or of one executor, as Spark writes it (`16g`).
    #[serde(default = "default_max_memory")]
    pub max_memory: String,
    /// Spark settings refused; a trailing `*` matches any suffix.
    #[serde(default = "default_forbidden")]
    pub forbidden_spark_conf: Vec<String>,
}

fn default_service_accounts() -> Vec<String> {
    vec!["spark".to_string()]
}
fn default_max_executors() -> u32 {
    50
}
fn default_max_cores() -> u32 {
    8
}
fn default_max_memory() -> String {
    "32g".to_string()
}
fn default_forbidden() -> Vec<String> {
    DEFAULT_FORBIDDEN_SPARK_CONF
        .iter()
        .map(|s| s.to_string())
        .collect()
}

impl Policy {
    /// A policy allowing `namespaces`, with the default caps and forbidden settings.
    pub fn allowing_namespaces<I: IntoIterator<Item = S>, S: Into<String>>(namespaces: I) -> Self {
        Self {
            allowed_namespaces: namespaces.into_iter().map(Into::into).collect(),
            allowed_image_prefixes: None,
            allowed_service_accounts: default_service_accounts(),
            max_executors: default_max_executors(),
            max_cores: default_max_cores(),
            max_memory: default_max_memory(),
            forbidden_spark_conf: default_forbidden(),
        }
    }

    /// Checks the policy itself (run when configuration loads, so a typo fails at start, not per request).
    pub fn check(&self) -> Result<(), String> {
        if parse_memory_bytes(&self.max_memory).is_none() {
            return Err(format!(
                "max_memory {:?} is not a Spark memory size such as \"16g\"",
                self.max_memory
            ));
        }
        Ok(())
    }

    /// Every way `request` breaks this policy on the cluster named `cluster` (empty when it may run).
    pub fn violations(&self, request: &SubmitJobRequest, cluster: &str) -> Vec<FieldViolation> {
        let mut found = Violations(self.target_violations(
            &request.namespace,
            &request.application_name,
            cluster,
        ));
        check_main_resource(request, &mut found);
        check_labels(request, &mut found);
        let effective = spark_conf(request);
        let origin = |key: &str, typed_field: &str, typed_set: bool| {
            if typed_set {
                typed_field.to_string()
            } else {
                format!("spark_conf.{key}")
            }
        };
        self.check_forbidden_conf(request, &mut found);
        self.check_images(request, &effective, &origin, &mut found);
        self.check_service_accounts(request, &effective, &origin, &mut found);
        self.check_caps(request, &effective, &origin, &mut found);
        if !is_spark_version(&request.runtime_versions.spark_version) {
            found.add(
                "runtime_versions.spark_version",
                "format",
                format!(
                    "{:?} is not a Spark version such as \"4.1.0\"",
                    request.runtime_versions.spark_version
                ),
            );
        }
        found.0
    }

    /// Whether a request may address the application `namespace/name` on `cluster` at all (the check
    /// delete and status requests get; submits get it too, among the rest).
    pub fn target_violations(
        &self,
        namespace: &str,
        name: &str,
        cluster: &str,
    ) -> Vec<FieldViolation> {
        let mut found = Violations::default();
        if !is_dns1035_label(name) {
            found.add(
                "application_name",
                "kubernetes_name",
                format!(
                    "{name:?} must be 1-63 lowercase letters, digits or '-', start with a letter and end with a letter or digit"
                ),
            );
        }
        if !is_dns1123_label(namespace) {
            found.add(
                "namespace",
                "kubernetes_name",
                format!("{namespace:?} must be 1-63 lowercase letters, digits or '-', starting and ending alphanumeric"),
            );
        } else if !self
            .allowed_namespaces
            .iter()
            .any(|allowed| allowed == namespace)
        {
            found.add(
                "namespace",
                "namespace_allow_list",
                format!("namespace {namespace:?} is not allowed on cluster {cluster:?}"),
            );
        }
        found.0
    }

    fn check_forbidden_conf(&self, request: &SubmitJobRequest, found: &mut Violations) {
        for key in request.spark_conf.keys() {
            if SERVICE_ACCOUNT_KEYS.contains(&key.as_str()) {
                continue;
            }
            if self
                .forbidden_spark_conf
                .iter()
                .any(|pattern| matches_pattern(pattern, key))
            {
                found.add(
                    format!("spark_conf.{key}"),
                    "forbidden_spark_conf",
                    format!("{key} is set by the platform and may not be set by a request"),
                );
            }
        }
    }

    fn check_images(
        &self,
        request: &SubmitJobRequest,
        effective: &std::collections::BTreeMap<String, String>,
        origin: &dyn Fn(&str, &str, bool) -> String,
        found: &mut Violations,
    ) {
        if !effective.contains_key(conf::IMAGE) {
            found.add(
                "image",
                "required",
                "an image is required (`image`, or spark.kubernetes.container.image)",
            );
        }
        let Some(prefixes) = &self.allowed_image_prefixes else {
            return;
        };
        for key in IMAGE_KEYS {
            let Some(image) = effective.get(key) else {
                continue;
            };
            if !prefixes
                .iter()
                .any(|prefix| image.starts_with(prefix.as_str()))
            {
                found.add(
                    origin(key, "image", key == conf::IMAGE && request.image.is_some()),
                    "image_allow_list",
                    format!(
                        "image {image:?} is not from an allowed registry ({})",
                        prefixes.join(", ")
                    ),
                );
            }
        }
    }

    fn check_service_accounts(
        &self,
        request: &SubmitJobRequest,
        effective: &std::collections::BTreeMap<String, String>,
        origin: &dyn Fn(&str, &str, bool) -> String,
        found: &mut Violations,
    ) {
        let typed = request
            .driver
            .as_ref()
            .and_then(|d| d.service_account.as_ref())
            .is_some();
        for key in SERVICE_ACCOUNT_KEYS {
            let Some(account) = effective.get(key) else {
                continue;
            };
            if !self.allowed_service_accounts.contains(account) {
                found.add(
                    origin(
                        key,
                        "driver.service_account",
                        key == conf::DRIVER_SERVICE_ACCOUNT && typed,
                    ),
                    "service_account_allow_list",
                    format!(
                        "service account {account:?} is not allowed ({})",
                        self.allowed_service_accounts.join(", ")
                    ),
                );
            }
        }
    }

    fn check_caps(
        &self,
        request: &SubmitJobRequest,
        effective: &std::collections::BTreeMap<String, String>,
        origin: &dyn Fn(&str, &str, bool) -> String,
        found: &mut Violations,
    ) {
        let driver = request.driver.clone().unwrap_or_default();
        let executor = request.executor.clone().unwrap_or_default();
        let max_memory = parse_memory_bytes(&self.max_memory).unwrap_or(u64::MAX);

        for (key, field, typed) in [
            (
                conf::EXECUTOR_INSTANCES,
                "executor.instances",
                executor.instances.is_some(),
            ),
            (
                conf::MAX_EXECUTORS,
                "spark_conf.spark.dynamicAllocation.maxExecutors",
                false,
            ),
        ] {
            let Some(text) = effective.get(key) else {
                continue;
            };
            let field = origin(key, field, typed);
            match text.trim().parse::<u32>() {
                Ok(count) if count > self.max_executors => found.add(
                    field,
                    "max_executors",
                    format!(
                        "{count} executors requested, at most {} allowed",
                        self.max_executors
                    ),
                ),
                Ok(_) => {}
                Err(_) => found.add(
                    field,
                    "invalid_quantity",
                    format!("{text:?} is not a whole number of executors"),
                ),
            }
        }
        for (key, field, typed) in [
            (conf::DRIVER_CORES, "driver.cores", driver.cores.is_some()),
            (
                conf::EXECUTOR_CORES,
                "executor.cores",
                executor.cores.is_some(),
            ),
        ] {
            let Some(text) = effective.get(key) else {
                continue;
            };
            let field = origin(key, field, typed);
            match parse_cores(text) {
                Some(cores) if cores > self.max_cores => found.add(
                    field,
                    "max_cores",
                    format!(
                        "{cores} cores requested, at most {} allowed",
                        self.max_cores
                    ),
                ),
                Some(_) => {}
                None => found.add(
                    field,
                    "invalid_quantity",
                    format!("{text:?} is not a positive whole number of cores"),
                ),
            }
        }
        for (key, field, typed) in [
            (
                conf::DRIVER_MEMORY,
                "driver.memory",
                driver.memory.is_some(),
            ),
            (
                conf::EXECUTOR_MEMORY,
                "executor.memory",
                executor.memory.is_some(),
            ),
        ] {
            let Some(text) = effective.get(key) else {
                continue;
            };
            let field = origin(key, field, typed);
            match parse_memory_bytes(text) {
                Some(bytes) if bytes > max_memory => found.add(
                    field,
                    "max_memory",
                    format!("{text} requested, at most {} allowed", self.max_memory),
                ),
                Some(_) => {}
                None => found.add(
                    field,
                    "invalid_quantity",
                    format!("{text:?} is not a Spark memory size such as \"512m\" or \"4g\""),
                ),
            }
        }
    }
}

fn check_main_resource(request: &SubmitJobRequest, found: &mut Violations) {
    let kind = request.spark_application_type;
    let type_name = format!("{kind:?}");
    let mut require = |present: bool, field: &str, what: &str| {
        if !present {
            found.add(
                field,
                "required_for_type",
                format!("{type_name} applications need {what}"),
            );
        }
    };
    match kind {
        SparkApplicationType::Python => require(
            !request.py_files.is_empty(),
            "py_files",
            "the main script as py_files[0]",
        ),
        SparkApplicationType::Java | SparkApplicationType::Scala => {
            require(
                request.main_application_file.is_some(),
                "main_application_file",
                "the application jar",
            );
            require(request.main_class.is_some(), "main_class", "the main class");
        }
        SparkApplicationType::R => require(
            request.main_application_file.is_some(),
            "main_application_file",
            "the R file",
        ),
    }
    let mut refuse = |present: bool, field: &str| {
        if present {
            found.add(
                field,
                "not_allowed_for_type",
                format!("{field} does not apply to {type_name} applications"),
            );
        }
    };
    match kind {
        SparkApplicationType::Python => {
            refuse(
                request.main_application_file.is_some(),
                "main_application_file",
            );
            refuse(request.main_class.is_some(), "main_class");
        }
        SparkApplicationType::Java | SparkApplicationType::Scala => {
            refuse(!request.py_files.is_empty(), "py_files")
        }
        SparkApplicationType::R => {
            refuse(!request.py_files.is_empty(), "py_files");
            refuse(request.main_class.is_some(), "main_class");
        }
    }
}

fn check_labels(request: &SubmitJobRequest, found: &mut Violations) {
    for (key, value) in &request.labels {
        let field = format!("labels.{key}");
        if key.starts_with(RESERVED_PREFIX) || key == MANAGED_BY_LABEL {
            found.add(
                field,
                "reserved_label",
                format!("label {key} is set by the gateway"),
            );
        } else if !is_label_key(key) {
            found.add(
                field,
                "label",
                format!("{key:?} is not a valid Kubernetes label key"),
            );
        } else if !is_label_value(value) {
            found.add(
                field,
                "label",
                format!("{value:?} is not a valid Kubernetes label value"),
            );
        }
    }
}

fn matches_pattern(pattern: &str, key: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => key.starts_with(prefix),
        None => key == pattern,
    }
}

fn is_spark_version(version: &str) -> bool {
    let parts: Vec<&str> = version.split('.').collect();
    (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

#[derive(Default)]
struct Violations(Vec<FieldViolation>);

impl Violations {
    fn add(&mut self, field: impl Into<String>, rule: &str, message: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            rule: rule.to_string(),
            message: message.into(),
        });
    }
}
