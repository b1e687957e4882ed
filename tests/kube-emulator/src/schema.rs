//! Structural-schema admission for custom resources: pruning, defaulting and
//! validation against a CRD version's `openAPIV3Schema`.
//!
//! This is the subset of OpenAPI v3 that Kubernetes structural schemas use:
//! `type`, `properties`, `required`, `enum`, `items`, `additionalProperties`,
//! `nullable`, `default`, `format` (int32/int64), `minimum`/`maximum`,
//! `minLength`/`maxLength`, `minItems`/`maxItems`, `maxProperties`, and the
//! `x-kubernetes-int-or-string`, `x-kubernetes-preserve-unknown-fields` and
//! `x-kubernetes-embedded-resource` extensions. Logical junctors (`anyOf`,
//! `allOf`, `oneOf`, `not`), `pattern` and CEL rules are not evaluated.
//! Error paths and messages follow kube-openapi: `spec.a.b`, `spec.list[0]`,
//! map values as `spec.map.key`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::status::{FieldError, json_type_name};

/// A compiled structural schema node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Schema {
    type_name: Option<String>,
    properties: BTreeMap<String, Schema>,
    additional_properties: Option<Box<Schema>>,
    items: Option<Box<Schema>>,
    required: Vec<String>,
    enum_values: Vec<Value>,
    nullable: bool,
    default: Option<Value>,
    format: Option<String>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    exclusive_minimum: bool,
    exclusive_maximum: bool,
    min_length: Option<u64>,
    max_length: Option<u64>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    max_properties: Option<u64>,
    int_or_string: bool,
    preserve_unknown_fields: bool,
    embedded_resource: bool,
}

/// What to do with fields the schema does not know (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownFields {
    /// Prune silently.
    Ignore,
    /// Prune and report as warnings (the server default).
    #[default]
    Warn,
    /// Reject the request.
    Strict,
}

/// The result of admitting an object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Admission {
    /// Validation errors (422 Invalid when non-empty).
    pub errors: Vec<FieldError>,
    /// Paths of pruned unknown fields, e.g. `spec.foo`.
    pub unknown_fields: Vec<String>,
}

impl Schema {
    /// Compiles a schema from its JSON form.
    pub fn compile(raw: &Value) -> Self {
        let Some(raw) = raw.as_object() else {
            return Self::default();
        };
        let number = |key: &str| raw.get(key).and_then(Value::as_f64);
        let count = |key: &str| raw.get(key).and_then(Value::as_u64);
        let flag = |key: &str| raw.get(key).and_then(Value::as_bool).unwrap_or(false);
        let properties = raw
            .get("properties")
            .and_then(Value::as_object)
            .map(|props| {
                props
                    .iter()
                    .map(|(name, schema)| (name.clone(), Self::compile(schema)))
                    .collect()
            })
            .unwrap_or_default();
        let additional_properties = match raw.get("additionalProperties") {
            Some(Value::Object(_)) => raw
                .get("additionalProperties")
                .map(|s| Box::new(Self::compile(s))),
            // `true` means "any value" and keeps unknown keys.
            Some(Value::Bool(true)) => Some(Box::new(Self {
                preserve_unknown_fields: true,
                ..Self::default()
            })),
            _ => None,
        };
        Self {
            type_name: raw.get("type").and_then(Value::as_str).map(str::to_string),
            properties,
            additional_properties,
            items: raw.get("items").map(|s| Box::new(Self::compile(s))),
            required: raw
                .get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            enum_values: raw
                .get("enum")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            nullable: flag("nullable"),
            default: raw.get("default").cloned(),
            format: raw
                .get("format")
                .and_then(Value::as_str)
                .map(str::to_string),
            minimum: number("minimum"),
            maximum: number("maximum"),
            exclusive_minimum: flag("exclusiveMinimum"),
            exclusive_maximum: flag("exclusiveMaximum"),
            min_length: count("minLength"),
            max_length: count("maxLength"),
            min_items: count("minItems"),
            max_items: count("maxItems"),
            max_properties: count("maxProperties"),
            int_or_string: flag("x-kubernetes-int-or-string"),
            preserve_unknown_fields: flag("x-kubernetes-preserve-unknown-fields"),
            embedded_resource: flag("x-kubernetes-embedded-resource"),
        }
    }

    /// The schema of a direct property, if declared.
    pub fn property(&self, name: &str) -> Option<&Schema> {
        self.properties.get(name)
    }

