//! One request message to exactly one outcome: applied, rejected (its terminal event published and the
//! message dead-lettered), or retry. Permanent failures never loop; transient ones are retried by the
//! transport until its delivery count runs out, and then also end in a visible rejection.

use jiff::Timestamp;
use spark_gateway::cluster::ClusterApi;
use spark_gateway::{Deleted, Gateway, GatewayError, Submitted};
use spark_gateway_core::{Classify, Disposition, error_chain};
use spark_gateway_events::{
    AppliedResult, CloudEvent, DecodeLimits, DeleteJobRequest, EventData, JobRequest, NotifyTarget,
    RejectionReason, RequestApplied, RequestRejected, SubmitJobRequest, decode_job_request_with,
    rejection_for_undecodable,
};

use crate::message::InboundMessage;
use crate::sinks::{DeadLetterCopy, DeadLetterSink, EventPublisher};

/// The operations a request can ask for (the gateway, or a fake in unit tests).
pub trait Operations: Send + Sync {
    /// Submit.
    fn submit(
        &self,
        request: &SubmitJobRequest,
    ) -> impl Future<Output = Result<Submitted, GatewayError>> + Send;
    /// Delete.
    fn delete(
        &self,
        request: &DeleteJobRequest,
    ) -> impl Future<Output = Result<Deleted, GatewayError>> + Send;
}

impl<A: ClusterApi> Operations for Gateway<A> {
    fn submit(
        &self,
        request: &SubmitJobRequest,
    ) -> impl Future<Output = Result<Submitted, GatewayError>> + Send {
        Gateway::submit(self, request)
    }
    fn delete(
        &self,
        request: &DeleteJobRequest,
    ) -> impl Future<Output = Result<Deleted, GatewayError>> + Send {
        Gateway::delete(self, request)
    }
}

/// A reference or a shared pointer to operations is operations (tests borrow a fake; the live handlers
/// share one gateway between tasks).
macro_rules! forward_operations {
    ($($pointer:ty),+) => {$(
        impl<T: Operations> Operations for $pointer {
            fn submit(
                &self,
                request: &SubmitJobRequest,
            ) -> impl Future<Output = Result<Submitted, GatewayError>> + Send {
                (**self).submit(request)
            }
            fn delete(
                &self,
                request: &DeleteJobRequest,
            ) -> impl Future<Output = Result<Deleted, GatewayError>> + Send {
                (**self).delete(request)
            }
        }
    )+};
}

forward_operations!(&T, std::sync::Arc<T>);

/// What happened to a message that was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A submit created its application.
    Submitted(Submitted),
    /// A delete removed (or found already gone) its application.
    Deleted(Deleted),
}

/// The one outcome of a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Applied: acknowledge.
    Applied(Applied),
    /// Refused for good: its rejection event is published and a copy dead-lettered; acknowledge.
    Rejected(Box<RequestRejected>),
    /// Not applied yet: leave it to be delivered again.
    Retry(String),
    /// Not applied again: an earlier delivery took it to its final outcome (its event is on the
    /// completion topic) and the replay ledger says so; acknowledge.
    Replayed,
}

impl Outcome {
    /// The message is done with and must be acknowledged (deleted from SQS, offset stored).
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Retry(_))
    }
}

/// Handles request messages with the gateway's operations, publishing rejections.
pub struct Processor<O, P> {
    operations: O,
    publisher: P,
    source: String,
    max_deliveries: u32,
    limits: DecodeLimits,
}

/// The CloudEvents `source` of rejections published by the job-requests function or the consumer.
pub const REJECTION_SOURCE: &str = "/spark-gateway/functions/job-requests";

impl<O: Operations, P: EventPublisher> Processor<O, P> {
    /// A processor that turns a transient failure into a final rejection at the `max_deliveries`-th
    /// delivery (match the queue's `maxReceiveCount`, so the rejection comes before SQS's own redrive).
    pub fn new(operations: O, publisher: P, max_deliveries: u32) -> Self {
        Self {
            operations,
            publisher,
            source: REJECTION_SOURCE.to_string(),
            max_deliveries,
            limits: DecodeLimits::default(),
        }
    }

    /// The same processor reading messages within `limits` instead of the default ones.
    pub fn with_limits(mut self, limits: DecodeLimits) -> Self {
        self.limits = limits;
        self
    }

