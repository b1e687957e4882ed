//! The hostile-request corpus (`corpus.json` beside this file), read one way by the pure policy tests
//! (`functions/core/tests/core.rs`) and the system tests (`tests/system`), which include this file with
//! `#[path]`: each case becomes the message a producer would send.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

const CORPUS: &str = include_str!("corpus.json");

/// The whole corpus.
#[derive(Debug, Deserialize)]
pub struct Corpus {
    /// The strict cluster policy every case is judged under.
    pub policy: Value,
    bases: BTreeMap<String, Value>,
    /// Every case, hostile and legitimate.
    pub cases: Vec<Case>,
}

/// One request and the outcome it must have.
#[derive(Debug, Deserialize)]
pub struct Case {
    /// What it tries.
    pub name: String,
    /// Its class (`operator-files`, `artifacts`, ..., `legitimate`).
    pub class: String,
    #[serde(default)]
    base: Option<String>,
    #[serde(default)]
    patch: Option<Value>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    pad: Option<(String, usize)>,
    /// The outcome.
    pub expect: Expect,
}

/// A hostile case's rejection (`reason`, and the `field` and `rule` among its violations), or a
/// legitimate case's `RequestApplied` result.
#[derive(Debug, Deserialize)]
pub struct Expect {
    /// The rejection reason code.
    #[serde(default)]
    pub reason: Option<String>,
    /// The violation's field.
    #[serde(default)]
    pub field: Option<String>,
    /// The violation's rule.
    #[serde(default)]
    pub rule: Option<String>,
    /// The applied result (`created`, `validated`).
    #[serde(default)]
    pub result: Option<String>,
}

impl Corpus {
    /// The corpus compiled into the test.
    pub fn load() -> Self {
        serde_json::from_str(CORPUS).expect("corpus.json is a corpus")
    }

    /// The legitimate request a case starts from: `python` (the seed's pi-test), `java` or `r`.
    #[allow(dead_code)] // used by the property test only
    pub fn base(&self, name: &str) -> &Value {
        &self.bases[name]
    }
}

impl Case {
    /// Whether the request must be applied.
    pub fn is_legitimate(&self) -> bool {
        self.expect.result.is_some()
    }

    /// The message a producer would send for this case, with its own request id and application name
    /// (unless the case is about the name).
    pub fn message(&self, corpus: &Corpus, request_id: &str, name: &str) -> String {
        if let Some(body) = &self.body {
            let pad = self
                .pad
                .as_ref()
                .map(|(text, count)| text.repeat(*count))
                .unwrap_or_default();
            return body
                .replace("{request_id}", request_id)
                .replace("{name}", name)
                .replace("{pad}", &pad)
                .replace("{{", "{")
                .replace("}}", "}");
        }
        let base = self.base.as_deref().unwrap_or("python");
        let mut request = corpus.bases[base].clone();
        let patch = self.patch.clone().unwrap_or_else(|| json!({}));
        let names_itself = patch.get("application_name").is_some();
        json_patch::merge(&mut request, &patch);
        let object = request.as_object_mut().expect("bases are objects");
        object.insert("action".into(), json!("submit"));
        object.insert("request_id".into(), json!(request_id));
        if !names_itself {
            object.insert("application_name".into(), json!(name));
        }
        request.to_string()
    }
}
