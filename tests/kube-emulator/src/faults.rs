//! Fault injection: added latency and injected error responses, matched per
//! verb and optionally per resource, for the next N requests or at a rate.
//!
//! Pure rule matching; the caller supplies the random draw so rules are
//! testable deterministically.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::status::ApiError;

/// Added latency, for every request or for one verb.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencyRule {
    /// Delay in milliseconds.
    pub millis: u64,
    /// Only for this verb (`get`, `list`, `watch`, `create`, `update`, `patch`,
    /// `delete`, `deletecollection`, `discovery`); all verbs when absent.
    #[serde(default)]
    pub verb: Option<String>,
}

/// An injected error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRule {
    /// Verb to match; all verbs when absent or `*`.
    #[serde(default)]
    pub verb: Option<String>,
    /// Plural resource to match (`sparkapplications`); all when absent.
    #[serde(default)]
    pub resource: Option<String>,
    /// HTTP status code to answer with (500, 503, 429, 403, ...).
    pub code: u16,
    /// Fire for the next N matching requests only.
    #[serde(default)]
    pub count: Option<u64>,
    /// Fire with this probability (0..=1) per matching request.
    #[serde(default)]
    pub rate: Option<f64>,
    /// `Retry-After` seconds (429 defaults to 1).
    #[serde(default)]
    pub retry_after_seconds: Option<u64>,
    /// Status message; a default mentioning fault injection otherwise.
    #[serde(default)]
    pub message: Option<String>,
}

impl ErrorRule {
    /// A rule answering `code` to the next `count` requests of `verb`.
    pub fn next(verb: &str, code: u16, count: u64) -> Self {
        Self {
            verb: Some(verb.to_string()),
            resource: None,
            code,
            count: Some(count),
            rate: None,
            retry_after_seconds: None,
            message: None,
        }
    }

    /// A rule answering `code` to a fraction `rate` of requests of `verb`.
    pub fn rate(verb: &str, code: u16, rate: f64) -> Self {
        Self {
            count: None,
            rate: Some(rate),
            ..Self::next(verb, code, 0)
        }
    }

    /// Restricts the rule to one resource.
    pub fn for_resource(mut self, plural: &str) -> Self {
        self.resource = Some(plural.to_string());
        self
    }

    /// Sets the `Retry-After` seconds.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after_seconds = Some(seconds);
        self
    }

    fn matches(&self, verb: &str, resource: Option<&str>) -> bool {
        let verb_ok = match self.verb.as_deref() {
            None | Some("*") | Some("") => true,
            Some(v) => v == verb,
        };
        let resource_ok = match self.resource.as_deref() {
            None | Some("*") | Some("") => true,
            Some(r) => resource == Some(r),
        };
        verb_ok && resource_ok
    }

    fn to_error(&self) -> ApiError {
        let message = self
            .message
            .clone()
            .unwrap_or_else(|| format!("injected fault: HTTP {}", self.code));
        let retry_after = match (self.code, self.retry_after_seconds) {
            (429, None) => Some(1),
            (_, seconds) => seconds,
        };
        ApiError::for_code(self.code, &message, retry_after)
    }
}

/// All active faults.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Faults {
    /// Latency rules (the largest matching delay applies).
    pub latency: Vec<LatencyRule>,
    /// Error rules, checked in order.
    pub errors: Vec<ErrorRule>,
}

impl Faults {
    /// The delay to add to a request of this verb.
    pub fn latency_for(&self, verb: &str) -> Duration {
        self.latency
            .iter()
            .filter(|rule| rule.verb.as_deref().is_none_or(|v| v == verb || v == "*"))
            .map(|rule| Duration::from_millis(rule.millis))
            .max()
            .unwrap_or_default()
    }

    /// Sets the latency for a verb (or all verbs), replacing an earlier rule for it.
    pub fn set_latency(&mut self, rule: LatencyRule) {
        self.latency.retain(|r| r.verb != rule.verb);
        if rule.millis > 0 {
            self.latency.push(rule);
        }
    }

    /// Whether this request gets an injected error; consumes one use of a
    /// counted rule. `draw` yields a uniform number in `0..1` for rate rules.
    pub fn take_error(
        &mut self,
        verb: &str,
        resource: Option<&str>,
        mut draw: impl FnMut() -> f64,
    ) -> Option<ApiError> {
        let mut fired = None;
        for (index, rule) in self.errors.iter_mut().enumerate() {
            if !rule.matches(verb, resource) {
                continue;
            }
            if let Some(count) = rule.count {
                if count == 0 {
                    continue;
                }
                rule.count = Some(count - 1);
                fired = Some((index, rule.to_error(), count == 1));
                break;
            }
            let rate = rule.rate.unwrap_or(1.0);
            if draw() < rate {
                fired = Some((index, rule.to_error(), false));
                break;
            }
        }
        let (index, error, exhausted) = fired?;
        if exhausted {
            self.errors.remove(index);
        }
        Some(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_rules_fire_n_times_then_vanish() {
        let mut faults = Faults::default();
        faults.errors.push(ErrorRule::next("create", 503, 2));
        assert!(faults.take_error("get", Some("pods"), || 0.0).is_none());
        assert_eq!(
            faults.take_error("create", Some("x"), || 0.0).unwrap().code,
            503
        );
        assert_eq!(
            faults
                .take_error("create", Some("x"), || 0.0)
                .unwrap()
                .reason,
            "ServiceUnavailable"
        );
        assert!(faults.take_error("create", Some("x"), || 0.0).is_none());
        assert!(faults.errors.is_empty());
    }

    #[test]
    fn rate_rules_use_the_draw() {
        let mut faults = Faults::default();
        faults.errors.push(ErrorRule::rate("list", 500, 0.25));
        assert!(faults.take_error("list", None, || 0.1).is_some());
        assert!(faults.take_error("list", None, || 0.9).is_none());
        assert_eq!(faults.errors.len(), 1);
    }

    #[test]
    fn resource_filter_and_retry_after() {
        let mut faults = Faults::default();
        faults
            .errors
            .push(ErrorRule::next("*", 429, 1).for_resource("sparkapplications"));
        assert!(faults.take_error("get", Some("leases"), || 0.0).is_none());
        let error = faults
            .take_error("get", Some("sparkapplications"), || 0.0)
            .unwrap();
        assert_eq!(error.code, 429);
        assert_eq!(error.retry_after(), Some(1));
        let mut faults = Faults::default();
        faults
            .errors
            .push(ErrorRule::next("get", 503, 1).retry_after(7));
        assert_eq!(
            faults
                .take_error("get", None, || 0.0)
                .unwrap()
                .retry_after(),
            Some(7)
        );
    }

    #[test]
    fn latency_rules() {
        let mut faults = Faults::default();
        assert_eq!(faults.latency_for("get"), Duration::ZERO);
        faults.set_latency(LatencyRule {
            millis: 100,
            verb: None,
        });
        faults.set_latency(LatencyRule {
            millis: 300,
            verb: Some("create".into()),
        });
        assert_eq!(faults.latency_for("get"), Duration::from_millis(100));
        assert_eq!(faults.latency_for("create"), Duration::from_millis(300));
        faults.set_latency(LatencyRule {
            millis: 0,
            verb: None,
        });
        assert_eq!(faults.latency_for("get"), Duration::ZERO);
    }

    #[test]
    fn rules_deserialize_from_admin_json() {
        let rule: ErrorRule =
            serde_json::from_str(r#"{"verb":"create","code":500,"count":1}"#).unwrap();
        assert_eq!(rule, ErrorRule::next("create", 500, 1));
    }
}
