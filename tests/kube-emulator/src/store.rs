//! The object store: current objects, one global resourceVersion counter and a
//! bounded history of changes that watches replay from.
//!
//! Pure data structure, no I/O and no locking (the server wraps it in a mutex).
//! resourceVersions are a single increasing integer over all resources, like
//! etcd's revision; the history keeps each change with the object before it,
//! so a list "as of" an older resourceVersion can be rebuilt by rolling back.
//!
//! Two bounds apply, as on a real API server: compaction (etcd's, see
//! [`Store::compact_through`]) expires a resourceVersion for everything, lists
//! and watches; the optional watch window (the watch cache's capacity, see
//! [`Store::set_watch_window`]) expires it for watches only, which the real
//! server serves from that cache while exact lists and continue tokens are
//! read from etcd.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;

use crate::resources::ResourceId;

/// Where an object lives: namespace (empty for cluster-scoped) and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

impl ObjectKey {
    /// Builds a key.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
        }
    }
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// The object appeared.
    Added,
    /// The object was updated.
    Modified,
    /// The object was removed.
    Deleted,
}

/// One stored change, as replayed to watchers.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The resourceVersion this change produced.
    pub resource_version: u64,
    /// The resource type changed.
    pub resource: ResourceId,
    /// What happened.
    pub kind: ChangeKind,
    /// Where.
    pub key: ObjectKey,
    /// The object after the change (for deletes: its final state).
    pub object: Arc<Value>,
    /// The object before the change, absent for additions.
    pub previous: Option<Arc<Value>>,
}

/// A requested resourceVersion is older than the retained history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// The resourceVersion asked for.
    pub requested: u64,
    /// The oldest resourceVersion that can still be used.
    pub oldest: u64,
}

/// Current objects plus history.
#[derive(Debug, Clone)]
pub struct Store {
    resource_version: u64,
    objects: HashMap<ResourceId, BTreeMap<ObjectKey, Arc<Value>>>,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    compacted_through: u64,
    watch_window: Option<usize>,
    compactions: u64,
}

impl Store {
    /// An empty store keeping at most `history_limit` changes.
    pub fn new(history_limit: usize) -> Self {
        Self {
            resource_version: 0,
            objects: HashMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted_through: 0,
            watch_window: None,
            compactions: 0,
        }
    }

    /// An empty store whose resourceVersions continue after `resource_version`;
    /// anything at or before it counts as compacted. Starting each server at
    /// a clock-derived value keeps resourceVersions from an earlier instance
    /// below the new history, so clients resuming from them get 410 and relist.
    pub fn starting_at(history_limit: usize, resource_version: u64) -> Self {
        Self {
            resource_version,
            compacted_through: resource_version,
            ..Self::new(history_limit)
        }
    }

    /// The latest resourceVersion handed out.
    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    /// The oldest resourceVersion a watch may start from.
    pub fn oldest_available(&self) -> u64 {
        self.compacted_through
    }

    /// Number of retained changes.
    pub fn history_len(&self) -> usize {
        self.history.len()
    }

    /// Number of stored objects of all types.
    pub fn object_count(&self) -> usize {
        self.objects.values().map(BTreeMap::len).sum()
    }

    /// The oldest resourceVersion a watch may resume from: the compaction point,
    /// or later when the watch window is shorter than the retained history.
    pub fn oldest_watchable(&self) -> u64 {
        match self.watch_window {
            Some(window) if self.history.len() > window => {
                // The newest change outside the window: resuming from it
                // replays exactly the window.
                self.history[self.history.len() - window - 1].resource_version
            }
            _ => self.compacted_through,
        }
    }

    /// How many compactions ran (periodic or requested).
    pub fn compactions(&self) -> u64 {
        self.compactions
    }

    /// Limits watch replay to the last `window` changes (of all types), like
    /// the API server's watch cache; `None` lets watches use all history.
    pub fn set_watch_window(&mut self, window: Option<usize>) {
        self.watch_window = window.map(|w| w.max(1));
    }

    /// Changes the history bound, trimming at once if needed.
    pub fn set_history_limit(&mut self, limit: usize) {
        self.history_limit = limit.max(1);
        self.trim();
    }

    /// One object.
    pub fn get(&self, resource: ResourceId, key: &ObjectKey) -> Option<&Arc<Value>> {
        self.objects.get(&resource).and_then(|m| m.get(key))
    }

