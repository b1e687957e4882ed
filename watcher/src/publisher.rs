//! The publishing loop a leader runs: watch applications, plan with the pure core, publish, then
//! checkpoint and manage the finalizer.
//!
//! ```text
//! watch ──object──▶ Observation ──▶ plan (pure) ──steps──▶ EventSink ──ack──▶ checkpoint + finalizer patch
//!                         ▲                                                       │ 409: re-read, plan again
//!                         └───────────────────────────────────────────────────────┘
//! ```
//!
//! One task owns the [`Schedule`] (which application is synced next: one sync per application at a
//! time, so its events go out in order, and observations arriving meanwhile wait as that application's
//! single pending observation) and runs at most `max_in_flight` syncs at once. This module is the I/O
//! around it: the watch, the sink, the patches.
//!
//! Order of writes within a sync, and why:
//! 1. add the finalizer first, because publishing may wait for the broker for a long time and the
//!    application must not be deleted meanwhile;
//! 2. once the application has ended, write its job record (when a record store is configured) before
//!    publishing: a subscriber told by the terminal event can always look the record up, and a watcher
//!    killed in between publishes nothing it has not recorded;
//! 3. publish every planned event, one at a time, moving the in-memory checkpoint on each ack;
//! 4. write the checkpoint (and remove the finalizer when the decision says so, after making sure the
//!    record exists) with a resourceVersion precondition. On a conflict the object is re-read and the
//!    sync starts over from the in-memory checkpoint, so nothing is published twice by the same replica.
//!
//! Every failure is retried with back-off inside the sync: skipping would be a gap.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use jiff::Timestamp;
use kube::runtime::watcher;
use spark_gateway_events::{FailureCategory, Outcome, Phase};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::checkpoint::{Checkpoint, annotation_value};
use crate::cluster::{Applications, ClusterError, MetadataUpdate, PatchOutcome};
use crate::envelope::{OutgoingRecord, state_changed_event};
use crate::finalizer::{self, FinalizerAction};
use crate::metrics::{Metrics, Operation};
use crate::observation::{Observation, ObservationError, SparkApplication};
use crate::schedule::{Schedule, SyncReport, SyncStart};
use crate::sink::{EventSink, SinkError};
use crate::transitions::{self, Step};
use spark_gateway_core::apache_v1::{self, StateMeaning};
use spark_gateway_core::links::{LinkTarget, LinkTemplates};
use spark_gateway_core::{Classify, Disposition, error_chain, status, usage};
use spark_gateway_records::{JobRecordStore, RecordError, Stored};

/// How the publishing loop behaves.
#[derive(Debug, Clone)]
pub struct PublisherSettings {
    /// The cluster's name in events.
    pub cluster: String,
    /// Add the watcher's finalizer to applications (`--no-finalizer` turns this off).
    pub finalizer_enabled: bool,
    /// Applications synced at once.
    pub max_in_flight: usize,
    /// The longest wait between two retries of a failing sync.
    pub max_retry_delay: Duration,
    /// The cluster's Spark UI, history server and log link templates.
    pub links: LinkTemplates,
}

/// Why one round of a sync failed; the sync retries.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Observation(#[from] ObservationError),
}

impl Classify for SyncError {
    fn disposition(&self) -> Disposition {
        match self {
            Self::Sink(error) => error.disposition(),
            Self::Record(error) => error.disposition(),
            Self::Cluster(error) => error.disposition(),
            // Reading the same object again gives the same error until the object changes: an operator
            // of another version than the target's, or a hand-edited status.
            Self::Observation(_) => Disposition::Configuration,
        }
    }
}

impl SyncError {
    fn operation(&self) -> Operation {
        match self {
            Self::Sink(_) => Operation::Publish,
            Self::Record(_) => Operation::Record,
            Self::Cluster(_) => Operation::Kubernetes,
            Self::Observation(_) => Operation::Status,
        }
    }
}

/// How one round of a sync ended.
enum Round {
    /// Everything published and written.
    Done,
    /// The object is gone (deleted, or replaced by a new one of the same name).
    Gone,
    /// The object changed under us: sync this newer version.
    Reread(Box<Observation>),
}

/// The publishing side of the watcher.
pub struct Publisher<S, R> {
    applications: Applications,
    sink: Arc<S>,
    records: Option<Arc<R>>,
    settings: Arc<PublisherSettings>,
    metrics: Metrics,
}

impl<S: EventSink, R: JobRecordStore> Publisher<S, R> {
    /// A publisher of `applications`' transitions to `sink`, keeping job records in `records` when
    /// given.
    pub fn new(
        applications: Applications,
        sink: Arc<S>,
        records: Option<Arc<R>>,
        settings: PublisherSettings,
        metrics: Metrics,
    ) -> Self {
        Self {
            applications,
            sink,
            records,
            settings: Arc::new(settings),
            metrics,
        }
    }

