//! Scenarios (what the simulated driver does) and how each application picks its scenario and
//! pace from annotations or labels, falling back to the simulator's defaults.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::model::StateSummary;

/// Annotation (or label) choosing the scenario of one application, e.g. `failure`.
pub const SCENARIO_KEY: &str = "operator-sim.spark-gateway.io/scenario";

/// Annotation (or label) choosing the delay between two steps of one application, in
/// milliseconds, e.g. `"50"`.
pub const STEP_MILLIS_KEY: &str = "operator-sim.spark-gateway.io/step-millis";

/// Annotation (or label) choosing how long the operator's own waits take: `compressed` (the
/// default) or `realistic` ([`Pace`]).
pub const PACE_KEY: &str = "operator-sim.spark-gateway.io/pace";

/// What the simulated driver (and the cluster around it) does; the operator rules (restart,
/// retain, TTL) then apply as the spec says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    /// Runs and exits 0: `... RunningHealthy, Succeeded`.
    Success,
    /// Runs and fails: `... RunningHealthy, Failed`.
    Failure,
    /// The driver never starts: `DriverRequested, DriverStartTimedOut`.
    DriverStartTimeout,
    /// The driver pod is evicted while running: `... RunningHealthy, DriverEvicted`.
    Eviction,
    /// Attempt 0 fails like `failure`, later attempts succeed like `success`; a restart happens
    /// only under a restart policy (the operator's default is `Never`).
    RestartThenSuccess,
    /// Reaches `RunningHealthy` and stays there until the application is deleted.
    Stuck,
    /// Creating the driver is refused (quota, admission, RBAC): `Submitted, SchedulingFailure`.
    SchedulingFailure,
    /// The spec cannot be built into a driver: `Submitted, SchedulingFailure`, then
    /// `ResourceReleased` "Cannot build Spark spec ..." instead of the usual cleanup.
    UnbuildableSpec,
    /// The driver pod disappears while running (drain, scale-down, preemption):
    /// `... RunningHealthy, Failed` "Driver removed ...".
    DriverRemoved,
    /// The driver starts but its SparkContext never comes up: `DriverStarted, DriverReadyTimedOut`.
    DriverReadyTimeout,
    /// Fewer executors than `instanceConfig.initExecutors` start: `DriverReady`,
    /// `InitializedBelowThresholdExecutors` (when at least one starts), `ExecutorsStartTimedOut`.
    ExecutorsStartTimeout,
    /// Executors are lost below `instanceConfig.minExecutors` while running, then the job still
    /// completes: `RunningHealthy, RunningWithBelowThresholdExecutors, Succeeded`.
    ExecutorsLost,
    /// The driver pod is running and ready by the first check: `DriverStarted` and
    /// `DriverReady` land in one status write.
    FastStart,
    /// The driver runs its whole job between two checks: `Failed` (terminated before
    /// initialization) and `Succeeded` land in one status write, after `DriverRequested`.
    FinishedBetweenChecks,
}

/// The operator observation that produces one scripted state; it decides the state, its message
/// and the driver pod status recorded with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// `AppInitStep`: driver requested.
    DriverRequested,
    /// `AppDriverStartObserver`: driver container running.
    DriverStarted,
    /// `AppDriverReadyObserver`: driver pod ready.
    DriverReady,
    /// `AppRunningStep`: some but not `initExecutors` executors ready.
    BelowInitExecutors,
    /// `AppRunningStep`: enough executors.
    RunningHealthy,
    /// `AppRunningStep`: fewer than `minExecutors` executors ready after start.
    BelowMinExecutors,
    /// `BaseAppDriverObserver`: pod phase Succeeded after the driver was ready.
    Succeeded,
    /// `BaseAppDriverObserver`: pod phase Failed (critical container exit 1).
    Failed,
    /// `BaseAppDriverObserver`: pod phase Failed with pod reason `Evicted`.
    Evicted,
    /// `BaseAppDriverObserver` from a state before `DriverStarted`: pod phase Succeeded, but the
    /// driver was never seen ready.
    TerminatedBeforeInit,
    /// `AppReconcileStep.observeDriver`: the driver pod is missing.
    DriverRemoved,
    /// `AppInitStep`: creating the driver failed.
    SchedulingFailure,
    /// `AppInitStep`: building the driver spec threw.
    SpecBuildFailure,
    /// `AppDriverTimeoutObserver` from `DriverRequested`.
    DriverStartTimedOut,
    /// `AppDriverTimeoutObserver` from `DriverStarted`.
    DriverReadyTimedOut,
    /// `AppDriverTimeoutObserver` from `DriverReady` / `InitializedBelowThresholdExecutors`.
    ExecutorsStartTimedOut,
}

