//! Operator simulator: drives the status of `spark.apache.org/v1` SparkApplications the way the
//! Apache Spark Kubernetes Operator 0.5.0 does, with driver pods and their logs as a cluster has
//! them (Spark itself only when asked to run an application for real), so the gateway and its
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
//! - [`pods`] holds the driver pods: which should exist, with which status (the one the status
//!   records), their logs for scripted drivers, and their removal with the application.
//! - [`real`] holds real execution's pure part: the operator's submission from a spec, what
//!   changes on one machine, and the driver observers; [`drivers`] runs the `spark-submit`s.
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
//! - `operator-sim.spark-gateway.io/scenario`: one of the scenarios below
//!   ([`scenario::SCENARIO_KEY`]);
//! - `operator-sim.spark-gateway.io/step-millis`: delay between two states in milliseconds
//!   ([`scenario::STEP_MILLIS_KEY`]);
//! - `operator-sim.spark-gateway.io/pace`: `compressed` (default) or `realistic`
//!   ([`scenario::PACE_KEY`], [`scenario::Pace`]). In both, one step stands for one second of
//!   the operator's time. `compressed` honours the spec's `applicationTimeoutConfig` timeouts
//!   scaled that way (unset: one step; <= 0: never) and keeps TTL, retention and an explicit
//!   `restartBackoffMillis` as written (unset backoff: one step). `realistic` uses the
//!   operator's defaults and requeues, all scaled: 300 s timeouts noticed at the next 120 s
//!   reconcile (360 s), 30 s restart backoff, cleanup right after the outcome, 2 s
//!   (`terminationRequeuePeriodMillis`) before the delete's finalizer release, about 3 s per lost
//!   status-write race (409), TTL and retention scaled too.
//!
//! - `operator-sim.spark-gateway.io/execution`: `real` or `scripted` ([`real::EXECUTION_KEY`]);
//!   without it, an application naming a scenario is scripted and any other runs for real when
//!   the simulator has Spark and `--real-by-default` (the local world's setting).
//!
//! # Real execution
//! With `--spark-home DIR` (a Spark distribution, e.g. pyspark's) the simulator runs chosen
//! applications with `spark-submit` on this machine, building the submission exactly as operator
//! 0.5.0 does and taking the driver phase (`DriverRequested` to the outcome) from the process:
//! see [`real`] for the operator code each piece mirrors and what differs, [`drivers`] for the
//! bounds (`--max-spark-submits`, `--spark-max-driver-memory-mib`, `--spark-run-timeout-secs`),
//! `--spark-jobs DIR` for where `local:///opt/spark/...` resolves and `--spark-log-dir` for the
//! driver logs. Everything else (finalizer, cleanup, restarts, retain, TTL, delete) is the same
//! core as for scripted applications.
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
//! | `restart-then-success` | attempt 0 as `failure`; under a restart policy ScheduledToRestart, attempt 1 as `success` |
//! | `stuck` | ... RunningHealthy, then nothing until deleted |
//! | `scheduling-failure` | Submitted, SchedulingFailure "Failed to request driver from scheduler backend. StackTrace: ..." (`AppInitStep`) |
//! | `unbuildable-spec` | Submitted, SchedulingFailure, then ResourceReleased "Cannot build Spark spec for given application, ..." without restart (`AppCleanUpStep`) |
//! | `driver-removed` | ... RunningHealthy, Failed "Driver removed. ..." without pod status (`AppReconcileStep.observeDriver`) |
//! | `driver-ready-timeout` | Submitted, DriverRequested, DriverStarted, DriverReadyTimedOut after `driverReadyTimeoutMillis` |
//! | `executors-start-timeout` | ... DriverReady, InitializedBelowThresholdExecutors (`initExecutors` > 1), ExecutorsStartTimedOut after `executorStartTimeoutMillis`; without `instanceConfig.initExecutors` RunningHealthy and nothing more (`AppRunningStep`) |
//! | `executors-lost` | ... RunningHealthy, RunningWithBelowThresholdExecutors (with `initExecutors` and `minExecutors` > 0), Succeeded |
//! | `fast-start` | Submitted, DriverRequested, DriverStarted + DriverReady in one write, RunningHealthy, Succeeded |
//! | `finished-between-checks` | Submitted, DriverRequested, Failed "Driver container is terminated without SparkContext / SparkSession initialization." + Succeeded in one write (`AppDriverStartObserver` then `AppDriverReadyObserver`); the cleanup acts on Succeeded |
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
//!   writes `Submitted` and `DriverRequested` in one reconcile. Pod events that trigger an
//!   early reconcile are not modelled: a realistic timeout is noticed at a 120 s reconcile.
//! - `compressed` pace: unset timeouts take one step, the outcome-to-cleanup step takes one
//!   step, the finalizer goes right after the delete's `ResourceReleased`, a 409 is retried at
//!   once (see the pace above for `realistic`).
//! - Executor counts are not simulated: the threshold scenarios pick the counts that produce
//!   the states (one executor short of `initExecutors`, below `minExecutors` once).
//! - Simulated driver pod statuses (exit code 1, eviction with exit 137, a Pending pod for the
//!   timeout) and the `SchedulingFailure` stack traces (a quota refusal; Spark's real "Must
//!   specify the driver container image") are plausible, not recorded from real pods.
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
pub mod drivers;
pub mod error;
pub mod model;
pub mod plan;
pub mod pods;
pub mod real;
pub mod runner;
pub mod scenario;
pub mod scheduler;

#[cfg(test)]
mod fixtures;

pub use drivers::RealConfig;
pub use error::{Error, Result};
pub use plan::{Action, AppView, FINALIZER, Step, next_step};
pub use runner::{SimConfig, api_resource, run, run_with_ready};
pub use scenario::{SCENARIO_KEY, STEP_MILLIS_KEY, Scenario, Settings};