    /// Publishes until `stop` completes (leadership lost, or shutdown). In-flight syncs are dropped
    /// then; whatever they published but did not checkpoint is published again by the next leader,
    /// with the same ids.
    pub async fn run(&self, stop: impl Future<Output = ()>) {
        let mut state = Schedule::new(
            self.applications.scope_count(),
            self.settings.finalizer_enabled,
        );
        let mut events = self.applications.watch();
        let mut in_flight: FuturesUnordered<BoxFuture<'static, SyncReport>> =
            FuturesUnordered::new();
        tokio::pin!(stop);
        info!("publishing");
        loop {
            tokio::select! {
                biased;
                () = &mut stop => break,
                Some(report) = in_flight.next(), if !in_flight.is_empty() => state.finish(report),
                Some((scope, event)) = events.next() => self.on_event(&mut state, scope, event),
            }
            while in_flight.len() < self.settings.max_in_flight.max(1) {
                let Some(start) = state.next_ready() else {
                    break;
                };
                in_flight.push(self.sync(start).boxed());
            }
            self.metrics.set_applications_tracked(state.tracked());
        }
        info!(in_flight = in_flight.len(), "stopped publishing");
    }

    fn on_event(
        &self,
        state: &mut Schedule,
        scope: usize,
        event: Result<watcher::Event<SparkApplication>, watcher::Error>,
    ) {
        match event {
            Ok(watcher::Event::Init) => state.relist_started(scope),
            Ok(watcher::Event::InitApply(object)) => {
                if let Some(uid) = object.metadata.uid.as_deref() {
                    state.listed(scope, uid);
                }
                self.observe(state, scope, &object, false);
            }
            Ok(watcher::Event::InitDone) => state.relist_done(scope),
            Ok(watcher::Event::Apply(object)) => self.observe(state, scope, &object, false),
            Ok(watcher::Event::Delete(object)) => self.observe(state, scope, &object, true),
            Err(error) => {
                self.metrics.error(Operation::Watch, true);
                warn!(error = %error_chain(&error), "watch failed; the watcher retries with back-off");
            }
        }
    }

    fn observe(&self, state: &mut Schedule, scope: usize, object: &SparkApplication, gone: bool) {
        let mut observation = match Observation::from_object(object) {
            Ok(observation) => observation,
            Err(error) => {
                self.metrics.error(Operation::Status, false);
                warn!(error = %error_chain(&error), "skipping an application that cannot be read");
                return;
            }
        };
        let warnings = std::mem::take(&mut observation.warnings);
        let identity = observation.identity.clone();
        let observed = state.observe(scope, observation, gone);
        if observed.new_entries > 0 {
            self.metrics.transitions_seen(observed.new_entries as u64);
        }
        // Once per application, not on every status change.
        if observed.first_sighting {
            for warning in &warnings {
                warn!(
                    namespace = %identity.namespace,
                    name = %identity.name,
                    warning = %error_chain(warning),
                    "odd application metadata"
                );
            }
        }
    }

    /// Brings one application up to date, retrying until it is or the object is gone.
    fn sync(&self, start: SyncStart) -> impl Future<Output = SyncReport> + Send + 'static {
        let worker = SyncWorker {
            applications: self.applications.clone(),
            sink: Arc::clone(&self.sink),
            records: self.records.clone(),
            settings: Arc::clone(&self.settings),
            metrics: self.metrics.clone(),
        };
        worker.run(start.observation, start.published, start.gone)
    }
}

/// Everything one sync needs, owned so the sync can run as its own future.
struct SyncWorker<S, R> {
    applications: Applications,
    sink: Arc<S>,
    records: Option<Arc<R>>,
    settings: Arc<PublisherSettings>,
    metrics: Metrics,
}

impl<S: EventSink, R: JobRecordStore> SyncWorker<S, R> {
    async fn run(
        self,
        mut observation: Observation,
        mut published: Option<Checkpoint>,
        gone: bool,
    ) -> SyncReport {
        let uid = observation.identity.uid.clone();
        let mut delay = Duration::from_millis(100);
        let mut gap_reported = false;
        loop {
            published = Checkpoint::latest(published, observation.checkpoint);
            match self
                .round(&observation, &mut published, gone, &mut gap_reported)
                .await
            {
                Ok(Round::Done) => {
                    return SyncReport {
                        uid,
                        published,
                        gone,
                    };
                }
                Ok(Round::Gone) => {
                    return SyncReport {
                        uid,
                        published,
                        gone: true,
                    };
                }
                Ok(Round::Reread(newer)) => observation = *newer,
                Err(error) => {
                    let transient = error.disposition().is_transient();
                    self.metrics.error(error.operation(), transient);
                    let wait = if transient {
                        delay
                    } else {
                        self.settings.max_retry_delay
                    };
                    let log = error_chain(&error);
                    if transient {
                        warn!(namespace = %observation.identity.namespace, name = %observation.identity.name, error = %log, retry_in_ms = wait.as_millis() as u64, "sync failed, retrying");
                    } else {
                        error!(namespace = %observation.identity.namespace, name = %observation.identity.name, error = %log, retry_in_ms = wait.as_millis() as u64, "sync failed on a permanent error, retrying slowly");
                    }
                    tokio::time::sleep(wait).await;
                    delay = (delay * 2).min(self.settings.max_retry_delay);
                }
            }
        }
    }

