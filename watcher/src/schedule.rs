//! Which application the publishing loop syncs next (pure): the loop's bookkeeping as a state machine
//! that [`crate::publisher`] drives with what the watch delivers and what finished syncs report.
//!
//! Rules it keeps:
//! - at most one sync per application at a time, so its events go out in order;
//! - an observation arriving while its application is being synced waits as that application's single
//!   pending observation (a newer one replaces it), and is synced when the running sync finishes;
//! - an application is queued once, however often it is observed meanwhile;
//! - an application needs a sync when its history is not fully published, or (while it exists) when
//!   its finalizer must be added or removed;
//! - what is gone and needs nothing more is forgotten, and so is what a re-list did not list (unless
//!   it is being synced: its sync finds out for itself).
//!
//! Per application only the checkpoint, a few flags and that pending observation are kept.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::checkpoint::Checkpoint;
use crate::finalizer::{self, FinalizerAction};
use crate::observation::Observation;
use crate::transitions::fully_published;

/// What the loop remembers about one application.
#[derive(Debug)]
struct Tracked {
    scope: usize,
    /// The furthest position known to be acknowledged (annotation or our own acks).
    published: Option<Checkpoint>,
    /// The furthest position observed, for the transitions-seen metric.
    seen: Option<Checkpoint>,
    /// A sync is running.
    busy: bool,
    /// Waiting in the ready queue.
    queued: bool,
    /// The newest observation not yet synced (boxed: most applications have none, and the map entry
    /// of each of them stays small).
    pending: Option<Box<Observation>>,
    /// The object no longer exists (a Delete event came).
    gone: bool,
}

/// One sync to start: the observation, the furthest acknowledged position, and whether the object is
/// already gone (then only the rest of its history is published).
#[derive(Debug)]
pub struct SyncStart {
    /// What to sync.
    pub observation: Observation,
    /// Known to be acknowledged.
    pub published: Option<Checkpoint>,
    /// The object was deleted.
    pub gone: bool,
}

/// What a finished sync reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// The application.
    pub uid: String,
    /// How far it got.
    pub published: Option<Checkpoint>,
    /// The object turned out to be gone.
    pub gone: bool,
}

/// What an observation told the loop, for its logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// The application was not tracked before.
    pub first_sighting: bool,
    /// History entries not seen before.
    pub new_entries: usize,
}

/// The publishing loop's bookkeeping.
#[derive(Debug)]
pub struct Schedule {
    finalizer_enabled: bool,
    tracked: HashMap<String, Tracked>,
    ready: VecDeque<String>,
    /// Per watch scope, the uids listed since its last `Init`, while a (re-)list is under way.
    relisting: Vec<Option<HashSet<String>>>,
}

impl Schedule {
    /// Bookkeeping for `scopes` watch scopes (namespaces, or one for the whole cluster).
    pub fn new(scopes: usize, finalizer_enabled: bool) -> Self {
        Self {
            finalizer_enabled,
            tracked: HashMap::new(),
            ready: VecDeque::new(),
            relisting: vec![None; scopes],
        }
    }

    /// Applications tracked.
    pub fn tracked(&self) -> usize {
        self.tracked.len()
    }

    /// A (re-)list of `scope` began (the watch's `Init`).
    pub fn relist_started(&mut self, scope: usize) {
        self.relisting[scope] = Some(HashSet::new());
    }

    /// The re-list of `scope` listed `uid` (an `InitApply`; observe the object too).
    pub fn listed(&mut self, scope: usize, uid: &str) {
        if let Some(seen) = self.relisting[scope].as_mut() {
            seen.insert(uid.to_string());
        }
    }

    /// The re-list of `scope` finished (`InitDone`): applications it did not list vanished while the
    /// watch was away, and nothing more will come for them.
    pub fn relist_done(&mut self, scope: usize) {
        if let Some(seen) = self.relisting[scope].take() {
            self.tracked
                .retain(|uid, t| t.scope != scope || t.busy || seen.contains(uid));
        }
    }

    /// Whether the finalizer of `observation` must change, given what is acknowledged.
    pub fn finalizer_action(
        &self,
        observation: &Observation,
        published: Option<Checkpoint>,
    ) -> FinalizerAction {
        finalizer::action_for(self.finalizer_enabled, observation, published)
    }

