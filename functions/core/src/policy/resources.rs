//! What the pods of an application really get, computed from its effective Spark configuration the way
//! Spark 4.1's Kubernetes feature steps compute the driver and executor pods (`BasicDriverFeatureStep`,
//! `BasicExecutorFeatureStep`): memory plus overhead (explicit, or the factor with its minimum) plus
//! PySpark and off-heap memory, CPU from `request.cores` / `limit.cores` or the core count, and the
//! executor count, defaults included. Caps are checked against these numbers, never against whichever
//! keys happen to be present.

use std::collections::BTreeMap;

use spark_gateway_events::SparkApplicationType;

use crate::mapping::conf;
use crate::quantity::{parse_bool, parse_bytes, parse_cores, parse_cpu_millis};

const MIB: u64 = 1 << 20;

/// Spark's default driver and executor memory (`1g`).
pub const DEFAULT_MEMORY: u64 = 1024 * MIB;
/// Spark's minimum memory overhead (`spark.driver.minMemoryOverhead`, `spark.executor.minMemoryOverhead`).
pub const DEFAULT_MIN_OVERHEAD: u64 = 384 * MIB;
/// Spark's default overhead factor for JVM jobs.
pub const JVM_OVERHEAD_FACTOR: f64 = 0.1;
/// Spark's default overhead factor for Python and R jobs (their interpreters live outside the heap).
pub const NON_JVM_OVERHEAD_FACTOR: f64 = 0.4;
/// Spark's default executor count on Kubernetes without dynamic allocation.
pub const DEFAULT_EXECUTOR_INSTANCES: u32 = 2;

/// The resources of one pod, and the settings they come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodResources {
    /// The container's memory request and limit, in bytes.
    pub memory_bytes: u64,
    /// The larger of the CPU request and limit, in millicores.
    pub cpu_millis: u64,
    /// What adds up to `memory_bytes`, in Spark's order (heap, overhead, PySpark, off-heap), each with
    /// the key that decided it (a default is charged to the key that would have set it).
    pub memory_parts: Vec<(String, u64)>,
    /// The CPU each of cores, request and limit asks for, with its key.
    pub cpu_parts: Vec<(String, u64)>,
}

impl PodResources {
    /// The key that takes the memory over `cap`: the first part at which the running total exceeds it.
    pub fn memory_over(&self, cap: u64) -> Option<&str> {
        let mut total = 0u64;
        self.memory_parts.iter().find_map(|(key, bytes)| {
            total = total.saturating_add(*bytes);
            (total > cap).then_some(key.as_str())
        })
    }

    /// The key asking for the most CPU, when that is over `cap` millicores.
    pub fn cpu_over(&self, cap: u64) -> Option<&str> {
        self.cpu_parts
            .iter()
            .filter(|(_, millis)| *millis > cap)
            .max_by_key(|(_, millis)| *millis)
            .map(|(key, _)| key.as_str())
    }
}

/// The driver, each executor, and how many executors there can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footprint {
    /// The driver pod.
    pub driver: PodResources,
    /// Each executor pod.
    pub executor: PodResources,
    /// The most executors that can run at once.
    pub max_executors: u32,
    /// The executors requested at start: `spark.executor.instances` (default 2), or under dynamic
    /// allocation the largest of its minimum, initial and `spark.executor.instances`, as Spark's
    /// `Utils.getDynamicAllocationInitialExecutors` computes it.
    pub initial_executors: u32,
    /// Whether dynamic allocation decides the count.
    pub dynamic_allocation: bool,
}

/// A setting that cannot be read, or a dynamic-allocation bound that is missing or inconsistent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The Spark key.
    pub key: String,
    /// The rule.
    pub rule: &'static str,
    /// For people.
    pub message: String,
}

/// Which pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The driver.
    Driver,
    /// An executor.
    Executor,
}

impl Role {
    /// `driver` or `executor`, as in Spark's keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Driver => "driver",
            Self::Executor => "executor",
        }
    }
}

struct Reader<'a> {
    conf: &'a BTreeMap<String, String>,
    problems: Vec<Problem>,
}

