//! Watches: the hub that fans stored changes out to open watch connections,
//! and the per-connection task that turns them into newline-delimited JSON
//! events (`{"type":"ADDED","object":{...}}`).
//!
//! The hub is fed under the store lock, so every watcher sees changes in
//! resourceVersion order with no gap between its replay and its live events.
//! Each watcher has a bounded buffer; a watcher that falls behind is closed
//! (the real API server does the same) so slow clients never block writers.
//!
//! [`WatchPreset`] chooses between the emulator's generous defaults (long
//! history, frequent bookmarks, nothing expires on its own) and a real API
//! server's behaviour, time-scaled so tests stay fast: periodic etcd
//! compaction, a bounded watch cache, bookmarks once a minute, server-side
//! watch timeouts with a bookmark just before them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::resources::ResourceId;
use crate::status::ApiError;
use crate::store::{Change, ChangeKind};
use crate::view::{ObjectFilter, View};

/// kube-apiserver's defaults that [`WatchPreset::Realistic`] copies, unscaled.
pub mod real {
    use std::time::Duration;

    /// `--etcd-compaction-interval` (default 5m): each round compacts etcd to the
    /// revision seen at the previous round (`storage/etcd3/compact.go`).
    pub const COMPACTION_INTERVAL: Duration = Duration::from_secs(300);
    /// The cacher's `defaultBookmarkFrequency` (1m).
    pub const BOOKMARK_FREQUENCY: Duration = Duration::from_secs(60);
    /// `--min-request-timeout` (default 1800s): a watch without
    /// `timeoutSeconds` is closed after a random time in [t, 2t)
    /// (`endpoints/handlers/get.go`).
    pub const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(1800);
    /// The cacher sends a watcher that allows bookmarks one this long before
    /// its deadline (`cacheWatcher.nextBookmarkTime`), so it can resume from a
    /// fresh resourceVersion.
    pub const PRE_TIMEOUT_BOOKMARK: Duration = Duration::from_secs(2);
    /// Events the watch cache keeps. The real one sizes itself between 100 and
    /// 102,400 events to hold about 75 s of them (`DefaultEventFreshDuration`);
    /// a fixed count keeps the emulator deterministic.
    pub const WATCH_CACHE_EVENTS: usize = 1_000;
}

/// How history, bookmarks and watch lifetimes behave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WatchPreset {
    /// The emulator's defaults: 100,000 changes kept, bookmarks every 5 s, no
    /// compaction, watches end only on `timeoutSeconds` or a drop.
    Generous,
    /// A real API server's behaviour ([`real`]) with every duration multiplied
    /// by `time_scale` (1.0 = real time; 0.01 turns 5 minutes into 3 s),
    /// including the `timeoutSeconds` clients ask for.
    Realistic {
        /// Multiplier of every duration.
        time_scale: f64,
    },
}

impl WatchPreset {
    /// Parses a preset name (`generous`/`default` or `realistic`).
    pub fn from_name(name: &str, time_scale: f64) -> Option<Self> {
        match name {
            "generous" | "default" => Some(Self::Generous),
            "realistic" => Some(Self::Realistic { time_scale }),
            _ => None,
        }
    }

    /// The settings this preset stands for.
    pub fn behaviour(self) -> WatchBehaviour {
        match self {
            Self::Generous => WatchBehaviour {
                history_limit: 100_000,
                watch_window: None,
                bookmark_interval: Duration::from_secs(5),
                compaction_interval: None,
                timeouts: None,
            },
            Self::Realistic { time_scale } => {
                let scale = |d: Duration| d.mul_f64(time_scale.max(0.0));
                WatchBehaviour {
                    // etcd keeps everything since the last compaction; the cap
                    // only bounds memory.
                    history_limit: 100_000,
                    watch_window: Some(real::WATCH_CACHE_EVENTS),
                    bookmark_interval: scale(real::BOOKMARK_FREQUENCY),
                    compaction_interval: Some(scale(real::COMPACTION_INTERVAL)),
                    timeouts: Some(WatchTimeouts {
                        min_request_timeout: scale(real::MIN_REQUEST_TIMEOUT),
                        pre_timeout_bookmark: scale(real::PRE_TIMEOUT_BOOKMARK),
                        time_scale: time_scale.max(0.0),
                    }),
                }
            }
        }
    }
}

