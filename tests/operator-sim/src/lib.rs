//! Operator simulator: drives the status of `spark.apache.org/v1` SparkApplications the way the
//! Apache Spark Kubernetes Operator 0.5.0 does, without Spark or pods, so the gateway and its
//! watchers can be tested against a Kubernetes API (the project's emulator or a real cluster).
//!
//! ```text
//!  API server ──watch sparkapplications──▶ runner ──object──▶ plan::next_step (pure)
//!      ▲                                      │                     │
//!      └── finalizer patch / replace_status / ◀── Action + delay ───┘
//!          delete, each locked to the object's resourceVersion
//! ```
//!
//! # Layout
//! - [`model`] holds the status types (17 states, history, attempt summaries), tolerations, and the
//!   operator's message texts.
//! - [`scenario`] holds what the simulated driver does, and the annotation keys choosing it.
//! - [`plan`] holds the pure core, `next_step(app, settings, now) -> Step { action, delay }`.
//! - [`scheduler`] holds one keyed deadline queue for all applications.
//! - [`runner`] holds the watch loop, [`run`] and [`SimConfig`].
//! - [`connect`] holds the code building a `kube::Client` from a kubeconfig, a context, or by inference.
//! - [`error`] holds [`Error`], the library's error type.
//!
//! # Binary
//! ```text
//! operator-sim [--kubeconfig FILE] [--context NAME] [--default-scenario success]
//!              [--step-millis 300] [--namespace NS ...] [--max-in-flight 64]
//! ```
//! Without `--kubeconfig`/`--context` the client comes from `kube::Config::infer()`
//! (KUBECONFIG, ~/.kube/config, in-cluster). It prints `operator-sim ready` on stdout once the
//! watch has listed the existing applications, logs plain text to stderr (`RUST_LOG`, default
//! `info`) and exits cleanly on SIGINT/SIGTERM.
//!
//! # Choosing a scenario per application
//! Annotations (or, if absent, labels) on the SparkApplication:
//! - `operator-sim.spark-gateway.io/scenario`: one of `success`, `failure`,
//!   `driver-start-timeout`, `eviction`, `restart-then-success`, `stuck`
//!   ([`scenario::SCENARIO_KEY`]);
//! - `operator-sim.spark-gateway.io/step-millis`: delay between two states in milliseconds
//!   ([`scenario::STEP_MILLIS_KEY`]).
//!
//! Missing or invalid values fall back to [`SimConfig::defaults`] (binary: `--default-scenario`,
//! `--step-millis`; defaults `success`, 300 ms); invalid ones are logged once.
//!
//! | scenario | states written (then the cleanup decision below) |
//! |---|---|
//! | `success` | Submitted, DriverRequested, DriverStarted, DriverReady, RunningHealthy, Succeeded |
//! | `failure` | ... RunningHealthy, Failed |
//! | `driver-start-timeout` | Submitted, DriverRequested, DriverStartTimedOut |
//! | `eviction` | ... RunningHealthy, DriverEvicted |
//! | `restart-then-success` | attempt 0 as `failure`, ScheduledToRestart, attempt 1 as `success` |
//! | `stuck` | ... RunningHealthy, then nothing until deleted |
//!
//! # Facts of the operator 0.5.0 this follows
//! Read from apache/spark-kubernetes-operator at tag 0.5.0 (`Constants.java`,
//! `ApplicationStatus.java`, `ApplicationStateSummary.java`, `ApplicationTolerations.java`,
//! `AppCleanUpStep.java`, `AppInitStep.java`, `AppValidateStep.java`, `SparkAppReconciler.java`,
//! the observers, and `tests/e2e`); no code of it is copied here.
//!
//! - **Finalizer**: `sparkapplications.spark.apache.org/finalizer` (Java Operator SDK 5 default,
//!   `<plural>.<group>/finalizer`), added before the first reconcile.
//! - **Status shape**: `currentState {currentStateSummary, lastTransitionTime, message,
//!   lastObservedDriverStatus}`, `stateTransitionHistory` keyed `"0"`, `"1"`, ... (new key = last
//!   key + 1), `currentAttemptSummary {attemptInfo {id}}` starting at id 0,
//!   `previousAttemptSummary` only after a restart. Absent values are omitted (Jackson
//!   `NON_NULL`); timestamps are RFC 3339 UTC instants.
//! - **Initial status**: an application without a valid status gets `Submitted`, "Spark
//!   application has been created on Kubernetes Cluster." as entry "0".
//! - **Messages**: DriverRequested "Requested driver from resource scheduler.", DriverStarted
//!   "Driver has started running.", DriverReady "Driver has reached ready state.",
//!   RunningHealthy "Application is running healthy.", Succeeded "Spark application completed
//!   successfully.", Failed and DriverEvicted "Driver has one or more failed critical
//!   container(s), refer last observed status for details." (with the driver's pod status),
//!   DriverStartTimedOut "The driver has not responded to the initial health check request
//!   within the allotted start-up time. ..." (see [`model::messages`] for all).
//! - **After an outcome** (states after `RunningWithBelowThresholdExecutors`, not terminal):
//!   resources are *retained* when `resourceRetainPolicy` is `Always`, or `OnFailure` and the
//!   outcome is a failure (DriverStartTimedOut, ExecutorsStartTimedOut, SchedulingFailure,
//!   DriverEvicted, Failed, DriverReadyTimedOut).
//!   - retained and restart policy `Never`: `TerminatedWithoutReleaseResources` "Application is
//!     terminated without releasing resources as configured.";
//!   - no restart for this outcome (`Never`; `OnFailure` and not a failure;
//!     `OnInfrastructureFailure` and not DriverStartTimedOut/ExecutorsStartTimedOut/
//!     SchedulingFailure): `ResourceReleased` without a message (or
//!     `TerminatedWithoutReleaseResources` when retained, the message then ends with "Application
//!     is configured to restart, resources created in current attempt would be force released.");
//!   - restart allowed but `currentAttemptSummary.attemptInfo.id >= maxRestartAttempts`
//!     (default 3): `ResourceReleased` "The maximum number of restart attempts (N) has been
//!     exceeded.";
//!   - otherwise `ScheduledToRestart`: the history is trimmed to that single entry (its key
//!     continues the sequence), the old history moves to `previousAttemptSummary` with the old
//!     `attemptInfo`, and `currentAttemptSummary.attemptInfo.id` is incremented; the next
//!     `DriverRequested` comes `restartBackoffMillis` after the restart.
//! - **Retained resources** are released (`ResourceReleased` "Spark application resources
//!   released after exceeding the configured retain duration.") once the smaller enabled value of
//!   `resourceRetainDurationMillis` and `ttlAfterStopMillis` (each enabled when >= 0) has passed
//!   since `TerminatedWithoutReleaseResources`; with both disabled they stay.
//! - **TTL**: with `ttlAfterStopMillis >= 0` the operator deletes a `ResourceReleased`
//!   application once that long has passed since the state *before* the terminal one
//!   (the outcome, or `TerminatedWithoutReleaseResources`).
//! - **Delete**: on `deletionTimestamp` the operator appends `ResourceReleased` "Spark
//!   application has been shutdown as requested." unless the current state already is
//!   `ResourceReleased` (a retained, `TerminatedWithoutReleaseResources` application does get
//!   it), then removes its finalizer.
//! - **Writes** replace the status through the status subresource with `resourceVersion`
//!   locking. 0.5.0 emits no Kubernetes Events for transitions; neither does the simulator.
//!
//! # Approximations
//! - Pace: each scripted state follows the previous one after the step delay (the real one
//!   depends on pods); the finalizer and `Submitted` are written at once, while the operator
//!   writes `Submitted` and `DriverRequested` in one reconcile.
//! - Timeouts: `DriverStartTimedOut` comes one step after `DriverRequested`, not after
//!   `driverStartTimeoutMillis`. The outcome-to-cleanup step also takes one step delay.
//! - `restart-then-success` with no `restartConfig.restartPolicy` in the spec behaves as
//!   `OnFailure` (an explicit policy, including `Never`, is honoured). An unset
//!   `restartBackoffMillis` uses the step delay instead of the operator's 30 s.
//! - The finalizer is removed right after the delete's `ResourceReleased` is written (the
//!   operator waits `terminationRequeuePeriodMillis`, 2 s).
//! - Simulated driver pod statuses (exit code 1, eviction with exit 137, a Pending pod for the
//!   timeout) are plausible, not recorded from real pods.
//!
//! # Schema fixture
//! `fixtures/sparkapplication-v1-status.schema.json` is the `status` schema of the `v1` version
//! of the operator 0.5.0 CRD (`infra/k8s/overlays/dev/crds/sparkapplications.spark.apache.org-v1.yaml`,
//! Apache-2.0) with descriptions removed; a unit test checks every status the core writes in
//! every scenario against it. Regenerate it from the CRD if the target operator version changes.
//!
//! # Restart safety
//! Every delay is computed from the `lastTransitionTime`s in the object's status, so a
//! simulator started later continues where the status says: overdue steps happen at once.

pub mod connect;
pub mod error;
pub mod model;
pub mod plan;
pub mod runner;
pub mod scenario;
pub mod scheduler;

#[cfg(test)]
mod fixtures;

pub use error::{Error, Result};
pub use plan::{Action, AppView, FINALIZER, Step, next_step};
pub use runner::{SimConfig, api_resource, run, run_with_ready};
pub use scenario::{SCENARIO_KEY, STEP_MILLIS_KEY, Scenario, Settings};
