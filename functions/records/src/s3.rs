//! The S3 store: one JSON object per application and one index entry per request id, written with
//! S3's conditional writes.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use spark_gateway_events::{JobLookup, JobRecord};

use crate::{JobRecordStore, RecordError, RecordKeys, Stored, newest};

/// Attempts of one put that lost the race to a concurrent writer before it gives up (transiently).
const MAX_CONDITIONAL_ATTEMPTS: usize = 5;

/// An S3 client from the shared AWS configuration; path-style addressing when an endpoint is set
/// (LocalStack and other S3-compatible stores), virtual-hosted otherwise (AWS).
pub fn s3_client(aws: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(aws)
        .force_path_style(aws.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Records in an S3 bucket under a prefix.
#[derive(Debug, Clone)]
pub struct S3Records {
    client: aws_sdk_s3::Client,
    bucket: String,
    keys: RecordKeys,
}

impl S3Records {
    /// Records in `bucket` under `prefix`.
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>, prefix: &str) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            keys: RecordKeys::new(prefix),
        }
    }

    fn location(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    fn store_error<E, R>(
        &self,
        operation: &'static str,
        key: &str,
        error: SdkError<E, R>,
    ) -> RecordError
    where
        E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
        R: std::fmt::Debug + Send + Sync + 'static,
    {
        RecordError::Store {
            operation,
            location: self.location(key),
            transient: is_transient(&error),
            source: error.into(),
        }
    }

    async fn read_object(
        &self,
        key: &str,
    ) -> Result<Option<(Vec<u8>, Option<String>)>, RecordError> {
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => output,
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None);
            }
            Err(error) => return Err(self.store_error("GetObject", key, error)),
        };
        let etag = output.e_tag().map(str::to_string);
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|error| RecordError::Store {
                operation: "GetObject",
                location: self.location(key),
                transient: true,
                source: error.into(),
            })?
            .into_bytes();
        Ok(Some((bytes.to_vec(), etag)))
    }

    async fn read_record(
        &self,
        key: &str,
    ) -> Result<Option<(JobRecord, Option<String>)>, RecordError> {
        let Some((bytes, etag)) = self.read_object(key).await? else {
            return Ok(None);
        };
        let record = serde_json::from_slice(&bytes).map_err(|source| RecordError::Corrupt {
            location: self.location(key),
            source,
        })?;
        Ok(Some((record, etag)))
    }

    /// The index entry is the same bytes whoever writes it, so it is written unconditionally, on every
    /// put: a crash between the record and its index entry is mended by the next put.
    async fn write_index(&self, record: &JobRecord, record_key: &str) -> Result<(), RecordError> {
        let Some(index) = self.keys.request_index(record) else {
            return Ok(());
        };
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&index)
            .content_type("text/plain")
            .body(ByteStream::from(record_key.as_bytes().to_vec()))
            .send()
            .await
            .map_err(|error| self.store_error("PutObject", &index, error))?;
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, RecordError> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| self.store_error("ListObjectsV2", prefix, error))?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_string)),
            );
        }
        Ok(keys)
    }
}

impl JobRecordStore for S3Records {
    async fn put(&self, record: &JobRecord) -> Result<Stored, RecordError> {
        let key = self.keys.record(record);
        let body = serde_json::to_vec(record).expect("a record serializes");
        for _ in 0..MAX_CONDITIONAL_ATTEMPTS {
            let write = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(&key)
                .content_type("application/json")
                .body(ByteStream::from(body.clone()));
            let write = match self.read_record(&key).await? {
                Some((stored, _)) if stored.through >= record.through => {
                    self.write_index(record, &key).await?;
                    return Ok(Stored::KeptNewer);
                }
                Some((_, Some(etag))) => write.if_match(etag),
                // A store that gives no ETag cannot take a conditional replace; last writer wins.
                Some((_, None)) => write,
                None => write.if_none_match("*"),
            };
            match write.send().await {
                Ok(_) => {
                    self.write_index(record, &key).await?;
                    return Ok(Stored::Written);
                }
                Err(error) if lost_the_race(&error) => continue,
                Err(error) => return Err(self.store_error("PutObject", &key, error)),
            }
        }
        Err(RecordError::Contended {
            location: self.location(&key),
        })
    }

    async fn find(
        &self,
        cluster: &str,
        namespace: &str,
        lookup: JobLookup<'_>,
    ) -> Result<Option<JobRecord>, RecordError> {
        let mut records = Vec::new();
        match lookup {
            JobLookup::Name(name) => {
                for key in self
                    .list(&self.keys.by_name(cluster, namespace, name))
                    .await?
                {
                    records.extend(self.read_record(&key).await?.map(|(record, _)| record));
                }
            }
            JobLookup::RequestId(request_id) => {
                let prefix = self
                    .keys
                    .by_request_id(cluster, namespace, request_id.as_str());
                for index in self.list(&prefix).await? {
                    let Some((target, _)) = self.read_object(&index).await? else {
                        continue;
                    };
                    let target = String::from_utf8_lossy(&target).into_owned();
                    // An index entry outlives its record only until the lifecycle rule removes it too.
                    records.extend(self.read_record(&target).await?.map(|(record, _)| record));
                }
            }
        }
        Ok(newest(records))
    }
}

/// `412 PreconditionFailed` (the object changed, or appeared, since it was read) and `409
/// ConditionalRequestConflict` (another conditional write to it is in progress): read again.
fn lost_the_race<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    error
        .as_service_error()
        .and_then(ProvideErrorMetadata::code)
        .is_some_and(|code| matches!(code, "PreconditionFailed" | "ConditionalRequestConflict"))
}

/// Timeouts, connection failures, throttling and server errors pass; the rest (no bucket, access
/// denied) stays until someone changes something.
fn is_transient<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            matches!(
                code,
                "SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable"
            ) || code.is_empty()
        }
        _ => false,
    }
}
