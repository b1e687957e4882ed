//! The I/O edge: watch SparkApplications, keep the latest object of each, ask the pure core
//! ([`crate::plan::next_step`]) what to do, and do it when it is due.
//!
//! One task does everything. It owns a map of applications, one [`Deadlines`] queue of wake-ups
//! and a bounded set of in-flight requests; nothing is spawned per application, so 10,000
//! applications cost memory, not tasks.
//!
//! Consistency: every write carries the `resourceVersion` it was computed from (`replace_status`
//! with the whole object, merge patches with `metadata.resourceVersion`). A 409 Conflict means the
//! cached object was stale: the runner re-reads it and decides again. After its own write the
//! runner already knows the newer object from the response; watch events that predate that write
//! (the watch lags behind) are recognised by waiting for the response's `resourceVersion` to come
//! by, and are not allowed to overwrite the newer object.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{self, FuturesUnordered};
use futures::{FutureExt, StreamExt};
use jiff::Timestamp;
use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams,
    PostParams, Preconditions, TypeMeta,
};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::drivers::{DriverEvent, Drivers, RealConfig};
use crate::error::{Error, Result};
use crate::model::StateSummary;
use crate::plan::{Action, AppView, FINALIZER, conflict_retry_delay, next_step};
use crate::pods;
use crate::scenario::{Scenario, Settings};
use crate::scheduler::Deadlines;

/// The resource the operator (and the simulator) reconciles: one definition, the gateway's.
pub use spark_gateway_core::apache_v1::{GROUP, KIND, PLURAL, VERSION};

/// The `ApiResource` of `spark.apache.org/v1` SparkApplications for `DynamicObject` APIs.
pub fn api_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, KIND), PLURAL)
}

/// How the simulator runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Scenario and step delay of applications without annotations or labels choosing them.
    pub defaults: Settings,
    /// Namespaces to watch; empty watches all namespaces.
    pub namespaces: Vec<String>,
    /// Requests in flight at once; more due steps wait their turn.
    pub max_in_flight: usize,
    /// How long to ignore watch events older than our own last write before trusting the watch
    /// again (guards against a watch that never delivers that write).
    pub resync_after: Duration,
    /// Run applications with real Spark (see [`crate::drivers`]); `None`: everything is scripted.
    pub real: Option<RealConfig>,
    /// Keep driver pods as a cluster has them (see [`crate::pods`]).
    pub driver_pods: bool,
    /// Where driver logs are (`<dir>/<namespace>/<pod>.log`, what the API server's `pods/log`
    /// serves); scripted drivers write theirs here. Real drivers write to `real.log_dir`, which
    /// this defaults to.
    pub pod_log_dir: Option<PathBuf>,
}

impl SimConfig {
    /// The driver log directory: [`SimConfig::pod_log_dir`], else the real drivers'.
    pub fn log_dir(&self) -> Option<PathBuf> {
        self.pod_log_dir
            .clone()
            .or_else(|| self.real.as_ref().map(|real| real.log_dir.clone()))
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            defaults: Settings {
                scenario: Scenario::Success,
                step: Duration::from_millis(300),
            },
            namespaces: Vec::new(),
            max_in_flight: 64,
            resync_after: Duration::from_secs(5),
            real: None,
            driver_pods: true,
            pod_log_dir: None,
        }
    }
}

/// Runs the simulator until `shutdown` completes.
pub async fn run(
    client: Client,
    config: SimConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    run_with_ready(client, config, || {}, shutdown).await
}

