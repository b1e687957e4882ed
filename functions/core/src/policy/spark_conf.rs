//! Which `spark_conf` keys a request may set: an allow-list of settings known to stay inside the job's own
//! pods, a deny-list of settings known to escape them (which wins over any allow pattern a platform adds),
//! Spark's deprecated alternate spellings folded onto the keys they stand for, and near-misses (another
//! case or stray whitespace) refused by name so a typo is not mistaken for a setting Spark will apply.
//!
//! Patterns are exact keys or globs where `*` matches any run of characters (dots included).

use crate::mapping::conf;

/// One entry of the default allow-list and why it is safe to let a producer set it.
#[derive(Debug, Clone, Copy)]
pub struct Allowed {
    /// Exact key or glob.
    pub pattern: &'static str,
    /// Why a producer may set it.
    pub why: &'static str,
}

const RESOURCES: &str =
    "pod resources: counted into the pod's real memory or CPU and held to the cluster's caps";
const EXECUTORS: &str =
    "executor count: held to max_executors, dynamic allocation only with a bounded maxExecutors";
const TUNING: &str =
    "scheduling, shuffle, serialization or memory tuning inside the job's own JVMs";
const IMAGE: &str = "container image: checked against the image allow-list";
const IDENTITY: &str = "service account: checked against the service-account allow-list";
const ARTIFACTS: &str =
    "artifact list: every entry checked against the allowed URI schemes and hosts";

/// The default allow-list. A cluster's `allowed_spark_conf` adds patterns to it; the deny-list still
/// wins over both.
pub const DEFAULT_ALLOWED_SPARK_CONF: &[Allowed] = &[
    Allowed {
        pattern: "spark.sql.*",
        why: "Spark SQL's query engine, evaluated in the job's own driver and executors; no pod, credential or operator setting lives under spark.sql",
    },
    Allowed {
        pattern: conf::DRIVER_CORES,
        why: RESOURCES,
    },
    Allowed {
        pattern: conf::DRIVER_MEMORY,
        why: RESOURCES,
    },
    Allowed {
        pattern: "spark.driver.memoryOverhead",
        why: RESOURCES,
    },
    Allowed {
        pattern: "spark.driver.memoryOverheadFactor",
        why: RESOURCES,
    },
    Allowed {
        pattern: "spark.driver.minMemoryOverhead",
        why: RESOURCES,
    },
    Allowed {
        pattern: "spark.driver.maxResultSize",
        why: TUNING,
    },
    Allowed {
        pattern: conf::EXECUTOR_INSTANCES,
        why: EXECUTORS,
    },
    Allowed {
        pattern: conf::EXECUTOR_CORES,
        why: RESOURCES,
    },
    Allowed {
        pattern: conf::EXECUTOR_MEMORY,
        why: RESOURCES,
    },
    Allowed {
        pattern: "spark.executor.memoryOverhead",
        why: RESOURCES,
    },
    Allowed {
        pattern: "spark.executor.memoryOverheadFactor",
        why: RESOURCES,
    },
    Allowed {
        pattern: "spark.executor.minMemoryOverhead",
        why: RESOURCES,
    },
    Allowed {
        pattern: "spark.executor.pyspark.memory",
        why: RESOURCES,
    },
    Allowed {
        pattern: "spark.kubernetes.memoryOverheadFactor",
        why: RESOURCES,
    },
    Allowed {
        pattern: "spark.memory.offHeap.enabled",
        why: RESOURCES,
    },
    Allowed {
        pattern: "spark.memory.offHeap.size",
        why: RESOURCES,
    },
    Allowed {
        pattern: "spark.memory.fraction",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.memory.storageFraction",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.kubernetes.driver.request.cores",
        why: RESOURCES,
    },
    Allowed {
        pattern: "spark.kubernetes.driver.limit.cores",
        why: RESOURCES,
    },
    Allowed {
        pattern: "spark.kubernetes.executor.request.cores",
        why: RESOURCES,
    },
    Allowed {
        pattern: "spark.kubernetes.executor.limit.cores",
        why: RESOURCES,
    },
    Allowed {
        pattern: "spark.dynamicAllocation.enabled",
        why: EXECUTORS,
    },
    Allowed {
        pattern: conf::MAX_EXECUTORS,
        why: EXECUTORS,
    },
    Allowed {
        pattern: "spark.dynamicAllocation.minExecutors",
        why: EXECUTORS,
    },
    Allowed {
        pattern: "spark.dynamicAllocation.initialExecutors",
        why: EXECUTORS,
    },
    Allowed {
        pattern: "spark.dynamicAllocation.executorIdleTimeout",
        why: EXECUTORS,
    },
    Allowed {
        pattern: "spark.dynamicAllocation.cachedExecutorIdleTimeout",
        why: EXECUTORS,
    },
    Allowed {
        pattern: "spark.dynamicAllocation.schedulerBacklogTimeout",
        why: EXECUTORS,
    },
    Allowed {
        pattern: "spark.dynamicAllocation.sustainedSchedulerBacklogTimeout",
        why: EXECUTORS,
    },
    Allowed {
        pattern: "spark.dynamicAllocation.executorAllocationRatio",
        why: EXECUTORS,
    },
    Allowed {
        pattern: "spark.dynamicAllocation.shuffleTracking.enabled",
        why: EXECUTORS,
    },
    Allowed {
        pattern: "spark.dynamicAllocation.shuffleTracking.timeout",
        why: EXECUTORS,
    },
    Allowed {
        pattern: conf::IMAGE,
        why: IMAGE,
    },
    Allowed {
        pattern: "spark.kubernetes.driver.container.image",
        why: IMAGE,
    },
    Allowed {
        pattern: "spark.kubernetes.executor.container.image",
        why: IMAGE,
    },
    Allowed {
        pattern: conf::IMAGE_PULL_POLICY,
        why: "when the kubelet pulls the (allowed) image",
    },
    Allowed {
        pattern: conf::DRIVER_SERVICE_ACCOUNT,
        why: IDENTITY,
    },
    Allowed {
        pattern: conf::EXECUTOR_SERVICE_ACCOUNT,
        why: IDENTITY,
    },
    Allowed {
        pattern: "spark.files",
        why: ARTIFACTS,
    },
    Allowed {
        pattern: "spark.archives",
        why: ARTIFACTS,
    },
    Allowed {
        pattern: "spark.task.cpus",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.task.maxFailures",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.stage.maxConsecutiveAttempts",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.default.parallelism",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.scheduler.mode",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.locality.wait",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.speculation",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.speculation.interval",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.speculation.multiplier",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.speculation.quantile",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.network.timeout",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.executor.heartbeatInterval",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.serializer",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.kryo.registrationRequired",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.kryoserializer.buffer",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.kryoserializer.buffer.max",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.rdd.compress",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.broadcast.compress",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.checkpoint.compress",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.io.compression.codec",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.shuffle.compress",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.shuffle.spill.compress",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.shuffle.file.buffer",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.reducer.maxSizeInFlight",
        why: TUNING,
    },
    Allowed {
        pattern: "spark.ui.showConsoleProgress",
        why: "console output of the driver",
    },
    Allowed {
        pattern: "spark.log.level",
        why: "log level of the job's own JVMs",
    },
];

