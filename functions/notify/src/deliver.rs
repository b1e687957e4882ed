//! One completion-topic event to each target that wants it, at least once: the policy checked again,
//! bounded retries with back-off, and a dead-letter copy when a target refuses or stays down.
//!
//! The event is forwarded as the topic holds it (structured CloudEvent JSON), so its id, the same on
//! every redelivery, is what receivers de-duplicate on. Targets of one event are tried concurrently;
//! a slow webhook delays only the event it is for (the caller decides how many events run at once).

use std::collections::BTreeMap;
use std::time::Duration;

use spark_gateway_core::disposition::{Classify, Disposition};
use spark_gateway_core::error_chain;
use spark_gateway_core::policy::NotifyPolicy;
use spark_gateway_events::{CompletionEvent, NotifyEvents, NotifyTarget, decode_completion_event};
use spark_gateway_handlers::sqs::SqsError;

/// Whether `target` wants `event`: every event, or only the one that ends its request.
pub fn wants(target: &NotifyTarget, event: &CompletionEvent) -> bool {
    match target.events() {
        NotifyEvents::All => true,
        NotifyEvents::Terminal => event.is_terminal(),
    }
}

/// One delivery of one event.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The CloudEvent id (`webhook-id`, the SQS de-duplication id).
    pub event_id: &'a str,
    /// The cluster the event is about (whose signing secret a webhook gets).
    pub cluster: &'a str,
    /// What the application is, for FIFO queues' message group (`namespace/name`).
    pub group: &'a str,
    /// The event, as the completion topic holds it.
    pub body: &'a [u8],
}

/// One attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The cluster's policy does not allow the target (the annotation was edited after the submit,
    /// or the allow-list changed since).
    #[error("target not allowed by cluster {cluster:?}: {message}")]
    NotAllowed {
        /// The cluster.
        cluster: String,
        /// The policy's reason.
        message: String,
    },
    /// The receiver answered with a status that says retrying the same request will not help.
    #[error("the webhook refused the event with HTTP {status}")]
    Refused {
        /// The HTTP status.
        status: u16,
    },
    /// The receiver answered with a redirect, which is not followed: its target was never checked
    /// against the allow-list.
    #[error("the webhook answered HTTP {status} (a redirect, not followed)")]
    Redirected {
        /// The HTTP status.
        status: u16,
    },
    /// The receiver answered with a status worth retrying (408, 429, 5xx).
    #[error("the webhook answered HTTP {status}")]
    Unavailable {
        /// The HTTP status.
        status: u16,
        /// The receiver's `Retry-After`, when it sent one in seconds.
        retry_after: Option<Duration>,
    },
    /// The request did not complete (connection, TLS, timeout).
    #[error("the webhook could not be reached")]
    Unreachable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// SQS refused for good: no such queue, or no permission to send to it.
    #[error("SQS refused the event ({})", .0.code.as_deref().unwrap_or_default())]
    QueueRefused(#[source] SqsError),
    /// SQS failed in a way worth retrying.
    #[error("SQS did not take the event")]
    QueueUnavailable(#[source] SqsError),
    /// The cluster's signing secret could not be had.
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
}

impl Classify for DeliveryError {
    fn disposition(&self) -> Disposition {
        use spark_gateway_events::RejectionReason;
        match self {
            Self::NotAllowed { .. } => Disposition::Permanent(RejectionReason::PolicyViolation),
            Self::Refused { .. } | Self::Redirected { .. } | Self::QueueRefused(_) => {
                Disposition::Permanent(RejectionReason::Forbidden)
            }
            Self::Unavailable { retry_after, .. } => Disposition::Transient {
                retry_after: *retry_after,
            },
            Self::Unreachable(_) | Self::QueueUnavailable(_) => Disposition::TRANSIENT,
            Self::Secret(error) => error.disposition(),
        }
    }
}

/// Where events go: each kind of target, written once (live: SQS and HTTPS; fakes in tests).
pub trait Channels: Send + Sync {
    /// Sends the event to an SQS queue.
    fn send_to_queue(
        &self,
        queue_url: &str,
        delivery: &Delivery<'_>,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send;

    /// Posts the signed event to a webhook.
    fn post_to_webhook(
        &self,
        url: &str,
        delivery: &Delivery<'_>,
    ) -> impl Future<Output = Result<(), DeliveryError>> + Send;
}

/// A delivery given up on, as the dead-letter queue keeps it.
#[derive(Debug, Clone, Copy)]
pub struct FailedDelivery<'a> {
    /// What was being delivered.
    pub delivery: &'a Delivery<'a>,
    /// To where.
    pub target: &'a NotifyTarget,
    /// Attempts made.
    pub attempts: u32,
    /// The last error, causes included.
    pub error: &'a str,
}

/// The dead-letter copy could not be stored; the event must be handled again.
#[derive(Debug, thiserror::Error)]
#[error("the notifier's dead-letter queue did not take the copy")]
pub struct DeadLetterError(#[source] pub Box<dyn std::error::Error + Send + Sync>);

/// Keeps deliveries given up on where people can find and redrive them.
pub trait NotifyDeadLetters: Send + Sync {
    /// Stores the copy.
    fn dead_letter(
        &self,
        failed: &FailedDelivery<'_>,
    ) -> impl Future<Output = Result<(), DeadLetterError>> + Send;
}

/// How often and how patiently a target is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per target and event, the first included.
    pub attempts: u32,
    /// The wait after the first failure; it doubles after each.
    pub first_backoff: Duration,
    /// The longest wait (also the cap on a receiver's `Retry-After`).
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 5,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based), or the receiver's hint when it gave one.
    pub fn backoff(&self, attempt: u32, hint: Option<Duration>) -> Duration {
        let doubled = self
            .first_backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        hint.unwrap_or(doubled).min(self.max_backoff)
    }
}

