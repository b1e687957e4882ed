//! Replays never undo later requests.
//!
//! Kafka is delivered at least once, in partition order: a Lambda batch that fails is replayed whole
//! (or bisected), and the consumer re-reads what its group had not committed after a crash or a
//! rebalance. Replaying a record is harmless on its own (a repeated submit is a duplicate, a repeated
//! delete finds nothing) but not after a *later* record of the same application was applied: replaying
//! "submit A" after "delete A" creates A again, replaying "delete A" after a new "submit A" deletes it.
//!
//! The rule that prevents it, per topic-partition: **before a record is applied, every earlier record
//! that changed the same application is durably recorded as done** ([`ReplayGuard`], pure, no I/O).
//! Where a replay then starts, no replayed record has a later change of its application behind it, so
//! replaying it is harmless again. Where "durably recorded" lives is a [`PositionLedger`]:
//!
//! - the Lambda function: an object per topic-partition in S3 ([`S3PositionLedger`]) holding the
//!   offset through which every record reached its final outcome; it is read once per partition per
//!   batch (a replay skips what it names) and written only before a record whose application an
//!   earlier record of the same batch changed, and when the batch fails. A batch of distinct
//!   applications that succeeds writes nothing.
//! - the consumer: the consumer group's own committed offset (a replay starts after it, so nothing is
//!   read), committed synchronously at the same points.
//!
//! A skipped record's outcome event was published by the delivery that recorded it (an outcome is final
//! only once its event is acknowledged), under the same stable id, so it is not published again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};

/// A Kafka topic-partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Partition {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
}

/// What to do with the next record of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// An earlier delivery already took it to its final outcome: acknowledge without applying it again.
    Skip,
    /// An earlier record of the partition must be retried first: do not attempt it.
    HoldBack,
    /// Apply it.
    Apply,
    /// First record durably that every record through offset `through` is done, then apply it.
    RecordThenApply {
        /// The offset to record.
        through: i64,
    },
}

/// Applications remembered per partition between durable points; past this many one is made anyway,
/// so the consumer's memory stays bounded (a Lambda batch of distinct applications never gets here
/// below 10,000 records, the largest Kafka batch Lambda sends).
pub const MAX_PENDING_APPLICATIONS: usize = 10_000;

/// The decision for one partition's records, taken in offset order. Pure: the caller does the I/O the
/// steps ask for and reports back.
#[derive(Debug, Clone, Default)]
pub struct ReplayGuard {
    /// What the ledger said when the partition was read: everything through it is done.
    done_through: Option<i64>,
    /// The highest offset durably recorded by this guard or read from the ledger.
    recorded: Option<i64>,
    /// The last record with a final outcome in this run.
    last_final: Option<i64>,
    /// Applications changed by final records after `recorded`.
    pending: BTreeSet<String>,
    /// A record must be retried: nothing later is attempted.
    blocked: bool,
}

impl ReplayGuard {
    /// A guard for a partition whose ledger says every record through `done_through` is done.
    pub fn new(done_through: Option<i64>) -> Self {
        Self {
            done_through,
            recorded: done_through,
            ..Self::default()
        }
    }

    /// The step for the record at `offset` that addresses `application` (its ordering key).
    pub fn next(&self, offset: i64, application: &str) -> Step {
        if self.done_through.is_some_and(|done| offset <= done) {
            return Step::Skip;
        }
        if self.blocked {
            return Step::HoldBack;
        }
        let must_record =
            self.pending.contains(application) || self.pending.len() >= MAX_PENDING_APPLICATIONS;
        match self.last_final.filter(|_| must_record) {
            Some(through) => Step::RecordThenApply { through },
            None => Step::Apply,
        }
    }

    /// Every record through `through` is now durably recorded as done.
    pub fn recorded(&mut self, through: i64) {
        self.recorded = self.recorded.max(Some(through));
        self.pending.clear();
    }

    /// The record at `offset` (not skipped) ended with a final outcome (`is_final`) or must be retried.
    pub fn completed(&mut self, offset: i64, application: &str, is_final: bool) {
        if is_final && !self.blocked {
            self.last_final = Some(offset);
            self.pending.insert(application.to_string());
        } else {
            self.blocked = true;
        }
    }

    /// Once a record must be retried: the offset to record so that the replay skips what is done (`None`
    /// when nothing new is done, or when nothing must be retried: then the transport acknowledges all).
    pub fn to_record_before_replay(&self) -> Option<i64> {
        self.unrecorded_done().filter(|_| self.blocked)
    }

    /// The last offset with a final outcome, when it is not recorded yet.
    pub fn unrecorded_done(&self) -> Option<i64> {
        self.last_final
            .filter(|last| self.recorded.is_none_or(|r| *last > r))
    }
}