    async fn round(
        &self,
        observation: &Observation,
        published: &mut Option<Checkpoint>,
        gone: bool,
        gap_reported: &mut bool,
    ) -> Result<Round, SyncError> {
        let identity = &observation.identity;
        let action = |published: Option<Checkpoint>| {
            finalizer::action_for(self.settings.finalizer_enabled, observation, published)
        };

        // 1. Hold the application before waiting on the broker.
        if !gone && action(*published) == FinalizerAction::Add {
            let update = MetadataUpdate {
                resource_version: observation.resource_version.clone(),
                checkpoint: None,
                finalizers: finalizer::apply(&observation.finalizers, FinalizerAction::Add),
            };
            return self.write(observation, &update).await;
        }

        // 2. Publish.
        let mut plan = transitions::plan(&observation.status, *published);
        if let Some(gap) = plan.gap
            && !*gap_reported
        {
            *gap_reported = true;
            self.metrics.lost_transitions(gap.missing);
            error!(
                namespace = %identity.namespace,
                name = %identity.name,
                after = ?gap.after.map(|c| c.to_string()),
                resumes_at = %gap.resumes_at,
                missing = gap.missing,
                "history entries were trimmed before they could be published"
            );
        }
        let ended = observation
            .status
            .last_state()
            .is_some_and(StateMeaning::is_terminal);
        let publishes = plan
            .steps
            .iter()
            .any(|step| matches!(step, Step::Publish(_)));
        // A failed driver's last log lines, while its pod is still there (kept by
        // `resourceRetainPolicy: OnFailure`), for the terminal event and the record alike.
        let failed = plan.steps.iter().any(|step| {
            matches!(step, Step::Publish(t) if t.failure.as_ref().is_some_and(|f| f.category != FailureCategory::Cancelled))
        });
        let log_tail = if ended && failed {
            self.driver_log_tail(observation).await
        } else {
            None
        };
        if log_tail.is_some() {
            for step in &mut plan.steps {
                if let Step::Publish(transition) = step
                    && let Some(failure) = &mut transition.failure
                {
                    failure.log_tail.clone_from(&log_tail);
                }
            }
        }
        let mut recorded = false;
        if ended && publishes {
            self.keep_record(observation, log_tail.as_deref()).await?;
            recorded = true;
        }
        let usage = ended
            .then(|| usage::of_application(observation.spec.as_ref(), &observation.status))
            .flatten();
        for step in &plan.steps {
            match step {
                Step::SkipUnknownState { position, state } => {
                    self.metrics.skipped_unknown_state();
                    warn!(namespace = %identity.namespace, name = %identity.name, %position, state, "no event for a state the contract does not know");
                }
                Step::Publish(transition) => {
                    let event = state_changed_event(
                        identity,
                        &self.settings.cluster,
                        transition,
                        usage.clone(),
                        &self.settings.links,
                    );
                    let record = OutgoingRecord::new(&event);
                    let started = Instant::now();
                    self.sink.publish(&record).await?;
                    let since_transition = transition
                        .time
                        .and_then(|time| Timestamp::now().duration_since(time).try_into().ok());
                    self.metrics.published(started.elapsed(), since_transition);
                    log_published(
                        identity,
                        &record.event_id,
                        transition.state,
                        transition.outcome.as_ref(),
                    );
                }
            }
            *published = Some(step.position());
        }
        if gone {
            return Ok(Round::Gone);
        }

        // 3. Checkpoint, and let go of the application if it is being deleted and fully published.
        let checkpoint_moved = *published > observation.checkpoint;
        let finalizers = match action(*published) {
            FinalizerAction::Remove => {
                // Whatever ended it (or did not: deleted before the operator wrote a terminal
                // state), the application leaves a record behind.
                if !recorded {
                    self.keep_record(observation, log_tail.as_deref()).await?;
                }
                finalizer::apply(&observation.finalizers, FinalizerAction::Remove)
            }
            FinalizerAction::Add | FinalizerAction::Keep => None,
        };
        if !checkpoint_moved && finalizers.is_none() {
            return Ok(Round::Done);
        }
        let update = MetadataUpdate {
            resource_version: observation.resource_version.clone(),
            checkpoint: published
                .filter(|_| checkpoint_moved)
                .map(|checkpoint| annotation_value(&identity.uid, checkpoint)),
            finalizers,
        };
        // An applied write comes back as a Reread of the object the server returned: the next round
        // finds nothing left to do without another request.
        self.write(observation, &update).await
    }

