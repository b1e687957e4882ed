//! What an application used, for chargeback: the resources its spec requested, over the time its
//! states say they were held.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Requested resources multiplied by the time they were held, per role.
///
/// The numbers are what the spec asked Kubernetes for (Spark's own sizing rules: memory plus overhead,
/// the request cores), not what the containers consumed: that is what a cluster reserves, and so what a
/// team is charged for. Times come from the operator's state transitions of every attempt the status
/// still holds: the driver from `DriverStarted` to the attempt's end, the executors from the first
/// `Running*` state to the attempt's end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Usage {
    /// The driver pod.
    pub driver: RoleUsage,
    /// The executor pods together.
    pub executors: RoleUsage,
}

/// One role's requested resources and their product with time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RoleUsage {
    /// Pods of this role (1 for the driver; the initial executor count for executors, which is a lower
    /// bound when dynamic allocation is on).
    pub instances: u32,
    /// CPU cores each pod requested.
    pub cores: f64,
    /// Memory each pod requested, in MiB (heap plus overhead, as Spark sizes the pod).
    pub memory_mib: u64,
    /// Seconds the role held its pods, summed over attempts.
    pub seconds: f64,
    /// `instances × cores × seconds`.
    pub core_seconds: f64,
    /// `instances × memory (GiB) × seconds`, in the GB-seconds AWS bills by (1 GB = 1024 MiB).
    pub memory_gb_seconds: f64,
}

impl RoleUsage {
    /// `instances` pods of `cores` and `memory_mib` each, held for `seconds`; products rounded to
    /// milliseconds' precision so the same history always gives the same numbers.
    pub fn new(instances: u32, cores: f64, memory_mib: u64, seconds: f64) -> Self {
        let round = |value: f64| (value * 1000.0).round() / 1000.0;
        let pods = f64::from(instances);
        Self {
            instances,
            cores,
            memory_mib,
            seconds: round(seconds),
            core_seconds: round(pods * cores * seconds),
            memory_gb_seconds: round(pods * memory_mib as f64 / 1024.0 * seconds),
        }
    }
}