    /// Prunes, defaults and validates a whole object in place. `apiVersion`,
    /// `kind` and `metadata` at the root are left to the caller.
    pub fn admit_root(&self, object: &mut Value) -> Admission {
        let mut admission = Admission::default();
        let Some(map) = object.as_object_mut() else {
            admission
                .errors
                .push(FieldError::type_invalid("<root>", "object", object));
            return admission;
        };
        let mut walker = Walker {
            admission: &mut admission,
        };
        walker.object(self, map, "", true);
        admission
    }

    /// Prunes, defaults and validates only the named top-level property
    /// (`status` for the status subresource).
    pub fn admit_property(&self, object: &mut Value, property: &str) -> Admission {
        let mut admission = Admission::default();
        if let (Some(schema), Some(value)) =
            (self.properties.get(property), object.get_mut(property))
        {
            let mut walker = Walker {
                admission: &mut admission,
            };
            walker.value(schema, value, property);
        }
        admission
    }
}

struct Walker<'a> {
    admission: &'a mut Admission,
}

const ROOT_RESERVED: [&str; 3] = ["apiVersion", "kind", "metadata"];

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl Walker<'_> {
    fn error(&mut self, error: FieldError) {
        self.admission.errors.push(error);
    }

    fn value(&mut self, schema: &Schema, value: &mut Value, path: &str) {
        if value.is_null() {
            if !schema.nullable && !schema.preserve_unknown_fields && schema.type_name.is_some() {
                let expected = schema.type_name.as_deref().unwrap_or("object");
                self.error(FieldError::type_invalid(path, expected, value));
            }
            return;
        }
        if schema.int_or_string {
            if !(is_integer(value) || value.is_string()) {
                self.error(FieldError::type_invalid(path, "integer,string", value));
            }
            return;
        }
        if !schema.enum_values.is_empty() && !schema.enum_values.contains(value) {
            self.error(FieldError::not_supported(path, value, &schema.enum_values));
        }
        match schema.type_name.as_deref() {
            Some("object") => match value.as_object_mut() {
                Some(map) => self.object(schema, map, path, false),
                None => self.error(FieldError::type_invalid(path, "object", value)),
            },
            Some("array") => match value.as_array_mut() {
                Some(items) => self.array(schema, items, path),
                None => self.error(FieldError::type_invalid(path, "array", value)),
            },
            Some("string") => match value.as_str() {
                Some(s) => self.string(schema, s, path),
                None => self.error(FieldError::type_invalid(path, "string", value)),
            },
            Some("integer") => {
                if is_integer(value) {
                    self.number(schema, value, path);
                } else {
                    self.error(FieldError::type_invalid(path, "integer", value));
                }
            }
            Some("number") => {
                if value.is_number() {
                    self.number(schema, value, path);
                } else {
                    self.error(FieldError::type_invalid(path, "number", value));
                }
            }
            Some("boolean") => {
                if !value.is_boolean() {
                    self.error(FieldError::type_invalid(path, "boolean", value));
                }
            }
            // Untyped nodes only occur with preserve-unknown-fields or
            // int-or-string in structural schemas; accept any value.
            _ => {
                if let Some(map) = value.as_object_mut()
                    && (!schema.properties.is_empty() || schema.additional_properties.is_some())
                {
                    self.object(schema, map, path, false);
                }
            }
        }
    }

    fn object(&mut self, schema: &Schema, map: &mut Map<String, Value>, path: &str, root: bool) {
        let keep_reserved = root || schema.embedded_resource;
        let keys: Vec<String> = map.keys().cloned().collect();
        for key in keys {
            if keep_reserved && ROOT_RESERVED.contains(&key.as_str()) {
                continue;
            }
            let child_path = join(path, &key);
            if let Some(child_schema) = schema.properties.get(&key) {
                let is_droppable_null =
                    map.get(&key).is_some_and(Value::is_null) && !child_schema.nullable;
                if is_droppable_null {
                    // Real servers prune nulls of non-nullable fields instead of rejecting them.
                    map.remove(&key);
                    continue;
                }
                if let Some(child) = map.get_mut(&key) {
                    self.value(child_schema, child, &child_path);
                }
            } else if let Some(additional) = &schema.additional_properties {
                if let Some(child) = map.get_mut(&key) {
                    self.value(additional, child, &child_path);
                }
            } else if !schema.preserve_unknown_fields {
                map.remove(&key);
                self.admission.unknown_fields.push(child_path);
            }
        }
        for (key, child_schema) in &schema.properties {
            if let Some(default) = &child_schema.default {
                let missing = map.get(key).is_none_or(Value::is_null);
                if missing {
                    map.insert(key.clone(), default.clone());
                }
            }
        }
        for key in &schema.required {
            if !map.contains_key(key) {
                self.error(FieldError::required(join(path, key)));
            }
        }
        if let Some(max) = schema.max_properties
            && map.len() as u64 > max
        {
            self.error(FieldError::too_many(
                path,
                format!("must have at most {max} items"),
            ));
        }
    }

    fn array(&mut self, schema: &Schema, items: &mut [Value], path: &str) {
        if let Some(item_schema) = &schema.items {
            for (i, item) in items.iter_mut().enumerate() {
                self.value(item_schema, item, &format!("{path}[{i}]"));
            }
        }
        let len = items.len() as u64;
        if let Some(min) = schema.min_items
            && len < min
        {
            self.error(FieldError::invalid(
                path,
                &Value::from(len),
                format!("{path} in body should have at least {min} items"),
            ));
        }
        if let Some(max) = schema.max_items
            && len > max
        {
            self.error(FieldError::too_many(
                path,
                format!("must have at most {max} items"),
            ));
        }
    }

    fn string(&mut self, schema: &Schema, s: &str, path: &str) {
        let len = s.chars().count() as u64;
        if let Some(min) = schema.min_length
            && len < min
        {
            self.error(FieldError::invalid(
                path,
                &Value::from(s),
                format!("{path} in body should be at least {min} chars long"),
            ));
        }
        if let Some(max) = schema.max_length
            && len > max
        {
            self.error(FieldError::too_long(
                path,
                format!("may not be more than {max} bytes"),
            ));
        }
    }

    fn number(&mut self, schema: &Schema, value: &Value, path: &str) {
        let Some(n) = value.as_f64() else { return };
        if schema.format.as_deref() == Some("int32")
            && (n < f64::from(i32::MIN) || n > f64::from(i32::MAX))
        {
            self.error(FieldError::invalid(
                path,
                value,
                format!(
                    "{path} in body must be of type int32: \"{}\"",
                    json_type_name(value)
                ),
            ));
        }
        if let Some(min) = schema.minimum {
            let below = if schema.exclusive_minimum {
                n <= min
            } else {
                n < min
            };
            if below {
                let relation = if schema.exclusive_minimum {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                self.error(FieldError::invalid(
                    path,
                    value,
                    format!("{path} in body should be {relation} {}", format_bound(min)),
                ));
            }
        }
        if let Some(max) = schema.maximum {
            let above = if schema.exclusive_maximum {
                n >= max
            } else {
                n > max
            };
            if above {
                let relation = if schema.exclusive_maximum {
                    "less than"
                } else {
                    "less than or equal to"
                };
                self.error(FieldError::invalid(
                    path,
                    value,
                    format!("{path} in body should be {relation} {}", format_bound(max)),
                ));
            }
        }
    }
}