/// Settings refused whatever a cluster allows: they choose the cluster, namespace or credentials, make
/// the operator's JVM (which builds the driver spec) read or upload its own files, reach the
/// namespace's secrets and config maps, change the pod spec the platform controls (volumes, templates,
/// labels, annotations, node placement, scheduler, feature steps), smuggle settings past this list
/// (JVM options, environment), or collide the application's identity. A cluster's
/// `forbidden_spark_conf` adds to them; it never removes one.
pub const DEFAULT_FORBIDDEN_SPARK_CONF: &[&str] = &[
    "spark.master",
    "spark.master.*",
    "spark.submit.deployMode",
    "spark.app.id",
    "spark.kubernetes.namespace",
    "spark.kubernetes.context",
    "spark.kubernetes.driver.master",
    "spark.kubernetes.authenticate.*",
    "spark.kubernetes.kerberos.*",
    "spark.kerberos.*",
    "spark.kubernetes.file.upload.path",
    "spark.kubernetes.*podTemplateFile",
    "spark.kubernetes.*podTemplateContainerName",
    "spark.kubernetes.*.volumes.*",
    "spark.kubernetes.*.secrets.*",
    "spark.kubernetes.*.secretKeyRef.*",
    "spark.kubernetes.*.label.*",
    "spark.kubernetes.*.annotation.*",
    "spark.kubernetes.node.selector.*",
    "spark.kubernetes.*.node.selector.*",
    "spark.kubernetes.*scheduler.name",
    "spark.kubernetes.*.pod.featureSteps",
    "spark.kubernetes.driver.pod.name",
    "spark.kubernetes.executor.podNamePrefix",
    "spark.kubernetes.driverEnv.*",
    "spark.executorEnv.*",
    "spark.*.extraJavaOptions",
    "spark.*.defaultJavaOptions",
    "spark.*.extraClassPath",
    "spark.*.extraLibraryPath",
    "spark.jars.packages",
    "spark.jars.repositories",
    "spark.jars.ivy*",
    "spark.redaction.*",
];