/// The ledger could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The store failed (unreachable, denied, ...).
    #[error("replay ledger: {operation} s3://{bucket}/{key} failed")]
    Store {
        /// `GetObject` or `PutObject`.
        operation: &'static str,
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// The SDK's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An entry that is not what this module writes.
    #[error("replay ledger: s3://{bucket}/{key} is not a ledger entry")]
    Corrupt {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// The consumer group could not commit its offsets.
    #[error("replay ledger: committing {topic}/{partition} through offset {offset} failed")]
    Commit {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// The offset.
        offset: i64,
        /// Kafka's error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
}

/// Where "every record of a partition through this offset is done" is kept.
pub trait PositionLedger: Send + Sync {
    /// The offset through which every record of `partition` is done, if any is recorded.
    fn done_through(
        &self,
        partition: &Partition,
    ) -> impl Future<Output = Result<Option<i64>, LedgerError>> + Send;

    /// Records durably that every record of `partition` through `offset` is done.
    fn record(
        &self,
        partition: &Partition,
        offset: i64,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;
}

/// No ledger configured: nothing is read or recorded, and replays re-apply what they carry.
impl<L: PositionLedger> PositionLedger for Option<L> {
    async fn done_through(&self, partition: &Partition) -> Result<Option<i64>, LedgerError> {
        match self {
            Some(ledger) => ledger.done_through(partition).await,
            None => Ok(None),
        }
    }

    async fn record(&self, partition: &Partition, offset: i64) -> Result<(), LedgerError> {
        match self {
            Some(ledger) => ledger.record(partition, offset).await,
            None => Ok(()),
        }
    }
}

impl<L: PositionLedger> PositionLedger for &L {
    fn done_through(
        &self,
        partition: &Partition,
    ) -> impl Future<Output = Result<Option<i64>, LedgerError>> + Send {
        (**self).done_through(partition)
    }

    fn record(
        &self,
        partition: &Partition,
        offset: i64,
    ) -> impl Future<Output = Result<(), LedgerError>> + Send {
        (**self).record(partition, offset)
    }
}

/// A ledger in memory (unit tests, and a process that is its own only reader).
#[derive(Debug, Default)]
pub struct MemoryLedger {
    entries: Mutex<BTreeMap<Partition, i64>>,
    writes: Mutex<Vec<(Partition, i64)>>,
}

impl MemoryLedger {
    /// Every `record` call so far, in order.
    pub fn writes(&self) -> Vec<(Partition, i64)> {
        self.writes.lock().expect("ledger lock").clone()
    }
}

impl PositionLedger for MemoryLedger {
    async fn done_through(&self, partition: &Partition) -> Result<Option<i64>, LedgerError> {
        Ok(self
            .entries
            .lock()
            .expect("ledger lock")
            .get(partition)
            .copied())
    }

    async fn record(&self, partition: &Partition, offset: i64) -> Result<(), LedgerError> {
        let mut entries = self.entries.lock().expect("ledger lock");
        let entry = entries.entry(partition.clone()).or_insert(offset);
        *entry = (*entry).max(offset);
        self.writes
            .lock()
            .expect("ledger lock")
            .push((partition.clone(), offset));
        Ok(())
    }
}

/// One ledger object.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    topic: String,
    partition: i32,
    done_through: i64,
}

/// The ledger in S3: one small JSON object per topic-partition, `<prefix><topic>/<partition>`. Lambda
/// invokes at most one batch per partition at a time, so a plain overwrite never races.
#[derive(Debug, Clone)]
pub struct S3PositionLedger {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl S3PositionLedger {
    /// A ledger in `bucket` under `prefix` (give each function or consumer group its own: positions
    /// are per reader).
    pub fn new(client: aws_sdk_s3::Client, bucket: String, prefix: String) -> Self {
        Self {
            client,
            bucket,
            prefix,
        }
    }

    fn key(&self, partition: &Partition) -> String {
        format!("{}{}/{}", self.prefix, partition.topic, partition.partition)
    }

    fn store_error<E: std::error::Error + Send + Sync + 'static>(
        &self,
        operation: &'static str,
        key: &str,
        error: E,
    ) -> LedgerError {
        LedgerError::Store {
            operation,
            bucket: self.bucket.clone(),
            key: key.to_string(),
            source: error.into(),
        }
    }
}

impl PositionLedger for S3PositionLedger {
    async fn done_through(&self, partition: &Partition) -> Result<Option<i64>, LedgerError> {
        let key = self.key(partition);
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None);
            }
            Err(error) => return Err(self.store_error("GetObject", &key, error)),
        };
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|error| self.store_error("GetObject", &key, error))?
            .into_bytes();
        let entry: Entry =
            serde_json::from_slice(&bytes).map_err(|source| LedgerError::Corrupt {
                bucket: self.bucket.clone(),
                key: key.clone(),
                source,
            })?;
        Ok(Some(entry.done_through))
    }

    async fn record(&self, partition: &Partition, offset: i64) -> Result<(), LedgerError> {
        let key = self.key(partition);
        let entry = Entry {
            topic: partition.topic.clone(),
            partition: partition.partition,
            done_through: offset,
        };
        let body = serde_json::to_vec(&entry).expect("an entry serializes");
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|error| self.store_error("PutObject", &key, error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `records` (offset, application, outcome is final) through a guard, as a caller would: the
    /// steps taken, and what was recorded before the replay.
    fn run(done_through: Option<i64>, records: &[(i64, &str, bool)]) -> (Vec<Step>, Option<i64>) {
        let mut guard = ReplayGuard::new(done_through);
        let mut steps = Vec::new();
        for (offset, application, is_final) in records {
            let step = guard.next(*offset, application);
            steps.push(step);
            match step {
                Step::Skip => continue,
                Step::RecordThenApply { through } => guard.recorded(through),
                Step::HoldBack | Step::Apply => {}
            }
            guard.completed(*offset, application, *is_final && step != Step::HoldBack);
        }
        (steps, guard.to_record_before_replay())
    }

    #[test]
    fn a_batch_of_distinct_applications_that_succeeds_records_nothing() {
        let (steps, before_replay) =
            run(None, &[(10, "a", true), (11, "b", true), (12, "c", true)]);
        assert_eq!(steps, [Step::Apply; 3]);
        assert_eq!(before_replay, None);
    }

    #[test]
    fn a_second_change_of_an_application_first_records_the_first() {
        // submit A, delete A, then a transiently failing record: the delete waits for the submit to
        // be recorded, and the failure records the delete before the replay.
        let (steps, before_replay) =
            run(None, &[(10, "a", true), (11, "a", true), (12, "x", false)]);
        assert_eq!(
            steps,
            [
                Step::Apply,
                Step::RecordThenApply { through: 10 },
                Step::Apply
            ]
        );
        assert_eq!(before_replay, Some(11));
    }

    #[test]
    fn the_replay_skips_what_is_recorded_and_applies_the_rest() {
        let (steps, before_replay) = run(
            Some(11),
            &[(10, "a", true), (11, "a", true), (12, "x", true)],
        );
        assert_eq!(steps, [Step::Skip, Step::Skip, Step::Apply]);
        assert_eq!(before_replay, None);
    }

    #[test]
    fn after_a_retry_nothing_later_is_attempted_and_only_the_done_prefix_is_recorded() {
        let (steps, before_replay) = run(
            None,
            &[
                (5, "a", true),
                (6, "b", false),
                (7, "c", true),
                (8, "a", true),
            ],
        );
        assert_eq!(
            steps,
            [Step::Apply, Step::Apply, Step::HoldBack, Step::HoldBack]
        );
        assert_eq!(before_replay, Some(5));
    }

    #[test]
    fn a_failure_before_anything_is_done_records_nothing() {
        let (steps, before_replay) = run(Some(3), &[(4, "a", false), (5, "b", true)]);
        assert_eq!(steps, [Step::Apply, Step::HoldBack]);
        assert_eq!(before_replay, None);
    }

    #[test]
    fn a_failure_with_nothing_new_since_the_last_record_writes_nothing_more() {
        let (steps, before_replay) = run(None, &[(1, "a", true), (2, "a", true), (3, "b", false)]);
        assert_eq!(steps[1], Step::RecordThenApply { through: 1 });
        // Offset 2 is done but not recorded yet.
        assert_eq!(before_replay, Some(2));
        let (_, before_replay) = run(None, &[(1, "a", true), (2, "a", false)]);
        assert_eq!(
            before_replay, None,
            "offset 1 was recorded before 2 was tried"
        );
    }

    #[test]
    fn a_rejected_record_counts_as_a_change_of_its_application() {
        // A refused submit's replay would publish its rejection and dead-letter it again.
        let mut guard = ReplayGuard::new(None);
        guard.completed(1, "a", true);
        assert_eq!(guard.next(2, "a"), Step::RecordThenApply { through: 1 });
        guard.recorded(1);
        assert_eq!(guard.next(2, "a"), Step::Apply);
    }

    #[test]
    fn pending_applications_are_bounded() {
        let mut guard = ReplayGuard::new(None);
        for offset in 0..MAX_PENDING_APPLICATIONS as i64 {
            assert_eq!(guard.next(offset, &offset.to_string()), Step::Apply);
            guard.completed(offset, &offset.to_string(), true);
        }
        let last = MAX_PENDING_APPLICATIONS as i64 - 1;
        assert_eq!(
            guard.next(last + 1, "new"),
            Step::RecordThenApply { through: last }
        );
    }

    #[tokio::test]
    async fn the_memory_ledger_keeps_the_highest_offset() {
        let ledger = MemoryLedger::default();
        let p = Partition {
            topic: "t".into(),
            partition: 0,
        };
        assert_eq!(ledger.done_through(&p).await.unwrap(), None);
        ledger.record(&p, 7).await.unwrap();
        ledger.record(&p, 3).await.unwrap();
        assert_eq!(ledger.done_through(&p).await.unwrap(), Some(7));
        let none: Option<MemoryLedger> = None;
        none.record(&p, 9).await.unwrap();
        assert_eq!(none.done_through(&p).await.unwrap(), None);
    }
}