/// [`run`], calling `ready` once every watch has listed its applications.
pub async fn run_with_ready(
    client: Client,
    config: SimConfig,
    ready: impl FnOnce(),
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let resource = api_resource();
    let scopes: Vec<Option<String>> = if config.namespaces.is_empty() {
        vec![None]
    } else {
        let mut unique: Vec<String> = config.namespaces.clone();
        unique.sort();
        unique.dedup();
        unique.into_iter().map(Some).collect()
    };
    let mut events = stream::select_all(scopes.iter().enumerate().map(|(index, scope)| {
        let api: Api<DynamicObject> = match scope {
            None => Api::all_with(client.clone(), &resource),
            Some(namespace) => Api::namespaced_with(client.clone(), namespace, &resource),
        };
        watcher(api, watcher::Config::default())
            .default_backoff()
            .map(move |event| (index, event))
            .boxed()
    }));
    info!(
        namespaces = ?config.namespaces,
        default_scenario = %config.defaults.scenario,
        step_millis = config.defaults.step.as_millis(),
        "watching {PLURAL}.{GROUP}/{VERSION}"
    );

    let mut sim = Simulator::new(client, resource, config, scopes.len());
    let mut ready = Some(ready);
    let shutdown = shutdown;
    tokio::pin!(shutdown);
    loop {
        let capacity = sim.in_flight.len() < sim.config.max_in_flight;
        let deadline = sim.timers.next_deadline();
        let wake_at = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            biased;
            () = &mut shutdown => {
                info!(in_flight = sim.in_flight.len(), "shutting down");
                return Ok(());
            }
            Some(done) = sim.in_flight.next(), if !sim.in_flight.is_empty() => {
                sim.on_completion(done);
            }
            Some(event) = next_driver_event(&mut sim.drivers) => {
                sim.on_driver_event(&event);
            }
            () = tokio::time::sleep_until(wake_at), if deadline.is_some() && capacity => {
                sim.on_timers();
            }
            event = events.next() => match event {
                Some((index, Ok(event))) => {
                    sim.on_watch(index, event);
                    if ready.is_some() && sim.all_listed() {
                        info!(applications = sim.apps.len(), "watch established");
                        if let Some(ready) = ready.take() {
                            ready();
                        }
                    }
                }
                Some((_, Err(err))) => {
                    warn!(error = %error_chain(&err), "watch failed, retrying");
                }
                None => return Err(Error::WatchEnded),
            }
        }
    }
}

/// `namespace/name` of an application.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AppKey {
    namespace: String,
    name: String,
}

impl AppKey {
    fn of(object: &DynamicObject) -> Option<Self> {
        Some(Self {
            namespace: object.metadata.namespace.clone().unwrap_or_default(),
            name: object.metadata.name.clone()?,
        })
    }
}

impl fmt::Display for AppKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What the runner knows about one application.
struct Tracked {
    uid: Option<String>,
    /// Latest known object (from the watch or from the response to our own request).
    object: DynamicObject,
    /// Index of the watch that reported it (for pruning after a relist).
    source: usize,
    /// `resourceVersion` of our last write that the watch has not delivered yet, and since when.
    awaiting: Option<(String, Instant)>,
    /// A request for this application is in flight; decisions wait for its answer.
    in_flight: bool,
    /// `resourceVersion`s the watch delivered while a request was in flight.
    seen_in_flight: Vec<String>,
    /// The cached object is known to be stale (409): read it before deciding again.
    needs_refresh: bool,
    /// Consecutive failed requests, for backoff.
    failures: u32,
    /// Bad annotations were already logged.
    warned: bool,
}

impl Tracked {
    fn new(object: DynamicObject, source: usize) -> Self {
        Self {
            uid: object.metadata.uid.clone(),
            object,
            source,
            awaiting: None,
            in_flight: false,
            seen_in_flight: Vec::new(),
            needs_refresh: false,
            failures: 0,
            warned: false,
        }
    }
}

/// A request the runner makes.
enum Request {
    Act(Action),
    Refresh,
}

impl Request {
    fn describe(&self) -> String {
        match self {
            Self::Act(action) => action.describe(),
            Self::Refresh => "re-read".to_owned(),
        }
    }
}

/// The answer to one request.
struct Completion {
    key: AppKey,
    uid: Option<String>,
    what: String,
    result: Result<Option<DynamicObject>>,
}

struct Simulator {
    client: Client,
    resource: ApiResource,
    config: SimConfig,
    apps: HashMap<AppKey, Tracked>,
    timers: Deadlines<AppKey, Instant>,
    in_flight: FuturesUnordered<BoxFuture<'static, Completion>>,
    /// Per watch: keys seen since its last `Init`, while it is (re)listing.
    listing: Vec<Option<HashSet<AppKey>>>,
    /// Per watch: it completed a list at least once.
    listed: Vec<bool>,
    /// The drivers of applications running for real.
    drivers: Option<Drivers>,
}

/// The next report of a real driver; pending forever without real execution.
async fn next_driver_event(drivers: &mut Option<Drivers>) -> Option<DriverEvent> {
    match drivers {
        Some(drivers) => drivers.next_event().await,
        None => std::future::pending().await,
    }
}

impl Simulator {
    fn new(client: Client, resource: ApiResource, config: SimConfig, watches: usize) -> Self {
        Self {
            client,
            resource,
            apps: HashMap::new(),
            timers: Deadlines::new(),
            in_flight: FuturesUnordered::new(),
            listing: vec![None; watches],
            listed: vec![false; watches],
            drivers: config.real.clone().map(Drivers::new),
            config,
        }
    }

