//! JSON Schema (2020-12) documents generated from the contract types.
//!
//! The files in `events-schema/schemas/` are these documents, committed so that producers in any language
//! can use them; a test fails when they differ from what the code generates, and
//! `cargo run -p spark-gateway-events --bin generate-schemas` rewrites them.

use schemars::{JsonSchema, SchemaGenerator, generate::SchemaSettings};
use serde_json::{Value, json};

use crate::cloudevent::{CloudEvent, EventData};
use crate::{
    ApplicationStateChanged, DeleteJobRequest, GetJobStatusRequest, GetJobStatusResponse,
    JobRecord, JobRequest, RequestApplied, RequestRejected, SubmitJobRequest,
};

/// One generated schema document and the file it is committed as.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaDocument {
    /// File name under `events-schema/schemas/`; also the name examples are grouped by.
    pub name: &'static str,
    /// The schema.
    pub schema: Value,
}

impl SchemaDocument {
    /// The file name, `<name>.json`.
    pub fn file_name(&self) -> String {
        format!("{}.json", self.name)
    }

    /// The document as committed: pretty-printed with a trailing newline.
    pub fn to_file_contents(&self) -> String {
        let mut text =
            serde_json::to_string_pretty(&self.schema).expect("a JSON value always serializes");
        text.push('\n');
        text
    }
}

/// Every schema of the contract.
pub fn all() -> Vec<SchemaDocument> {
    vec![
        document::<JobRequest>(
            "job-request.v1",
            "A message on the request queue or topic: a submit or a delete, told apart by `action`.",
        ),
        document::<SubmitJobRequest>(
            "submit-job-request.v1",
            "The fields of a submit request (the seed gateway's SubmitSparkJob request plus request_id, without `action`).",
        ),
        document::<DeleteJobRequest>(
            "delete-job-request.v1",
            "The fields of a delete request, without `action`.",
        ),
        document::<GetJobStatusRequest>(
            "get-job-status-request.v1",
            "The status function's input.",
        ),
        document::<GetJobStatusResponse>(
            "get-job-status-response.v1",
            "The status function's answer.",
        ),
        document::<JobRecord>(
            "job-record.v1",
            "What the gateway keeps of an application after the cluster object is gone (one object per application in the record store).",
        ),
        event_document::<ApplicationStateChanged>(
            "application-state-changed.v1",
            "A SparkApplication entered a state: a CloudEvents 1.0 event in structured JSON mode.",
        ),
        event_document::<RequestRejected>(
            "request-rejected.v1",
            "A request was refused before reaching Kubernetes: its terminal CloudEvents 1.0 event.",
        ),
        event_document::<RequestApplied>(
            "request-applied.v1",
            "A request took effect in Kubernetes (a delete's terminal CloudEvents 1.0 event).",
        ),
    ]
}

fn generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12().into_generator()
}

fn document<T: JsonSchema>(name: &'static str, description: &str) -> SchemaDocument {
    let mut schema = generator().into_root_schema_for::<T>().to_value();
    schema["description"] = json!(description);
    SchemaDocument { name, schema }
}

fn event_document<T: JsonSchema + EventData>(
    name: &'static str,
    description: &str,
) -> SchemaDocument {
    let mut document = document::<CloudEvent<T>>(name, description);
    // The generic envelope says only "string"; each event's schema pins its own type and the attributes
    // the gateway always sets, so a subscriber's validator catches an event of the wrong kind.
    let schema = &mut document.schema;
    schema["properties"]["type"] =
        json!({ "description": "The CloudEvents type.", "const": T::EVENT_TYPE });
    schema["properties"]["datacontenttype"] = json!({ "const": "application/json" });
    schema["title"] = json!(T::schema_name());
    document
}