/// Keys Spark reads in place of another (`SparkConf.configsWithAlternatives`, Spark 4.1; its `akka`
/// and RPC alternates of 3.x are gone): a request's
/// alternate spelling is judged, and written, as the key it stands for, so `spark.yarn.keytab` is
/// refused as `spark.kerberos.keytab` and `spark.yarn.executor.memoryOverhead` counts as overhead.
/// `(alternate, canonical)`.
pub const ALTERNATES: &[(&str, &str)] = &[
    (
        "spark.files.userClassPathFirst",
        "spark.executor.userClassPathFirst",
    ),
    (
        "spark.history.fs.update.interval.seconds",
        "spark.history.fs.update.interval",
    ),
    (
        "spark.history.fs.updateInterval",
        "spark.history.fs.update.interval",
    ),
    (
        "spark.history.updateInterval",
        "spark.history.fs.update.interval",
    ),
    (
        "spark.history.fs.cleaner.interval.seconds",
        "spark.history.fs.cleaner.interval",
    ),
    (
        "spark.history.fs.cleaner.maxAge.seconds",
        "spark.history.fs.cleaner.maxAge",
    ),
    (
        "spark.yarn.applicationMaster.waitTries",
        "spark.yarn.am.waitTime",
    ),
    (
        "spark.reducer.maxMbInFlight",
        "spark.reducer.maxSizeInFlight",
    ),
    (
        "spark.kryoserializer.buffer.mb",
        "spark.kryoserializer.buffer",
    ),
    (
        "spark.kryoserializer.buffer.max.mb",
        "spark.kryoserializer.buffer.max",
    ),
    ("spark.shuffle.file.buffer.kb", "spark.shuffle.file.buffer"),
    (
        "spark.executor.logs.rolling.size.maxBytes",
        "spark.executor.logs.rolling.maxSize",
    ),
    (
        "spark.io.compression.snappy.block.size",
        "spark.io.compression.snappy.blockSize",
    ),
    (
        "spark.io.compression.lz4.block.size",
        "spark.io.compression.lz4.blockSize",
    ),
    (
        "spark.streaming.minRememberDuration",
        "spark.streaming.fileStream.minRememberDuration",
    ),
    (
        "spark.yarn.max.worker.failures",
        "spark.yarn.max.executor.failures",
    ),
    ("spark.unsafe.offHeap", "spark.memory.offHeap.enabled"),
    ("spark.yarn.jar", "spark.yarn.jars"),
    (
        "spark.reducer.maxReqSizeShuffleToMem",
        "spark.network.maxRemoteBlockSizeFetchToMem",
    ),
    (
        "spark.maxRemoteBlockSizeFetchToMem",
        "spark.network.maxRemoteBlockSizeFetchToMem",
    ),
    (
        "spark.scheduler.listenerbus.eventqueue.size",
        "spark.scheduler.listenerbus.eventqueue.capacity",
    ),
    (
        "spark.yarn.driver.memoryOverhead",
        "spark.driver.memoryOverhead",
    ),
    (
        "spark.yarn.executor.memoryOverhead",
        "spark.executor.memoryOverhead",
    ),
    ("spark.yarn.keytab", "spark.kerberos.keytab"),
    ("spark.yarn.principal", "spark.kerberos.principal"),
    (
        "spark.yarn.kerberos.relogin.period",
        "spark.kerberos.relogin.period",
    ),
    (
        "spark.yarn.access.namenodes",
        "spark.kerberos.access.hadoopFileSystems",
    ),
    (
        "spark.yarn.access.hadoopFileSystems",
        "spark.kerberos.access.hadoopFileSystems",
    ),
    (
        "spark.sql.kafkaConsumerCache.capacity",
        "spark.kafka.consumer.cache.capacity",
    ),
    (
        "spark.yarn.max.executor.failures",
        "spark.executor.maxNumFailures",
    ),
    (
        "spark.yarn.executor.failuresValidityInterval",
        "spark.executor.failuresValidityInterval",
    ),
];

