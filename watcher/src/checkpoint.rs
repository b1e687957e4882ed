//! The per-application checkpoint: the position of the last history entry whose event the broker
//! acknowledged.
//!
//! A position is `(attempt, history index)`. The operator keeps numbering history keys across a
//! restart (the `ScheduledToRestart` entry of attempt 1 follows the last key of attempt 0), so positions
//! ordered as pairs are in history order, and "everything after the checkpoint" is well defined even
//! across restarts.
//!
//! The checkpoint lives on the object as the annotation
//! [`CHECKPOINT_ANNOTATION`](crate::keys::CHECKPOINT_ANNOTATION) whose value is the id of the last
//! acknowledged event, `<uid>/<attempt>/<index>`. Naming the uid voids a checkpoint copied onto another
//! object (an exported manifest applied again creates a new application with the old annotations),
//! which would otherwise silently suppress that application's events.

use std::fmt;
use std::str::FromStr;

use spark_gateway_core::apache_v1::{HistoryEntry, StatusView};
use spark_gateway_events::state_changed_event_id;

/// A history position, ordered as `(attempt, history_index)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Checkpoint {
    /// The attempt (0 for the first run).
    pub attempt: u64,
    /// The entry's key in that attempt's `stateTransitionHistory`.
    pub history_index: u64,
}

impl Checkpoint {
    /// The position of entry `history_index` of attempt `attempt`.
    pub fn new(attempt: u64, history_index: u64) -> Self {
        Self {
            attempt,
            history_index,
        }
    }

    /// The position of a history entry.
    pub fn of(entry: &HistoryEntry) -> Self {
        Self::new(entry.attempt, entry.history_index)
    }

    /// The position of the last entry `status` holds, if any.
    pub fn last_of(status: &StatusView) -> Option<Self> {
        status.entries.last().map(Self::of)
    }

    /// The later of two optional checkpoints: a checkpoint only ever moves forward.
    pub fn latest(a: Option<Self>, b: Option<Self>) -> Option<Self> {
        a.max(b)
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.attempt, self.history_index)
    }
}

/// A checkpoint annotation that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCheckpoint {
    /// Not `<uid>/<attempt>/<history index>` (or, for a bare position, `<attempt>/<history index>`).
    #[error("checkpoint {0:?} is not <uid>/<attempt>/<history index>")]
    Malformed(String),
    /// Written for another application (copied with its manifest).
    #[error("checkpoint {value:?} belongs to another application than {uid}")]
    OtherApplication {
        /// The annotation's value.
        value: String,
        /// The uid of the object carrying it.
        uid: String,
    },
}

/// The annotation value recording `checkpoint` for the application `uid`.
pub fn annotation_value(uid: &str, checkpoint: Checkpoint) -> String {
    state_changed_event_id(uid, checkpoint.attempt, checkpoint.history_index)
}

/// Reads the annotation of the application `uid`.
pub fn parse_annotation(value: &str, uid: &str) -> Result<Checkpoint, InvalidCheckpoint> {
    let malformed = || InvalidCheckpoint::Malformed(value.to_string());
    let mut parts = value.rsplitn(3, '/');
    let (Some(index), Some(attempt), Some(owner)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let position = format!("{attempt}/{index}")
        .parse::<Checkpoint>()
        .map_err(|_| malformed())?;
    if owner == uid {
        Ok(position)
    } else {
        Err(InvalidCheckpoint::OtherApplication {
            value: value.to_string(),
            uid: uid.to_string(),
        })
    }
}

impl FromStr for Checkpoint {
    type Err = InvalidCheckpoint;

    /// Reads a bare position, `<attempt>/<history index>`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidCheckpoint::Malformed(text.to_string());
        let (attempt, index) = text.split_once('/').ok_or_else(invalid)?;
        Ok(Self {
            attempt: attempt.parse().map_err(|_| invalid())?,
            history_index: index.parse().map_err(|_| invalid())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips() {
        let checkpoint = Checkpoint::new(1, 12);
        assert_eq!(checkpoint.to_string(), "1/12");
        assert_eq!("1/12".parse::<Checkpoint>(), Ok(checkpoint));
    }

    #[test]
    fn malformed_text_is_refused() {
        for bad in ["", "3", "a/1", "1/b", "1/2/3", "-1/2", " 1/2"] {
            assert_eq!(
                bad.parse::<Checkpoint>(),
                Err(InvalidCheckpoint::Malformed(bad.to_string())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_annotation_is_the_last_event_id_and_binds_to_its_application() {
        let uid = "6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f";
        let value = annotation_value(uid, Checkpoint::new(1, 8));
        assert_eq!(value, format!("{uid}/1/8"));
        assert_eq!(parse_annotation(&value, uid), Ok(Checkpoint::new(1, 8)));
        assert_eq!(
            parse_annotation(&value, "another-uid"),
            Err(InvalidCheckpoint::OtherApplication {
                value: value.clone(),
                uid: "another-uid".into()
            })
        );
        for bad in ["1/8", "", &format!("{uid}/x/8"), &format!("{uid}/1")] {
            assert_eq!(
                parse_annotation(bad, uid),
                Err(InvalidCheckpoint::Malformed(bad.to_string())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn positions_order_by_attempt_then_index() {
        assert!(Checkpoint::new(0, 9) < Checkpoint::new(1, 6));
        assert!(Checkpoint::new(1, 6) < Checkpoint::new(1, 7));
        assert_eq!(
            Checkpoint::latest(None, Some(Checkpoint::new(0, 1))),
            Some(Checkpoint::new(0, 1))
        );
        assert_eq!(
            Checkpoint::latest(Some(Checkpoint::new(1, 0)), Some(Checkpoint::new(0, 5))),
            Some(Checkpoint::new(1, 0))
        );
    }
}