    /// All objects of a type, ordered by namespace then name.
    pub fn list(&self, resource: ResourceId) -> impl Iterator<Item = (&ObjectKey, &Arc<Value>)> {
        self.objects
            .get(&resource)
            .into_iter()
            .flat_map(BTreeMap::iter)
    }

    /// Objects of a type in one namespace, ordered by name.
    pub fn list_namespace<'a>(
        &'a self,
        resource: ResourceId,
        namespace: &'a str,
    ) -> impl Iterator<Item = (&'a ObjectKey, &'a Arc<Value>)> + 'a {
        self.list(resource)
            .filter(move |(k, _)| k.namespace == namespace)
    }

    /// Every (type, key) stored in a namespace, for namespace deletion.
    pub fn keys_in_namespace(&self, namespace: &str) -> Vec<(ResourceId, ObjectKey)> {
        let mut keys: Vec<(ResourceId, ObjectKey)> = self
            .objects
            .iter()
            .flat_map(|(resource, objects)| {
                objects
                    .keys()
                    .filter(|k| k.namespace == namespace)
                    .map(move |k| (*resource, k.clone()))
            })
            .collect();
        keys.sort();
        keys
    }

    /// Whether any object of any type lives in a namespace.
    pub fn has_objects_in_namespace(&self, namespace: &str) -> bool {
        let start = ObjectKey::new(namespace, "");
        self.objects.values().any(|objects| {
            objects
                .range(start.clone()..)
                .next()
                .is_some_and(|(k, _)| k.namespace == namespace)
        })
    }

    /// Stores an object (new or replacing), stamping the next resourceVersion
    /// into `metadata.resourceVersion`.
    pub fn put(&mut self, resource: ResourceId, key: ObjectKey, mut object: Value) -> Arc<Change> {
        let resource_version = self.next_version();
        set_resource_version(&mut object, resource_version);
        let object = Arc::new(object);
        let previous = self
            .objects
            .entry(resource)
            .or_default()
            .insert(key.clone(), Arc::clone(&object));
        let kind = if previous.is_some() {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        self.record(Change {
            resource_version,
            resource,
            kind,
            key,
            object,
            previous,
        })
    }

    /// Removes an object; `final_state` is what watchers see in the DELETED
    /// event (defaults to the stored object).
    pub fn remove(
        &mut self,
        resource: ResourceId,
        key: &ObjectKey,
        final_state: Option<Value>,
    ) -> Option<Arc<Change>> {
        let previous = self.objects.get_mut(&resource)?.remove(key)?;
        let resource_version = self.next_version();
        let mut object = final_state.unwrap_or_else(|| (*previous).clone());
        set_resource_version(&mut object, resource_version);
        Some(self.record(Change {
            resource_version,
            resource,
            kind: ChangeKind::Deleted,
            key: key.clone(),
            object: Arc::new(object),
            previous: Some(previous),
        }))
    }

    /// Every retained change after `resource_version`, oldest first, for a
    /// watch: bounded by the watch window as well as by compaction.
    pub fn watch_changes_since(&self, resource_version: u64) -> Result<Vec<Arc<Change>>, Expired> {
        let oldest = self.oldest_watchable();
        if resource_version < oldest {
            return Err(Expired {
                requested: resource_version,
                oldest,
            });
        }
        self.changes_since(resource_version)
    }

    /// Every retained change after `resource_version`, oldest first.
    pub fn changes_since(&self, resource_version: u64) -> Result<Vec<Arc<Change>>, Expired> {
        // A version from the future was handed out by another server instance.
        if resource_version < self.compacted_through || resource_version > self.resource_version {
            return Err(Expired {
                requested: resource_version,
                oldest: self.compacted_through,
            });
        }
        let start = self
            .history
            .partition_point(|c| c.resource_version <= resource_version);
        Ok(self.history.range(start..).cloned().collect())
    }

    /// The objects of a type as they were at `resource_version`, rebuilt by
    /// rolling back later changes.
    pub fn snapshot_at(
        &self,
        resource: ResourceId,
        resource_version: u64,
    ) -> Result<BTreeMap<ObjectKey, Arc<Value>>, Expired> {
        let mut snapshot = self.objects.get(&resource).cloned().unwrap_or_default();
        if resource_version >= self.resource_version {
            return Ok(snapshot);
        }
        let later = self.changes_since(resource_version)?;
        for change in later.iter().rev().filter(|c| c.resource == resource) {
            match &change.previous {
                Some(previous) => {
                    snapshot.insert(change.key.clone(), Arc::clone(previous));
                }
                None => {
                    snapshot.remove(&change.key);
                }
            }
        }
        Ok(snapshot)
    }

    /// Forgets all history: watches from any resourceVersion before now get 410.
    pub fn compact(&mut self) -> u64 {
        self.compact_through(self.resource_version)
    }

    /// etcd's `Compact(rev)`: forgets the changes up to `resource_version`, so
    /// lists and watches from an older resourceVersion get 410. Never moves the
    /// compaction point back. Returns it.
    pub fn compact_through(&mut self, resource_version: u64) -> u64 {
        let through = resource_version.min(self.resource_version);
        self.compactions += 1;
        if through > self.compacted_through {
            let keep_from = self
                .history
                .partition_point(|c| c.resource_version <= through);
            self.history.drain(..keep_from);
            self.compacted_through = through;
        }
        self.compacted_through
    }

    fn next_version(&mut self) -> u64 {
        self.resource_version += 1;
        self.resource_version
    }

    fn record(&mut self, change: Change) -> Arc<Change> {
        let change = Arc::new(change);
        self.history.push_back(Arc::clone(&change));
        self.trim();
        change
    }

    fn trim(&mut self) {
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted_through = dropped.resource_version;
            }
        }
    }
}