    /// Records an observation of an application in `scope` (`gone`: a Delete event) and queues its
    /// sync when it needs one.
    pub fn observe(&mut self, scope: usize, observation: Observation, gone: bool) -> Observed {
        let uid = observation.identity.uid.clone();
        let first_sighting = !self.tracked.contains_key(&uid);
        let tracked = self.tracked.entry(uid.clone()).or_insert_with(|| Tracked {
            scope,
            published: None,
            seen: None,
            busy: false,
            queued: false,
            pending: None,
            gone: false,
        });
        tracked.published = Checkpoint::latest(tracked.published, observation.checkpoint);
        let new_entries = observation
            .status
            .entries
            .iter()
            .filter(|entry| Some(Checkpoint::of(entry)) > tracked.seen)
            .count();
        if new_entries > 0 {
            tracked.seen = Checkpoint::last_of(&observation.status);
        }
        tracked.gone |= gone;
        let published = tracked.published;
        let needs_sync = !fully_published(&observation.status, published)
            || (!gone && self.finalizer_action(&observation, published) != FinalizerAction::Keep);
        let tracked = self.tracked.get_mut(&uid).expect("inserted above");
        if needs_sync {
            tracked.pending = Some(Box::new(observation));
            if !tracked.busy && !tracked.queued {
                tracked.queued = true;
                self.ready.push_back(uid);
            }
        } else if tracked.gone && !tracked.busy {
            self.tracked.remove(&uid);
        }
        Observed {
            first_sighting,
            new_entries,
        }
    }

    /// The next application to sync, marked busy until its [`Schedule::finish`].
    pub fn next_ready(&mut self) -> Option<SyncStart> {
        while let Some(uid) = self.ready.pop_front() {
            let Some(tracked) = self.tracked.get_mut(&uid) else {
                continue;
            };
            tracked.queued = false;
            if tracked.busy {
                continue;
            }
            if let Some(observation) = tracked.pending.take() {
                tracked.busy = true;
                return Some(SyncStart {
                    observation: *observation,
                    published: tracked.published,
                    gone: tracked.gone,
                });
            }
        }
        None
    }