    fn on_driver_event(&mut self, event: &DriverEvent) {
        if let Some(drivers) = &mut self.drivers {
            drivers.on_event(event);
        }
        let (namespace, name) = event.app();
        let key = AppKey {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        };
        self.evaluate(&key);
    }

    fn all_listed(&self) -> bool {
        self.listed.iter().all(|l| *l)
    }

    fn on_watch(&mut self, source: usize, event: watcher::Event<DynamicObject>) {
        match event {
            watcher::Event::Init => self.listing[source] = Some(HashSet::new()),
            watcher::Event::InitApply(object) => {
                if let (Some(key), Some(seen)) = (AppKey::of(&object), &mut self.listing[source]) {
                    seen.insert(key);
                }
                self.upsert(object, source, true);
            }
            watcher::Event::InitDone => {
                let seen = self.listing[source].take().unwrap_or_default();
                let vanished: Vec<AppKey> = self
                    .apps
                    .iter()
                    .filter(|(key, app)| app.source == source && !seen.contains(*key))
                    .map(|(key, _)| key.clone())
                    .collect();
                for key in vanished {
                    self.forget(&key);
                }
                self.listed[source] = true;
            }
            watcher::Event::Apply(object) => self.upsert(object, source, false),
            watcher::Event::Delete(object) => {
                if let Some(key) = AppKey::of(&object) {
                    debug!(app = %key, "deleted");
                    self.forget(&key);
                }
            }
        }
    }

    /// Takes a watched object into the cache and decides again, unless the event predates our
    /// own last write. `listed` objects come from a fresh list and are always current.
    fn upsert(&mut self, object: DynamicObject, source: usize, listed: bool) {
        let Some(key) = AppKey::of(&object) else {
            return;
        };
        let resync_after = self.config.resync_after;
        let app = match self.apps.get_mut(&key) {
            Some(app) if app.uid == object.metadata.uid => app,
            _ => {
                // New, or deleted and created again under the same name.
                if self.apps.contains_key(&key) {
                    self.forget(&key);
                }
                info!(app = %key, "new application");
                self.apps.insert(key.clone(), Tracked::new(object, source));
                self.evaluate(&key);
                return;
            }
        };
        app.source = source;
        let version = object.metadata.resource_version.clone().unwrap_or_default();
        if app.in_flight {
            app.seen_in_flight.push(version);
            app.object = object;
            return;
        }
        if let Some((wanted, since)) = &app.awaiting {
            let caught_up = *wanted == version;
            if !(listed || caught_up || since.elapsed() >= resync_after) {
                // Older than what our own write returned: keep the newer object.
                return;
            }
            app.awaiting = None;
            if caught_up {
                // Our own write coming back: the cached object (its response) is the same.
                return;
            }
        }
        app.object = object;
        self.evaluate(&key);
    }

    fn forget(&mut self, key: &AppKey) {
        if self.apps.remove(key).is_some() && self.config.driver_pods {
            let (client, namespace, name) =
                (self.client.clone(), key.namespace.clone(), key.name.clone());
            tokio::spawn(async move { pods::collect(client, &namespace, &name).await });
        }
        self.timers.cancel(key);
        if let Some(drivers) = &mut self.drivers {
            drivers.forget(&key.namespace, &key.name);
        }
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
        while self.in_flight.len() < self.config.max_in_flight {
            let Some(key) = self.timers.pop_due(now) else {
                break;
            };
            self.evaluate(&key);
        }
    }

    /// Asks the core what to do with `key` now: dispatch it, or set its timer.
    fn evaluate(&mut self, key: &AppKey) {
        let defaults = self.config.defaults;
        let Some(app) = self.apps.get_mut(key) else {
            return;
        };
        if app.in_flight {
            // The answer re-evaluates.
            return;
        }
        if app.needs_refresh {
            self.dispatch(key, Request::Refresh);
            return;
        }
        let (settings, problems) = Settings::resolve(
            app.object.metadata.annotations.as_ref(),
            app.object.metadata.labels.as_ref(),
            defaults,
        );
        if !problems.is_empty() && !app.warned {
            app.warned = true;
            for problem in &problems {
                warn!(app = %key, "ignoring {problem}; using the default");
            }
        }
        let view = AppView::from_parts(&app.object.metadata, &app.object.data);
        let now = clock_now();
        // Applications running for real take their driver phase from their driver process.
        let real = self
            .drivers
            .as_mut()
            .and_then(|drivers| drivers.step(&app.object, &view, now));
        let step = real.unwrap_or_else(|| next_step(&view, &settings, now));
        match step.action {
            Action::Nothing => self.timers.cancel(key),
            action if step.delay.is_zero() => {
                if self.in_flight.len() < self.config.max_in_flight {
                    self.dispatch(key, Request::Act(action));
                } else {
                    self.timers.schedule(key.clone(), Instant::now());
                }
            }
            _ => self
                .timers
                .schedule(key.clone(), Instant::now() + step.delay),
        }
    }