/// The knobs a [`WatchPreset`] sets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WatchBehaviour {
    /// Changes kept for lists and watches (until compaction).
    pub history_limit: usize,
    /// Changes a watch can resume over (the watch cache); `None`: all history.
    pub watch_window: Option<usize>,
    /// Interval of BOOKMARK events.
    pub bookmark_interval: Duration,
    /// Interval of the periodic compaction; `None`: never.
    pub compaction_interval: Option<Duration>,
    /// Server-side watch timeouts; `None`: only `timeoutSeconds`, unscaled.
    pub timeouts: Option<WatchTimeouts>,
}

/// Server-side watch lifetimes, as `--min-request-timeout` sets them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WatchTimeouts {
    /// A watch without `timeoutSeconds` (or with 0) ends after a random time
    /// in [this, twice this).
    pub min_request_timeout: Duration,
    /// A watch that allows bookmarks gets one this long before its deadline.
    pub pre_timeout_bookmark: Duration,
    /// Multiplier of the `timeoutSeconds` a client asks for.
    pub time_scale: f64,
}

impl WatchTimeouts {
    /// When a watch asking for `timeout_seconds` is closed by the server.
    pub fn timeout_for(&self, timeout_seconds: Option<u64>) -> Duration {
        match timeout_seconds.filter(|s| *s > 0) {
            Some(seconds) => Duration::from_secs(seconds).mul_f64(self.time_scale),
            None => self.min_request_timeout.mul_f64(1.0 + fastrand::f64()),
        }
    }
}

/// What the hub sends a watcher.
#[derive(Debug, Clone)]
pub enum WatchItem {
    /// A stored change of the watched type and namespace.
    Change(Arc<Change>),
    /// A periodic progress notification at this resourceVersion.
    Bookmark(u64),
}

struct Slot {
    resource: ResourceId,
    namespace: Option<String>,
    sender: mpsc::Sender<WatchItem>,
    wants_bookmarks: bool,
    remaining_events: Option<u64>,
}

/// The open watches.
#[derive(Default)]
pub struct WatchHub {
    next_id: u64,
    slots: HashMap<u64, Slot>,
    expired: u64,
}

impl WatchHub {
    /// Registers a watcher; returns its id and its event receiver.
    pub fn register(
        &mut self,
        resource: ResourceId,
        namespace: Option<String>,
        wants_bookmarks: bool,
        buffer: usize,
    ) -> (u64, mpsc::Receiver<WatchItem>) {
        let (sender, receiver) = mpsc::channel(buffer.max(1));
        self.next_id += 1;
        self.slots.insert(
            self.next_id,
            Slot {
                resource,
                namespace,
                sender,
                wants_bookmarks,
                remaining_events: None,
            },
        );
        (self.next_id, receiver)
    }

    /// Forgets a watcher (its connection ended).
    pub fn unregister(&mut self, id: u64) {
        self.slots.remove(&id);
    }

    /// Counts a watch refused with 410 Expired.
    pub fn record_expired(&mut self) {
        self.expired += 1;
    }

    /// Watches refused with 410 Expired so far.
    pub fn expired_count(&self) -> u64 {
        self.expired
    }

    /// Sends one watcher a bookmark (if it asked for them). Called under the
    /// store lock, so every change up to `resource_version` is already queued
    /// before it.
    pub fn bookmark_one(&mut self, id: u64, resource_version: u64) {
        if let Some(slot) = self.slots.get(&id).filter(|s| s.wants_bookmarks) {
            let _ = slot.sender.try_send(WatchItem::Bookmark(resource_version));
        }
    }

    /// Number of open watches.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no watch is open.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Sends a change to every watcher of its type and namespace.
    pub fn publish(&mut self, change: &Arc<Change>) {
        let mut closed = Vec::new();
        for (id, slot) in &mut self.slots {
            if slot.resource != change.resource {
                continue;
            }
            if slot
                .namespace
                .as_ref()
                .is_some_and(|ns| *ns != change.key.namespace)
            {
                continue;
            }
            match slot.sender.try_send(WatchItem::Change(Arc::clone(change))) {
                Ok(()) => {
                    if let Some(remaining) = slot.remaining_events.as_mut() {
                        *remaining = remaining.saturating_sub(1);
                        if *remaining == 0 {
                            closed.push(*id);
                        }
                    }
                }
                Err(TrySendError::Full(_)) => {
                    tracing::warn!(watch = id, "closing a watch that fell behind");
                    closed.push(*id);
                }
                Err(TrySendError::Closed(_)) => closed.push(*id),
            }
        }
        for id in closed {
            self.slots.remove(&id);
        }
    }

