//! The contract holds together: committed schemas equal the generated ones, every example validates
//! against its schema and survives a serde round trip, every invalid example fails both the schema and
//! the decoder with the expected, field-naming error, and the AsyncAPI document refers to every schema.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use spark_gateway_events::schema::{self, SchemaDocument};
use spark_gateway_events::{
    CompletionEvent, DecodeError, DeleteJobRequest, GetJobStatusRequest, GetJobStatusResponse,
    JobRecord, SubmitJobRequest, decode, decode_completion_event, decode_job_request,
};

fn crate_dir() -> PathBuf {
    // The package directory cargo or nextest names at run time: a binary reused from another checkout
    // (one shared target dir) would otherwise read that checkout's files.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    files
}

fn document(name: &str) -> SchemaDocument {
    schema::all()
        .into_iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no schema named {name}"))
}

fn validator(name: &str) -> jsonschema::Validator {
    jsonschema::validator_for(&document(name).schema)
        .unwrap_or_else(|e| panic!("schema {name} does not compile: {e}"))
}

/// Decodes an example with the same entry point the gateway or a subscriber uses for that schema and
/// re-serializes it.
fn decode_and_reserialize(schema_name: &str, bytes: &[u8]) -> Result<Value, DecodeError> {
    fn strict<T: DeserializeOwned + Serialize>(bytes: &[u8]) -> Result<Value, DecodeError> {
        decode::<T>(bytes).map(|v| serde_json::to_value(v).unwrap())
    }
    match schema_name {
        "job-request.v1" => decode_job_request(bytes).map(|v| serde_json::to_value(v).unwrap()),
        "submit-job-request.v1" => strict::<SubmitJobRequest>(bytes),
        "delete-job-request.v1" => strict::<DeleteJobRequest>(bytes),
        "get-job-status-request.v1" => strict::<GetJobStatusRequest>(bytes),
        "get-job-status-response.v1" => strict::<GetJobStatusResponse>(bytes),
        "job-record.v1" => strict::<JobRecord>(bytes),
        "application-state-changed.v1" | "request-rejected.v1" | "request-applied.v1" => {
            decode_completion_event(bytes).map(|event| match event {
                CompletionEvent::StateChanged(e) => serde_json::to_value(e).unwrap(),
                CompletionEvent::Rejected(e) => serde_json::to_value(e).unwrap(),
                CompletionEvent::Applied(e) => serde_json::to_value(e).unwrap(),
            })
        }
        other => panic!("no decoder for schema {other}"),
    }
}

#[test]
fn committed_schemas_match_the_code() {
    let dir = crate_dir().join("schemas");
    let generated = schema::all();
    for document in &generated {
        let path = dir.join(document.file_name());
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == document.to_file_contents(),
            "{} differs from the generated schema; run `cargo run -p spark-gateway-events --bin generate-schemas`",
            path.display()
        );
    }
    let committed_files = json_files(&dir);
    assert_eq!(
        committed_files.len(),
        generated.len(),
        "stale files in {}: {committed_files:?}",
        dir.display()
    );
}

#[test]
fn every_schema_is_a_valid_2020_12_schema() {
    for document in schema::all() {
        assert_eq!(
            document.schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{}",
            document.name
        );
        jsonschema::draft202012::meta::validate(&document.schema)
            .unwrap_or_else(|e| panic!("{} is not a valid 2020-12 schema: {e}", document.name));
    }
}

#[test]
fn valid_examples_validate_and_round_trip() {
    let mut checked = 0;
    for document in schema::all() {
        let dir = crate_dir().join("examples").join(document.name);
        let files = json_files(&dir);
        assert!(
            !files.is_empty(),
            "schema {} has no valid example in {}",
            document.name,
            dir.display()
        );
        let validator = validator(document.name);
        for path in files {
            let example = read_json(&path);
            let problems: Vec<String> = validator
                .iter_errors(&example)
                .map(|e| format!("{e} at {}", e.instance_path()))
                .collect();
            assert!(
                problems.is_empty(),
                "{} fails its schema: {problems:#?}",
                path.display()
            );
            let bytes = std::fs::read(&path).unwrap();
            let reserialized = decode_and_reserialize(document.name, &bytes)
                .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()));
            assert_eq!(
                reserialized,
                example,
                "{} changes in a serde round trip",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} valid examples checked");
}