fn format_bound(bound: f64) -> String {
    if bound.fract() == 0.0 && bound.abs() < 1e15 {
        format!("{}", bound as i64)
    } else {
        bound.to_string()
    }
}

/// Integers, including whole-number floats (JSON `1.0` decodes as an integer
/// in the API server too).
fn is_integer(value: &Value) -> bool {
    match value {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::FieldErrorKind;
    use serde_json::json;

    fn spark_like() -> Schema {
        Schema::compile(&json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["runtimeVersions"],
                    "properties": {
                        "runtimeVersions": {
                            "type": "object",
                            "required": ["sparkVersion"],
                            "properties": {"sparkVersion": {"type": "string"}, "scalaVersion": {"type": "string"}}
                        },
                        "deploymentMode": {"type": "string", "enum": ["ClientMode", "ClusterMode"]},
                        "driverArgs": {"type": "array", "items": {"type": "string"}},
                        "sparkConf": {"type": "object", "additionalProperties": {"type": "string"}},
                        "port": {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": true},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "tolerations": {
                            "type": "object",
                            "properties": {"ttl": {"type": "integer", "default": -1}, "count": {"type": "integer", "format": "int32", "minimum": 0, "maximum": 10}}
                        },
                        "maybe": {"type": "string", "nullable": true}
                    }
                },
                "status": {"type": "object", "properties": {"state": {"type": "string"}}}
            }
        }))
    }

    #[test]
    fn accepts_a_valid_object_and_keeps_reserved_fields() {
        let mut object = json!({
            "apiVersion": "spark.apache.org/v1", "kind": "SparkApplication",
            "metadata": {"name": "pi", "anything": 1},
            "spec": {"runtimeVersions": {"sparkVersion": "4.1.0"}, "sparkConf": {"a.b": "1"}, "port": 8080, "maybe": null}
        });
        let admission = spark_like().admit_root(&mut object);
        assert!(admission.errors.is_empty(), "{:?}", admission.errors);
        assert!(admission.unknown_fields.is_empty());
        assert_eq!(object["metadata"]["anything"], 1);
        assert_eq!(object["spec"]["maybe"], Value::Null);
    }

    #[test]
    fn reports_missing_required_fields_with_their_path() {
        let mut object = json!({"spec": {"runtimeVersions": {}}});
        let admission = spark_like().admit_root(&mut object);
        assert_eq!(
            admission.errors,
            vec![FieldError::required("spec.runtimeVersions.sparkVersion")]
        );
    }

    #[test]
    fn reports_enum_and_type_violations() {
        let mut object = json!({"spec": {
            "runtimeVersions": {"sparkVersion": 4},
            "deploymentMode": "Foo",
            "driverArgs": ["ok", 3],
            "sparkConf": {"spark.executor.instances": 2},
            "port": true
        }});
        let admission = spark_like().admit_root(&mut object);
        let rendered: Vec<String> = admission.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            rendered,
            vec![
                "spec.deploymentMode: Unsupported value: \"Foo\": supported values: \"ClientMode\", \"ClusterMode\"",
                "spec.driverArgs[1]: Invalid value: \"integer\": spec.driverArgs[1] in body must be of type string: \"integer\"",
                "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\"",
                "spec.runtimeVersions.sparkVersion: Invalid value: \"integer\": spec.runtimeVersions.sparkVersion in body must be of type string: \"integer\"",
                "spec.sparkConf.spark.executor.instances: Invalid value: \"integer\": spec.sparkConf.spark.executor.instances in body must be of type string: \"integer\"",
            ]
        );
        assert_eq!(admission.errors[0].kind, FieldErrorKind::NotSupported);
        assert_eq!(admission.errors[1].kind, FieldErrorKind::TypeInvalid);
    }

    #[test]
    fn prunes_unknown_fields_but_not_preserved_ones() {
        let mut object = json!({"spec": {
            "runtimeVersions": {"sparkVersion": "4", "bogus": 1},
            "free": {"whatever": {"deep": true}},
            "unknownTop": "x"
        }, "extra": 1});
        let admission = spark_like().admit_root(&mut object);
        assert!(admission.errors.is_empty());
        let mut unknown = admission.unknown_fields.clone();
        unknown.sort();
        assert_eq!(
            unknown,
            vec!["extra", "spec.runtimeVersions.bogus", "spec.unknownTop"]
        );
        assert_eq!(object["spec"]["free"]["whatever"]["deep"], true);
        assert!(object["spec"]["runtimeVersions"].get("bogus").is_none());
        assert!(object.get("extra").is_none());
    }

    #[test]
    fn applies_defaults_and_bounds() {
        let mut object = json!({"spec": {"runtimeVersions": {"sparkVersion": "4"}, "tolerations": {"count": 11}}});
        let admission = spark_like().admit_root(&mut object);
        assert_eq!(object["spec"]["tolerations"]["ttl"], -1);
        assert_eq!(
            admission
                .errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            vec![
                "spec.tolerations.count: Invalid value: 11: spec.tolerations.count in body should be less than or equal to 10"
            ]
        );
    }

    #[test]
    fn non_nullable_nulls_are_pruned() {
        let mut object =
            json!({"spec": {"runtimeVersions": {"sparkVersion": "4", "scalaVersion": null}}});
        let admission = spark_like().admit_root(&mut object);
        assert!(admission.errors.is_empty());
        assert!(
            object["spec"]["runtimeVersions"]
                .get("scalaVersion")
                .is_none()
        );
    }

    #[test]
    fn whole_floats_count_as_integers() {
        let mut object = json!({"spec": {"runtimeVersions": {"sparkVersion": "4"}, "tolerations": {"count": 3.0}}});
        assert!(spark_like().admit_root(&mut object).errors.is_empty());
        let mut object = json!({"spec": {"runtimeVersions": {"sparkVersion": "4"}, "tolerations": {"count": 3.5}}});
        assert_eq!(spark_like().admit_root(&mut object).errors.len(), 1);
    }

    #[test]
    fn status_only_admission() {
        let mut object = json!({"status": {"state": "Running", "junk": 1}, "spec": {"bad": 1}});
        let admission = spark_like().admit_property(&mut object, "status");
        assert!(admission.errors.is_empty());
        assert_eq!(admission.unknown_fields, vec!["status.junk"]);
        assert_eq!(object["spec"]["bad"], 1, "only status is touched");
    }
}