    fn is_last_delivery(&self, message: &InboundMessage) -> bool {
        message
            .delivery_count
            .is_some_and(|n| n >= self.max_deliveries)
    }

    /// The operations (for the status function sharing them).
    pub fn operations(&self) -> &O {
        &self.operations
    }

    /// Where outcome events go.
    pub fn publisher(&self) -> &P {
        &self.publisher
    }

    /// Handles one message.
    pub async fn process<D: DeadLetterSink>(
        &self,
        message: &InboundMessage,
        dead_letters: &D,
    ) -> Outcome {
        let request = match decode_job_request_with(&message.body, self.limits) {
            Ok(request) => request,
            Err(error) => {
                let rejected =
                    rejection_for_undecodable(&message.body, &error, message.origin.clone());
                return self.reject(message, rejected, None, dead_letters).await;
            }
        };
        let result = match &request {
            JobRequest::Submit(submit) => {
                self.operations.submit(submit).await.map(Applied::Submitted)
            }
            JobRequest::Delete(delete) => {
                self.operations.delete(delete).await.map(Applied::Deleted)
            }
        };
        let (namespace, name) = request.target();
        let request_id = request.request_id().as_str();
        let error = match result {
            Ok(applied) => {
                tracing::info!(request_id, namespace, name, action = request.action().as_str(), outcome = ?applied, "request applied");
                return self.announce(&request, applied).await;
            }
            Err(error) => error,
        };
        match error.disposition() {
            Disposition::Permanent(reason) => {
                let rejected = rejection_for(&request, reason, &error, message);
                self.reject(message, rejected, traceparent(&request), dead_letters)
                    .await
            }
            disposition @ (Disposition::Transient { .. } | Disposition::Configuration) => {
                let reason = error_chain(&error);
                let last_delivery = self.is_last_delivery(message);
                tracing::warn!(
                    request_id,
                    namespace,
                    name,
                    last_delivery,
                    configuration = disposition == Disposition::Configuration,
                    error = %reason,
                    "request failed transiently"
                );
                if !last_delivery {
                    return Outcome::Retry(reason);
                }
                let mut rejected =
                    rejection_for(&request, RejectionReason::RetriesExhausted, &error, message);
                // The producer learns the category; addresses, paths and causes stay in the logs.
                rejected.message = format!(
                    "gave up after {} deliveries: {}; the request may be sent again once it is fixed",
                    self.max_deliveries,
                    error.unavailable_summary()
                );
                self.reject(message, rejected, traceparent(&request), dead_letters)
                    .await
            }
        }
    }

    async fn reject<D: DeadLetterSink>(
        &self,
        message: &InboundMessage,
        rejected: RequestRejected,
        traceparent: Option<String>,
        dead_letters: &D,
    ) -> Outcome {
        let rejected = rejected.bounded();
        let subject = rejected
            .namespace
            .as_ref()
            .zip(rejected.application_name.as_ref())
            .map(|(ns, n)| format!("{ns}/{n}"));
        let key = rejected
            .request_id
            .clone()
            .unwrap_or_else(|| rejected.origin.locator());
        let event = self.envelope(
            rejected.event_id(),
            rejected.clone(),
            key,
            traceparent,
            subject,
        );
        // Publish before dead-lettering and acknowledging: if anything fails the message comes back and
        // both happen again, under the same event id, so subscribers can de-duplicate. At the last
        // delivery a rejection that still cannot be published is dead-lettered anyway, with its reason
        // and a note that no event went out: never dropped, never looping.
        let published = match self.publisher.publish_rejection(&event).await {
            Ok(()) => true,
            Err(error) if self.is_last_delivery(message) => {
                tracing::error!(error = %error_chain(&error), request_id = rejected.request_id.as_deref().unwrap_or("-"),
                    "could not publish a rejection at the last delivery; dead-lettering it without its event");
                false
            }
            Err(error) => {
                let reason = error_chain(&error);
                tracing::warn!(error = %reason, "could not publish a rejection; the message will be delivered again");
                return Outcome::Retry(reason);
            }
        };
        let copy = DeadLetterCopy {
            message,
            rejection: &rejected,
            event_published: published,
        };
        if let Err(error) = dead_letters.dead_letter(&copy).await {
            let reason = error_chain(&error);
            tracing::warn!(error = %reason, "could not dead-letter a rejected message; it will be delivered again");
            return Outcome::Retry(reason);
        }
        tracing::info!(
            request_id = rejected.request_id.as_deref().unwrap_or("-"),
            reason = ?rejected.reason,
            message = %rejected.message,
            "request rejected"
        );
        Outcome::Rejected(Box::new(rejected))
    }