impl Reader<'_> {
    fn problem(&mut self, key: &str, rule: &'static str, message: String) {
        self.problems.push(Problem {
            key: key.to_string(),
            rule,
            message,
        });
    }

    fn read<T>(&mut self, key: &str, parse: impl Fn(&str) -> Option<T>, what: &str) -> Option<T> {
        let text = self.conf.get(key)?;
        let parsed = parse(text);
        if parsed.is_none() {
            self.problem(key, "invalid_quantity", format!("{text:?} is not {what}"));
        }
        parsed
    }

    fn memory(&mut self, key: &str, default_unit: u64) -> Option<u64> {
        self.read(
            key,
            |t| parse_bytes(t, default_unit),
            "a Spark memory size such as \"512m\" or \"4g\"",
        )
    }

    fn factor(&mut self, key: &str) -> Option<f64> {
        self.read(
            key,
            |t| {
                t.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite() && *f > 0.0 && *f <= 100.0)
            },
            "a positive overhead factor such as 0.1",
        )
    }

    fn count(&mut self, key: &str) -> Option<u32> {
        self.read(
            key,
            |t| t.trim().parse::<u32>().ok(),
            "a whole number of executors",
        )
    }

    fn pod(&mut self, role: Role, kind: SparkApplicationType) -> PodResources {
        let non_jvm = matches!(kind, SparkApplicationType::Python | SparkApplicationType::R);
        let r = role.as_str();
        let memory_key = format!("spark.{r}.memory");
        let memory = self.memory(&memory_key, MIB).unwrap_or(DEFAULT_MEMORY);
        let factor_key = format!("spark.{r}.memoryOverheadFactor");
        let shared_factor_key = "spark.kubernetes.memoryOverheadFactor";
        let (explicit_factor, factor_from) = match self.factor(&factor_key) {
            Some(factor) => (Some(factor), factor_key.clone()),
            None => (
                self.factor(shared_factor_key),
                shared_factor_key.to_string(),
            ),
        };
        let factor = explicit_factor.unwrap_or(if non_jvm {
            NON_JVM_OVERHEAD_FACTOR
        } else {
            JVM_OVERHEAD_FACTOR
        });
        let min_key = format!("spark.{r}.minMemoryOverhead");
        let min_overhead = self.memory(&min_key, MIB).unwrap_or(DEFAULT_MIN_OVERHEAD);
        let overhead_key = format!("spark.{r}.memoryOverhead");
        let (overhead, overhead_from) = match self.memory(&overhead_key, MIB) {
            Some(explicit) => (explicit, overhead_key),
            None => {
                let by_factor = (memory as f64 * factor) as u64;
                let from = if by_factor < min_overhead && self.conf.contains_key(&min_key) {
                    min_key
                } else if explicit_factor.is_some() {
                    factor_from
                } else {
                    memory_key.clone()
                };
                (by_factor.max(min_overhead), from)
            }
        };
        let mut memory_parts = vec![(memory_key, memory), (overhead_from, overhead)];
        if role == Role::Executor {
            if kind == SparkApplicationType::Python
                && let Some(pyspark) = self.memory("spark.executor.pyspark.memory", MIB)
            {
                memory_parts.push(("spark.executor.pyspark.memory".into(), pyspark));
            }
            let off_heap_enabled = self
                .read("spark.memory.offHeap.enabled", parse_bool, "true or false")
                .unwrap_or(false);
            if let Some(off_heap) = self.memory("spark.memory.offHeap.size", 1)
                && off_heap_enabled
            {
                memory_parts.push(("spark.memory.offHeap.size".into(), off_heap));
            }
        }
        let cores_key = format!("spark.{r}.cores");
        let cores = self
            .read(&cores_key, parse_cores, "a positive whole number of cores")
            .map_or(1000, |c| u64::from(c) * 1000);
        let mut cpu_parts = vec![(cores_key, cores)];
        for setting in ["request", "limit"] {
            let key = format!("spark.kubernetes.{r}.{setting}.cores");
            if let Some(millis) = self.read(
                &key,
                parse_cpu_millis,
                "a CPU quantity such as \"0.5\", \"500m\" or \"2\"",
            ) {
                cpu_parts.push((key, millis));
            }
        }
        PodResources {
            memory_bytes: memory_parts
                .iter()
                .fold(0u64, |total, (_, bytes)| total.saturating_add(*bytes)),
            cpu_millis: cpu_parts.iter().map(|(_, m)| *m).max().unwrap_or(0),
            memory_parts,
            cpu_parts,
        }
    }
}

