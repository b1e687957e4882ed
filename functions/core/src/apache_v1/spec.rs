//! The part of a SparkApplication's `spec` the gateway reads back: enough to size its pods (the Spark
//! configuration, and whether the main resource is Python, R or a JVM jar, as the operator's
//! `SparkAppSubmissionWorker` decides it). Pod templates and the rest are never held.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use spark_gateway_events::SparkApplicationType;

/// `spec.sparkConf`, `spec.pyFiles` and `spec.sparkRFiles`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecView {
    /// The Spark configuration the operator submits with.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub spark_conf: BTreeMap<String, String>,
    /// The Python main resource, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub py_files: Option<Value>,
    /// The R main resource, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spark_r_files: Option<Value>,
}

impl SpecView {
    /// Reads `.spec`; `None` when it is absent or not the operator's shape (a spec the gateway cannot
    /// read is never a reason to refuse a status answer).
    pub fn from_spec(spec: Option<&Value>) -> Option<Self> {
        spec.and_then(|spec| Self::deserialize(spec).ok())
    }

    /// The main resource's language, as the operator picks it: `pyFiles` first, then `sparkRFiles`,
    /// else a JVM application.
    pub fn application_type(&self) -> SparkApplicationType {
        if self.py_files.is_some() {
            SparkApplicationType::Python
        } else if self.spark_r_files.is_some() {
            SparkApplicationType::R
        } else {
            SparkApplicationType::Java
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_main_resource_decides_the_language() {
        let python = SpecView::from_spec(Some(&json!({
            "pyFiles": "local:///opt/job.py",
            "sparkConf": {"spark.driver.memory": "2g"},
            "driverSpec": {"podTemplateSpec": {"spec": {}}}
        })))
        .unwrap();
        assert_eq!(python.application_type(), SparkApplicationType::Python);
        assert_eq!(python.spark_conf["spark.driver.memory"], "2g");
        let jar = SpecView::from_spec(Some(&json!({"jars": "local:///a.jar"}))).unwrap();
        assert_eq!(jar.application_type(), SparkApplicationType::Java);
        assert_eq!(SpecView::from_spec(Some(&json!({"sparkConf": 7}))), None);
    }
}
