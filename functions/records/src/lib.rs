//! Job records: what the gateway keeps of an application once the operator's `ttlAfterStopMillis` or
//! a delete removed the SparkApplication, so "did my job succeed?" keeps an answer.
//!
//! The watcher writes ([`JobRecordStore::put`]) before it publishes the event that ends an application
//! and before it lets go of its finalizer; the status function and the CLI read
//! ([`JobRecordStore::find`]) when the live object is gone. The store is a narrow trait with two
//! implementations: [`S3Records`] (AWS S3, or LocalStack's in the local world) and [`MemoryRecords`]
//! (tests).
//!
//! # Layout in S3 ([`RecordKeys`])
//! - `<prefix>applications/<cluster>/<namespace>/<name>/<uid>.json`: the [`JobRecord`]. A name reused by
//!   a new application gets a new uid, so records never overwrite each other's.
//! - `<prefix>requests/<cluster>/<namespace>/<request id>/<uid>`: an index entry whose body is the
//!   record's key, so a record is found by request id with one list and one read.
//!
//! Writes are conditional (`If-None-Match: *` for a new record, `If-Match: <etag>` to replace one), and
//! a record is never replaced by one that covers less history, so two watchers briefly both leading,
//! or a stale observation, cannot roll a record back. Retention is the bucket's lifecycle rule (the SAM
//! template's `JobRecordRetentionDays`).

mod memory;
mod s3;

use std::future::Future;

use spark_gateway_core::{Classify, Disposition};
use spark_gateway_events::{JobLookup, JobRecord};

pub use memory::MemoryRecords;
pub use s3::{S3Records, s3_client};

/// The environment variable naming the records bucket; without it no records are written or read.
pub const BUCKET_VARIABLE: &str = "SPARK_GATEWAY_RECORDS_BUCKET";
/// The environment variable with the key prefix in it.
pub const PREFIX_VARIABLE: &str = "SPARK_GATEWAY_RECORDS_PREFIX";
/// The key prefix when none is set.
pub const DEFAULT_PREFIX: &str = "job-records/";

/// Where the records are: a bucket and a key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordsConfig {
    /// The bucket.
    pub bucket: String,
    /// The key prefix, usually ending in `/`.
    pub prefix: String,
}

impl RecordsConfig {
    /// Reads [`BUCKET_VARIABLE`] and [`PREFIX_VARIABLE`] through `lookup` (empty counts as unset);
    /// `None` without a bucket.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
        Some(Self {
            bucket: var(BUCKET_VARIABLE)?,
            prefix: var(PREFIX_VARIABLE).unwrap_or_else(|| DEFAULT_PREFIX.into()),
        })
    }

    /// The S3 store these settings name.
    pub fn s3(&self, aws: &aws_config::SdkConfig) -> S3Records {
        S3Records::new(s3_client(aws), self.bucket.clone(), &self.prefix)
    }
}

/// Where records are kept.
pub trait JobRecordStore: Send + Sync + 'static {
    /// Stores `record` unless the stored one already covers as much history or more.
    fn put(&self, record: &JobRecord) -> impl Future<Output = Result<Stored, RecordError>> + Send;

    /// The record of the application `lookup` names in `namespace` on `cluster`; the newest one when a
    /// name was used by several applications over time.
    fn find(
        &self,
        cluster: &str,
        namespace: &str,
        lookup: JobLookup<'_>,
    ) -> impl Future<Output = Result<Option<JobRecord>, RecordError>> + Send;
}

/// What [`JobRecordStore::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The record was written.
    Written,
    /// The stored record already covered this much history; it was kept.
    KeptNewer,
}

/// A store call that failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The store did not do what was asked.
    #[error("job records: {operation} {location} failed")]
    Store {
        /// The store's operation (`PutObject`, ...).
        operation: &'static str,
        /// The bucket and key.
        location: String,
        /// Whether retrying may succeed without anyone changing anything.
        transient: bool,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A stored object is not a record (written by something else, or a newer document version).
    #[error("job records: {location} is not a job record")]
    Corrupt {
        /// The bucket and key.
        location: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// Concurrent writers kept replacing the record between read and write.
    #[error("job records: {location} kept changing while being written")]
    Contended {
        /// The bucket and key.
        location: String,
    },
}

/// Outages and contention are worth retrying; a missing bucket, a refused permission or a foreign
/// object need a person (the watcher still retries them, slowly: skipping the record would leave a
/// terminal event without one).
impl Classify for RecordError {
    fn disposition(&self) -> Disposition {
        Disposition::transient_or_configuration(match self {
            Self::Store { transient, .. } => *transient,
            Self::Corrupt { .. } => false,
            Self::Contended { .. } => true,
        })
    }
}

/// The key layout (pure), shared by every store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordKeys {
    prefix: String,
}

impl RecordKeys {
    /// Keys under `prefix` (for example `job-records/`; empty for the bucket's root).
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// Where the record of `record`'s application lives.
    pub fn record(&self, record: &JobRecord) -> String {
        let status = &record.status;
        format!(
            "{}{}.json",
            self.by_name(&status.cluster, &status.namespace, &status.application_name),
            segment(&status.uid)
        )
    }

    /// The prefix of every record of applications named `name`.
    pub fn by_name(&self, cluster: &str, namespace: &str, name: &str) -> String {
        format!(
            "{}applications/{}/{}/{}/",
            self.prefix,
            segment(cluster),
            segment(namespace),
            segment(name)
        )
    }

    /// The index entry of `record`'s request, when it has a request id.
    pub fn request_index(&self, record: &JobRecord) -> Option<String> {
        let status = &record.status;
        let request_id = status.request_id.as_deref()?;
        Some(format!(
            "{}{}",
            self.by_request_id(&status.cluster, &status.namespace, request_id),
            segment(&status.uid)
        ))
    }

    /// The prefix of the index entries of `request_id`.
    pub fn by_request_id(&self, cluster: &str, namespace: &str, request_id: &str) -> String {
        format!(
            "{}requests/{}/{}/{}/",
            self.prefix,
            segment(cluster),
            segment(namespace),
            segment(request_id)
        )
    }
}

/// Names, namespaces, uids and request ids are DNS labels or label values already; the cluster is the
/// gateway's own name for it. Anything else is escaped so no value can reach into another's prefix.
fn segment(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The newest of `records` (a name reused over time): latest creation, then latest write.
pub fn newest(records: impl IntoIterator<Item = JobRecord>) -> Option<JobRecord> {
    records
        .into_iter()
        .max_by_key(|record| (record.status.created_at, record.recorded_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_cannot_escape_their_segment() {
        assert_eq!(segment("prod-eu.1"), "prod-eu.1");
        assert_eq!(segment("a/../b"), "a%2F..%2Fb");
        let keys = RecordKeys::new("job-records/");
        assert_eq!(
            keys.by_request_id("dev", "spark-jobs", "req-1"),
            "job-records/requests/dev/spark-jobs/req-1/"
        );
        assert_eq!(
            keys.by_name("dev", "spark-jobs", "pi"),
            "job-records/applications/dev/spark-jobs/pi/"
        );
    }
}