/// What became of one event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Handled {
    /// Targets that took it.
    pub delivered: usize,
    /// Targets given up on (copy on the dead-letter queue).
    pub dead_lettered: usize,
}

/// The event cannot be finished now; handle it again later (nothing of it is lost).
#[derive(Debug, thiserror::Error)]
#[error("event {event_id}: a failed delivery could not be dead-lettered")]
pub struct NotifyError {
    /// The event.
    pub event_id: String,
    /// Why.
    #[source]
    pub source: DeadLetterError,
}

/// Delivers completion-topic events to the targets they carry.
pub struct Notifier<C, D> {
    channels: C,
    dead_letters: D,
    policies: BTreeMap<String, NotifyPolicy>,
    default_cluster: String,
    retry: RetryPolicy,
}

impl<C: Channels, D: NotifyDeadLetters> Notifier<C, D> {
    /// A notifier checking targets against `policies` (by cluster; an event that names no cluster is
    /// about `default_cluster`).
    pub fn new(
        channels: C,
        dead_letters: D,
        policies: BTreeMap<String, NotifyPolicy>,
        default_cluster: impl Into<String>,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            channels,
            dead_letters,
            policies,
            default_cluster: default_cluster.into(),
            retry,
        }
    }

    /// Handles one record of the completion topic. A record that is not a completion event is
    /// skipped (logged): no retry could make it one.
    pub async fn handle(&self, body: &[u8]) -> Result<Handled, NotifyError> {
        let event = match decode_completion_event(body) {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(%error, "skipping a record that is not a completion event");
                return Ok(Handled::default());
            }
        };
        let targets: Vec<&NotifyTarget> = event
            .notify()
            .iter()
            .filter(|target| wants(target, &event))
            .collect();
        if targets.is_empty() {
            return Ok(Handled::default());
        }
        let cluster = event.cluster().unwrap_or(&self.default_cluster);
        let group = group_of(&event);
        let delivery = Delivery {
            event_id: event.id(),
            cluster,
            group: &group,
            body,
        };
        let outcomes =
            futures::future::join_all(targets.iter().map(|target| self.deliver(target, &delivery)))
                .await;
        let mut handled = Handled::default();
        for outcome in outcomes {
            match outcome {
                Ok(true) => handled.delivered += 1,
                Ok(false) => handled.dead_lettered += 1,
                Err(source) => {
                    return Err(NotifyError {
                        event_id: delivery.event_id.to_string(),
                        source,
                    });
                }
            }
        }
        Ok(handled)
    }

    /// `Ok(true)` delivered, `Ok(false)` dead-lettered.
    async fn deliver(
        &self,
        target: &NotifyTarget,
        delivery: &Delivery<'_>,
    ) -> Result<bool, DeadLetterError> {
        let mut attempts = 0;
        let error = loop {
            attempts += 1;
            let result = match self.allowed(target, delivery.cluster) {
                Err(error) => Err(error),
                Ok(()) => match target {
                    NotifyTarget::Sqs { queue_url, .. } => {
                        self.channels.send_to_queue(queue_url, delivery).await
                    }
                    NotifyTarget::Webhook { url, .. } => {
                        self.channels.post_to_webhook(url, delivery).await
                    }
                },
            };
            let error = match result {
                Ok(()) => {
                    tracing::debug!(
                        event = delivery.event_id,
                        target = target.address(),
                        attempts,
                        "delivered"
                    );
                    return Ok(true);
                }
                Err(error) => error,
            };
            let disposition = error.disposition();
            if !disposition.is_retried() || attempts >= self.retry.attempts {
                break error;
            }
            let hint = match disposition {
                Disposition::Transient { retry_after } => retry_after,
                _ => None,
            };
            tracing::info!(event = delivery.event_id, target = target.address(), attempts, error = %error_chain(&error), "delivery failed; retrying");
            tokio::time::sleep(self.retry.backoff(attempts, hint)).await;
        };
        let reason = error_chain(&error);
        tracing::warn!(event = delivery.event_id, target = target.address(), attempts, error = %reason, "giving up on a delivery; copying it to the dead-letter queue");
        self.dead_letters
            .dead_letter(&FailedDelivery {
                delivery,
                target,
                attempts,
                error: &reason,
            })
            .await?;
        Ok(false)
    }

    fn allowed(&self, target: &NotifyTarget, cluster: &str) -> Result<(), DeliveryError> {
        let not_allowed = |message: String| DeliveryError::NotAllowed {
            cluster: cluster.to_string(),
            message,
        };
        let policy = self
            .policies
            .get(cluster)
            .ok_or_else(|| not_allowed("the notifier does not know this cluster".into()))?;
        policy
            .allows(target)
            .map_err(|(_, message)| not_allowed(message))
    }
}