impl Mark {
    /// The state this observation writes.
    pub fn summary(self) -> StateSummary {
        use StateSummary as S;
        match self {
            Self::DriverRequested => S::DriverRequested,
            Self::DriverStarted => S::DriverStarted,
            Self::DriverReady => S::DriverReady,
            Self::BelowInitExecutors => S::InitializedBelowThresholdExecutors,
            Self::RunningHealthy => S::RunningHealthy,
            Self::BelowMinExecutors => S::RunningWithBelowThresholdExecutors,
            Self::Succeeded => S::Succeeded,
            Self::Failed | Self::TerminatedBeforeInit | Self::DriverRemoved => S::Failed,
            Self::Evicted => S::DriverEvicted,
            Self::SchedulingFailure | Self::SpecBuildFailure => S::SchedulingFailure,
            Self::DriverStartTimedOut => S::DriverStartTimedOut,
            Self::DriverReadyTimedOut => S::DriverReadyTimedOut,
            Self::ExecutorsStartTimedOut => S::ExecutorsStartTimedOut,
        }
    }
}

/// Which of the operator's timeouts ends a wait (`applicationTimeoutConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// `driverStartTimeoutMillis`.
    DriverStart,
    /// `driverReadyTimeoutMillis`.
    DriverReady,
    /// `executorStartTimeoutMillis`.
    ExecutorStart,
}

/// One status write of a script: the states it appends (the operator's observers can append
/// several in one write) and what it waits for after the previous write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Beat {
    /// States appended in this write, in order.
    pub marks: Vec<Mark>,
    /// `None`: one step after the previous write (pod events); `Some`: when that timeout expires.
    pub timeout: Option<Timeout>,
}

impl Beat {
    fn step(marks: &[Mark]) -> Self {
        Self {
            marks: marks.to_vec(),
            timeout: None,
        }
    }

    fn after(timeout: Timeout, mark: Mark) -> Self {
        Self {
            marks: vec![mark],
            timeout: Some(timeout),
        }
    }

    /// The state current after this write.
    pub fn last_summary(&self) -> Option<StateSummary> {
        self.marks.last().map(|m| m.summary())
    }
}

