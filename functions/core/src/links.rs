//! Links to where a person looks next (pure): the Spark UI while the driver runs, the history server
//! once it has ended, the logs at any time, from per-cluster URL templates.
//!
//! A template is a URL with placeholders: `{cluster}`, `{namespace}`, `{name}`, `{uid}`, `{attempt}`,
//! `{app_id}` (the `spark.app.id` the operator generates, which the history server lists) and
//! `{driver_pod}`. Templates are checked when the process starts, so a typo is a configuration error
//! and never a broken link in an event. Values are Kubernetes names, uids and numbers: nothing a URL
//! would have to escape.

use spark_gateway_events::{Links, Phase};

use crate::apache_v1::{driver_pod_name, spark_app_id};

const PLACEHOLDERS: [&str; 7] = [
    "cluster",
    "namespace",
    "name",
    "uid",
    "attempt",
    "app_id",
    "driver_pod",
];

/// One checked URL template; configuration reads it from a string and refuses a bad one at load.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct UrlTemplate(String);

impl TryFrom<String> for UrlTemplate {
    type Error = TemplateError;

    fn try_from(template: String) -> Result<Self, Self::Error> {
        Self::new(template)
    }
}

/// A template that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Not an `http(s)://` URL.
    #[error("{0:?} is not an http:// or https:// URL")]
    NotHttp(String),
    /// A placeholder that is not one of the known ones, or an unclosed brace.
    #[error("{template:?}: unknown placeholder {placeholder:?} (known: {known})", known = PLACEHOLDERS.join(", "))]
    UnknownPlaceholder {
        /// The template.
        template: String,
        /// What was between the braces.
        placeholder: String,
    },
}

impl UrlTemplate {
    /// Checks `template`.
    pub fn new(template: impl Into<String>) -> Result<Self, TemplateError> {
        let template = template.into();
        if !(template.starts_with("https://") || template.starts_with("http://")) {
            return Err(TemplateError::NotHttp(template));
        }
        let mut rest = template.as_str();
        while let Some(start) = rest.find('{') {
            let after = &rest[start + 1..];
            let end = after.find('}').unwrap_or(after.len());
            let placeholder = &after[..end];
            if end == after.len() || !PLACEHOLDERS.contains(&placeholder) {
                return Err(TemplateError::UnknownPlaceholder {
                    placeholder: placeholder.to_string(),
                    template: template.clone(),
                });
            }
            rest = &after[end + 1..];
        }
        Ok(Self(template))
    }

    fn render(&self, target: &LinkTarget<'_>) -> String {
        let app_id = spark_app_id(target.namespace, target.name, target.attempt);
        let driver_pod = driver_pod_name(target.namespace, target.name, target.attempt);
        let attempt = target.attempt.to_string();
        let values = [
            ("cluster", target.cluster),
            ("namespace", target.namespace),
            ("name", target.name),
            ("uid", target.uid),
            ("attempt", attempt.as_str()),
            ("app_id", app_id.as_str()),
            ("driver_pod", driver_pod.as_str()),
        ];
        values.iter().fold(self.0.clone(), |url, (key, value)| {
            url.replace(&format!("{{{key}}}"), value)
        })
    }
}

/// A cluster's link templates; each is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkTemplates {
    /// The Spark UI of a running driver (for example through an ingress per driver service).
    #[serde(default)]
    pub spark_ui: Option<UrlTemplate>,
    /// The Spark history server's page of the application.
    #[serde(default)]
    pub history_server: Option<UrlTemplate>,
    /// Where the driver's logs are kept (a log search, an object-store prefix).
    #[serde(default)]
    pub logs: Option<UrlTemplate>,
}

/// What a link is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkTarget<'a> {
    /// The gateway's name of the cluster.
    pub cluster: &'a str,
    /// The namespace.
    pub namespace: &'a str,
    /// The application's name.
    pub name: &'a str,
    /// Its uid.
    pub uid: &'a str,
    /// The attempt.
    pub attempt: u64,
}

impl LinkTemplates {
    /// The links of `target` in `phase`: the UI until the attempt stops, the history server from then
    /// on, the logs always. `None` when no template applies.
    pub fn links(&self, target: &LinkTarget<'_>, phase: Phase) -> Option<Links> {
        let running = matches!(phase, Phase::Pending | Phase::Running);
        let links = Links {
            spark_ui: self
                .spark_ui
                .as_ref()
                .filter(|_| running)
                .map(|t| t.render(target)),
            history_server: self
                .history_server
                .as_ref()
                .filter(|_| !running)
                .map(|t| t.render(target)),
            logs: self.logs.as_ref().map(|t| t.render(target)),
        };
        (links != Links::default()).then_some(links)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: LinkTarget<'static> = LinkTarget {
        cluster: "prod-eu",
        namespace: "spark-jobs",
        name: "pi",
        uid: "u-1",
        attempt: 1,
    };

    fn templates() -> LinkTemplates {
        LinkTemplates {
            spark_ui: Some(
                UrlTemplate::new("https://ui.example.com/{namespace}/{driver_pod}/").unwrap(),
            ),
            history_server: Some(
                UrlTemplate::new("https://history.example.com/history/{app_id}/jobs/").unwrap(),
            ),
            logs: Some(
                UrlTemplate::new("https://logs.example.com/?q=pod:{driver_pod}&cluster={cluster}")
                    .unwrap(),
            ),
        }
    }

    #[test]
    fn the_ui_while_running_the_history_server_after_and_the_logs_always() {
        let running = templates().links(&TARGET, Phase::Running).unwrap();
        assert_eq!(
            running.spark_ui.as_deref(),
            Some("https://ui.example.com/spark-jobs/pi-1-driver/")
        );
        assert_eq!(running.history_server, None);
        let ended = templates().links(&TARGET, Phase::Ended).unwrap();
        assert_eq!(ended.spark_ui, None);
        assert_eq!(
            ended.history_server.as_deref(),
            Some("https://history.example.com/history/pi-1/jobs/")
        );
        assert_eq!(
            ended.logs.as_deref(),
            Some("https://logs.example.com/?q=pod:pi-1-driver&cluster=prod-eu")
        );
        assert_eq!(LinkTemplates::default().links(&TARGET, Phase::Ended), None);
    }

    #[test]
    fn typos_and_other_schemes_are_refused_at_start() {
        assert!(matches!(
            UrlTemplate::new("https://h/{app}"),
            Err(TemplateError::UnknownPlaceholder { placeholder, .. }) if placeholder == "app"
        ));
        assert!(UrlTemplate::new("https://h/{app_id").is_err());
        assert!(matches!(
            UrlTemplate::new("javascript:alert(1)"),
            Err(TemplateError::NotHttp(_))
        ));
    }

    #[test]
    fn templates_are_checked_when_configuration_is_read() {
        let templates: LinkTemplates =
            serde_json::from_str(r#"{"history_server": "https://h.example.com/{app_id}"}"#)
                .unwrap();
        assert!(templates.history_server.is_some() && templates.spark_ui.is_none());
        let error = serde_json::from_str::<LinkTemplates>(r#"{"logs": "https://l/{pod}"}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown placeholder \"pod\""), "{error}");
        assert!(serde_json::from_str::<LinkTemplates>(r#"{"ui": "https://x/"}"#).is_err());
    }
}