#[derive(Debug, Deserialize)]
struct ExpectedError {
    field: String,
    rule: String,
    error: String,
}

#[test]
fn invalid_examples_fail_schema_and_decoder_with_the_expected_error() {
    let invalid_dir = crate_dir().join("examples").join("invalid");
    let expected: BTreeMap<String, ExpectedError> =
        serde_json::from_value(read_json(&invalid_dir.join("expected-errors.json"))).unwrap();

    let mut found = Vec::new();
    for document in schema::all() {
        let dir = invalid_dir.join(document.name);
        if !dir.exists() {
            continue;
        }
        let validator = validator(document.name);
        for path in json_files(&dir) {
            let key = format!(
                "{}/{}",
                document.name,
                path.file_name().unwrap().to_string_lossy()
            );
            let expectation = expected
                .get(&key)
                .unwrap_or_else(|| panic!("{key} has no entry in expected-errors.json"));
            let example = read_json(&path);
            assert!(
                !validator.is_valid(&example),
                "{key} passes the JSON Schema but must not"
            );

            let error = decode_and_reserialize(document.name, &std::fs::read(&path).unwrap())
                .expect_err(&format!("{key} decodes but must not"));
            assert_eq!(
                error.field(),
                Some(expectation.field.as_str()),
                "{key}: {error}"
            );
            let violations = error.violations();
            assert_eq!(violations.len(), 1, "{key}");
            assert_eq!(violations[0].field, expectation.field, "{key}");
            assert_eq!(violations[0].rule, expectation.rule, "{key}");
            assert!(
                error.to_string().starts_with(&expectation.error),
                "{key}: error {:?} does not start with {:?}",
                error.to_string(),
                expectation.error
            );
            found.push(key);
        }
    }
    let listed: Vec<&String> = expected.keys().collect();
    let mut found_sorted = found.clone();
    found_sorted.sort();
    assert_eq!(
        listed,
        found_sorted.iter().collect::<Vec<_>>(),
        "expected-errors.json and the files differ"
    );
}

#[test]
fn seed_submit_payload_with_request_id_is_a_submit_request_unchanged() {
    let path = crate_dir().join("examples/submit-job-request.v1/seed-pi-test.json");
    let bytes = std::fs::read(&path).unwrap();
    let request: SubmitJobRequest = decode(&bytes).unwrap();
    assert_eq!(request.application_name, "pi-test");
    assert_eq!(request.namespace, "sjns-data-control");
    assert_eq!(
        request.py_files,
        ["local:///opt/spark/examples/src/main/python/pi.py"]
    );
    assert_eq!(request.executor.as_ref().and_then(|e| e.instances), Some(2));
    assert_eq!(request.spark_conf.len(), 5);
    assert_eq!(
        request
            .application_tolerations
            .as_ref()
            .and_then(|t| t.ttl_after_stop_millis),
        Some(300_000)
    );
    assert_eq!(serde_json::to_value(&request).unwrap(), read_json(&path));
}

#[test]
fn asyncapi_document_refers_to_every_schema_and_only_existing_ones() {
    let asyncapi = std::fs::read_to_string(crate_dir().join("asyncapi.yaml")).unwrap();
    assert!(
        asyncapi.starts_with("asyncapi: 3.0.0") || asyncapi.contains("\nasyncapi: 3.0.0"),
        "not an AsyncAPI 3.0.0 document"
    );
    for document in schema::all() {
        let reference = format!("./schemas/{}", document.file_name());
        if document.name.starts_with("get-job-status")
            || document.name == "job-record.v1"
            || document.name == "submit-job-request.v1"
            || document.name == "delete-job-request.v1"
        {
            // Not channel messages: the status function is called directly, the job record is an
            // object in the record store, and the bare submit and delete bodies travel only inside
            // job-request.
            continue;
        }
        assert!(
            asyncapi.contains(&reference),
            "asyncapi.yaml does not reference {reference}"
        );
    }
    for reference in asyncapi
        .split("$ref: '")
        .skip(1)
        .filter_map(|rest| rest.split('\'').next())
    {
        if let Some(file) = reference.strip_prefix("./") {
            let file = file.split('#').next().unwrap();
            assert!(
                crate_dir().join(file).exists(),
                "asyncapi.yaml refers to missing {file}"
            );
        }
    }
}