/// Longest key a request may use (Spark's own are under 100 characters).
pub const MAX_KEY_CHARS: usize = 256;
/// Longest value.
pub const MAX_VALUE_CHARS: usize = 8192;

/// The key Spark reads `key` as (following chains: `spark.yarn.max.worker.failures` is an alternate
/// of an alternate).
pub fn canonical(key: &str) -> &str {
    let mut key = key;
    while let Some((_, canonical)) = ALTERNATES.iter().find(|(alternate, _)| *alternate == key) {
        key = canonical;
    }
    key
}

/// `*` matches any run of characters; everything else matches itself.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    let (mut p, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            backtrack = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star, matched)) = backtrack {
            p = star + 1;
            t = matched + 1;
            backtrack = Some((star, matched + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// A key may only use the characters Spark's own keys use.
pub fn is_key_well_formed(key: &str) -> bool {
    let bytes = key.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_KEY_CHARS
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The spelling a near-miss is compared in: lower case, no whitespace.
fn folded(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The known pattern `key` spells differently only in case or whitespace, if any.
pub fn near_miss<'p>(key: &str, known: impl IntoIterator<Item = &'p str>) -> Option<&'p str> {
    let folded_key = folded(key);
    known
        .into_iter()
        .find(|pattern| !glob_matches(pattern, key) && glob_matches(&folded(pattern), &folded_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_runs_of_any_characters() {
        assert!(glob_matches("spark.sql.*", "spark.sql.shuffle.partitions"));
        assert!(glob_matches(
            "spark.kubernetes.*.volumes.*",
            "spark.kubernetes.driver.volumes.persistentVolumeClaim.data.mount.path"
        ));
        assert!(glob_matches(
            "spark.*.extraJavaOptions",
            "spark.driver.extraJavaOptions"
        ));
        assert!(glob_matches("spark.master", "spark.master"));
        assert!(!glob_matches("spark.master", "spark.master2"));
        assert!(!glob_matches("spark.sql.*", "spark.sqlx"));
        assert!(glob_matches("a*b*c", "axxbyyc"));
        assert!(!glob_matches("a*b*c", "axxbyy"));
    }

    #[test]
    fn alternates_fold_onto_the_key_spark_reads() {
        assert_eq!(canonical("spark.yarn.keytab"), "spark.kerberos.keytab");
        assert_eq!(
            canonical("spark.yarn.executor.memoryOverhead"),
            "spark.executor.memoryOverhead"
        );
        assert_eq!(canonical("spark.executor.memory"), "spark.executor.memory");
        assert_eq!(
            canonical("spark.yarn.max.worker.failures"),
            "spark.executor.maxNumFailures"
        );
    }

    #[test]
    fn every_default_allowed_pattern_is_outside_the_deny_list() {
        for allowed in DEFAULT_ALLOWED_SPARK_CONF {
            if let Some(denied) = DEFAULT_FORBIDDEN_SPARK_CONF
                .iter()
                .find(|d| glob_matches(d, allowed.pattern))
            {
                // Service accounts are allowed by exact key under a denied prefix, on purpose.
                assert!(
                    allowed
                        .pattern
                        .starts_with("spark.kubernetes.authenticate."),
                    "{} is also denied by {denied}",
                    allowed.pattern
                );
            }
        }
    }

    #[test]
    fn near_misses_are_found_by_case_and_whitespace() {
        let known = ["spark.kubernetes.namespace", "spark.sql.*"];
        assert_eq!(
            near_miss("Spark.Kubernetes.Namespace", known),
            Some("spark.kubernetes.namespace")
        );
        assert_eq!(
            near_miss("spark.kubernetes.namespace ", known),
            Some("spark.kubernetes.namespace")
        );
        assert_eq!(
            near_miss("SPARK.SQL.shuffle.partitions", known),
            Some("spark.sql.*")
        );
        assert_eq!(near_miss("spark.kubernetes.namespace", known), None);
        assert_eq!(near_miss("spark.other", known), None);
    }

    #[test]
    fn keys_use_sparks_characters() {
        assert!(is_key_well_formed("spark.sql.catalog.my_cat-1.uri"));
        for bad in [
            "",
            " spark.x",
            "spark.x\n",
            "spark.x=y",
            "spark/x",
            &"k".repeat(300),
        ] {
            assert!(!is_key_well_formed(bad), "{bad:?}");
        }
    }
}
