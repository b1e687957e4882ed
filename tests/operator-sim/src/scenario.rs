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

/// What the simulated driver does; the operator rules (restart, retain, TTL) then apply as
/// the spec says.
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
    /// Attempt 0 fails like `failure`, later attempts succeed like `success`.
    RestartThenSuccess,
    /// Reaches `RunningHealthy` and stays there until the application is deleted.
    Stuck,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 6] = [
        Self::Success,
        Self::Failure,
        Self::DriverStartTimeout,
        Self::Eviction,
        Self::RestartThenSuccess,
        Self::Stuck,
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
        }
    }

    /// The states the driver goes through in attempt `attempt_id`, after `Submitted` or
    /// `ScheduledToRestart`. The last entry is the outcome, except for `stuck`.
    pub fn attempt_script(self, attempt_id: u64) -> &'static [StateSummary] {
        use StateSummary::*;
        const SUCCESS: &[StateSummary] = &[
            DriverRequested,
            DriverStarted,
            DriverReady,
            RunningHealthy,
            Succeeded,
        ];
        const FAILURE: &[StateSummary] = &[
            DriverRequested,
            DriverStarted,
            DriverReady,
            RunningHealthy,
            Failed,
        ];
        match self {
            Self::Success => SUCCESS,
            Self::Failure => FAILURE,
            Self::DriverStartTimeout => &[DriverRequested, DriverStartTimedOut],
            Self::Eviction => &[
                DriverRequested,
                DriverStarted,
                DriverReady,
                RunningHealthy,
                DriverEvicted,
            ],
            Self::RestartThenSuccess if attempt_id == 0 => FAILURE,
            Self::RestartThenSuccess => SUCCESS,
            Self::Stuck => &[DriverRequested, DriverStarted, DriverReady, RunningHealthy],
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scenario name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown scenario {0:?} (expected success, failure, driver-start-timeout, eviction, restart-then-success or stuck)"
)]
pub struct UnknownScenario(pub String);

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

    #[test]
    fn restart_then_success_fails_only_the_first_attempt() {
        let first = Scenario::RestartThenSuccess.attempt_script(0);
        let second = Scenario::RestartThenSuccess.attempt_script(1);
        assert_eq!(first.last(), Some(&StateSummary::Failed));
        assert_eq!(second.last(), Some(&StateSummary::Succeeded));
    }
}