/// The footprint of an application of `kind` with effective configuration `conf` (typed request fields
/// already merged in). Python and R get the larger default overhead; only Python executors add PySpark
/// memory; only executors add off-heap memory. Every unreadable setting is reported at once.
pub fn footprint(
    conf: &BTreeMap<String, String>,
    kind: SparkApplicationType,
) -> Result<Footprint, Vec<Problem>> {
    let mut reader = Reader {
        conf,
        problems: Vec::new(),
    };
    let driver = reader.pod(Role::Driver, kind);
    let executor = reader.pod(Role::Executor, kind);
    let dynamic_allocation = reader
        .read(
            "spark.dynamicAllocation.enabled",
            parse_bool,
            "true or false",
        )
        .unwrap_or(false);
    let instances = reader.count(conf::EXECUTOR_INSTANCES);
    let min = reader.count("spark.dynamicAllocation.minExecutors");
    let initial = reader.count("spark.dynamicAllocation.initialExecutors");
    let initial_executors = if dynamic_allocation {
        min.max(initial).max(instances).unwrap_or(0)
    } else {
        instances.unwrap_or(DEFAULT_EXECUTOR_INSTANCES)
    };
    let max_executors = if dynamic_allocation {
        let max = reader.count(conf::MAX_EXECUTORS);
        match max {
            None if !conf.contains_key(conf::MAX_EXECUTORS) => {
                reader.problem(
                    conf::MAX_EXECUTORS,
                    "dynamic_allocation_bounds",
                    "dynamic allocation needs spark.dynamicAllocation.maxExecutors (Spark's default is unlimited)".into(),
                );
                0
            }
            None => 0,
            Some(max) => {
                for (key, value) in [
                    ("spark.dynamicAllocation.minExecutors", min),
                    ("spark.dynamicAllocation.initialExecutors", initial),
                    (conf::EXECUTOR_INSTANCES, instances),
                ] {
                    if let Some(value) = value
                        && value > max
                    {
                        reader.problem(
                            key,
                            "dynamic_allocation_bounds",
                            format!(
                                "{value} is more than spark.dynamicAllocation.maxExecutors ({max})"
                            ),
                        );
                    }
                }
                max
            }
        }
    } else {
        instances.unwrap_or(DEFAULT_EXECUTOR_INSTANCES)
    };
    // A shared key (spark.kubernetes.memoryOverheadFactor) is read for both pods: report it once.
    let mut seen = std::collections::BTreeSet::new();
    reader.problems.retain(|p| seen.insert(p.key.clone()));
    if reader.problems.is_empty() {
        Ok(Footprint {
            driver,
            executor,
            max_executors,
            initial_executors,
            dynamic_allocation,
        })
    } else {
        Err(reader.problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JAVA: SparkApplicationType = SparkApplicationType::Java;
    const PYTHON: SparkApplicationType = SparkApplicationType::Python;

    fn conf(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_count_even_when_no_key_is_set() {
        let f = footprint(&conf(&[]), JAVA).unwrap();
        // 1g heap + max(10%, 384m) overhead.
        assert_eq!(f.driver.memory_bytes, (1024 + 384) * MIB);
        assert_eq!(f.executor.cpu_millis, 1000);
        assert_eq!(f.max_executors, 2);
        assert_eq!(f.initial_executors, 2);
        // Python: 40% overhead.
        let f = footprint(&conf(&[("spark.executor.memory", "4g")]), PYTHON).unwrap();
        assert_eq!(f.executor.memory_bytes, 4096 * MIB + (4096 * MIB * 4 / 10));
    }

    #[test]
    fn overhead_pyspark_and_off_heap_add_up() {
        let f = footprint(
            &conf(&[
                ("spark.executor.memory", "2g"),
                ("spark.executor.memoryOverhead", "1g"),
                ("spark.executor.pyspark.memory", "512m"),
                ("spark.memory.offHeap.enabled", "true"),
                ("spark.memory.offHeap.size", "1073741824"),
            ]),
            PYTHON,
        )
        .unwrap();
        assert_eq!(f.executor.memory_bytes, (2048 + 1024 + 512 + 1024) * MIB);
        // Over a 3500 MiB cap, the PySpark memory is what crosses it; over 4 GiB, the off-heap memory.
        assert_eq!(
            f.executor.memory_over(3500 * MIB),
            Some("spark.executor.pyspark.memory")
        );
        assert_eq!(
            f.executor.memory_over(4096 * MIB),
            Some("spark.memory.offHeap.size")
        );
        assert_eq!(f.executor.memory_over(8192 * MIB), None);
        // Off-heap only counts when enabled; PySpark memory only for Python.
        let f = footprint(
            &conf(&[
                ("spark.memory.offHeap.size", "8g"),
                ("spark.executor.pyspark.memory", "8g"),
            ]),
            JAVA,
        )
        .unwrap();
        assert_eq!(f.executor.memory_bytes, (1024 + 384) * MIB);
    }

    #[test]
    fn cpu_is_the_largest_of_cores_request_and_limit() {
        let f = footprint(
            &conf(&[
                ("spark.driver.cores", "1"),
                ("spark.kubernetes.driver.request.cores", "500m"),
                ("spark.kubernetes.driver.limit.cores", "12"),
            ]),
            JAVA,
        )
        .unwrap();
        assert_eq!(f.driver.cpu_millis, 12_000);
        assert_eq!(
            f.driver.cpu_over(8000),
            Some("spark.kubernetes.driver.limit.cores")
        );
        assert_eq!(f.driver.cpu_over(12_000), None);
    }

    #[test]
    fn dynamic_allocation_needs_a_consistent_maximum() {
        let problems =
            footprint(&conf(&[("spark.dynamicAllocation.enabled", "TRUE")]), JAVA).unwrap_err();
        assert_eq!(problems[0].key, conf::MAX_EXECUTORS);
        assert_eq!(problems[0].rule, "dynamic_allocation_bounds");
        let problems = footprint(
            &conf(&[
                ("spark.dynamicAllocation.enabled", "true"),
                ("spark.dynamicAllocation.maxExecutors", "4"),
                ("spark.dynamicAllocation.minExecutors", "5"),
                ("spark.dynamicAllocation.initialExecutors", "9"),
            ]),
            JAVA,
        )
        .unwrap_err();
        assert_eq!(problems.len(), 2);
        let f = footprint(
            &conf(&[
                ("spark.dynamicAllocation.enabled", "true"),
                ("spark.dynamicAllocation.maxExecutors", "40"),
            ]),
            JAVA,
        )
        .unwrap();
        assert_eq!(f.max_executors, 40);
        assert!(f.dynamic_allocation);
        // Spark's minExecutors default (0) is where a dynamic application starts.
        assert_eq!(f.initial_executors, 0);
        let f = footprint(
            &conf(&[
                ("spark.dynamicAllocation.enabled", "true"),
                ("spark.dynamicAllocation.maxExecutors", "40"),
                ("spark.dynamicAllocation.minExecutors", "3"),
                ("spark.dynamicAllocation.initialExecutors", "5"),
                ("spark.executor.instances", "4"),
            ]),
            JAVA,
        )
        .unwrap();
        assert_eq!(f.initial_executors, 5);
    }

    #[test]
    fn unreadable_values_are_named() {
        let problems = footprint(
            &conf(&[
                ("spark.executor.memory", "lots"),
                ("spark.dynamicAllocation.enabled", "yes"),
            ]),
            JAVA,
        )
        .unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            ["spark.executor.memory", "spark.dynamicAllocation.enabled"]
        );
    }
}
