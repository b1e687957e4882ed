//! When the watcher holds or lets go of its finalizer (pure).
//!
//! The finalizer turns deletion (explicit, or the operator's `ttlAfterStopMillis`) into two phases: the
//! object gets a `deletionTimestamp` but stays until the watcher has published everything and removes
//! its finalizer. Without it, a watcher that is down or behind when the object goes would never learn
//! its last transitions.
//!
//! On delete the operator still appends `ResourceReleased` ("shutdown as requested") before removing its
//! own finalizer, so the watcher lets go only once that can no longer happen: the last state is
//! `ResourceReleased`, or no other finalizer (the operator's) is left.

use spark_gateway_events::ApplicationState;

use crate::checkpoint::Checkpoint;
use crate::keys::FINALIZER;
use crate::observation::Observation;
use crate::transitions::fully_published;

/// What the watcher knows about an application when deciding.
#[derive(Debug, Clone, Copy)]
pub struct FinalizerFacts<'a> {
    /// Finalizers are enabled (`--no-finalizer` not given).
    pub enabled: bool,
    /// `metadata.finalizers`.
    pub finalizers: &'a [String],
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// Every history entry is at or below the checkpoint.
    pub fully_published: bool,
    /// The last history entry's state.
    pub last_state: Option<ApplicationState>,
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalizerAction {
    /// Add the watcher's finalizer.
    Add,
    /// Remove the watcher's finalizer: the object may go.
    Remove,
    /// Leave the finalizers as they are.
    Keep,
}

/// The action for `observation` when `published` is acknowledged (the facts read off the observation).
pub fn action_for(
    enabled: bool,
    observation: &Observation,
    published: Option<Checkpoint>,
) -> FinalizerAction {
    decide(FinalizerFacts {
        enabled,
        finalizers: &observation.finalizers,
        deleting: observation.deleting,
        fully_published: fully_published(&observation.status, published),
        last_state: observation.status.last_state(),
    })
}

/// Decides about the watcher's finalizer.
///
/// With finalizers disabled the watcher adds none, but still removes its own from applications that
/// got one earlier, once they are deleted and published, so switching it off never strands objects.
pub fn decide(facts: FinalizerFacts<'_>) -> FinalizerAction {
    let has_ours = facts.finalizers.iter().any(|f| f == FINALIZER);
    if facts.deleting {
        let others_left = facts.finalizers.iter().any(|f| f != FINALIZER);
        let operator_done =
            !others_left || facts.last_state == Some(ApplicationState::ResourceReleased);
        if has_ours && facts.fully_published && operator_done {
            FinalizerAction::Remove
        } else {
            FinalizerAction::Keep
        }
    } else if facts.enabled && !has_ours {
        FinalizerAction::Add
    } else {
        FinalizerAction::Keep
    }
}

/// The finalizer list after `action`, or `None` when it does not change.
pub fn apply(finalizers: &[String], action: FinalizerAction) -> Option<Vec<String>> {
    match action {
        FinalizerAction::Keep => None,
        FinalizerAction::Add => {
            let mut next = finalizers.to_vec();
            next.push(FINALIZER.to_string());
            Some(next)
        }
        FinalizerAction::Remove => Some(
            finalizers
                .iter()
                .filter(|f| *f != FINALIZER)
                .cloned()
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spark_gateway_events::ApplicationState::*;

    const OPERATOR: &str = "sparkapplications.spark.apache.org/finalizer";

    fn list(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn facts(finalizers: &[String]) -> FinalizerFacts<'_> {
        FinalizerFacts {
            enabled: true,
            finalizers,
            deleting: false,
            fully_published: false,
            last_state: None,
        }
    }

    #[test]
    fn managed_applications_get_the_finalizer() {
        let operator_only = list(&[OPERATOR]);
        assert_eq!(decide(facts(&operator_only)), FinalizerAction::Add);
        assert_eq!(
            apply(&operator_only, FinalizerAction::Add),
            Some(list(&[OPERATOR, FINALIZER]))
        );
        let both = list(&[OPERATOR, FINALIZER]);
        assert_eq!(decide(facts(&both)), FinalizerAction::Keep);
    }

    #[test]
    fn disabled_finalizers_are_not_added() {
        let none = list(&[]);
        assert_eq!(
            decide(FinalizerFacts {
                enabled: false,
                ..facts(&none)
            }),
            FinalizerAction::Keep
        );
    }

    #[test]
    fn never_added_to_an_application_being_deleted() {
        let none = list(&[]);
        assert_eq!(
            decide(FinalizerFacts {
                deleting: true,
                ..facts(&none)
            }),
            FinalizerAction::Keep
        );
    }

    #[test]
    fn kept_while_events_are_unpublished() {
        let ours = list(&[FINALIZER]);
        let deleting = FinalizerFacts {
            deleting: true,
            last_state: Some(ResourceReleased),
            ..facts(&ours)
        };
        assert_eq!(decide(deleting), FinalizerAction::Keep);
        assert_eq!(
            decide(FinalizerFacts {
                fully_published: true,
                ..deleting
            }),
            FinalizerAction::Remove
        );
        assert_eq!(apply(&ours, FinalizerAction::Remove), Some(list(&[])));
    }

    #[test]
    fn kept_until_the_operator_recorded_the_delete() {
        let both = list(&[OPERATOR, FINALIZER]);
        let running = FinalizerFacts {
            deleting: true,
            fully_published: true,
            last_state: Some(RunningHealthy),
            ..facts(&both)
        };
        assert_eq!(decide(running), FinalizerAction::Keep);
        let released = FinalizerFacts {
            last_state: Some(ResourceReleased),
            ..running
        };
        assert_eq!(decide(released), FinalizerAction::Remove);
        assert_eq!(
            apply(&both, FinalizerAction::Remove),
            Some(list(&[OPERATOR]))
        );
        // The operator's finalizer gone means it will write nothing more.
        let ours = list(&[FINALIZER]);
        assert_eq!(
            decide(FinalizerFacts {
                finalizers: &ours,
                ..running
            }),
            FinalizerAction::Remove
        );
    }

    #[test]
    fn removed_even_when_disabled_so_switching_off_strands_nothing() {
        let ours = list(&[FINALIZER]);
        let facts = FinalizerFacts {
            enabled: false,
            deleting: true,
            fully_published: true,
            last_state: Some(ResourceReleased),
            ..facts(&ours)
        };
        assert_eq!(decide(facts), FinalizerAction::Remove);
    }
}