/// `namespace/name` of what the event is about (FIFO queues keep one application's events in order).
fn group_of(event: &CompletionEvent) -> String {
    match event {
        CompletionEvent::StateChanged(e) => e.data.subject(),
        CompletionEvent::Rejected(e) => format!(
            "{}/{}",
            e.data.namespace.as_deref().unwrap_or_default(),
            e.data.application_name.as_deref().unwrap_or_default()
        ),
        CompletionEvent::Applied(e) => format!("{}/{}", e.data.namespace, e.data.application_name),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, VecDeque};
    use std::sync::Mutex;

    use serde_json::{Value, json};
    use spark_gateway_events::NotifyEvents;

    use super::*;

    const HOOK: &str = "https://hooks.example.com/spark/a";
    const QUEUE: &str = "https://sqs.eu-west-1.amazonaws.com/123456789012/pipeline-a";

    /// Answers each target's attempts from a script (then success), recording every attempt.
    #[derive(Default)]
    struct ScriptedChannels {
        script: Mutex<HashMap<String, VecDeque<DeliveryError>>>,
        attempts: Mutex<Vec<(String, String)>>,
    }

    impl ScriptedChannels {
        fn failing(target: &str, errors: Vec<DeliveryError>) -> Self {
            let channels = Self::default();
            channels
                .script
                .lock()
                .unwrap()
                .insert(target.to_string(), errors.into());
            channels
        }

        fn attempt(&self, target: &str, delivery: &Delivery<'_>) -> Result<(), DeliveryError> {
            self.attempts
                .lock()
                .unwrap()
                .push((target.to_string(), delivery.event_id.to_string()));
            match self
                .script
                .lock()
                .unwrap()
                .get_mut(target)
                .and_then(VecDeque::pop_front)
            {
                Some(error) => Err(error),
                None => Ok(()),
            }
        }

        fn attempts_at(&self, target: &str) -> usize {
            self.attempts
                .lock()
                .unwrap()
                .iter()
                .filter(|(t, _)| t == target)
                .count()
        }
    }

    impl Channels for ScriptedChannels {
        async fn send_to_queue(&self, url: &str, d: &Delivery<'_>) -> Result<(), DeliveryError> {
            self.attempt(url, d)
        }
        async fn post_to_webhook(&self, url: &str, d: &Delivery<'_>) -> Result<(), DeliveryError> {
            self.attempt(url, d)
        }
    }

    #[derive(Default)]
    struct Kept {
        copies: Mutex<Vec<(String, u32, String)>>,
        down: bool,
    }

    impl NotifyDeadLetters for Kept {
        async fn dead_letter(&self, failed: &FailedDelivery<'_>) -> Result<(), DeadLetterError> {
            if self.down {
                return Err(DeadLetterError("queue down".into()));
            }
            self.copies.lock().unwrap().push((
                failed.target.address().to_string(),
                failed.attempts,
                failed.error.to_string(),
            ));
            Ok(())
        }
    }

    fn policies() -> BTreeMap<String, NotifyPolicy> {
        let policy = NotifyPolicy {
            allowed_sqs_queue_urls: vec![
                "https://sqs.eu-west-1.amazonaws.com/123456789012/pipeline-".into(),
            ],
            allowed_webhook_urls: vec!["https://hooks.example.com/spark/".into()],
            max_targets: 4,
        };
        BTreeMap::from([("dev".to_string(), policy)])
    }

    fn notifier(channels: ScriptedChannels, kept: Kept) -> Notifier<ScriptedChannels, Kept> {
        let retry = RetryPolicy {
            attempts: 3,
            first_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
        };
        Notifier::new(channels, kept, policies(), "dev", retry)
    }

    fn state_changed(outcome: bool, notify: Value) -> Vec<u8> {
        let mut data = json!({
            "application_name": "pi", "namespace": "spark-jobs", "cluster": "dev",
            "uid": "u-1", "state": "RunningHealthy", "attempt": 0, "history_index": 3,
            "notify": notify,
        });
        if outcome {
            data["state"] = json!("Succeeded");
            data["outcome"] = json!({"result": "succeeded"});
        }
        serde_json::to_vec(&json!({
            "specversion": "1.0", "id": "u-1/0/3", "source": "/spark-gateway/clusters/dev",
            "type": spark_gateway_events::STATE_CHANGED_EVENT_TYPE, "data": data,
        }))
        .unwrap()
    }

    fn targets(events: &str) -> Value {
        json!([
            {"type": "webhook", "url": HOOK, "events": events},
            {"type": "sqs", "queue_url": QUEUE, "events": events},
        ])
    }

    #[tokio::test]
    async fn the_terminal_event_reaches_every_target_and_others_only_those_that_want_all() {
        let notifier = notifier(ScriptedChannels::default(), Kept::default());
        let handled = notifier
            .handle(&state_changed(false, targets("terminal")))
            .await
            .unwrap();
        assert_eq!(handled, Handled::default());
        let handled = notifier
            .handle(&state_changed(false, targets("all")))
            .await
            .unwrap();
        assert_eq!(handled.delivered, 2);
        let handled = notifier
            .handle(&state_changed(true, targets("terminal")))
            .await
            .unwrap();
        assert_eq!(handled.delivered, 2);
        assert_eq!(notifier.channels.attempts_at(HOOK), 2);
    }

    #[tokio::test]
    async fn a_transient_failure_is_retried_and_then_delivered() {
        let channels = ScriptedChannels::failing(
            HOOK,
            vec![
                DeliveryError::Unavailable {
                    status: 500,
                    retry_after: None,
                },
                DeliveryError::Unreachable("connection reset".into()),
            ],
        );
        let notifier = notifier(channels, Kept::default());
        let handled = notifier
            .handle(&state_changed(true, targets("terminal")))
            .await
            .unwrap();
        assert_eq!(handled.delivered, 2);
        assert_eq!(notifier.channels.attempts_at(HOOK), 3);
        assert_eq!(notifier.channels.attempts_at(QUEUE), 1);
        assert!(notifier.dead_letters.copies.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn retries_are_bounded_and_end_on_the_dead_letter_queue() {
        let down = || DeliveryError::Unavailable {
            status: 503,
            retry_after: None,
        };
        let channels = ScriptedChannels::failing(HOOK, vec![down(), down(), down(), down()]);
        let notifier = notifier(channels, Kept::default());
        let handled = notifier
            .handle(&state_changed(true, targets("terminal")))
            .await
            .unwrap();
        assert_eq!((handled.delivered, handled.dead_lettered), (1, 1));
        assert_eq!(notifier.channels.attempts_at(HOOK), 3);
        let copies = notifier.dead_letters.copies.lock().unwrap();
        assert_eq!(copies.len(), 1);
        assert_eq!((copies[0].0.as_str(), copies[0].1), (HOOK, 3));
        assert!(copies[0].2.contains("HTTP 503"), "{}", copies[0].2);
    }

    #[tokio::test]
    async fn a_refusal_is_not_retried() {
        let channels =
            ScriptedChannels::failing(HOOK, vec![DeliveryError::Refused { status: 401 }]);
        let notifier = notifier(channels, Kept::default());
        let handled = notifier
            .handle(&state_changed(true, targets("terminal")))
            .await
            .unwrap();
        assert_eq!(handled.dead_lettered, 1);
        assert_eq!(notifier.channels.attempts_at(HOOK), 1);
    }

    #[tokio::test]
    async fn a_target_edited_outside_the_allow_list_is_never_contacted() {
        // Whoever may edit the SparkApplication may edit its notify annotation.
        let evil = json!([{"type": "webhook", "url": "https://169.254.169.254/latest/meta-data/"}]);
        let notifier = notifier(ScriptedChannels::default(), Kept::default());
        let handled = notifier.handle(&state_changed(true, evil)).await.unwrap();
        assert_eq!(handled.dead_lettered, 1);
        assert!(notifier.channels.attempts.lock().unwrap().is_empty());
        let copies = notifier.dead_letters.copies.lock().unwrap();
        assert!(copies[0].2.contains("not allowed"), "{}", copies[0].2);
    }

    #[tokio::test]
    async fn when_the_dead_letter_queue_is_down_the_event_is_kept_for_another_try() {
        let channels =
            ScriptedChannels::failing(HOOK, vec![DeliveryError::Refused { status: 410 }]);
        let kept = Kept {
            down: true,
            ..Kept::default()
        };
        let error = notifier(channels, kept)
            .handle(&state_changed(true, targets("terminal")))
            .await
            .unwrap_err();
        assert_eq!(error.event_id, "u-1/0/3");
    }

    #[tokio::test]
    async fn records_that_are_not_completion_events_or_name_no_target_are_skipped() {
        let notifier = notifier(ScriptedChannels::default(), Kept::default());
        assert_eq!(
            notifier.handle(b"not json").await.unwrap(),
            Handled::default()
        );
        assert_eq!(
            notifier
                .handle(&state_changed(true, json!([])))
                .await
                .unwrap(),
            Handled::default()
        );
        assert!(notifier.channels.attempts.lock().unwrap().is_empty());
    }

    #[test]
    fn back_off_doubles_up_to_its_cap_and_honours_a_shorter_hint() {
        let retry = RetryPolicy::default();
        assert_eq!(retry.backoff(1, None), Duration::from_millis(500));
        assert_eq!(retry.backoff(3, None), Duration::from_secs(2));
        assert_eq!(retry.backoff(10, None), Duration::from_secs(8));
        assert_eq!(
            retry.backoff(1, Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        assert_eq!(
            retry.backoff(1, Some(Duration::from_secs(3600))),
            Duration::from_secs(8)
        );
    }

    #[test]
    fn terminal_targets_want_a_rejection_and_a_dry_run_but_not_a_created_submit() {
        let target = NotifyTarget::Webhook {
            url: HOOK.into(),
            events: NotifyEvents::Terminal,
        };
        let applied = |result: &str| {
            spark_gateway_events::decode_completion_event(
                &serde_json::to_vec(&json!({
                    "specversion": "1.0", "id": "x", "source": "s",
                    "type": spark_gateway_events::REQUEST_APPLIED_EVENT_TYPE,
                    "data": {"request_id": "r", "action": "submit", "application_name": "a",
                             "namespace": "n", "result": result},
                }))
                .unwrap(),
            )
            .unwrap()
        };
        assert!(!wants(&target, &applied("created")));
        assert!(wants(&target, &applied("validated")));
    }
}