    /// Writes the job record of `observation`, when records are kept. A record that already covers as
    /// much history is left alone (a replay after a crash, a second leader), so this is safe to repeat.
    async fn keep_record(
        &self,
        observation: &Observation,
        log_tail: Option<&str>,
    ) -> Result<(), SyncError> {
        let Some(records) = &self.records else {
            return Ok(());
        };
        let identity = &observation.identity;
        let record = match status::job_record(
            &observation.object_facts(),
            &observation.record_facts(),
            &observation.status,
            observation.spec.as_ref(),
            &self.settings.cluster,
            Timestamp::now(),
        ) {
            Ok(Some(mut record)) => {
                record.status.links = self.settings.links.links(
                    &LinkTarget {
                        cluster: &self.settings.cluster,
                        namespace: &identity.namespace,
                        name: &identity.name,
                        uid: &identity.uid,
                        attempt: observation.status.current_attempt,
                    },
                    Phase::Ended,
                );
                if let Some(failure) = &mut record.status.failure {
                    failure.log_tail = log_tail.map(str::to_string);
                }
                record
            }
            Ok(None) => return Ok(()),
            // A state the contract does not know (a newer operator): no record can describe it, and
            // waiting would not change that; the events of the known states still go out.
            Err(error) => {
                warn!(namespace = %identity.namespace, name = %identity.name, error = %error_chain(&error), "no job record for an application with a state the contract does not know");
                return Ok(());
            }
        };
        if records.put(&record).await? == Stored::Written {
            self.metrics.record_written();
            debug!(namespace = %identity.namespace, name = %identity.name, through = ?record.through, "job record written");
        }
        Ok(())
    }

    /// The end of the current attempt's driver log. Best effort, and bounded in time: the detail is
    /// worth a few seconds, never a held-back terminal event.
    async fn driver_log_tail(&self, observation: &Observation) -> Option<String> {
        const LOG_READ_TIMEOUT: Duration = Duration::from_secs(5);
        let identity = &observation.identity;
        let pod = apache_v1::driver_pod_name(
            &identity.namespace,
            &identity.name,
            observation.status.current_attempt,
        );
        let read = self.applications.driver_log_tail(&identity.namespace, &pod);
        match tokio::time::timeout(LOG_READ_TIMEOUT, read).await {
            Ok(Ok(tail)) => tail,
            Ok(Err(error)) => {
                self.metrics
                    .error(Operation::Kubernetes, error.disposition().is_transient());
                warn!(namespace = %identity.namespace, name = %identity.name, %pod, error = %error_chain(&error), "no driver log tail for the failure");
                None
            }
            Err(_) => {
                warn!(namespace = %identity.namespace, name = %identity.name, %pod, "reading the driver log timed out; the failure goes out without its tail");
                None
            }
        }
    }

    /// Applies `update`; on a conflict re-reads the object.
    async fn write(
        &self,
        observation: &Observation,
        update: &MetadataUpdate,
    ) -> Result<Round, SyncError> {
        let identity = &observation.identity;
        match self
            .applications
            .patch_metadata(&identity.namespace, &identity.name, update)
            .await?
        {
            PatchOutcome::Applied(object) => {
                let newer = Observation::from_object(&object)?;
                if update
                    .finalizers
                    .as_ref()
                    .is_some_and(|f| f.len() < observation.finalizers.len())
                {
                    debug!(namespace = %identity.namespace, name = %identity.name, "finalizer removed");
                }
                Ok(Round::Reread(Box::new(newer)))
            }
            PatchOutcome::Gone => Ok(Round::Gone),
            PatchOutcome::Conflict => match self
                .applications
                .get(&identity.namespace, &identity.name)
                .await?
            {
                Some(object) if object.metadata.uid.as_deref() == Some(identity.uid.as_str()) => {
                    Ok(Round::Reread(Box::new(Observation::from_object(&object)?)))
                }
                _ => Ok(Round::Gone),
            },
        }
    }
}

fn log_published(
    identity: &crate::observation::AppIdentity,
    event_id: &str,
    state: spark_gateway_events::ApplicationState,
    outcome: Option<&Outcome>,
) {
    match outcome {
        Some(outcome) => info!(
            namespace = %identity.namespace,
            name = %identity.name,
            event_id,
            %state,
            outcome = ?outcome,
            "published the outcome"
        ),
        None => {
            debug!(namespace = %identity.namespace, name = %identity.name, event_id, %state, "published")
        }
    }
}
