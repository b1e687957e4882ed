//! Test fixtures: SparkApplication JSON builders and a loop that plays the API server for the
//! pure core (apply each action to the object, advance the clock by each delay), so tests can
//! assert whole lifecycles without any I/O.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::model::{ApplicationStatus, StateSummary};
use crate::plan::{Action, AppView, FINALIZER, next_step};
use crate::scenario::{Scenario, Settings};

/// The instant every simulated run starts at.
pub fn start() -> Timestamp {
    "2025-06-01T12:00:00Z".parse().expect("valid timestamp")
}

/// `start()` plus `ms` milliseconds.
pub fn start_plus(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(start().as_millisecond() + ms).expect("in range")
}

/// Settings with a 300 ms step.
pub fn settings(scenario: Scenario) -> Settings {
    Settings {
        scenario,
        step: Duration::from_millis(300),
    }
}

/// Builder of a SparkApplication object as the API server returns it.
pub struct App(Value);

/// A freshly created application: no finalizer, no status.
pub fn app() -> App {
    App(json!({
        "apiVersion": "spark.apache.org/v1",
        "kind": "SparkApplication",
        "metadata": {
            "name": "pi",
            "namespace": "spark-jobs",
            "uid": "4f7c2a8e-0000-4000-8000-000000000001",
            "resourceVersion": "1",
        },
        "spec": {
            "pyFiles": "local:///opt/spark/examples/src/main/python/pi.py",
            "runtimeVersions": {"sparkVersion": "4.1.0"},
            "sparkConf": {"spark.kubernetes.container.image": "apache/spark:4.1.0-python3"},
        },
    }))
}

impl App {
    /// Sets `spec.applicationTolerations`.
    pub fn tolerations(mut self, tolerations: Value) -> Self {
        self.0["spec"]["applicationTolerations"] = tolerations;
        self
    }

    /// Sets one annotation.
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.0["metadata"]["annotations"][key] = json!(value);
        self
    }

    /// Adds the operator's finalizer.
    pub fn finalized(mut self) -> Self {
        self.0["metadata"]["finalizers"] = json!([FINALIZER]);
        self
    }

    /// Sets `.status`.
    pub fn status(mut self, status: Value) -> Self {
        self.0["status"] = status;
        self
    }

    /// Marks the object as being deleted.
    pub fn deleting(mut self) -> Self {
        self.0["metadata"]["deletionTimestamp"] = json!("2025-06-01T12:00:00Z");
        self
    }

    /// The object.
    pub fn build(self) -> Value {
        self.0
    }

    /// The core's view of the object.
    pub fn view(self) -> AppView {
        AppView::from_value(&self.0)
    }
}

/// One action the core took during [`simulate`].
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Milliseconds after [`start`].
    pub at_ms: i64,
    /// [`Action::describe`].
    pub action: String,
    /// The status written, for status writes.
    pub status: Option<ApplicationStatus>,
}

/// How a simulated run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The core had nothing more to do; the object still exists.
    Idle,
    /// The object is gone (deleted and no finalizer left).
    Gone,
}

/// A whole simulated lifecycle.
#[derive(Debug, Clone)]
pub struct Run {
    /// Every action, in order.
    pub steps: Vec<Recorded>,
    /// How it ended.
    pub end: End,
    /// The object at the end.
    pub object: Value,
    /// The clock at the end, in milliseconds after [`start`].
    pub end_ms: i64,
}

impl Run {
    /// States written, in order.
    pub fn states(&self) -> Vec<StateSummary> {
        self.steps
            .iter()
            .filter_map(|r| r.status.as_ref())
            .map(|s| s.current_state.current_state_summary)
            .collect()
    }

    /// The last status written.
    pub fn last_status(&self) -> ApplicationStatus {
        self.steps
            .iter()
            .rev()
            .find_map(|r| r.status.clone())
            .expect("a status was written")
    }

    /// Every action description, in order.
    pub fn actions(&self) -> Vec<&str> {
        self.steps.iter().map(|r| r.action.as_str()).collect()
    }

    /// When the status with `state` was written, in ms after start.
    pub fn time_of(&self, state: StateSummary) -> i64 {
        self.steps
            .iter()
            .find(|r| {
                r.status
                    .as_ref()
                    .is_some_and(|s| s.current_state.current_state_summary == state)
            })
            .map(|r| r.at_ms)
            .unwrap_or_else(|| panic!("{state} was never written"))
    }
}

/// Runs the core against `object` from [`start`] (plus `offset_ms`) until it idles or the
/// object is gone, applying each action the way the API server would.
pub fn simulate_from(object: Value, settings: Settings, offset_ms: i64) -> Run {
    let mut object = object;
    let mut now_ms = offset_ms;
    let mut steps = Vec::new();
    for _ in 0..100 {
        let step = next_step(&AppView::from_value(&object), &settings, start_plus(now_ms));
        if step.action == Action::Nothing {
            return Run {
                steps,
                end: End::Idle,
                object,
                end_ms: now_ms,
            };
        }
        now_ms += i64::try_from(step.delay.as_millis()).expect("small delay");
        // Like the runner: decide again when the timer fires and act only on a zero delay.
        let due = next_step(&AppView::from_value(&object), &settings, start_plus(now_ms));
        assert_eq!(due.delay, Duration::ZERO, "due step must be immediate");
        assert_eq!(due.action.describe(), step.action.describe());
        let gone = apply(&mut object, &due.action, now_ms);
        steps.push(Recorded {
            at_ms: now_ms,
            action: due.action.describe(),
            status: match due.action {
                Action::WriteStatus(status) => Some(*status),
                _ => None,
            },
        });
        if gone {
            return Run {
                steps,
                end: End::Gone,
                object,
                end_ms: now_ms,
            };
        }
    }
    panic!("no end after 100 steps: {:#?}", steps);
}

/// [`simulate_from`] at offset 0.
pub fn simulate(object: Value, settings: Settings) -> Run {
    simulate_from(object, settings, 0)
}

/// Applies `action` to `object`; true when the object no longer exists.
fn apply(object: &mut Value, action: &Action, now_ms: i64) -> bool {
    let finalizers = |object: &mut Value| -> Vec<Value> {
        object["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    match action {
        Action::AddFinalizer => {
            let mut list = finalizers(object);
            list.push(json!(FINALIZER));
            object["metadata"]["finalizers"] = Value::Array(list);
        }
        Action::WriteStatus(status) => object["status"] = status.to_value(),
        Action::RemoveFinalizer => {
            let list: Vec<Value> = finalizers(object)
                .into_iter()
                .filter(|f| f != FINALIZER)
                .collect();
            object["metadata"]["finalizers"] = Value::Array(list);
        }
        Action::DeleteApplication => {
            object["metadata"]["deletionTimestamp"] = json!(start_plus(now_ms).to_string());
        }
        Action::Nothing => {}
    }
    object["metadata"]["deletionTimestamp"].is_string() && finalizers(object).is_empty()
}
