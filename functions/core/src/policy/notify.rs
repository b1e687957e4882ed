//! Where a submit may ask to be notified: SQS queues and HTTPS webhooks under URL prefixes the
//! cluster allows, and nothing else.
//!
//! A target is a place the platform's notifier will send signed events to, so it is an outbound
//! request on the requester's behalf: without an allow-list, a submit could make the notifier post
//! to an internal address. The notifier checks again at delivery time, because whoever may edit a
//! SparkApplication may edit the annotation that carries the targets.
//!
//! Matching is on the parsed URL: the same scheme, host and port as an allowed prefix, and a path
//! that starts with the prefix's path. `https://hooks.example.com` therefore never matches
//! `https://hooks.example.com.evil.test`. A URL must be written in its canonical form (what the
//! WHATWG parser makes of it, so `..` and `%2e%2e` are already resolved), so that the text checked is
//! the text delivered to. Credentials (`user:pass@`), query strings and fragments are refused: the
//! targets travel in every event on the shared completion topic, so they must not hold secrets (the
//! signature is the webhook's authentication).

use serde::{Deserialize, Serialize};
use spark_gateway_events::NotifyTarget;

/// Longest target URL.
pub const MAX_URL_CHARS: usize = 2048;

/// Why a target is refused: `(rule, message)`.
pub type Refusal = (&'static str, String);

/// Where a cluster's submits may be notified. The default allows nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyPolicy {
    /// SQS queue URL prefixes (`https://sqs.eu-west-1.amazonaws.com/123456789012/pipeline-`).
    #[serde(default)]
    pub allowed_sqs_queue_urls: Vec<String>,
    /// Webhook URL prefixes, `https://` only (`https://hooks.example.com/spark/`).
    #[serde(default)]
    pub allowed_webhook_urls: Vec<String>,
    /// Most targets one submit may name.
    #[serde(default = "default_max_targets")]
    pub max_targets: usize,
}

impl Default for NotifyPolicy {
    fn default() -> Self {
        Self {
            allowed_sqs_queue_urls: Vec::new(),
            allowed_webhook_urls: Vec::new(),
            max_targets: default_max_targets(),
        }
    }
}

fn default_max_targets() -> usize {
    4
}

impl NotifyPolicy {
    /// Whether the configuration itself makes sense: every prefix a canonical URL without credentials,
    /// query or fragment, webhooks `https://`.
    pub fn check(&self) -> Result<(), String> {
        for (list, prefixes, https_only) in [
            (
                "allowed_sqs_queue_urls",
                &self.allowed_sqs_queue_urls,
                false,
            ),
            ("allowed_webhook_urls", &self.allowed_webhook_urls, true),
        ] {
            for prefix in prefixes {
                let url =
                    canonical_url(prefix).map_err(|(_, message)| format!("{list}: {message}"))?;
                if https_only && url.scheme() != "https" {
                    return Err(format!("{list}: {prefix:?} is not https://"));
                }
            }
        }
        Ok(())
    }

