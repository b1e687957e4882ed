//! Request handling shared by the Lambda functions and the long-running consumer.
//!
//! # Layout
//! - [`message`]: a request message from any transport, and the application it addresses.
//! - [`processor`]: one message to exactly one [`Outcome`](processor::Outcome): applied (what it did
//!   published as `RequestApplied`), rejected (`RequestRejected` published, copy dead-lettered) or retry.
//! - [`batch`]: many messages with per-application (or per-partition) order and bounded concurrency.
//! - [`lambda_events`]: SQS and Kafka Lambda events in, partial-batch responses out.
//! - [`replay`]: replays never undo later requests: the per-partition rule and its ledger (S3, or the
//!   consumer group's committed offsets).
//! - [`status`]: the status function for direct invocations and function URLs.
//! - [`live`]: the handlers wired to the real gateway, Kafka and SQS from the environment.
//! - [`sinks`]: the completion topic and dead-letter queue/topic, behind narrow traits.
//!
//! ```text
//! SQS / Kafka ─▶ InboundMessage ─▶ Processor ─▶ Gateway (submit / delete)
//!                                     │ permanent
//!                                     ├─▶ RequestRejected ─▶ completion topic
//!                                     └─▶ original message ─▶ dead-letter queue / topic
//! ```

pub mod batch;
pub mod lambda_events;
pub mod live;
pub mod message;
pub mod processor;
pub mod replay;
pub mod sinks;
pub mod status;

pub use message::InboundMessage;
pub use processor::{Applied, Operations, Outcome, Processor};
