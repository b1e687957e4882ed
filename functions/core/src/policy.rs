//! Whether a request may run, and in what form: Kubernetes name rules, per-cluster allow-lists, caps on
//! what the pods really get, and Spark settings known to stay inside the job's own pods. Pure; every
//! violation of a request is reported at once, each naming its field and rule, so a producer fixes
//! everything in one round.
//!
//! The model is an allow-list: a request may set only what is known to be safe ([`spark_conf`]'s
//! curated keys, images under allowed prefixes, artifacts from allowed URI schemes, labels outside the
//! reserved prefixes), within bounds on its size. What passes is returned as an [`Admitted`] request
//! with the platform's defaults filled in (service accounts, retention), which is the only thing the
//! mapping accepts.
//!
//! # Layout
//! - [`spark_conf`]: the allow-list, the deny-list, Spark's alternate keys, near-misses.
//! - [`images`]: image references normalised, prefixes matched at component boundaries.
//! - [`artifacts`]: URI schemes and hosts of code and files.
//! - [`resources`]: what the driver and executor pods get, as Spark computes it.
//! - [`notify`]: the SQS queues and webhooks a submit may ask to be notified at.

pub mod artifacts;
pub mod images;
pub mod notify;
pub mod resources;
pub mod spark_conf;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use spark_gateway_events::{
    FieldViolation, ResourceRetainPolicy, RestartPolicy, SparkApplicationType, SubmitJobRequest,
};

pub use self::notify::NotifyPolicy;
pub use self::resources::Footprint;
pub use self::spark_conf::{DEFAULT_ALLOWED_SPARK_CONF, DEFAULT_FORBIDDEN_SPARK_CONF};
use crate::labels::is_reserved_label;
use crate::mapping::{conf, spark_conf as effective_conf};
use crate::names::{is_dns1035_label, is_dns1123_label, is_label_key, is_label_value};
use crate::quantity::parse_memory_bytes;

/// Bounds on the size of a request, so that nothing derived from one (the SparkApplication, the
/// rejection event, the logs) is large.
pub mod limits {
    /// `spark_conf` entries.
    pub const SPARK_CONF_ENTRIES: usize = 200;
    /// `labels` entries.
    pub const LABELS: usize = 32;
    /// `py_files` or `jars` entries.
    pub const ARTIFACTS: usize = 64;
    /// `arguments` entries.
    pub const ARGUMENTS: usize = 256;
    /// Characters of one argument.
    pub const ARGUMENT_CHARS: usize = 8192;
    /// Characters of `submitted_by`, `main_class` and version strings.
    pub const TEXT_CHARS: usize = 256;
}

/// Keys under `spark.kubernetes.authenticate.` that stay allowed (the deny-list covers the rest of that
/// prefix): they only name the service account, which its own allow-list checks.
const SERVICE_ACCOUNT_KEYS: [&str; 2] =
    [conf::DRIVER_SERVICE_ACCOUNT, conf::EXECUTOR_SERVICE_ACCOUNT];

/// Keys that name an image, all checked against the image allow-list.
pub const IMAGE_KEYS: [&str; 3] = [
    conf::IMAGE,
    "spark.kubernetes.driver.container.image",
    "spark.kubernetes.executor.container.image",
];

/// `spark_conf` keys holding comma-separated artifact lists.
const ARTIFACT_LIST_KEYS: [&str; 2] = ["spark.files", "spark.archives"];

/// Operator 0.5.0's default `maxRestartAttempts` when a restart policy is set without one.
const OPERATOR_DEFAULT_RESTART_ATTEMPTS: u32 = 3;

const WEEK_MILLIS: u64 = 7 * 24 * 3600 * 1000;

