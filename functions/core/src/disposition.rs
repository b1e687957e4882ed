//! The one error taxonomy: every failure is permanent (retrying cannot help: reject the request, publish
//! its terminal event, dead-letter the message, acknowledge it) or transient (retry the message later).
//! Callers decide ack, retry or dead-letter from this, never from error text.

use std::time::Duration;

use spark_gateway_events::RejectionReason;

/// What to do with a message whose processing failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Retrying cannot succeed: reject with this reason.
    Permanent(RejectionReason),
    /// Retrying may succeed; `retry_after` is the server's hint when it gave one.
    Transient {
        /// How long the server asked to wait.
        retry_after: Option<Duration>,
    },
}

impl Disposition {
    /// Transient with no hint.
    pub const TRANSIENT: Self = Self::Transient { retry_after: None };

    /// The failure is worth retrying.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Transient { .. })
    }
}

/// Errors that know whether retrying can help.
pub trait Classify {
    /// Permanent or transient.
    fn disposition(&self) -> Disposition;
}

/// How an HTTP status from the Kubernetes API (through the cluster proxy) is to be treated, following
/// the API's own semantics: client errors are permanent except 408/429 and the auth errors the caller
/// handles by refreshing its token; server errors are transient.
pub fn disposition_of_kube_status(code: u16) -> Disposition {
    match code {
        401 | 408 | 429 => Disposition::TRANSIENT,
        403 => Disposition::Permanent(RejectionReason::Forbidden),
        404 | 422 | 400 | 405 | 415 => Disposition::Permanent(RejectionReason::RejectedByCluster),
        409 => Disposition::Permanent(RejectionReason::Conflict),
        _ => Disposition::TRANSIENT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_status_codes_map_to_the_api_semantics() {
        assert!(disposition_of_kube_status(500).is_transient());
        assert!(disposition_of_kube_status(503).is_transient());
        assert!(disposition_of_kube_status(429).is_transient());
        assert!(disposition_of_kube_status(401).is_transient());
        assert_eq!(
            disposition_of_kube_status(422),
            Disposition::Permanent(RejectionReason::RejectedByCluster)
        );
        assert_eq!(
            disposition_of_kube_status(403),
            Disposition::Permanent(RejectionReason::Forbidden)
        );
        assert_eq!(
            disposition_of_kube_status(409),
            Disposition::Permanent(RejectionReason::Conflict)
        );
    }
}