    /// Sends a bookmark to every watcher that asked for them.
    pub fn bookmark(&mut self, resource_version: u64) {
        self.slots.retain(|_, slot| {
            if !slot.wants_bookmarks {
                return true;
            }
            // A full buffer only means no bookmark this round.
            !matches!(
                slot.sender.try_send(WatchItem::Bookmark(resource_version)),
                Err(TrySendError::Closed(_))
            )
        });
    }

    /// Closes every open watch now; returns how many.
    pub fn drop_all(&mut self) -> usize {
        let count = self.slots.len();
        self.slots.clear();
        count
    }

    /// Closes every currently open watch after it has been sent `events`
    /// more events (0 closes at once); returns how many watches are affected.
    pub fn drop_after(&mut self, events: u64) -> usize {
        if events == 0 {
            return self.drop_all();
        }
        for slot in self.slots.values_mut() {
            slot.remaining_events = Some(events);
        }
        self.slots.len()
    }
}

/// Watch event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// `ADDED`.
    Added,
    /// `MODIFIED`.
    Modified,
    /// `DELETED`.
    Deleted,
    /// `BOOKMARK`.
    Bookmark,
    /// `ERROR`.
    Error,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
            Self::Bookmark => "BOOKMARK",
            Self::Error => "ERROR",
        }
    }
}

/// What a change looks like to a watcher with a filter: an object that stops
/// matching is DELETED (with its last matching state at the new
/// resourceVersion), one that starts matching is ADDED.
pub fn translate(change: &Change, filter: &ObjectFilter) -> Option<(EventType, Arc<Value>)> {
    let now_matches = filter.matches(&change.object);
    let was_matching = change.previous.as_ref().is_some_and(|p| filter.matches(p));
    match change.kind {
        ChangeKind::Added => now_matches.then(|| (EventType::Added, Arc::clone(&change.object))),
        ChangeKind::Modified => match (was_matching, now_matches) {
            (true, true) => Some((EventType::Modified, Arc::clone(&change.object))),
            (false, true) => Some((EventType::Added, Arc::clone(&change.object))),
            (true, false) => {
                let mut last = change.previous.as_deref().cloned().unwrap_or(Value::Null);
                crate::store::set_resource_version(&mut last, change.resource_version);
                Some((EventType::Deleted, Arc::new(last)))
            }
            (false, false) => None,
        },
        ChangeKind::Deleted => {
            (now_matches || was_matching).then(|| (EventType::Deleted, Arc::clone(&change.object)))
        }
    }
}

/// One encoded event line.
pub fn encode_event(event: EventType, object: &Value) -> Bytes {
    let mut line = Vec::with_capacity(256);
    line.extend_from_slice(b"{\"type\":\"");
    line.extend_from_slice(event.as_str().as_bytes());
    line.extend_from_slice(b"\",\"object\":");
    // Serializing a Value into a Vec cannot fail.
    serde_json::to_writer(&mut line, object).unwrap_or_default();
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

/// Where a watch starts.
pub enum WatchStart {
    /// Synthetic ADDED events for the current objects (resourceVersion unset
    /// or "0", or `sendInitialEvents=true`), optionally closed by a bookmark
    /// carrying the `k8s.io/initial-events-end` annotation.
    Snapshot {
        /// Current objects of the type, already filtered by namespace.
        objects: Vec<Arc<Value>>,
        /// The resourceVersion of the snapshot.
        resource_version: u64,
        /// Whether to send the initial-events-end bookmark.
        initial_events_end: bool,
    },
    /// Replay of every retained change after the requested resourceVersion.
    Replay(Vec<Arc<Change>>),
    /// The requested resourceVersion is too old: one ERROR event, then close.
    Expired(ApiError),
}

/// One watch connection's parameters.
pub struct WatchStream {
    /// How objects are rendered.
    pub view: View,
    /// Which objects are seen.
    pub filter: ObjectFilter,
    /// Where to start.
    pub start: WatchStart,
    /// When the server closes the watch.
    pub timeout: Option<Duration>,
    /// `allowWatchBookmarks`.
    pub bookmarks: bool,
    /// How long before the deadline to ask the hub for a bookmark, and how.
    pub pre_timeout_bookmark: Option<(Duration, Box<dyn FnOnce() + Send>)>,
}

/// Runs when dropped; unregisters the watcher however the task ends.
pub struct OnDrop(Option<Box<dyn FnOnce() + Send>>);

impl OnDrop {
    /// Wraps a cleanup action.
    pub fn new(action: impl FnOnce() + Send + 'static) -> Self {
        Self(Some(Box::new(action)))
    }
}

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(action) = self.0.take() {
            action();
        }
    }
}