    /// Starts the request for `key`.
    fn dispatch(&mut self, key: &AppKey, request: Request) {
        let Some(app) = self.apps.get_mut(key) else {
            return;
        };
        self.timers.cancel(key);
        app.in_flight = true;
        app.seen_in_flight.clear();
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &key.namespace, &self.resource);
        let name = key.name.clone();
        let what = request.describe();
        let version = app.object.metadata.resource_version.clone();
        let uid = app.uid.clone();
        let finalizers = app.object.metadata.finalizers.clone().unwrap_or_default();
        let call: BoxFuture<'static, Result<Option<DynamicObject>, kube::Error>> = match request {
            Request::Act(Action::AddFinalizer) => {
                let mut list = finalizers;
                list.push(FINALIZER.to_owned());
                let patch = finalizer_patch(list, version);
                async move { patch_metadata(&api, &name, patch).await }.boxed()
            }
            Request::Act(Action::RemoveFinalizer) => {
                let list = finalizers.into_iter().filter(|f| f != FINALIZER).collect();
                let patch = finalizer_patch(list, version);
                async move { patch_metadata(&api, &name, patch).await }.boxed()
            }
            Request::Act(Action::WriteStatus(status)) => {
                let pods = self.config.driver_pods.then(|| {
                    let view = AppView::from_parts(&app.object.metadata, &app.object.data);
                    let owner = pods::Owner {
                        namespace: &key.namespace,
                        name: &key.name,
                        uid: uid.as_deref().unwrap_or_default(),
                        image: view.driver_image.as_deref().unwrap_or("apache/spark"),
                    };
                    (
                        pods::desired(owner, &status),
                        self.client.clone(),
                        self.config.log_dir(),
                    )
                });
                let mut object = app.object.clone();
                object.types = Some(TypeMeta {
                    api_version: format!("{GROUP}/{VERSION}"),
                    kind: KIND.to_owned(),
                });
                object.metadata.managed_fields = None;
                match object.data.as_object_mut() {
                    Some(fields) => {
                        fields.insert("status".to_owned(), status.to_value());
                    }
                    None => object.data = json!({"status": status.to_value()}),
                }
                async move {
                    let written = api
                        .replace_status(&name, &PostParams::default(), &object)
                        .await?;
                    // In the same request, so one application's pod writes keep their order.
                    if let Some((desired, client, log_dir)) = pods {
                        pods::sync(client, desired, log_dir).await;
                    }
                    Ok(Some(written))
                }
                .boxed()
            }
            Request::Act(Action::DeleteApplication) => {
                let params = DeleteParams {
                    // Never delete a newer application that reuses the name.
                    preconditions: Some(Preconditions {
                        uid: uid.clone(),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                async move { api.delete(&name, &params).await.map(|answer| answer.left()) }.boxed()
            }
            Request::Act(Action::Nothing) => async { Ok(None) }.boxed(),
            Request::Refresh => async move { api.get_opt(&name).await }.boxed(),
        };
        let key = key.clone();
        self.in_flight.push(
            async move {
                let result = call.await.map_err(|source| Error::Request {
                    action: what.clone(),
                    app: key.to_string(),
                    source,
                });
                Completion {
                    key,
                    uid,
                    what,
                    result,
                }
            }
            .boxed(),
        );
    }

    fn on_completion(&mut self, done: Completion) {
        let Some(app) = self.apps.get_mut(&done.key) else {
            return;
        };
        if app.uid != done.uid {
            return;
        }
        app.in_flight = false;
        let seen = std::mem::take(&mut app.seen_in_flight);
        match done.result {
            Ok(Some(object)) => {
                app.failures = 0;
                app.needs_refresh = false;
                log_success(&done.key, &done.what, &object);
                let version = object.metadata.resource_version.clone().unwrap_or_default();
                if seen.contains(&version) {
                    // The watch already delivered this write (and maybe newer ones).
                    app.awaiting = None;
                } else {
                    app.object = object;
                    app.awaiting = Some((version, Instant::now()));
                }
                self.evaluate(&done.key);
            }
            Ok(None) => {
                // Deleted and gone (a delete answered with a Status, or a re-read found nothing).
                debug!(app = %done.key, what = %done.what, "application gone");
                self.forget(&done.key);
            }
            Err(err) => match err.api_code() {
                Some(409) => {
                    // Someone wrote in between. If the watch already brought a newer object,
                    // decide from it; otherwise read the current one first.
                    debug!(app = %done.key, what = %done.what, "conflict");
                    app.needs_refresh = seen.is_empty();
                    app.awaiting = None;
                    // The operator retries a lost write in a later reconcile; the pace says when.
                    let (settings, _) = Settings::resolve(
                        app.object.metadata.annotations.as_ref(),
                        app.object.metadata.labels.as_ref(),
                        self.config.defaults,
                    );
                    let view = AppView::from_parts(&app.object.metadata, &app.object.data);
                    let wait = conflict_retry_delay(&view, &settings);
                    if wait.is_zero() {
                        self.evaluate(&done.key);
                    } else {
                        self.timers.schedule(done.key, Instant::now() + wait);
                    }
                }
                Some(404) => {
                    debug!(app = %done.key, what = %done.what, "application gone");
                    self.forget(&done.key);
                }
                _ => {
                    app.failures = app.failures.saturating_add(1);
                    let wait = backoff(app.failures);
                    warn!(
                        app = %done.key,
                        error = %describe_failure(&err),
                        retry_in_ms = wait.as_millis(),
                        "request failed"
                    );
                    self.timers.schedule(done.key, Instant::now() + wait);
                }
            },
        }
    }
}

/// A merge patch setting `metadata.finalizers`, locked to the object's `resourceVersion`.
fn finalizer_patch(finalizers: Vec<String>, resource_version: Option<String>) -> Value {
    json!({"metadata": {"finalizers": finalizers, "resourceVersion": resource_version}})
}

async fn patch_metadata(
    api: &Api<DynamicObject>,
    name: &str,
    patch: Value,
) -> Result<Option<DynamicObject>, kube::Error> {
    api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map(Some)
}

fn log_success(key: &AppKey, what: &str, object: &DynamicObject) {
    let state = object
        .data
        .pointer("/status/currentState/currentStateSummary")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<StateSummary>().ok());
    match state {
        Some(state) if what.starts_with("status") => {
            info!(app = %key, state = %state, "status written");
        }
        _ => info!(app = %key, "{what} done"),
    }
}