/// `applicationTolerations.instanceConfig` as far as the scripts need it (the operator's
/// `ExecutorInstanceConfig`, defaults 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InstanceConfig {
    /// `initExecutors`: executors needed before `RunningHealthy`.
    pub init_executors: i64,
    /// `minExecutors`: executors needed to stay `RunningHealthy`.
    pub min_executors: i64,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 14] = [
        Self::Success,
        Self::Failure,
        Self::DriverStartTimeout,
        Self::Eviction,
        Self::RestartThenSuccess,
        Self::Stuck,
        Self::SchedulingFailure,
        Self::UnbuildableSpec,
        Self::DriverRemoved,
        Self::DriverReadyTimeout,
        Self::ExecutorsStartTimeout,
        Self::ExecutorsLost,
        Self::FastStart,
        Self::FinishedBetweenChecks,
    ];

    /// The name used in annotations and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::DriverStartTimeout => "driver-start-timeout",
            Self::Eviction => "eviction",
            Self::RestartThenSuccess => "restart-then-success",
            Self::Stuck => "stuck",
            Self::SchedulingFailure => "scheduling-failure",
            Self::UnbuildableSpec => "unbuildable-spec",
            Self::DriverRemoved => "driver-removed",
            Self::DriverReadyTimeout => "driver-ready-timeout",
            Self::ExecutorsStartTimeout => "executors-start-timeout",
            Self::ExecutorsLost => "executors-lost",
            Self::FastStart => "fast-start",
            Self::FinishedBetweenChecks => "finished-between-checks",
        }
    }

    /// The writes of attempt `attempt_id` after `Submitted` or `ScheduledToRestart`, given the
    /// spec's `instanceConfig`. The last write holds the outcome, except for `stuck` (and
    /// `executors-start-timeout` without an executor threshold, which the operator then never
    /// checks: it stays `RunningHealthy` like `stuck`).
    pub fn attempt_script(self, attempt_id: u64, instances: InstanceConfig) -> Vec<Beat> {
        use Mark::*;
        let step = |marks: &[Mark]| marks.iter().map(|m| Beat::step(&[*m])).collect::<Vec<_>>();
        let running = |outcome: Option<Mark>| {
            let mut beats = step(&[DriverRequested, DriverStarted, DriverReady, RunningHealthy]);
            beats.extend(outcome.map(|m| Beat::step(&[m])));
            beats
        };
        match self {
            Self::Success => running(Some(Succeeded)),
            Self::Failure => running(Some(Failed)),
            Self::Eviction => running(Some(Evicted)),
            Self::DriverRemoved => running(Some(DriverRemoved)),
            Self::Stuck => running(None),
            Self::RestartThenSuccess if attempt_id == 0 => running(Some(Failed)),
            Self::RestartThenSuccess => running(Some(Succeeded)),
            Self::DriverStartTimeout => vec![
                Beat::step(&[DriverRequested]),
                Beat::after(Timeout::DriverStart, DriverStartTimedOut),
            ],
            Self::SchedulingFailure => vec![Beat::step(&[SchedulingFailure])],
            Self::UnbuildableSpec => vec![Beat::step(&[SpecBuildFailure])],
            Self::DriverReadyTimeout => vec![
                Beat::step(&[DriverRequested]),
                Beat::step(&[DriverStarted]),
                Beat::after(Timeout::DriverReady, DriverReadyTimedOut),
            ],
            Self::ExecutorsStartTimeout => {
                let mut beats = step(&[DriverRequested, DriverStarted, DriverReady]);
                if instances.init_executors <= 0 {
                    // `AppRunningStep`: no init threshold, healthy at once; nothing times out.
                    beats.push(Beat::step(&[RunningHealthy]));
                    return beats;
                }
                // All but one of the wanted executors start: with any running, the operator
                // notes the shortfall (which restarts the timeout clock); with none it keeps
                // `DriverReady`.
                if instances.init_executors > 1 {
                    beats.push(Beat::step(&[BelowInitExecutors]));
                }
                beats.push(Beat::after(Timeout::ExecutorStart, ExecutorsStartTimedOut));
                beats
            }
            Self::ExecutorsLost => {
                let mut beats =
                    step(&[DriverRequested, DriverStarted, DriverReady, RunningHealthy]);
                // Below-threshold is only reported when the spec sets a minimum.
                if instances.init_executors > 0 && instances.min_executors > 0 {
                    beats.push(Beat::step(&[BelowMinExecutors]));
                }
                beats.push(Beat::step(&[Succeeded]));
                beats
            }
            Self::FastStart => vec![
                Beat::step(&[DriverRequested]),
                Beat::step(&[DriverStarted, DriverReady]),
                Beat::step(&[RunningHealthy]),
                Beat::step(&[Succeeded]),
            ],
            Self::FinishedBetweenChecks => vec![
                Beat::step(&[DriverRequested]),
                Beat::step(&[TerminatedBeforeInit, Succeeded]),
            ],
        }
    }
}