/// Streams events to `out` until the watch times out, is dropped, or the
/// client goes away.
pub async fn run(
    stream: WatchStream,
    mut items: mpsc::Receiver<WatchItem>,
    out: mpsc::Sender<Bytes>,
    registration: OnDrop,
) {
    let _registration = registration;
    let WatchStream {
        view,
        filter,
        start,
        timeout,
        bookmarks,
        pre_timeout_bookmark,
    } = stream;
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    // The bookmark request goes through the hub so it queues behind every
    // change already sent to this watcher.
    // As `nextBookmarkTime`: none when the deadline is closer than the lead.
    let (mut bookmark_request, bookmark_at) = match (pre_timeout_bookmark, deadline, timeout) {
        (Some((lead, request)), Some(deadline), Some(timeout)) if bookmarks && timeout > lead => {
            (Some(request), deadline.checked_sub(lead))
        }
        _ => (None, None),
    };
    let send = |event: EventType, object: &Value| {
        let rendered = match event {
            EventType::Bookmark | EventType::Error => object.clone(),
            _ => view.render_one(object),
        };
        let out = out.clone();
        async move { out.send(encode_event(event, &rendered)).await.is_ok() }
    };
    match start {
        WatchStart::Expired(error) => {
            let _ = send(EventType::Error, &error.to_status()).await;
            return;
        }
        WatchStart::Snapshot {
            objects,
            resource_version,
            initial_events_end,
        } => {
            for object in objects.iter().filter(|o| filter.matches(o)) {
                if !send(EventType::Added, object).await {
                    return;
                }
            }
            if initial_events_end
                && !send(EventType::Bookmark, &view.bookmark(resource_version, true)).await
            {
                return;
            }
        }
        WatchStart::Replay(changes) => {
            for change in changes {
                if let Some((event, object)) = translate(&change, &filter)
                    && !send(event, &object).await
                {
                    return;
                }
            }
        }
    }
    loop {
        let item = tokio::select! {
            item = items.recv() => item,
            () = sleep_until(deadline) => None,
            () = sleep_until(bookmark_at), if bookmark_request.is_some() => {
                if let Some(request) = bookmark_request.take() {
                    request();
                }
                continue;
            }
            () = out.closed() => None,
        };
        let delivered = match item {
            None => break,
            Some(WatchItem::Change(change)) => match translate(&change, &filter) {
                Some((event, object)) => send(event, &object).await,
                None => true,
            },
            Some(WatchItem::Bookmark(resource_version)) if bookmarks => {
                send(EventType::Bookmark, &view.bookmark(resource_version, false)).await
            }
            Some(WatchItem::Bookmark(_)) => true,
        };
        if !delivered {
            break;
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::selector::LabelSelector;
    use crate::store::ObjectKey;
    use serde_json::json;

    const WIDGETS: ResourceId = ResourceId(3);

    fn change(kind: ChangeKind, rv: u64, labels: Value, previous: Option<Value>) -> Arc<Change> {
        Arc::new(Change {
            resource_version: rv,
            resource: WIDGETS,
            kind,
            key: ObjectKey::new("ns", "a"),
            object: Arc::new(
                json!({"metadata": {"name": "a", "namespace": "ns", "labels": labels, "resourceVersion": rv.to_string()}}),
            ),
            previous: previous.map(Arc::new),
        })
    }

    fn selecting(selector: &str) -> ObjectFilter {
        ObjectFilter {
            labels: LabelSelector::parse(selector).unwrap(),
            ..ObjectFilter::default()
        }
    }

    #[test]
    fn objects_leaving_a_selector_are_deleted_for_that_watcher() {
        let old = json!({"metadata": {"name": "a", "namespace": "ns", "labels": {"app": "x"}, "resourceVersion": "1"}});
        let moved = change(
            ChangeKind::Modified,
            2,
            json!({"app": "y"}),
            Some(old.clone()),
        );
        let (event, object) = translate(&moved, &selecting("app=x")).unwrap();
        assert_eq!(event, EventType::Deleted);
        assert_eq!(object["metadata"]["labels"]["app"], "x");
        assert_eq!(object["metadata"]["resourceVersion"], "2");
        let (event, _) = translate(&moved, &selecting("app=y")).unwrap();
        assert_eq!(event, EventType::Added);
        assert!(translate(&moved, &selecting("app=z")).is_none());
        let (event, _) = translate(&moved, &ObjectFilter::default()).unwrap();
        assert_eq!(event, EventType::Modified);
    }

    #[test]
    fn hub_routes_by_type_and_namespace() {
        let mut hub = WatchHub::default();
        let (_, mut all) = hub.register(WIDGETS, None, false, 8);
        let (_, mut other_ns) = hub.register(WIDGETS, Some("other".into()), false, 8);
        let (_, mut other_type) = hub.register(ResourceId(4), None, false, 8);
        hub.publish(&change(ChangeKind::Added, 1, json!({}), None));
        assert!(matches!(all.try_recv(), Ok(WatchItem::Change(_))));
        assert!(other_ns.try_recv().is_err());
        assert!(other_type.try_recv().is_err());
    }

    #[test]
    fn slow_watchers_are_closed_not_waited_for() {
        let mut hub = WatchHub::default();
        let (_, mut slow) = hub.register(WIDGETS, None, false, 2);
        for rv in 1..=3 {
            hub.publish(&change(ChangeKind::Added, rv, json!({}), None));
        }
        assert_eq!(hub.len(), 0);
        assert!(slow.try_recv().is_ok());
        assert!(slow.try_recv().is_ok());
        assert!(matches!(
            slow.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }

    #[test]
    fn drop_after_counts_delivered_events() {
        let mut hub = WatchHub::default();
        let (_, mut rx) = hub.register(WIDGETS, None, true, 8);
        assert_eq!(hub.drop_after(2), 1);
        hub.publish(&change(ChangeKind::Added, 1, json!({}), None));
        assert_eq!(hub.len(), 1);
        hub.publish(&change(ChangeKind::Modified, 2, json!({}), None));
        assert_eq!(hub.len(), 0);
        assert!(rx.try_recv().is_ok());
        assert!(rx.try_recv().is_ok());
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn bookmarks_only_for_those_who_asked() {
        let mut hub = WatchHub::default();
        let (_, mut with) = hub.register(WIDGETS, None, true, 8);
        let (_, mut without) = hub.register(WIDGETS, None, false, 8);
        hub.bookmark(5);
        assert!(matches!(with.try_recv(), Ok(WatchItem::Bookmark(5))));
        assert!(without.try_recv().is_err());
    }

    #[test]
    fn the_generous_preset_is_the_default_configuration() {
        let defaults = crate::EmulatorConfig::default();
        let generous = WatchPreset::Generous.behaviour();
        assert_eq!(
            (
                generous.history_limit,
                generous.watch_window,
                generous.bookmark_interval,
                generous.compaction_interval,
                generous.timeouts,
            ),
            (
                defaults.history_limit,
                defaults.watch_window,
                defaults.bookmark_interval,
                defaults.compaction_interval,
                defaults.watch_timeouts,
            )
        );
    }

    #[test]
    fn the_realistic_preset_scales_the_api_servers_defaults() {
        let behaviour = WatchPreset::from_name("realistic", 0.01)
            .unwrap()
            .behaviour();
        assert_eq!(behaviour.compaction_interval, Some(Duration::from_secs(3)));
        assert_eq!(behaviour.bookmark_interval, Duration::from_millis(600));
        assert_eq!(behaviour.watch_window, Some(real::WATCH_CACHE_EVENTS));
        let timeouts = behaviour.timeouts.unwrap();
        assert_eq!(timeouts.pre_timeout_bookmark, Duration::from_millis(20));
        // kube-rs asks for 290 s.
        assert_eq!(
            timeouts.timeout_for(Some(290)),
            Duration::from_millis(2_900)
        );
        // Without timeoutSeconds (or with 0): 1-2x --min-request-timeout.
        for asked in [None, Some(0)] {
            let chosen = timeouts.timeout_for(asked);
            assert!(chosen >= Duration::from_secs(18) && chosen < Duration::from_secs(36));
        }
        assert!(WatchPreset::from_name("fast", 1.0).is_none());
    }

    #[test]
    fn a_single_watcher_can_get_a_bookmark() {
        let mut hub = WatchHub::default();
        let (id, mut with) = hub.register(WIDGETS, None, true, 8);
        let (other, mut without) = hub.register(WIDGETS, None, false, 8);
        let (_, mut bystander) = hub.register(WIDGETS, None, true, 8);
        hub.bookmark_one(id, 9);
        hub.bookmark_one(other, 9);
        assert!(matches!(with.try_recv(), Ok(WatchItem::Bookmark(9))));
        assert!(without.try_recv().is_err());
        assert!(bystander.try_recv().is_err());
    }

    #[test]
    fn events_are_single_json_lines() {
        let line = encode_event(EventType::Added, &json!({"a": 1}));
        assert_eq!(&line[..], b"{\"type\":\"ADDED\",\"object\":{\"a\":1}}\n");
    }
}