/// Writes `metadata.resourceVersion` as a string.
pub fn set_resource_version(object: &mut Value, resource_version: u64) {
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert(
            "resourceVersion".to_string(),
            Value::String(resource_version.to_string()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const WIDGETS: ResourceId = ResourceId(7);
    const GADGETS: ResourceId = ResourceId(8);

    fn object(name: &str, value: i64) -> Value {
        json!({"metadata": {"name": name, "namespace": "ns"}, "spec": {"value": value}})
    }

    fn key(name: &str) -> ObjectKey {
        ObjectKey::new("ns", name)
    }

    #[test]
    fn resource_versions_increase_globally_and_are_stamped() {
        let mut store = Store::new(100);
        let a = store.put(WIDGETS, key("a"), object("a", 1));
        let b = store.put(GADGETS, key("b"), object("b", 1));
        assert_eq!((a.resource_version, b.resource_version), (1, 2));
        assert_eq!(a.kind, ChangeKind::Added);
        assert_eq!(
            store.get(WIDGETS, &key("a")).unwrap()["metadata"]["resourceVersion"],
            "1"
        );
        let a2 = store.put(WIDGETS, key("a"), object("a", 2));
        assert_eq!(a2.kind, ChangeKind::Modified);
        assert_eq!(a2.previous.as_ref().unwrap()["spec"]["value"], 1);
        assert_eq!(store.resource_version(), 3);
    }

    #[test]
    fn remove_records_the_final_state() {
        let mut store = Store::new(100);
        store.put(WIDGETS, key("a"), object("a", 1));
        let deleted = store
            .remove(WIDGETS, &key("a"), Some(object("a", 9)))
            .unwrap();
        assert_eq!(deleted.kind, ChangeKind::Deleted);
        assert_eq!(deleted.object["spec"]["value"], 9);
        assert_eq!(deleted.object["metadata"]["resourceVersion"], "2");
        assert!(store.get(WIDGETS, &key("a")).is_none());
        assert!(store.remove(WIDGETS, &key("a"), None).is_none());
    }

    #[test]
    fn changes_since_replays_in_order() {
        let mut store = Store::new(100);
        for i in 0..5 {
            store.put(WIDGETS, key(&format!("o{i}")), object("x", i));
        }
        let versions: Vec<u64> = store
            .changes_since(2)
            .unwrap()
            .iter()
            .map(|c| c.resource_version)
            .collect();
        assert_eq!(versions, vec![3, 4, 5]);
        assert!(store.changes_since(5).unwrap().is_empty());
        assert!(
            store.changes_since(6).is_err(),
            "versions this store never issued are expired"
        );
    }

    #[test]
    fn a_store_can_continue_after_a_given_version() {
        let mut store = Store::starting_at(10, 1_000);
        assert!(store.changes_since(999).is_err());
        assert_eq!(
            store
                .put(WIDGETS, key("a"), object("a", 1))
                .resource_version,
            1_001
        );
        assert_eq!(store.changes_since(1_000).unwrap().len(), 1);
    }

    #[test]
    fn bounded_history_expires_old_versions() {
        let mut store = Store::new(3);
        for i in 0..6 {
            store.put(WIDGETS, key("a"), object("a", i));
        }
        assert_eq!(store.history_len(), 3);
        assert_eq!(store.oldest_available(), 3);
        assert_eq!(
            store.changes_since(2),
            Err(Expired {
                requested: 2,
                oldest: 3
            })
        );
        assert_eq!(store.changes_since(3).unwrap().len(), 3);
    }

    #[test]
    fn compaction_expires_everything_before_now() {
        let mut store = Store::new(100);
        store.put(WIDGETS, key("a"), object("a", 1));
        store.put(WIDGETS, key("b"), object("b", 1));
        assert_eq!(store.compact(), 2);
        assert!(store.changes_since(1).is_err());
        assert!(store.changes_since(2).unwrap().is_empty());
        store.put(WIDGETS, key("c"), object("c", 1));
        assert_eq!(store.changes_since(2).unwrap().len(), 1);
    }

    #[test]
    fn snapshots_roll_back_later_changes() {
        let mut store = Store::new(100);
        store.put(WIDGETS, key("a"), object("a", 1)); // 1
        store.put(WIDGETS, key("b"), object("b", 1)); // 2
        store.put(GADGETS, key("g"), object("g", 1)); // 3
        store.put(WIDGETS, key("a"), object("a", 2)); // 4
        store.remove(WIDGETS, &key("b"), None); // 5
        store.put(WIDGETS, key("c"), object("c", 1)); // 6
        let at_two = store.snapshot_at(WIDGETS, 2).unwrap();
        assert_eq!(
            at_two.keys().map(|k| k.name.as_str()).collect::<Vec<_>>(),
            vec!["a", "b"]
        );
        assert_eq!(at_two[&key("a")]["spec"]["value"], 1);
        let now = store.snapshot_at(WIDGETS, 6).unwrap();
        assert_eq!(
            now.keys().map(|k| k.name.as_str()).collect::<Vec<_>>(),
            vec!["a", "c"]
        );
        store.compact();
        assert!(store.snapshot_at(WIDGETS, 2).is_err());
    }

    #[test]
    fn namespace_listing() {
        let mut store = Store::new(100);
        store.put(WIDGETS, ObjectKey::new("a", "x"), object("x", 1));
        store.put(WIDGETS, ObjectKey::new("b", "y"), object("y", 1));
        store.put(GADGETS, ObjectKey::new("a", "z"), object("z", 1));
        assert_eq!(store.list_namespace(WIDGETS, "a").count(), 1);
        assert_eq!(store.list(WIDGETS).count(), 2);
        assert_eq!(
            store.keys_in_namespace("a"),
            vec![
                (WIDGETS, ObjectKey::new("a", "x")),
                (GADGETS, ObjectKey::new("a", "z"))
            ]
        );
        assert_eq!(store.object_count(), 3);
        assert!(store.has_objects_in_namespace("a"));
        assert!(store.has_objects_in_namespace("b"));
        assert!(!store.has_objects_in_namespace("c"));
        assert!(!store.has_objects_in_namespace(""));
    }

    #[test]
    fn compacting_through_a_version_keeps_later_history() {
        // etcd's Compact(rev): revisions up to rev are gone, later ones stay.
        let mut store = Store::new(100);
        for i in 0..5 {
            store.put(WIDGETS, key("a"), object("a", i)); // 1..=5
        }
        assert_eq!(store.compact_through(3), 3);
        assert_eq!(store.history_len(), 2);
        assert!(store.changes_since(2).is_err());
        assert!(store.snapshot_at(WIDGETS, 2).is_err());
        assert_eq!(store.changes_since(3).unwrap().len(), 2);
        assert_eq!(store.compact_through(1), 3, "never moves back");
        assert_eq!(store.compact_through(99), 5, "never past the present");
        assert_eq!(store.compactions(), 3);
    }

    #[test]
    fn the_watch_window_expires_watches_but_not_lists() {
        // The watch cache holds fewer events than etcd: a watch from before its
        // window gets 410 while an exact list at that version still works.
        let mut store = Store::new(100);
        store.set_watch_window(Some(2));
        for i in 0..5 {
            store.put(WIDGETS, key(&format!("o{i}")), object("x", i)); // 1..=5
        }
        assert_eq!(store.oldest_watchable(), 3);
        assert_eq!(
            store.watch_changes_since(2),
            Err(Expired {
                requested: 2,
                oldest: 3
            })
        );
        assert_eq!(store.watch_changes_since(3).unwrap().len(), 2);
        assert_eq!(store.snapshot_at(WIDGETS, 1).unwrap().len(), 1);
        store.set_watch_window(None);
        assert_eq!(store.watch_changes_since(0).unwrap().len(), 5);
    }
}