    /// A sync finished: what arrived meanwhile is queued, and what is gone and done is forgotten.
    pub fn finish(&mut self, report: SyncReport) {
        let Some(tracked) = self.tracked.get_mut(&report.uid) else {
            return;
        };
        tracked.busy = false;
        tracked.published = Checkpoint::latest(tracked.published, report.published);
        tracked.gone |= report.gone;
        if tracked.pending.is_some() && !tracked.queued {
            tracked.queued = true;
            self.ready.push_back(report.uid);
        } else if tracked.gone && tracked.pending.is_none() {
            self.tracked.remove(&report.uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::observation::SparkApplication;

    /// An application `uid` whose history has `states` (attempt 0), checkpointed through `checkpoint`.
    fn observation(uid: &str, states: &[&str], checkpoint: Option<u64>) -> Observation {
        let history: serde_json::Map<String, serde_json::Value> = states
            .iter()
            .enumerate()
            .map(|(i, state)| {
                (
                    i.to_string(),
                    json!({"currentStateSummary": state, "lastTransitionTime": "2026-12-01T10:00:00Z"}),
                )
            })
            .collect();
        let mut annotations = serde_json::Map::new();
        if let Some(index) = checkpoint {
            annotations.insert(
                crate::keys::CHECKPOINT_ANNOTATION.into(),
                json!(crate::checkpoint::annotation_value(
                    uid,
                    Checkpoint::new(0, index)
                )),
            );
        }
        let object: SparkApplication = serde_json::from_value(json!({
            "metadata": {"name": format!("app-{uid}"), "namespace": "ns", "uid": uid,
                         "resourceVersion": "1", "annotations": annotations},
            "status": {"currentState": {"currentStateSummary": states.last().unwrap_or(&"Submitted")},
                       "stateTransitionHistory": history}
        }))
        .unwrap();
        Observation::from_object(&object).unwrap()
    }

    fn start(schedule: &mut Schedule) -> SyncStart {
        schedule.next_ready().expect("a sync is ready")
    }

    fn done(start: &SyncStart) -> SyncReport {
        SyncReport {
            uid: start.observation.identity.uid.clone(),
            published: Checkpoint::last_of(&start.observation.status),
            gone: false,
        }
    }

    #[test]
    fn one_sync_per_application_and_the_newest_observation_waits_for_it() {
        let mut schedule = Schedule::new(1, false);
        let first = schedule.observe(0, observation("a", &["Submitted"], None), false);
        assert_eq!(
            first,
            Observed {
                first_sighting: true,
                new_entries: 1
            }
        );
        let running = start(&mut schedule);
        // Two more observations while the sync runs: only the newest is kept, nothing starts.
        schedule.observe(
            0,
            observation("a", &["Submitted", "DriverRequested"], None),
            false,
        );
        let newest = schedule.observe(
            0,
            observation(
                "a",
                &["Submitted", "DriverRequested", "DriverStarted"],
                None,
            ),
            false,
        );
        assert_eq!(newest.new_entries, 1, "only DriverStarted is new");
        assert!(!newest.first_sighting);
        assert!(
            schedule.next_ready().is_none(),
            "a second sync of a busy application"
        );
        schedule.finish(done(&running));
        let next = start(&mut schedule);
        assert_eq!(next.observation.status.entries.len(), 3);
        assert_eq!(
            next.published,
            Some(Checkpoint::new(0, 0)),
            "what the first sync acknowledged"
        );
        assert!(schedule.next_ready().is_none(), "queued once");
    }

    #[test]
    fn applications_are_synced_in_the_order_they_became_ready_each_queued_once() {
        let mut schedule = Schedule::new(1, false);
        for uid in ["a", "b", "a", "c", "b"] {
            schedule.observe(0, observation(uid, &["Submitted"], None), false);
        }
        let order: Vec<String> = std::iter::from_fn(|| schedule.next_ready())
            .map(|s| s.observation.identity.uid)
            .collect();
        assert_eq!(order, ["a", "b", "c"]);
    }

    #[test]
    fn fully_published_applications_need_no_sync_and_are_forgotten_once_gone() {
        let mut schedule = Schedule::new(1, false);
        schedule.observe(0, observation("a", &["Submitted"], Some(0)), false);
        assert!(schedule.next_ready().is_none(), "nothing to publish");
        assert_eq!(schedule.tracked(), 1);
        schedule.observe(0, observation("a", &["Submitted"], Some(0)), true);
        assert_eq!(schedule.tracked(), 0, "gone and done");
    }

    #[test]
    fn a_deleted_application_with_unpublished_history_is_synced_then_forgotten() {
        let mut schedule = Schedule::new(1, false);
        schedule.observe(0, observation("a", &["Submitted", "Failed"], Some(0)), true);
        let sync = start(&mut schedule);
        assert!(sync.gone);
        assert_eq!(sync.published, Some(Checkpoint::new(0, 0)));
        schedule.finish(SyncReport {
            gone: true,
            ..done(&sync)
        });
        assert_eq!(schedule.tracked(), 0);
    }

    #[test]
    fn the_finalizer_alone_makes_a_published_application_need_a_sync() {
        let mut schedule = Schedule::new(1, true);
        schedule.observe(0, observation("a", &["Submitted"], Some(0)), false);
        let sync = start(&mut schedule);
        assert_eq!(
            schedule.finalizer_action(&sync.observation, sync.published),
            FinalizerAction::Add
        );
    }

    #[test]
    fn a_relist_forgets_what_it_did_not_list_unless_it_is_being_synced() {
        let mut schedule = Schedule::new(2, false);
        schedule.observe(0, observation("a", &["Submitted"], Some(0)), false);
        schedule.observe(0, observation("busy", &["Submitted"], None), false);
        schedule.observe(
            1,
            observation("other-scope", &["Submitted"], Some(0)),
            false,
        );
        let busy = start(&mut schedule);
        assert_eq!(busy.observation.identity.uid, "busy");
        schedule.relist_started(0);
        schedule.listed(0, "b");
        schedule.observe(0, observation("b", &["Submitted"], Some(0)), false);
        schedule.relist_done(0);
        // a vanished while the watch was away; busy is being synced; scope 1 was not re-listed.
        assert_eq!(schedule.tracked(), 3);
        let first_again = schedule.observe(0, observation("a", &["Submitted"], Some(0)), false);
        assert!(first_again.first_sighting, "a was forgotten");
    }
}
