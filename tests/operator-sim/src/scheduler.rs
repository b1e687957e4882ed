//! A keyed deadline queue: one pending deadline per application, earliest first.
//!
//! The runner keeps every application's next wake-up here instead of spawning a timer task per
//! application, so 10,000 applications cost 10,000 map entries and one `sleep_until`.
//! Generic over the instant type so it is tested without a runtime.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// At most one deadline per key; scheduling a key again replaces its deadline.
#[derive(Debug)]
pub struct Deadlines<K, T> {
    /// Ordered by deadline, then insertion sequence (ties keep scheduling order).
    queue: BTreeMap<(T, u64), K>,
    by_key: HashMap<K, (T, u64)>,
    sequence: u64,
}

impl<K, T> Default for Deadlines<K, T> {
    fn default() -> Self {
        Self {
            queue: BTreeMap::new(),
            by_key: HashMap::new(),
            sequence: 0,
        }
    }
}

impl<K: Clone + Eq + Hash, T: Copy + Ord> Deadlines<K, T> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key`'s deadline to `at`, replacing any earlier or later one.
    pub fn schedule(&mut self, key: K, at: T) {
        self.cancel(&key);
        self.sequence += 1;
        let slot = (at, self.sequence);
        self.queue.insert(slot, key.clone());
        self.by_key.insert(key, slot);
    }

    /// Forgets `key`'s deadline, if any.
    pub fn cancel(&mut self, key: &K) {
        if let Some(slot) = self.by_key.remove(key) {
            self.queue.remove(&slot);
        }
    }

    /// The earliest deadline.
    pub fn next_deadline(&self) -> Option<T> {
        self.queue.keys().next().map(|(at, _)| *at)
    }

    /// Removes and returns the key with the earliest deadline if that deadline is at or before
    /// `now`.
    pub fn pop_due(&mut self, now: T) -> Option<K> {
        let entry = self.queue.first_entry()?;
        if entry.key().0 > now {
            return None;
        }
        let key = entry.remove();
        self.by_key.remove(&key);
        Some(key)
    }

    /// The deadline of `key`.
    pub fn deadline_of(&self, key: &K) -> Option<T> {
        self.by_key.get(key).map(|(at, _)| *at)
    }

    /// Number of keys with a deadline.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// No deadline at all.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let mut d = Deadlines::new();
        d.schedule("b", 20);
        d.schedule("a", 10);
        d.schedule("c", 30);
        assert_eq!(d.next_deadline(), Some(10));
        assert_eq!(d.pop_due(5), None);
        assert_eq!(d.pop_due(25), Some("a"));
        assert_eq!(d.pop_due(25), Some("b"));
        assert_eq!(d.pop_due(25), None);
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn rescheduling_replaces_the_deadline() {
        let mut d = Deadlines::new();
        d.schedule("a", 10);
        d.schedule("a", 50);
        assert_eq!(d.len(), 1);
        assert_eq!(d.pop_due(20), None);
        assert_eq!(d.deadline_of(&"a"), Some(50));
        d.schedule("a", 5);
        assert_eq!(d.pop_due(20), Some("a"));
        assert!(d.is_empty());
    }

    #[test]
    fn ties_keep_scheduling_order() {
        let mut d = Deadlines::new();
        for key in ["x", "y", "z"] {
            d.schedule(key, 1);
        }
        let order: Vec<_> = std::iter::from_fn(|| d.pop_due(1)).collect();
        assert_eq!(order, ["x", "y", "z"]);
    }

    #[test]
    fn cancel_forgets_the_key() {
        let mut d = Deadlines::new();
        d.schedule("a", 1);
        d.cancel(&"a");
        d.cancel(&"missing");
        assert_eq!(d.pop_due(100), None);
        assert_eq!(d.next_deadline(), None);
    }
}