/// Exponential backoff after `failures` consecutive failures: 0.5 s doubling up to 30 s.
fn backoff(failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(6);
    Duration::from_millis(500 * (1 << exponent)).min(Duration::from_secs(30))
}

/// The current time at millisecond precision, like the timestamps the core writes.
fn clock_now() -> Timestamp {
    let now = Timestamp::now();
    Timestamp::from_millisecond(now.as_millisecond()).unwrap_or(now)
}

/// A failed request in one line: the API's code, reason and message when the server answered
/// (kube's own text repeats the whole Status), the error chain otherwise.
fn describe_failure(err: &Error) -> String {
    match err {
        Error::Request {
            action,
            source: kube::Error::Api(status),
            ..
        } => format!(
            "{action}: HTTP {} {}: {}",
            status.code, status.reason, status.message
        ),
        other => error_chain(other),
    }
}

/// An error and its causes on one line.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let waits: Vec<u128> = (1..=9).map(|n| backoff(n).as_millis()).collect();
        assert_eq!(
            waits,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
    }

    #[test]
    fn finalizer_patch_is_locked_to_the_resource_version() {
        let patch = finalizer_patch(vec![FINALIZER.to_owned()], Some("42".to_owned()));
        assert_eq!(
            patch,
            json!({"metadata": {
                "finalizers": ["sparkapplications.spark.apache.org/finalizer"],
                "resourceVersion": "42"
            }})
        );
    }

    #[test]
    fn api_resource_is_the_v1_sparkapplication() {
        let resource = api_resource();
        assert_eq!(resource.api_version, "spark.apache.org/v1");
        assert_eq!(resource.plural, "sparkapplications");
        assert_eq!(resource.kind, "SparkApplication");
    }
}