/// How long the operator's own waits take.
///
/// In both paces one step stands for one second of the operator's time: a duration of `ms`
/// operator milliseconds takes `ms * step / 1000 ms`. Pod-driven transitions take one step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Pace {
    /// Fast tests: durations the spec sets are honoured (scaled); unset ones, and the
    /// operator's requeues, take one step or none.
    #[default]
    Compressed,
    /// The operator's defaults and requeues, scaled: 300 s timeouts noticed at the next
    /// 120 s reconcile, 30 s restart backoff, 2 s before the finalizer is released, about 3 s per
    /// status-write conflict.
    Realistic,
}

impl Pace {
    /// The name used in annotations.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compressed => "compressed",
            Self::Realistic => "realistic",
        }
    }
}

impl FromStr for Pace {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "compressed" => Ok(Self::Compressed),
            "realistic" => Ok(Self::Realistic),
            other => Err(format!(
                "{PACE_KEY}: {other:?} is neither \"compressed\" nor \"realistic\""
            )),
        }
    }
}

impl Pace {
    /// The pace one application asks for (annotation, then label); unusable values mean
    /// [`Pace::Compressed`].
    pub fn resolve(
        annotations: Option<&BTreeMap<String, String>>,
        labels: Option<&BTreeMap<String, String>>,
    ) -> Pace {
        annotations
            .and_then(|a| a.get(PACE_KEY))
            .or_else(|| labels.and_then(|l| l.get(PACE_KEY)))
            .and_then(|raw| raw.parse().ok())
            .unwrap_or_default()
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scenario name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scenario {0:?} (expected one of: {names})", names = scenario_names())]
pub struct UnknownScenario(pub String);

fn scenario_names() -> String {
    Scenario::ALL.map(Scenario::as_str).join(", ")
}

impl FromStr for Scenario {
    type Err = UnknownScenario;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Self::ALL
            .into_iter()
            .find(|scenario| scenario.as_str() == wanted)
            .ok_or_else(|| UnknownScenario(s.to_owned()))
    }
}

/// Scenario and pace of one application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// What the driver does.
    pub scenario: Scenario,
    /// Delay between two steps.
    pub step: Duration,
}

/// An annotation or label that could not be used; the default applies instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// The scenario key names no scenario.
    #[error("{key}: {source}")]
    Scenario {
        /// Annotation or label key.
        key: &'static str,
        /// Why.
        #[source]
        source: UnknownScenario,
    },
    /// The step key is not a whole number of milliseconds.
    #[error("{key}: {value:?} is not a whole number of milliseconds")]
    StepMillis {
        /// Annotation or label key.
        key: &'static str,
        /// The rejected value.
        value: String,
    },
}