/// What one cluster allows. Deserialized from the gateway's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Namespaces applications may run in.
    pub allowed_namespaces: Vec<String>,
    /// Image prefixes allowed (`apache/spark:`, `123456789012.dkr.ecr.us-east-1.amazonaws.com/`),
    /// matched after normalisation at a `/`, `:` or `@` boundary. Required unless `allow_any_image`.
    #[serde(default)]
    pub allowed_image_prefixes: Option<Vec<String>>,
    /// Let requests run any image (a development cluster); without it an image allow-list is required.
    #[serde(default)]
    pub allow_any_image: bool,
    /// Service accounts drivers and executors may run as; the first is used when a request names none.
    #[serde(default = "default_service_accounts")]
    pub allowed_service_accounts: Vec<String>,
    /// Most executors (static count, or dynamic allocation's maximum).
    #[serde(default = "default_max_executors")]
    pub max_executors: u32,
    /// Most CPU cores of the driver pod or of one executor pod (request, limit or core count).
    #[serde(default = "default_max_cores")]
    pub max_cores: u32,
    /// Most memory of the driver pod or of one executor pod, overhead, PySpark and off-heap included,
    /// as Spark writes sizes (`16g`).
    #[serde(default = "default_max_memory")]
    pub max_memory: String,
    /// Patterns added to the default `spark_conf` allow-list (`*` matches any run of characters).
    #[serde(default)]
    pub allowed_spark_conf: Vec<String>,
    /// Patterns added to the default deny-list, which wins over every allow pattern.
    #[serde(default)]
    pub forbidden_spark_conf: Vec<String>,
    /// URI schemes artifacts may use (`file` is refused whatever this says).
    #[serde(default = "default_artifact_schemes")]
    pub allowed_artifact_schemes: Vec<String>,
    /// Per scheme, the hosts artifacts may come from (a scheme not listed allows any host).
    #[serde(default)]
    pub allowed_artifact_hosts: BTreeMap<String, Vec<String>>,
    /// Extended resources (`nvidia.com/gpu`) a pod may request, with the most per pod; none by default.
    #[serde(default)]
    pub allowed_extended_resources: BTreeMap<String, u32>,
    /// Most restarts an application may ask the operator for.
    #[serde(default = "default_max_restart_attempts")]
    pub max_restart_attempts: u32,
    /// Longest `ttl_after_stop_millis`.
    #[serde(default = "default_max_retention_millis")]
    pub max_ttl_after_stop_millis: u64,
    /// Longest `resource_retain_duration_millis`; also what a retaining request without one gets.
    #[serde(default = "default_max_retention_millis")]
    pub max_resource_retain_duration_millis: u64,
    /// Where submits may ask to be notified; by default nowhere.
    #[serde(default)]
    pub notify: NotifyPolicy,
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
fn default_artifact_schemes() -> Vec<String> {
    artifacts::DEFAULT_SCHEMES
        .iter()
        .map(|s| s.to_string())
        .collect()
}
fn default_max_restart_attempts() -> u32 {
    OPERATOR_DEFAULT_RESTART_ATTEMPTS
}
fn default_max_retention_millis() -> u64 {
    WEEK_MILLIS
}

/// A request the policy admitted, with the platform's defaults filled in and `spark_conf` keys in the
/// spelling Spark reads: the only input of the mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Admitted {
    request: SubmitJobRequest,
    footprint: Footprint,
}

impl Admitted {
    /// The request as it will be mapped.
    pub fn request(&self) -> &SubmitJobRequest {
        &self.request
    }

    /// What its pods get.
    pub fn footprint(&self) -> &Footprint {
        &self.footprint
    }
}

impl Policy {
    /// A policy allowing `namespaces`, with the default caps and lists and no image allowed yet.
    pub fn allowing_namespaces<I: IntoIterator<Item = S>, S: Into<String>>(namespaces: I) -> Self {
        Self {
            allowed_namespaces: namespaces.into_iter().map(Into::into).collect(),
            allowed_image_prefixes: None,
            allow_any_image: false,
            allowed_service_accounts: default_service_accounts(),
            max_executors: default_max_executors(),
            max_cores: default_max_cores(),
            max_memory: default_max_memory(),
            allowed_spark_conf: Vec::new(),
            forbidden_spark_conf: Vec::new(),
            allowed_artifact_schemes: default_artifact_schemes(),
            allowed_artifact_hosts: BTreeMap::new(),
            allowed_extended_resources: BTreeMap::new(),
            max_restart_attempts: default_max_restart_attempts(),
            max_ttl_after_stop_millis: default_max_retention_millis(),
            max_resource_retain_duration_millis: default_max_retention_millis(),
            notify: NotifyPolicy::default(),
        }
    }

