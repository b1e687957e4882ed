//! What an application used (pure): the pods its spec asked for, sized by Spark's rules
//! ([`policy::resources::footprint`](crate::policy::resources::footprint), the same numbers the policy
//! caps), multiplied by the time its states say they were held.
//!
//! Per attempt, the driver counts from `DriverStarted` (or the first running state, when the operator
//! wrote both in one update) and the executors from the first running state (`DriverReady` on: the
//! driver asks for its executors once it is up), both until the attempt ends: its first
//! `ResourceReleased`/`TerminatedWithoutReleaseResources`, or the `ScheduledToRestart` that opens the
//! next attempt. Entries without a time are skipped, so a hand-written status never yields a negative
//! or invented duration.

use jiff::Timestamp;
use spark_gateway_events::{ApplicationState, Phase, RoleUsage, Usage};

use crate::apache_v1::{SpecView, StateMeaning, StatusView};
use crate::policy::resources::{Footprint, PodResources, footprint};

/// Seconds the driver and the executors held their pods, summed over the attempts in `view`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HeldSeconds {
    /// The driver pod.
    pub driver: f64,
    /// The executor pods.
    pub executors: f64,
}

/// How long each role held its pods, by the rules in the module docs.
pub fn held_seconds(view: &StatusView) -> HeldSeconds {
    let mut held = HeldSeconds::default();
    let mut driver_since: Option<Timestamp> = None;
    let mut executors_since: Option<Timestamp> = None;
    let seconds = |from: Timestamp, to: Timestamp| to.duration_since(from).as_secs_f64().max(0.0);
    for entry in &view.entries {
        let (Ok(state), Some(time)) = (&entry.state, entry.time) else {
            continue;
        };
        match state.phase() {
            Phase::Ended | Phase::Restarting => {
                if let Some(since) = driver_since.take() {
                    held.driver += seconds(since, time);
                }
                if let Some(since) = executors_since.take() {
                    held.executors += seconds(since, time);
                }
            }
            Phase::Running => {
                driver_since.get_or_insert(time);
                executors_since.get_or_insert(time);
            }
            Phase::Pending if *state == ApplicationState::DriverStarted => {
                driver_since.get_or_insert(time);
            }
            Phase::Pending | Phase::Stopping => {}
        }
    }
    held
}

/// The usage of an application with spec `spec` and history `view`; `None` without a spec or with one
/// whose Spark configuration cannot be read (the policy refuses such specs from the gateway; this
/// covers applications created around it).
pub fn of_application(spec: Option<&SpecView>, view: &StatusView) -> Option<Usage> {
    let spec = spec?;
    let footprint = footprint(&spec.spark_conf, spec.application_type()).ok()?;
    Some(usage(&footprint, view))
}

/// The usage of an application of `footprint` with history `view`.
pub fn usage(footprint: &Footprint, view: &StatusView) -> Usage {
    let held = held_seconds(view);
    let role = |pod: &PodResources, instances: u32, seconds: f64| {
        RoleUsage::new(
            instances,
            pod.cpu_millis as f64 / 1000.0,
            pod.memory_bytes >> 20,
            seconds,
        )
    };
    Usage {
        driver: role(&footprint.driver, 1, held.driver),
        executors: role(
            &footprint.executor,
            footprint.initial_executors,
            held.executors,
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;
    use spark_gateway_events::SparkApplicationType;

    use super::*;

    fn view(entries: serde_json::Value) -> StatusView {
        StatusView::from_status(Some(&json!({ "stateTransitionHistory": entries }))).unwrap()
    }

    fn entry(state: &str, second: u32) -> serde_json::Value {
        json!({
            "currentStateSummary": state,
            "lastTransitionTime": format!("2026-11-23T10:00:{second:02}Z")
        })
    }

    #[test]
    fn the_driver_counts_from_its_start_and_executors_from_the_first_running_state() {
        let status = view(json!({
            "0": entry("Submitted", 0),
            "1": entry("DriverRequested", 1),
            "2": entry("DriverStarted", 3),
            "3": entry("DriverReady", 13),
            "4": entry("RunningHealthy", 15),
            "5": entry("Succeeded", 43),
            "6": entry("ResourceReleased", 53),
        }));
        assert_eq!(
            held_seconds(&status),
            HeldSeconds {
                driver: 50.0,
                executors: 40.0
            }
        );
        let conf: BTreeMap<String, String> = [
            ("spark.driver.cores", "2"),
            ("spark.driver.memory", "2g"),
            ("spark.executor.instances", "3"),
            ("spark.executor.memory", "4g"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let usage = usage(
            &footprint(&conf, SparkApplicationType::Java).unwrap(),
            &status,
        );
        // 2 cores × 50 s; (2048 + 384) MiB = 2.375 GiB × 50 s.
        assert_eq!(usage.driver.core_seconds, 100.0);
        assert_eq!(usage.driver.memory_mib, 2432);
        assert_eq!(usage.driver.memory_gb_seconds, 118.75);
        // 3 executors × 1 core × 40 s; 3 × (4096 + 409) MiB × 40 s (Spark truncates 10% to whole MiB).
        assert_eq!(usage.executors.instances, 3);
        assert_eq!(usage.executors.core_seconds, 120.0);
        assert_eq!(usage.executors.memory_mib, 4505);
        assert_eq!(usage.executors.memory_gb_seconds, 527.93);
    }

    #[test]
    fn attempts_add_up_and_a_restart_closes_the_previous_one() {
        let status = StatusView::from_status(Some(&json!({
            "previousAttemptSummary": {
                "attemptInfo": {"id": 0},
                "stateTransitionHistory": {
                    "0": entry("Submitted", 0),
                    "1": entry("DriverStarted", 2),
                    "2": entry("RunningHealthy", 4),
                    "3": entry("Failed", 10)
                }
            },
            "currentAttemptSummary": {"attemptInfo": {"id": 1}},
            "stateTransitionHistory": {
                "4": entry("ScheduledToRestart", 12),
                "5": entry("DriverRequested", 13),
                // The operator saw the driver start and become ready in one reconcile.
                "6": entry("DriverReady", 20),
                "7": entry("Succeeded", 30),
                "8": entry("ResourceReleased", 31)
            }
        })))
        .unwrap();
        assert_eq!(
            held_seconds(&status),
            HeldSeconds {
                driver: 10.0 + 11.0,
                executors: 8.0 + 11.0
            }
        );
    }

    #[test]
    fn entries_without_a_time_count_nothing() {
        let status = view(json!({
            "0": {"currentStateSummary": "DriverStarted"},
            "1": entry("ResourceReleased", 9),
        }));
        assert_eq!(held_seconds(&status), HeldSeconds::default());
    }
}