    /// Whether `target` may be notified: `Ok` or the rule it breaks.
    pub fn allows(&self, target: &NotifyTarget) -> Result<(), Refusal> {
        let (prefixes, kind) = match target {
            NotifyTarget::Sqs { .. } => (&self.allowed_sqs_queue_urls, "SQS queue"),
            NotifyTarget::Webhook { .. } => (&self.allowed_webhook_urls, "webhook"),
        };
        let address = target.address();
        let url = canonical_url(address)?;
        if matches!(target, NotifyTarget::Webhook { .. }) && url.scheme() != "https" {
            return Err((
                "notify_https",
                format!("webhook {address:?} must be https://: the body is an event about the job"),
            ));
        }
        if prefixes.is_empty() {
            return Err((
                "notify_allow_list",
                format!("this cluster allows no {kind} notification targets"),
            ));
        }
        let allowed = prefixes.iter().any(|prefix| {
            canonical_url(prefix).is_ok_and(|prefix| {
                prefix.scheme() == url.scheme()
                    && prefix.host() == url.host()
                    && prefix.port_or_known_default() == url.port_or_known_default()
                    && url.path().starts_with(prefix.path())
            })
        });
        if allowed {
            Ok(())
        } else {
            Err((
                "notify_allow_list",
                format!(
                    "{kind} {address:?} is not under an allowed prefix: {}",
                    prefixes
                        .iter()
                        .map(|p| format!("{p:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ))
        }
    }

    /// Every refused target of a submit, as `(field, rule, message)`, `field` relative to the request.
    pub fn violations(&self, targets: &[NotifyTarget]) -> Vec<(String, &'static str, String)> {
        let mut found = Vec::new();
        if targets.len() > self.max_targets {
            found.push((
                "notify".to_string(),
                "max_items",
                format!(
                    "{} targets; this cluster allows at most {}",
                    targets.len(),
                    self.max_targets
                ),
            ));
            return found;
        }
        for (i, target) in targets.iter().enumerate() {
            let field = match target {
                NotifyTarget::Sqs { .. } => format!("notify[{i}].queue_url"),
                NotifyTarget::Webhook { .. } => format!("notify[{i}].url"),
            };
            if targets[..i].iter().any(|earlier| {
                earlier.address() == target.address() && earlier.kind() == target.kind()
            }) {
                found.push((
                    field,
                    "duplicate",
                    "the same target is listed twice".to_string(),
                ));
                continue;
            }
            if let Err((rule, message)) = self.allows(target) {
                found.push((field, rule, message));
            }
        }
        found
    }
}

/// `text` parsed, when it is a URL written canonically, without credentials, query or fragment.
fn canonical_url(text: &str) -> Result<url::Url, Refusal> {
    if text.len() > MAX_URL_CHARS {
        return Err((
            "max_length",
            format!("longer than {MAX_URL_CHARS} characters"),
        ));
    }
    let url = url::Url::parse(text)
        .map_err(|error| ("notify_url", format!("{text:?} is not a URL: {error}")))?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err((
            "notify_url",
            format!("{text:?} is not an http(s) URL with a host"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err((
            "notify_url",
            "a target URL may not hold credentials: every event carries it".to_string(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err((
            "notify_url",
            format!("{text:?} may not have a query or fragment: every event carries it"),
        ));
    }
    if url.as_str() != text {
        return Err((
            "notify_url",
            format!(
                "{text:?} is not in canonical form; write it as {:?}",
                url.as_str()
            ),
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use spark_gateway_events::NotifyEvents;

    use super::*;

    fn policy() -> NotifyPolicy {
        NotifyPolicy {
            allowed_sqs_queue_urls: vec![
                "https://sqs.eu-west-1.amazonaws.com/123456789012/pipeline-".into(),
            ],
            allowed_webhook_urls: vec!["https://hooks.example.com/spark/".into()],
            max_targets: 2,
        }
    }

    fn webhook(url: &str) -> NotifyTarget {
        NotifyTarget::Webhook {
            url: url.into(),
            events: NotifyEvents::Terminal,
        }
    }

    fn queue(url: &str) -> NotifyTarget {
        NotifyTarget::Sqs {
            queue_url: url.into(),
            events: NotifyEvents::All,
        }
    }

    fn rule(target: NotifyTarget) -> &'static str {
        policy().allows(&target).unwrap_err().0
    }

    #[test]
    fn targets_under_an_allowed_prefix_pass() {
        let policy = policy();
        policy
            .allows(&webhook("https://hooks.example.com/spark/team-a"))
            .unwrap();
        policy
            .allows(&queue(
                "https://sqs.eu-west-1.amazonaws.com/123456789012/pipeline-nightly",
            ))
            .unwrap();
    }

    #[test]
    fn look_alike_hosts_ports_schemes_and_paths_are_refused() {
        for url in [
            "https://hooks.example.com.evil.test/spark/x",
            "https://evil.test/hooks.example.com/spark/",
            "https://hooks.example.com:8443/spark/x",
            "https://hooks.example.com/sparkx",
            "https://hooks.example.com/other/spark/",
        ] {
            assert_eq!(rule(webhook(url)), "notify_allow_list", "{url}");
        }
        assert_eq!(
            rule(queue(
                "https://sqs.eu-west-1.amazonaws.com/999999999999/pipeline-x"
            )),
            "notify_allow_list"
        );
        assert_eq!(
            rule(webhook("http://hooks.example.com/spark/x")),
            "notify_https"
        );
    }

    #[test]
    fn urls_that_would_be_read_differently_or_leak_secrets_are_refused() {
        for url in [
            // The WHATWG parser resolves these to /admin, outside the prefix: the text must be canonical.
            "https://hooks.example.com/spark/../admin",
            "https://hooks.example.com/spark/%2e%2e/admin",
            "https://HOOKS.example.com/spark/x",
            "https://user:secret@hooks.example.com/spark/x",
            "https://hooks.example.com/spark/x?token=secret",
            "https://hooks.example.com/spark/x#f",
            "file:///etc/passwd",
            "hooks.example.com/spark/x",
        ] {
            assert_eq!(rule(webhook(url)), "notify_url", "{url}");
        }
        assert_eq!(
            rule(webhook(&format!(
                "https://hooks.example.com/spark/{}",
                "a".repeat(2048)
            ))),
            "max_length"
        );
    }

    #[test]
    fn a_cluster_without_prefixes_allows_no_target() {
        let refusal = NotifyPolicy::default()
            .allows(&webhook("https://hooks.example.com/spark/x"))
            .unwrap_err();
        assert_eq!(refusal.0, "notify_allow_list");
        assert!(refusal.1.contains("allows no webhook"), "{}", refusal.1);
    }

    #[test]
    fn every_refused_target_is_named_by_its_field() {
        let found = policy().violations(&[
            webhook("https://hooks.example.com/spark/a"),
            webhook("https://hooks.example.com/spark/a"),
        ]);
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].0.as_str(), found[0].1),
            ("notify[1].url", "duplicate")
        );
        let found = policy().violations(&[
            queue("https://sqs.eu-west-1.amazonaws.com/123456789012/other"),
            webhook("https://hooks.example.com/spark/a"),
        ]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "notify[0].queue_url");
        let three = vec![webhook("https://hooks.example.com/spark/a"); 3];
        assert_eq!(policy().violations(&three)[0].1, "max_items");
    }

    #[test]
    fn configuration_prefixes_are_checked() {
        let mut bad = policy();
        bad.allowed_webhook_urls = vec!["http://hooks.example.com/".into()];
        assert!(bad.check().unwrap_err().contains("not https"));
        bad.allowed_webhook_urls = vec!["https://hooks.example.com/x?y".into()];
        assert!(bad.check().is_err());
        policy().check().unwrap();
    }
}
