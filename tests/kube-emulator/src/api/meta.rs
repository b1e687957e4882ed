//! `metadata` rules every object follows: name syntax, the server-owned
//! fields, pruning of unknown ObjectMeta fields, label and finalizer checks.

use serde_json::{Map, Value, json};

use crate::status::FieldError;

/// ObjectMeta fields; anything else under `metadata` is pruned.
const OBJECT_META_FIELDS: [&str; 15] = [
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// Fields only the server sets; kept from the stored object on updates.
pub const SERVER_OWNED: [&str; 7] = [
    "name",
    "namespace",
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
];

const SUBDOMAIN_MESSAGE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MESSAGE: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const LABEL_VALUE_MESSAGE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const QUALIFIED_NAME_MESSAGE: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

/// The current time as the API server writes timestamps.
pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Checks `metadata.name`: an RFC 1123 subdomain, or a label for namespaces.
pub fn validate_name(name: &str, label_only: bool) -> Vec<FieldError> {
    let field = "metadata.name";
    let value = Value::String(name.to_string());
    let mut errors = Vec::new();
    if label_only {
        if name.len() > 63 {
            errors.push(FieldError::invalid(
                field,
                &value,
                "must be no more than 63 characters",
            ));
        }
        if !is_dns_label(name) {
            errors.push(FieldError::invalid(field, &value, LABEL_MESSAGE));
        }
        return errors;
    }
    if name.len() > 253 {
        errors.push(FieldError::invalid(
            field,
            &value,
            "must be no more than 253 characters",
        ));
    }
    let valid = !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        });
    if !valid {
        errors.push(FieldError::invalid(field, &value, SUBDOMAIN_MESSAGE));
    }
    errors
}

/// `generateName` plus five random characters from the real alphabet.
pub fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let max_prefix = 63 - 5;
    let prefix: String = prefix.chars().take(max_prefix).collect();
    let suffix: String = (0..5)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

/// The object's `metadata` map, created if missing.
pub fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    object
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .expect("metadata was just made an object")
}

/// A string field of `metadata`.
pub fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}

/// `metadata.finalizers` as strings.
pub fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the object is marked for deletion.
pub fn is_being_deleted(object: &Value) -> bool {
    object
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
}

/// Removes unknown ObjectMeta fields; returns their paths.
pub fn prune_metadata(object: &mut Value) -> Vec<String> {
    let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return Vec::new();
    };
    let unknown: Vec<String> = metadata
        .keys()
        .filter(|k| !OBJECT_META_FIELDS.contains(&k.as_str()))
        .cloned()
        .collect();
    for key in &unknown {
        metadata.remove(key);
    }
    // Nulls mean "unset" for ObjectMeta fields.
    metadata.retain(|_, v| !v.is_null());
    unknown
        .into_iter()
        .map(|k| format!("metadata.{k}"))
        .collect()
}

/// Type and syntax errors in labels, annotations and finalizers; decoding
/// errors (wrong JSON types) are reported as the BadRequest message in `Err`.
pub fn validate_metadata(object: &Value) -> Result<Vec<FieldError>, String> {
    let mut errors = Vec::new();
    let Some(metadata) = object.get("metadata") else {
        return Ok(errors);
    };
    if !metadata.is_object() {
        return Err("metadata must be an object".to_string());
    }
    for map_name in ["labels", "annotations"] {
        let Some(map) = metadata.get(map_name) else {
            continue;
        };
        let Some(map) = map.as_object() else {
            return Err(format!(
                "json: cannot unmarshal {} into Go struct field ObjectMeta.metadata.{map_name} of type map[string]string",
                crate::status::json_type_name(map)
            ));
        };
        for (key, value) in map {
            let Some(value) = value.as_str() else {
                return Err(format!(
                    "json: cannot unmarshal {} into Go struct field ObjectMeta.metadata.{map_name} of type string",
                    crate::status::json_type_name(value)
                ));
            };
            let field = format!("metadata.{map_name}");
            if !is_qualified_name(key) {
                errors.push(FieldError::invalid(
                    &field,
                    &Value::String(key.clone()),
                    QUALIFIED_NAME_MESSAGE,
                ));
            }
            if map_name == "labels" && !is_label_value(value) {
                errors.push(FieldError::invalid(
                    &field,
                    &Value::String(value.to_string()),
                    LABEL_VALUE_MESSAGE,
                ));
            }
        }
    }
    if let Some(list) = metadata.get("finalizers") {
        let ok = list
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string));
        if !ok {
            return Err("json: cannot unmarshal into Go struct field ObjectMeta.metadata.finalizers of type []string".to_string());
        }
    }
    Ok(errors)
}

fn is_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

fn is_qualified_name(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => {
            !prefix.is_empty()
                && prefix.len() <= 253
                && validate_name(prefix, false).is_empty()
                && is_name_part(name)
        }
        None => is_name_part(key),
    }
}

fn is_label_value(value: &str) -> bool {
    value.is_empty() || is_name_part(value)
}

/// The object without the given top-level keys, to compare what drives
/// `metadata.generation`.
pub fn content_without<'a>(object: &'a Value, excluded: &[&str]) -> Vec<(&'a String, &'a Value)> {
    object
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !excluded.contains(&k.as_str()))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_rfc_1123() {
        assert!(validate_name("pi-test.v1", false).is_empty());
        let errors = validate_name("Pi_Test", false);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().starts_with(
            "metadata.name: Invalid value: \"Pi_Test\": a lowercase RFC 1123 subdomain"
        ));
        assert!(!validate_name("a.b", true).is_empty());
        assert!(validate_name("spark-jobs", true).is_empty());
        assert_eq!(validate_name(&"a".repeat(64), true).len(), 1);
        assert!(!validate_name("", false).is_empty());
    }

    #[test]
    fn generated_names_have_the_prefix_and_five_characters() {
        let name = generate_name("pi-");
        assert!(name.starts_with("pi-"));
        assert_eq!(name.len(), 8);
        assert!(validate_name(&name, false).is_empty());
    }

    #[test]
    fn unknown_metadata_fields_are_pruned() {
        let mut object = json!({"metadata": {"name": "a", "bogus": 1, "labels": null}});
        assert_eq!(prune_metadata(&mut object), vec!["metadata.bogus"]);
        assert_eq!(object, json!({"metadata": {"name": "a"}}));
    }

    #[test]
    fn label_checks() {
        let ok = json!({"metadata": {"labels": {"app.kubernetes.io/name": "spark", "empty": ""}, "annotations": {"x": "any value at all"}}});
        assert!(validate_metadata(&ok).unwrap().is_empty());
        let bad = json!({"metadata": {"labels": {"app": "has space"}}});
        assert_eq!(validate_metadata(&bad).unwrap().len(), 1);
        let wrong_type = json!({"metadata": {"labels": {"app": 1}}});
        assert!(validate_metadata(&wrong_type).is_err());
    }

    #[test]
    fn deletion_and_finalizer_helpers() {
        let object = json!({"metadata": {"finalizers": ["a", "b"], "deletionTimestamp": "2026-01-01T00:00:00Z"}});
        assert_eq!(finalizers(&object), vec!["a", "b"]);
        assert!(is_being_deleted(&object));
        assert!(!is_being_deleted(&json!({"metadata": {}})));
    }
}
