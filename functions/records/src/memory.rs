//! The in-memory store, for tests of the code that writes and reads records.

use std::collections::BTreeMap;
use std::sync::Mutex;

use spark_gateway_events::{JobLookup, JobRecord};

use crate::{JobRecordStore, RecordError, RecordKeys, Stored, newest};

/// Records in a map, keyed like [`crate::S3Records`]'s objects, with the same rule: never replaced
/// by one that covers less.
#[derive(Debug, Default)]
pub struct MemoryRecords {
    records: Mutex<BTreeMap<String, JobRecord>>,
}

impl MemoryRecords {
    /// Every stored record, by key.
    pub fn all(&self) -> BTreeMap<String, JobRecord> {
        self.records.lock().expect("not poisoned").clone()
    }
}

impl JobRecordStore for MemoryRecords {
    async fn put(&self, record: &JobRecord) -> Result<Stored, RecordError> {
        let key = RecordKeys::new("").record(record);
        let mut records = self.records.lock().expect("not poisoned");
        match records.get(&key) {
            Some(stored) if stored.through >= record.through => Ok(Stored::KeptNewer),
            _ => {
                records.insert(key, record.clone());
                Ok(Stored::Written)
            }
        }
    }

    async fn find(
        &self,
        cluster: &str,
        namespace: &str,
        lookup: JobLookup<'_>,
    ) -> Result<Option<JobRecord>, RecordError> {
        let records = self.records.lock().expect("not poisoned");
        let matching = records.values().filter(|record| {
            let status = &record.status;
            status.cluster == cluster
                && status.namespace == namespace
                && match lookup {
                    JobLookup::Name(name) => status.application_name == name,
                    JobLookup::RequestId(id) => status.request_id.as_deref() == Some(id.as_str()),
                }
        });
        Ok(newest(matching.cloned()))
    }
}