impl Settings {
    /// Settings of one application: annotations win over labels, both over `defaults`. Unusable
    /// values fall back to the default and are reported so the caller can log them once.
    pub fn resolve(
        annotations: Option<&BTreeMap<String, String>>,
        labels: Option<&BTreeMap<String, String>>,
        defaults: Settings,
    ) -> (Settings, Vec<SettingError>) {
        let lookup = |key: &str| {
            annotations
                .and_then(|a| a.get(key))
                .or_else(|| labels.and_then(|l| l.get(key)))
        };
        let mut problems = Vec::new();
        let mut settings = defaults;
        if let Some(raw) = lookup(SCENARIO_KEY) {
            match raw.parse() {
                Ok(scenario) => settings.scenario = scenario,
                Err(source) => problems.push(SettingError::Scenario {
                    key: SCENARIO_KEY,
                    source,
                }),
            }
        }
        if let Some(raw) = lookup(STEP_MILLIS_KEY) {
            match raw.trim().parse::<u64>() {
                Ok(ms) => settings.step = Duration::from_millis(ms),
                Err(_) => problems.push(SettingError::StepMillis {
                    key: STEP_MILLIS_KEY,
                    value: raw.clone(),
                }),
            }
        }
        (settings, problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: Settings = Settings {
        scenario: Scenario::Success,
        step: Duration::from_millis(300),
    };

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn scenario_names_round_trip() {
        for scenario in Scenario::ALL {
            assert_eq!(scenario.as_str().parse::<Scenario>(), Ok(scenario));
        }
        assert!("succeeded".parse::<Scenario>().is_err());
    }

    #[test]
    fn defaults_apply_without_annotations() {
        assert_eq!(Settings::resolve(None, None, DEFAULTS), (DEFAULTS, vec![]));
    }

    #[test]
    fn annotations_win_over_labels() {
        let annotations = map(&[(SCENARIO_KEY, "failure"), (STEP_MILLIS_KEY, "20")]);
        let labels = map(&[(SCENARIO_KEY, "stuck"), (STEP_MILLIS_KEY, "40")]);
        let (settings, problems) = Settings::resolve(Some(&annotations), Some(&labels), DEFAULTS);
        assert!(problems.is_empty());
        assert_eq!(settings.scenario, Scenario::Failure);
        assert_eq!(settings.step, Duration::from_millis(20));
    }

    #[test]
    fn labels_are_used_when_no_annotation() {
        let labels = map(&[(SCENARIO_KEY, "eviction")]);
        let (settings, _) = Settings::resolve(Some(&map(&[])), Some(&labels), DEFAULTS);
        assert_eq!(settings.scenario, Scenario::Eviction);
        assert_eq!(settings.step, DEFAULTS.step);
    }

    #[test]
    fn bad_values_fall_back_and_are_reported() {
        let annotations = map(&[(SCENARIO_KEY, "explode"), (STEP_MILLIS_KEY, "fast")]);
        let (settings, problems) = Settings::resolve(Some(&annotations), None, DEFAULTS);
        assert_eq!(settings, DEFAULTS);
        assert_eq!(problems.len(), 2);
        assert!(problems[0].to_string().contains("explode"));
        assert!(problems[1].to_string().contains("fast"));
    }

    fn last(beats: &[Beat]) -> Option<StateSummary> {
        beats.last().and_then(Beat::last_summary)
    }

    #[test]
    fn restart_then_success_fails_only_the_first_attempt() {
        let none = InstanceConfig::default();
        let first = Scenario::RestartThenSuccess.attempt_script(0, none);
        let second = Scenario::RestartThenSuccess.attempt_script(1, none);
        assert_eq!(last(&first), Some(StateSummary::Failed));
        assert_eq!(last(&second), Some(StateSummary::Succeeded));
    }

    #[test]
    fn executor_thresholds_follow_the_instance_config() {
        let script = |scenario: Scenario, init, min| {
            scenario
                .attempt_script(
                    0,
                    InstanceConfig {
                        init_executors: init,
                        min_executors: min,
                    },
                )
                .iter()
                .flat_map(|b| b.marks.iter().map(|m| m.summary()))
                .collect::<Vec<_>>()
        };
        use StateSummary::*;
        assert_eq!(
            script(Scenario::ExecutorsStartTimeout, 3, 0)[2..],
            [
                DriverReady,
                InitializedBelowThresholdExecutors,
                ExecutorsStartTimedOut
            ]
        );
        assert_eq!(
            script(Scenario::ExecutorsStartTimeout, 1, 0)[2..],
            [DriverReady, ExecutorsStartTimedOut]
        );
        assert_eq!(
            script(Scenario::ExecutorsStartTimeout, 0, 0).last(),
            Some(&RunningHealthy)
        );
        assert_eq!(
            script(Scenario::ExecutorsLost, 2, 1)[3..],
            [
                RunningHealthy,
                RunningWithBelowThresholdExecutors,
                Succeeded
            ]
        );
        assert_eq!(
            script(Scenario::ExecutorsLost, 0, 0)[3..],
            [RunningHealthy, Succeeded]
        );
    }

    #[test]
    fn pace_comes_from_annotations_then_labels() {
        let realistic = map(&[(PACE_KEY, "realistic")]);
        assert_eq!(Pace::resolve(Some(&realistic), None), Pace::Realistic);
        assert_eq!(Pace::resolve(None, Some(&realistic)), Pace::Realistic);
        assert_eq!(
            Pace::resolve(Some(&map(&[(PACE_KEY, "slow")])), Some(&realistic)),
            Pace::Compressed
        );
        assert_eq!(Pace::resolve(None, None), Pace::Compressed);
    }
}
