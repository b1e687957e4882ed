//! A status answer from the live object while it exists, and from the job record once it is gone:
//! the one lookup the status function and the CLI share.

use spark_gateway::cluster::ClusterApi;
use spark_gateway::{Gateway, GatewayError};
use spark_gateway_events::{GetJobStatusRequest, GetJobStatusResponse};
use spark_gateway_records::{JobRecordStore, RecordError};

/// A status query that could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The gateway refused the query, found nothing, or the cluster failed.
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    /// The application is gone from the cluster and the record store could not be read.
    #[error("the application is not on the cluster and its record could not be read")]
    Records(#[source] RecordError),
}

/// The status `request` asks for: the live object's (`source: live`); when the cluster has none, the
/// record's (`source: record`), if `records` is configured and holds one.
///
/// The gateway checks the query against the cluster's policy first, so a record is never read for a
/// namespace or a name the policy refuses.
pub async fn job_status<A: ClusterApi, R: JobRecordStore>(
    gateway: &Gateway<A>,
    records: Option<&R>,
    request: &GetJobStatusRequest,
) -> Result<GetJobStatusResponse, StatusError> {
    match gateway.status(request).await {
        Err(GatewayError::NotFound {
            cluster,
            namespace,
            application,
        }) => {
            let not_found = || GatewayError::NotFound {
                cluster: cluster.clone(),
                namespace: namespace.clone(),
                application: application.clone(),
            };
            let (Some(records), Ok(lookup)) = (records, request.lookup()) else {
                return Err(not_found().into());
            };
            match records.find(&cluster, &namespace, lookup).await {
                Ok(Some(record)) => Ok(record.into_status()),
                Ok(None) => Err(not_found().into()),
                Err(error) => Err(StatusError::Records(error)),
            }
        }
        answer => Ok(answer?),
    }
}