    /// The same policy allowing images under `prefixes`.
    pub fn with_image_prefixes<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        prefixes: I,
    ) -> Self {
        self.allowed_image_prefixes = Some(prefixes.into_iter().map(Into::into).collect());
        self
    }

    /// Checks the policy itself (run when configuration loads, so a typo fails at start, not per request).
    pub fn check(&self) -> Result<(), String> {
        if parse_memory_bytes(&self.max_memory).is_none() {
            return Err(format!(
                "max_memory {:?} is not a Spark memory size such as \"16g\"",
                self.max_memory
            ));
        }
        match (&self.allowed_image_prefixes, self.allow_any_image) {
            (None, false) => {
                return Err(
                    "allowed_image_prefixes is required (or allow_any_image: true for a cluster that runs any image)"
                        .into(),
                );
            }
            (Some(prefixes), _) => {
                for prefix in prefixes {
                    images::normalize_prefix(prefix)
                        .map_err(|e| format!("allowed_image_prefixes: {e}"))?;
                }
            }
            (None, true) => {}
        }
        if self.allowed_service_accounts.is_empty() {
            return Err("allowed_service_accounts must name at least one service account".into());
        }
        if let Some(never) = self
            .allowed_artifact_schemes
            .iter()
            .find(|s| artifacts::NEVER_ALLOWED_SCHEMES.contains(&s.as_str()))
        {
            return Err(format!(
                "allowed_artifact_schemes may not include {never:?}: it reads the operator's own files"
            ));
        }
        self.notify.check().map_err(|e| format!("notify.{e}"))?;
        Ok(())
    }

    /// Every way `request` breaks this policy on the cluster named `cluster` (empty when it may run).
    pub fn violations(&self, request: &SubmitJobRequest, cluster: &str) -> Vec<FieldViolation> {
        self.admit(request, cluster).err().unwrap_or_default()
    }

    /// The request as it will run, or every way it breaks this policy.
    pub fn admit(
        &self,
        request: &SubmitJobRequest,
        cluster: &str,
    ) -> Result<Admitted, Vec<FieldViolation>> {
        let mut found = Violations(self.target_violations(
            &request.namespace,
            &request.application_name,
            cluster,
        ));
        check_sizes(request, &mut found);
        check_main_resource(request, &mut found);
        check_labels(request, &mut found);
        let mut admitted = request.clone();
        admitted.spark_conf = self.check_spark_conf(request, &mut found);
        self.fill_defaults(&mut admitted);
        let effective = effective_conf(&admitted);
        let origin = Origin { request };
        self.check_images(&effective, &origin, &mut found);
        self.check_service_accounts(&effective, &origin, &mut found);
        let footprint = self.check_caps(&admitted, &effective, &origin, &mut found);
        self.check_extended_resources(&effective, &mut found);
        self.check_tolerations(&admitted, &mut found);
        self.check_artifacts(request, &mut found);
        for (field, rule, message) in self.notify.violations(&request.notify) {
            found.add(field, rule, message);
        }
        check_versions(request, &mut found);
        match (found.0.is_empty(), footprint) {
            (true, Some(footprint)) => Ok(Admitted {
                request: admitted,
                footprint,
            }),
            _ => Err(found.0),
        }
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

    /// Whether an image reference is well-formed and allowed on this cluster.
    pub fn allows_image(&self, image: &str) -> bool {
        images::normalize(image).is_ok_and(|normalized| self.allows_normalized_image(&normalized))
    }

    fn allows_normalized_image(&self, normalized: &str) -> bool {
        self.allow_any_image
            || self
                .allowed_image_prefixes
                .iter()
                .flatten()
                .filter_map(|p| images::normalize_prefix(p).ok())
                .any(|prefix| images::matches_prefix(normalized, &prefix))
    }

    /// Whether `key` (in Spark's spelling) passes the allow-list and stays off the deny-list.
    pub fn allows_spark_conf_key(&self, key: &str) -> bool {
        let key = spark_conf::canonical(key);
        (SERVICE_ACCOUNT_KEYS.contains(&key) || !self.is_forbidden(key)) && self.is_allowed(key)
    }

    fn is_forbidden(&self, key: &str) -> bool {
        DEFAULT_FORBIDDEN_SPARK_CONF
            .iter()
            .copied()
            .chain(self.forbidden_spark_conf.iter().map(String::as_str))
            .any(|pattern| spark_conf::glob_matches(pattern, key))
    }

    fn is_allowed(&self, key: &str) -> bool {
        DEFAULT_ALLOWED_SPARK_CONF
            .iter()
            .map(|a| a.pattern)
            .chain(self.allowed_spark_conf.iter().map(String::as_str))
            .any(|pattern| spark_conf::glob_matches(pattern, key))
    }

    /// Every pattern and key the policy knows, for near-miss detection.
    fn known_patterns(&self) -> impl Iterator<Item = &str> {
        DEFAULT_ALLOWED_SPARK_CONF
            .iter()
            .map(|a| a.pattern)
            .chain(self.allowed_spark_conf.iter().map(String::as_str))
            .chain(DEFAULT_FORBIDDEN_SPARK_CONF.iter().copied())
            .chain(self.forbidden_spark_conf.iter().map(String::as_str))
            .chain(
                spark_conf::ALTERNATES
                    .iter()
                    .flat_map(|(alternate, canonical)| [*alternate, *canonical]),
            )
    }

    /// Checks every `spark_conf` key and value; returns the configuration with alternate keys in the
    /// spelling Spark reads.
    fn check_spark_conf(
        &self,
        request: &SubmitJobRequest,
        found: &mut Violations,
    ) -> BTreeMap<String, String> {
        let mut canonical_conf = BTreeMap::new();
        if request.spark_conf.len() > limits::SPARK_CONF_ENTRIES {
            found.add(
                "spark_conf",
                "max_entries",
                format!(
                    "{} entries, at most {} allowed",
                    request.spark_conf.len(),
                    limits::SPARK_CONF_ENTRIES
                ),
            );
            return canonical_conf;
        }
        for (key, value) in &request.spark_conf {
            let field = format!("spark_conf.{key}");
            let exactly_known = self
                .known_patterns()
                .any(|pattern| spark_conf::glob_matches(pattern, key));
            if !exactly_known && let Some(known) = spark_conf::near_miss(key, self.known_patterns())
            {
                found.add(
                    field,
                    "spark_conf_near_miss",
                    format!(
                        "{key:?} differs from {known} only in case or whitespace; Spark keys are exact"
                    ),
                );
                continue;
            }
            let canonical = spark_conf::canonical(key);
            let alias = if canonical == key {
                String::new()
            } else {
                format!(" ({key} is read as {canonical})")
            };
            // The deny-list first: its verdict is the most telling, whatever else is wrong with the key.
            if !SERVICE_ACCOUNT_KEYS.contains(&canonical)
                && (self.is_forbidden(canonical) || self.is_forbidden(key))
            {
                found.add(
                    field,
                    "forbidden_spark_conf",
                    format!("{key} is set by the platform and may not be set by a request{alias}"),
                );
                continue;
            }
            if !spark_conf::is_key_well_formed(key) {
                found.add(
                    field,
                    "spark_conf_key_format",
                    format!(
                        "a Spark key is at most {} letters, digits, '.', '_' or '-'",
                        spark_conf::MAX_KEY_CHARS
                    ),
                );
                continue;
            }
            if value.chars().count() > spark_conf::MAX_VALUE_CHARS
                || value.chars().any(char::is_control)
            {
                found.add(
                    &field,
                    "spark_conf_value",
                    format!(
                        "values are at most {} characters without control characters",
                        spark_conf::MAX_VALUE_CHARS
                    ),
                );
            }
            if canonical != key && request.spark_conf.contains_key(canonical) {
                found.add(
                    &field,
                    "spark_conf_alternate_conflict",
                    format!("{key} is Spark's old name for {canonical}, which is also set"),
                );
                continue;
            }
            if extended_resource_key(canonical).is_none() && !self.is_allowed(canonical) {
                found.add(
                    field,
                    "spark_conf_allow_list",
                    format!(
                        "{key} is not among the Spark settings this cluster allows{alias}; see the README's allow-list"
                    ),
                );
                continue;
            }
            canonical_conf.insert(canonical.to_string(), value.clone());
        }
        canonical_conf
    }

    /// The platform's defaults for what a request leaves open.
    fn fill_defaults(&self, request: &mut SubmitJobRequest) {
        let effective = effective_conf(request);
        let driver_account = effective
            .get(conf::DRIVER_SERVICE_ACCOUNT)
            .cloned()
            .or_else(|| self.allowed_service_accounts.first().cloned());
        if let Some(account) = driver_account {
            if !effective.contains_key(conf::DRIVER_SERVICE_ACCOUNT) {
                request
                    .spark_conf
                    .insert(conf::DRIVER_SERVICE_ACCOUNT.into(), account.clone());
            }
            // Spark falls back to the driver's account; written out, so the pod spec says what runs.
            // A refused driver account is reported once, on its own field.
            let executor_account = if self.allowed_service_accounts.contains(&account) {
                Some(account)
            } else {
                self.allowed_service_accounts.first().cloned()
            };
            if let Some(executor_account) = executor_account
                && !effective.contains_key(conf::EXECUTOR_SERVICE_ACCOUNT)
            {
                request
                    .spark_conf
                    .insert(conf::EXECUTOR_SERVICE_ACCOUNT.into(), executor_account);
            }
        }
        if let Some(tolerations) = &mut request.application_tolerations {
            if let Some(restart) = &mut tolerations.restart_config
                && restart
                    .restart_policy
                    .is_some_and(|p| p != RestartPolicy::Never)
                && restart.max_restart_attempts.is_none()
            {
                restart.max_restart_attempts =
                    Some(OPERATOR_DEFAULT_RESTART_ATTEMPTS.min(self.max_restart_attempts));
            }
            if tolerations
                .resource_retain_policy
                .is_some_and(|p| p != ResourceRetainPolicy::Never)
                && tolerations.resource_retain_duration_millis.is_none()
            {
                tolerations.resource_retain_duration_millis =
                    Some(self.max_resource_retain_duration_millis);
            }
        }
    }

    fn check_images(
        &self,
        effective: &BTreeMap<String, String>,
        origin: &Origin<'_>,
        found: &mut Violations,
    ) {
        if !effective.contains_key(conf::IMAGE) {
            found.add(
                "image",
                "required",
                "an image is required (`image`, or spark.kubernetes.container.image)",
            );
        }
        for key in IMAGE_KEYS {
            let Some(image) = effective.get(key) else {
                continue;
            };
            let field = origin.field(key);
            match images::normalize(image) {
                Err(problem) => found.add(
                    field,
                    "image_reference",
                    format!("{image:?} is not an image reference: {problem}"),
                ),
                Ok(normalized) => {
                    if !self.allows_normalized_image(&normalized) {
                        found.add(
                            field,
                            "image_allow_list",
                            format!(
                                "image {image:?} ({normalized}) is not under an allowed prefix ({})",
                                self.allowed_image_prefixes
                                    .as_deref()
                                    .unwrap_or_default()
                                    .join(", ")
                            ),
                        );
                    }
                }
            }
        }
    }

    fn check_service_accounts(
        &self,
        effective: &BTreeMap<String, String>,
        origin: &Origin<'_>,
        found: &mut Violations,
    ) {
        for key in SERVICE_ACCOUNT_KEYS {
            let Some(account) = effective.get(key) else {
                continue;
            };
            if !self.allowed_service_accounts.contains(account) {
                found.add(
                    origin.field(key),
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
        admitted: &SubmitJobRequest,
        effective: &BTreeMap<String, String>,
        origin: &Origin<'_>,
        found: &mut Violations,
    ) -> Option<Footprint> {
        let footprint = match resources::footprint(effective, admitted.spark_application_type) {
            Ok(footprint) => footprint,
            Err(problems) => {
                for problem in problems {
                    found.add(origin.field(&problem.key), problem.rule, problem.message);
                }
                return None;
            }
        };
        let max_memory = parse_memory_bytes(&self.max_memory).unwrap_or(u64::MAX);
        let max_cpu_millis = u64::from(self.max_cores) * 1000;
        for (role, pod) in [
            (resources::Role::Driver, &footprint.driver),
            (resources::Role::Executor, &footprint.executor),
        ] {
            let r = role.as_str();
            if let Some(key) = pod.memory_over(max_memory) {
                found.add(
                    origin.field(key),
                    "max_memory",
                    format!(
                        "the {r} pod would get {} MiB (heap, overhead, PySpark and off-heap memory), at most {} allowed",
                        pod.memory_bytes >> 20,
                        self.max_memory
                    ),
                );
            }
            if let Some(key) = pod.cpu_over(max_cpu_millis) {
                found.add(
                    origin.field(key),
                    "max_cores",
                    format!(
                        "the {r} pod would get {} cores (cores, request.cores or limit.cores), at most {} allowed",
                        pod.cpu_millis as f64 / 1000.0,
                        self.max_cores
                    ),
                );
            }
        }
        if footprint.max_executors > self.max_executors {
            let key = if footprint.dynamic_allocation {
                conf::MAX_EXECUTORS
            } else {
                conf::EXECUTOR_INSTANCES
            };
            found.add(
                origin.field(key),
                "max_executors",
                format!(
                    "{} executors requested, at most {} allowed",
                    footprint.max_executors, self.max_executors
                ),
            );
        }
        Some(footprint)
    }

    fn check_extended_resources(
        &self,
        effective: &BTreeMap<String, String>,
        found: &mut Violations,
    ) {
        for (key, value) in effective {
            let Some((role, name, setting)) = extended_resource_key(key) else {
                continue;
            };
            let field = format!("spark_conf.{key}");
            // Task resources divide an executor's; the executor's vendor names the device.
            let vendor_role = if role == "task" { "executor" } else { role };
            let vendor_key = format!("spark.{vendor_role}.resource.{name}.vendor");
            let Some(vendor) = effective.get(&vendor_key) else {
                found.add(
                    field,
                    "extended_resource",
                    format!("{key} needs {vendor_key} (the Kubernetes resource's domain, e.g. nvidia.com)"),
                );
                continue;
            };
            let resource = format!("{vendor}/{name}");
            let Some(&most) = self.allowed_extended_resources.get(&resource) else {
                found.add(
                    field,
                    "extended_resource",
                    format!("extended resource {resource} is not allowed on this cluster"),
                );
                continue;
            };
            if setting == "amount" && role != "task" {
                match value.trim().parse::<u32>() {
                    Ok(amount) if amount <= most => {}
                    Ok(amount) => found.add(
                        field,
                        "extended_resource",
                        format!("{amount} {resource} requested, at most {most} per pod"),
                    ),
                    Err(_) => found.add(
                        field,
                        "invalid_quantity",
                        format!("{value:?} is not a whole number of {resource}"),
                    ),
                }
            }
        }
    }

    fn check_tolerations(&self, admitted: &SubmitJobRequest, found: &mut Violations) {
        let Some(tolerations) = &admitted.application_tolerations else {
            return;
        };
        const PREFIX: &str = "application_tolerations";
        if let Some(attempts) = tolerations
            .restart_config
            .as_ref()
            .and_then(|r| r.max_restart_attempts)
            && attempts > self.max_restart_attempts
        {
            found.add(
                format!("{PREFIX}.restart_config.max_restart_attempts"),
                "max_restart_attempts",
                format!(
                    "{attempts} restarts requested, at most {} allowed",
                    self.max_restart_attempts
                ),
            );
        }
        if let Some(ttl) = tolerations.ttl_after_stop_millis
            && ttl > self.max_ttl_after_stop_millis
        {
            found.add(
                format!("{PREFIX}.ttl_after_stop_millis"),
                "max_ttl_after_stop",
                format!(
                    "{ttl} ms requested, at most {} allowed",
                    self.max_ttl_after_stop_millis
                ),
            );
        }
        if let Some(retain) = tolerations.resource_retain_duration_millis
            && retain > self.max_resource_retain_duration_millis
        {
            found.add(
                format!("{PREFIX}.resource_retain_duration_millis"),
                "max_resource_retain_duration",
                format!(
                    "{retain} ms requested, at most {} allowed",
                    self.max_resource_retain_duration_millis
                ),
            );
        }
        if let Some(instances) = &tolerations.instance_config {
            for (name, value) in [
                ("init_executors", instances.init_executors),
                ("min_executors", instances.min_executors),
                ("max_executors", instances.max_executors),
            ] {
                if let Some(value) = value
                    && value > self.max_executors
                {
                    found.add(
                        format!("{PREFIX}.instance_config.{name}"),
                        "max_executors",
                        format!("{value} executors, at most {} allowed", self.max_executors),
                    );
                }
            }
        }
    }

    fn check_artifacts(&self, request: &SubmitJobRequest, found: &mut Violations) {
        let mut check = |field: String, entry: &str| {
            if let Err((rule, message)) = artifacts::check(
                entry,
                &self.allowed_artifact_schemes,
                &self.allowed_artifact_hosts,
            ) {
                found.add(field, rule, message);
            }
        };
        if request.py_files.len() <= limits::ARTIFACTS {
            for (i, entry) in request.py_files.iter().enumerate() {
                check(format!("py_files[{i}]"), entry);
            }
        }
        if request.jars.len() <= limits::ARTIFACTS {
            for (i, entry) in request.jars.iter().enumerate() {
                check(format!("jars[{i}]"), entry);
            }
        }
        if let Some(file) = &request.main_application_file {
            check("main_application_file".into(), file);
        }
        if request.spark_conf.len() <= limits::SPARK_CONF_ENTRIES {
            for key in ARTIFACT_LIST_KEYS {
                if let Some(list) = request.spark_conf.get(key) {
                    for entry in list.split(',') {
                        check(format!("spark_conf.{key}"), entry.trim());
                    }
                }
            }
        }
    }
}

/// `spark.{driver,executor,task}.resource.{name}.{setting}` as `(role, name, setting)`.
pub fn extended_resource_key(key: &str) -> Option<(&str, &str, &str)> {
    let rest = key.strip_prefix("spark.")?;
    let (role, rest) = rest.split_once(".resource.")?;
    let (name, setting) = rest.rsplit_once('.')?;
    let known = match role {
        "driver" | "executor" => matches!(setting, "amount" | "vendor" | "discoveryScript"),
        "task" => setting == "amount",
        _ => false,
    };
    (known && !name.is_empty() && !name.contains('.')).then_some((role, name, setting))
}

/// Which request field a Spark key came from: the typed field when the request set it, else the
/// `spark_conf` entry (in the request's spelling).
struct Origin<'a> {
    request: &'a SubmitJobRequest,
}

impl Origin<'_> {
    fn field(&self, key: &str) -> String {
        let request = self.request;
        let driver = request.driver.as_ref();
        let executor = request.executor.as_ref();
        let typed = match key {
            conf::IMAGE if request.image.is_some() => Some("image"),
            conf::DRIVER_CORES if driver.is_some_and(|d| d.cores.is_some()) => Some("driver.cores"),
            conf::DRIVER_MEMORY if driver.is_some_and(|d| d.memory.is_some()) => {
                Some("driver.memory")
            }
            conf::DRIVER_SERVICE_ACCOUNT if driver.is_some_and(|d| d.service_account.is_some()) => {
                Some("driver.service_account")
            }
            conf::EXECUTOR_INSTANCES if executor.is_some_and(|e| e.instances.is_some()) => {
                Some("executor.instances")
            }
            conf::EXECUTOR_CORES if executor.is_some_and(|e| e.cores.is_some()) => {
                Some("executor.cores")
            }
            conf::EXECUTOR_MEMORY if executor.is_some_and(|e| e.memory.is_some()) => {
                Some("executor.memory")
            }
            _ => None,
        };
        if let Some(typed) = typed {
            return typed.to_string();
        }
        let spelled = request
            .spark_conf
            .keys()
            .find(|k| spark_conf::canonical(k) == key)
            .map_or(key, String::as_str);
        format!("spark_conf.{spelled}")
    }
}

fn check_sizes(request: &SubmitJobRequest, found: &mut Violations) {
    let mut entries = |field: &str, len: usize, most: usize| {
        if len > most {
            found.add(
                field,
                "max_entries",
                format!("{len} entries, at most {most} allowed"),
            );
        }
    };
    entries("labels", request.labels.len(), limits::LABELS);
    entries("py_files", request.py_files.len(), limits::ARTIFACTS);
    entries("jars", request.jars.len(), limits::ARTIFACTS);
    entries("arguments", request.arguments.len(), limits::ARGUMENTS);
    if request.arguments.len() <= limits::ARGUMENTS {
        for (i, argument) in request.arguments.iter().enumerate() {
            if argument.chars().count() > limits::ARGUMENT_CHARS {
                found.add(
                    format!("arguments[{i}]"),
                    "max_length",
                    format!("longer than {} characters", limits::ARGUMENT_CHARS),
                );
            }
        }
    }
    if let Some(submitted_by) = &request.submitted_by
        && (submitted_by.chars().count() > limits::TEXT_CHARS
            || submitted_by.chars().any(char::is_control))
    {
        found.add(
            "submitted_by",
            "max_length",
            format!(
                "at most {} characters without control characters",
                limits::TEXT_CHARS
            ),
        );
    }
}

fn check_versions(request: &SubmitJobRequest, found: &mut Violations) {
    let versions = &request.runtime_versions;
    if !is_version(&versions.spark_version, 2..=3) {
        found.add(
            "runtime_versions.spark_version",
            "format",
            format!(
                "{:?} is not a Spark version such as \"4.1.0\"",
                versions.spark_version
            ),
        );
    }
    for (field, value) in [
        ("runtime_versions.scala_version", &versions.scala_version),
        ("runtime_versions.jdk_version", &versions.jdk_version),
    ] {
        if let Some(value) = value
            && !is_version(value, 1..=3)
        {
            found.add(
                field,
                "format",
                format!("{value:?} is not a version such as \"2.13\" or \"17\""),
            );
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
    if let Some(main_class) = &request.main_class
        && !is_class_name(main_class)
    {
        found.add(
            "main_class",
            "format",
            format!(
                "a main class is a dotted Java name of at most {} characters",
                limits::TEXT_CHARS
            ),
        );
    }
}

fn check_labels(request: &SubmitJobRequest, found: &mut Violations) {
    if request.labels.len() > limits::LABELS {
        return;
    }
    for (key, value) in &request.labels {
        let field = format!("labels.{key}");
        if is_reserved_label(key) {
            found.add(
                field,
                "reserved_label",
                format!("label {key} is under a prefix reserved for Kubernetes, the operator or the gateway"),
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

fn is_version(version: &str, parts: std::ops::RangeInclusive<usize>) -> bool {
    let split: Vec<&str> = version.split('.').collect();
    version.len() <= 32
        && parts.contains(&split.len())
        && split
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_class_name(name: &str) -> bool {
    name.len() <= limits::TEXT_CHARS
        && name.split('.').all(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        })
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
