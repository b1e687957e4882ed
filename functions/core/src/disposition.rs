//! The one error taxonomy, for the functions and the watcher alike: every failure is permanent (the
//! input is wrong and retrying cannot help: reject the request, publish its terminal event, dead-letter
//! the message, acknowledge it), transient (retry later: an outage, a throttle, a conflict to read
//! again) or configuration (the deployment is wrong: credentials, permissions, addresses, an operator
//! of another version; nothing changes until a person fixes it, and it is not the input's fault, so the
//! work waits, retried slowly and reported, instead of being refused). Callers decide ack, retry or
//! dead-letter from this, never from error text; each adapter's errors implement [`Classify`] from the
//! tables here ([`kube_answer`]) and in `spark_gateway_kafka::is_transient`.

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
    /// The deployment is wrong: keep the work and retry it (slowly), alerting a person.
    Configuration,
}

impl Disposition {
    /// Transient with no hint.
    pub const TRANSIENT: Self = Self::Transient { retry_after: None };

    /// Retrying as is may succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Transient { .. })
    }

    /// The work is kept and tried again (transient or configuration), not refused.
    pub fn is_retried(self) -> bool {
        !matches!(self, Self::Permanent(_))
    }

    /// Transient when `transient`, otherwise configuration: for failures of the system's own calls
    /// (to the broker, to the API server on its own objects), where a refusal is never the input's
    /// fault.
    pub fn transient_or_configuration(transient: bool) -> Self {
        if transient {
            Self::TRANSIENT
        } else {
            Self::Configuration
        }
    }
}

/// Errors that know whether retrying can help.
pub trait Classify {
    /// Permanent, transient or configuration.
    fn disposition(&self) -> Disposition;
}

/// What an error answer of the Kubernetes API means for the caller, by its HTTP status as the API
/// conventions define them (`k8s.io/apimachinery/pkg/api/errors`): the one table the functions and the
/// watcher decide "retry or give up" from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubeAnswer {
    /// 401: the credentials expired or were rotated: read them again, then retry.
    Unauthenticated,
    /// 403: the caller may not do this; retrying does not change that.
    Forbidden,
    /// 404: the object (or its namespace) does not exist.
    NotFound,
    /// 409 (`AlreadyExists`, or a `resourceVersion`/uid precondition that failed) and 410 (`Gone`, an
    /// expired watch or list position): the object moved on; read it again and decide again.
    Conflict,
    /// 400, 405, 406, 413, 415, 422 and any other client error: the request itself is wrong.
    Invalid,
    /// 408, 429 and server errors: retry the same request later.
    Unavailable,
}

impl KubeAnswer {
    /// Retrying (after reading again where the answer says so) may succeed.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::Unauthenticated | Self::Conflict | Self::Unavailable
        )
    }
}

/// Classifies an error answer of the Kubernetes API by its HTTP status.
pub fn kube_answer(code: u16) -> KubeAnswer {
    match code {
        401 => KubeAnswer::Unauthenticated,
        403 => KubeAnswer::Forbidden,
        404 => KubeAnswer::NotFound,
        409 | 410 => KubeAnswer::Conflict,
        408 | 429 => KubeAnswer::Unavailable,
        400..=499 => KubeAnswer::Invalid,
        _ => KubeAnswer::Unavailable,
    }
}

/// An error and its causes on one line (`outer: cause: root cause`), for logs and retry reasons: a
/// `#[source]` chain printed with `{}` shows only its outermost message.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // `#[error(transparent)]` and wrappers that repeat their cause's text would print it twice.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_answers_follow_the_api_conventions() {
        use KubeAnswer::*;
        let table = [
            (400, Invalid),
            (401, Unauthenticated),
            (403, Forbidden),
            (404, NotFound),
            (405, Invalid),
            (408, Unavailable),
            (409, Conflict),
            (410, Conflict),
            (413, Invalid),
            (415, Invalid),
            (422, Invalid),
            (429, Unavailable),
            (500, Unavailable),
            (503, Unavailable),
            (504, Unavailable),
        ];
        for (code, expected) in table {
            assert_eq!(kube_answer(code), expected, "{code}");
        }
        let transient: Vec<u16> = table
            .iter()
            .filter(|(code, _)| kube_answer(*code).is_transient())
            .map(|(code, _)| *code)
            .collect();
        assert_eq!(transient, [401, 408, 409, 410, 429, 500, 503, 504]);
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Middle);

    #[derive(Debug, thiserror::Error)]
    #[error("middle")]
    struct Middle(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error)]
    #[error(transparent)]
    struct Transparent(Middle);

    #[test]
    fn error_chains_read_as_one_line() {
        let root = || std::io::Error::other("connection refused");
        assert_eq!(
            error_chain(&Outer(Middle(root()))),
            "outer: middle: connection refused"
        );
        assert_eq!(
            error_chain(&Transparent(Middle(root()))),
            "middle: connection refused"
        );
    }
}
