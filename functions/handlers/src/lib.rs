//! Request handling shared by the Lambda functions and the long-running consumer.
//!
//! # Layout
//! - [`message`]: a request message from any transport, and the application it addresses.
//! - [`processor`]: one message to exactly one [`Outcome`](processor::Outcome): applied (what it did
//!   published as `RequestApplied`), rejected (`RequestRejected` published, copy dead-lettered) or retry.
//! - [`batch`]: many messages with per-application (or per-partition) order and bounded concurrency.
//! - [`replay`]: replays never undo later requests: the per-partition rule and its ledger (S3, or the
//!   consumer group's committed offsets).
//! - [`live`]: the handlers wired to the real gateway, Kafka and SQS from the environment.
//! - [`sinks`]: the completion topic and dead-letter queue/topic, behind narrow traits.
//! - [`sqs`]: the SQS adapter, every SQS call of the system (the consumer's polling, dead-letter copies).
//! - [`status`]: a status answer from the live object, or from the job record once it is gone.
//! - `fakes` (feature `fakes`): the gateway and the sinks in memory, for tests.
//!
//! The Lambda event shapes (SQS, Kafka, function URLs) live in `spark-gateway-lambda`, the SQS and Kafka
//! polling loops in `spark-gateway-consumer` (through [`sqs`] and `spark-gateway-kafka`): this crate's
//! handling is transport-neutral.
//!
//! ```text
//! SQS / Kafka ─▶ InboundMessage ─▶ Processor ─▶ Gateway (submit / delete)
//!                                     │ permanent
//!                                     ├─▶ RequestRejected ─▶ completion topic
//!                                     └─▶ original message ─▶ dead-letter queue / topic
//! ```

pub mod batch;
#[cfg(feature = "fakes")]
pub mod fakes;
pub mod live;
pub mod message;
pub mod processor;
pub mod replay;
pub mod sinks;
pub mod sqs;
pub mod status;

pub use message::InboundMessage;
pub use processor::{Applied, Operations, Outcome, Processor};
