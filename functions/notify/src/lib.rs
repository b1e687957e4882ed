//! The notifier: delivers a submit's events to the notification targets it named (an SQS reply
//! queue, a signed HTTPS webhook), at least once, with bounded retries and a dead-letter queue.
//!
//! ```text
//! completion topic ──▶ Notifier::handle ──▶ policy check (again) ──▶ SQS queue / webhook
//!                                                   │ refused, or down through every retry
//!                                                   └──▶ dead-letter queue (event + why)
//! ```
//!
//! It runs as the `notifier` Lambda function on the completion topic and as
//! `spark-gateway-consumer --notify`; both hand each record to [`Notifier::handle`] and commit only
//! after it returns `Ok`.
//!
//! # Layout
//! - [`deliver`]: which targets want an event, the retries, the dead-letter decision (pure apart
//!   from the [`Channels`] and [`NotifyDeadLetters`] traits).
//! - [`signature`]: Standard Webhooks signing and verification.
//! - [`secrets`]: per-cluster signing secrets from Secrets Manager.
//! - [`live`]: the real channels and the configuration from the environment.

pub mod deliver;
pub mod live;
pub mod secrets;
pub mod signature;

pub use deliver::{
    Channels, DeadLetterError, Delivery, DeliveryError, FailedDelivery, Handled, Notifier,
    NotifyDeadLetters, NotifyError, RetryPolicy, wants,
};
pub use live::{
    LiveChannels, LiveNotifier, NotifyConfig, NotifyConfigError, NotifySetupError,
    SqsNotifyDeadLetters, live_notifier,
};
pub use signature::{SigningSecret, VerifyError, sign, verify};
