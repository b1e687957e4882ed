//! The consumer: the same request handlers as the Lambda functions, run as a long-lived process (for
//! the local world, where Lambda cannot run, and for teams that run outside Lambda).
//!
//! - [`sqs`]: long polling in batches; visibility is extended while messages are in flight, and a
//!   message is deleted only once its outcome is final.
//! - [`kafka`]: a consumer group; a record's offset is stored only once its outcome is final, and
//!   transient failures are retried in place with back-off, holding the partition's order.
//! - [`notify`]: the notifier (`--notify-topic`), a consumer group on the completion topic whose
//!   offsets are stored in arrival order once each record's deliveries are done.
//! - `/healthz` and `/readyz` are `spark_gateway_ops`, the endpoint the watcher serves too.
//!
//! Both loops stop taking new work when their shutdown signal fires and finish what they hold.

pub mod kafka;
pub mod notify;
pub mod sqs;

use std::time::Duration;

/// Back-off before the `attempt`-th retry: 1 s, 2 s, 4 s, ... capped at 30 s.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.saturating_sub(1).min(5)).min(Duration::from_secs(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let waits: Vec<u64> = (1..=8).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
    }
}