    /// Publishes what an applied request did; a request whose event cannot be published is retried
    /// (applying it again is harmless: a duplicate submit, or a delete that finds nothing).
    async fn announce(&self, request: &JobRequest, applied: Applied) -> Outcome {
        let (result, uid) = match &applied {
            Applied::Submitted(Submitted::Created { uid }) => {
                (AppliedResult::Created, Some(uid.clone()))
            }
            Applied::Submitted(Submitted::Duplicate { uid }) => {
                (AppliedResult::Duplicate, Some(uid.clone()))
            }
            Applied::Submitted(Submitted::Validated) => (AppliedResult::Validated, None),
            Applied::Deleted(Deleted::Deleted { uid }) => {
                (AppliedResult::Deleted, Some(uid.clone()))
            }
            Applied::Deleted(Deleted::AlreadyGone) => (AppliedResult::AlreadyGone, None),
        };
        let (namespace, name) = request.target();
        let data = RequestApplied {
            request_id: request.request_id().to_string(),
            action: request.action(),
            application_name: name.to_string(),
            namespace: namespace.to_string(),
            cluster: request.cluster().map(str::to_string),
            uid,
            result,
            submitted_by: submitted_by(request),
            // Applied means the policy admitted them.
            notify: notify_targets(request).to_vec(),
        };
        let subject = Some(format!("{namespace}/{name}"));
        let event = self.envelope(
            data.event_id(),
            data,
            request.request_id().to_string(),
            traceparent(request),
            subject,
        );
        if let Err(error) = self.publisher.publish_applied(&event).await {
            let reason = error_chain(&error);
            tracing::warn!(error = %reason, "could not publish what a request did; the message will be delivered again");
            return Outcome::Retry(reason);
        }
        Outcome::Applied(applied)
    }

    fn envelope<T: EventData>(
        &self,
        id: String,
        data: T,
        key: String,
        traceparent: Option<String>,
        subject: Option<String>,
    ) -> CloudEvent<T> {
        let mut event = CloudEvent::new(id, self.source.clone(), data);
        event.time = Some(Timestamp::now());
        event.partitionkey = Some(key);
        event.traceparent = traceparent;
        event.subject = subject;
        event
    }
}

fn submitted_by(request: &JobRequest) -> Option<String> {
    match request {
        JobRequest::Submit(r) => r.submitted_by.clone(),
        JobRequest::Delete(r) => r.submitted_by.clone(),
    }
}

fn traceparent(request: &JobRequest) -> Option<String> {
    match request {
        JobRequest::Submit(r) => r.traceparent.as_ref().map(ToString::to_string),
        JobRequest::Delete(r) => r.traceparent.as_ref().map(ToString::to_string),
    }
}

fn rejection_for(
    request: &JobRequest,
    reason: RejectionReason,
    error: &GatewayError,
    message: &InboundMessage,
) -> RequestRejected {
    let (namespace, name) = request.target();
    let violations = match error {
        GatewayError::Rejected { violations, .. } => violations.clone(),
        _ => Vec::new(),
    };
    // The targets hear of the rejection when the policy got to them and found nothing wrong: every
    // rejection after the policy check, and a policy rejection that names no target. An unknown
    // cluster has no policy to check them against. The notifier checks them again before delivering.
    let targets_admitted = reason != RejectionReason::UnknownCluster
        && !violations.iter().any(|v| v.field.starts_with("notify"));
    RequestRejected {
        request_id: Some(request.request_id().to_string()),
        action: Some(request.action()),
        application_name: Some(name.to_string()),
        namespace: Some(namespace.to_string()),
        cluster: request.cluster().map(str::to_string),
        submitted_by: submitted_by(request),
        reason,
        message: error.to_string(),
        violations,
        origin: message.origin.clone(),
        notify: if targets_admitted {
            notify_targets(request).to_vec()
        } else {
            Vec::new()
        },
    }
}

fn notify_targets(request: &JobRequest) -> &[NotifyTarget] {
    match request {
        JobRequest::Submit(r) => &r.notify,
        JobRequest::Delete(_) => &[],
    }
}
