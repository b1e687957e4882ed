//! Server-side `meta.k8s.io/v1` Table rendering, what `kubectl get` asks for
//! with `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
//!
//! Columns are Name plus the version's printer columns; cells are evaluated
//! from simple JSONPaths. Like the real CRD table convertor, `date` columns are
//! rendered server-side as an age ("5m", "3h2m") and missing values are null.

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use crate::resources::VersionDef;
use crate::selector::simple_json_path;

/// What each row's `object` holds (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// No object.
    None,
    /// A `PartialObjectMetadata` (the default).
    #[default]
    Metadata,
    /// The full object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` query parameter.
    pub fn parse(value: Option<&str>) -> Result<Self, String> {
        match value {
            None | Some("") | Some("Metadata") => Ok(Self::Metadata),
            Some("None") => Ok(Self::None),
            Some("Object") => Ok(Self::Object),
            Some(other) => Err(format!(
                "includeObject: Unsupported value: \"{other}\": supported values: \"Metadata\", \"None\", \"Object\""
            )),
        }
    }
}

/// The column definitions of a Table for this version.
pub fn column_definitions(version: &VersionDef) -> Vec<Value> {
    let mut columns = vec![json!({
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
        "priority": 0,
    })];
    columns.extend(version.printer_columns.iter().map(|c| {
        json!({
            "name": c.name,
            "type": c.type_name,
            "format": c.format,
            "description": c.description,
            "priority": c.priority,
        })
    }));
    columns
}

/// One row for an object (already converted to the requested version).
pub fn row(object: &Value, version: &VersionDef, include: IncludeObject, now: Timestamp) -> Value {
    let name = object
        .pointer("/metadata/name")
        .cloned()
        .unwrap_or(Value::Null);
    let mut cells = vec![name];
    for column in &version.printer_columns {
        let value = simple_json_path(object, &column.json_path);
        cells.push(cell(&column.type_name, value, now));
    }
    let mut row = Map::new();
    row.insert("cells".into(), Value::Array(cells));
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            row.insert(
                "object".into(),
                json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
                }),
            );
        }
        IncludeObject::Object => {
            row.insert("object".into(), object.clone());
        }
    }
    Value::Object(row)
}

/// A whole Table.
pub fn table(
    version: &VersionDef,
    rows: Vec<Value>,
    resource_version: Option<String>,
    continue_token: Option<String>,
) -> Value {
    let mut metadata = Map::new();
    if let Some(rv) = resource_version {
        metadata.insert("resourceVersion".into(), Value::String(rv));
    }
    if let Some(token) = continue_token {
        metadata.insert("continue".into(), Value::String(token));
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions(version),
        "rows": rows,
    })
}

fn cell(type_name: &str, value: Option<&Value>, now: Timestamp) -> Value {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return Value::Null;
    };
    match type_name {
        "date" => match value.as_str().map(str::parse::<Timestamp>) {
            Some(Ok(at)) => {
                let seconds = now.as_second() - at.as_second();
                Value::String(human_duration(seconds))
            }
            _ => Value::String("<invalid>".to_string()),
        },
        "integer" => match value {
            Value::Number(n) if n.is_f64() => n.as_f64().map_or(Value::Null, |f| json!(f as i64)),
            Value::Number(_) => value.clone(),
            _ => Value::Null,
        },
        "number" => value.as_f64().map_or(Value::Null, |f| json!(f)),
        "boolean" => value.as_bool().map_or(Value::Null, Value::Bool),
        _ => match value {
            Value::String(_) => value.clone(),
            other => Value::String(other.to_string()),
        },
    }
}

/// Formats an age like `k8s.io/apimachinery/pkg/util/duration.HumanDuration`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let days = (hours / 24) % 365;
        return if days == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{days}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::PrinterColumn;

    fn version() -> VersionDef {
        VersionDef {
            name: "v1".into(),
            served: true,
            storage: true,
            schema: None,
            raw_schema: None,
            printer_columns: vec![
                PrinterColumn {
                    name: "Current State".into(),
                    type_name: "string".into(),
                    format: String::new(),
                    description: String::new(),
                    priority: 0,
                    json_path: ".status.currentState.currentStateSummary".into(),
                },
                PrinterColumn {
                    name: "Age".into(),
                    type_name: "date".into(),
                    format: String::new(),
                    description: String::new(),
                    priority: 0,
                    json_path: ".metadata.creationTimestamp".into(),
                },
            ],
            status_subresource: true,
            selectable_fields: vec![],
        }
    }

    #[test]
    fn rows_evaluate_columns_and_ages() {
        let now: Timestamp = "2026-01-01T01:00:00Z".parse().unwrap();
        let object = json!({
            "metadata": {"name": "pi", "creationTimestamp": "2026-01-01T00:55:00Z"},
            "status": {"currentState": {"currentStateSummary": "RunningHealthy"}}
        });
        let row = row(&object, &version(), IncludeObject::Metadata, now);
        assert_eq!(row["cells"], json!(["pi", "RunningHealthy", "5m"]));
        assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(row["object"]["metadata"]["name"], "pi");
    }

    #[test]
    fn missing_values_are_null_and_objects_optional() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let object =
            json!({"metadata": {"name": "pi", "creationTimestamp": "2026-01-01T00:00:00Z"}});
        let row = row(&object, &version(), IncludeObject::None, now);
        assert_eq!(row["cells"], json!(["pi", null, "0s"]));
        assert!(row.get("object").is_none());
    }

    #[test]
    fn table_has_name_first() {
        let table = table(&version(), vec![], Some("5".into()), None);
        assert_eq!(table["kind"], "Table");
        assert_eq!(table["columnDefinitions"][0]["name"], "Name");
        assert_eq!(table["columnDefinitions"][1]["name"], "Current State");
        assert_eq!(table["columnDefinitions"][2]["type"], "date");
        assert_eq!(table["metadata"]["resourceVersion"], "5");
    }

    #[test]
    fn human_durations_match_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 120), "3h2m");
        assert_eq!(human_duration(10 * 3600), "10h");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
        assert_eq!(human_duration(30 * 86400), "30d");
        assert_eq!(human_duration(3 * 365 * 86400), "3y");
        assert_eq!(human_duration(-5), "<invalid>");
    }

    #[test]
    fn include_object_parsing() {
        assert_eq!(IncludeObject::parse(None).unwrap(), IncludeObject::Metadata);
        assert_eq!(
            IncludeObject::parse(Some("Object")).unwrap(),
            IncludeObject::Object
        );
        assert!(IncludeObject::parse(Some("All")).is_err());
    }
}
