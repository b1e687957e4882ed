//! Just enough of the Kubernetes protobuf encoding to read the bodies
//! kubectl's typed clients send for built-in types (`kubectl create
//! namespace` posts `application/vnd.kubernetes.protobuf`): the `k8s\0`
//! envelope (`runtime.Unknown`) around a Namespace or a Lease. Responses are
//! always JSON, which those clients also accept.

use serde_json::{Map, Value, json};

/// Media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

const MAGIC: &[u8] = b"k8s\0";

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn varint(data: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *data.get(*pos)?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// Splits a message into (field number, value) pairs.
fn fields(data: &[u8]) -> Option<Vec<(u64, Field<'_>)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let tag = varint(data, &mut pos)?;
        let (number, wire_type) = (tag >> 3, tag & 7);
        let field = match wire_type {
            0 => Field::Varint(varint(data, &mut pos)?),
            1 => {
                pos += 8;
                continue;
            }
            2 => {
                let len = usize::try_from(varint(data, &mut pos)?).ok()?;
                let bytes = data.get(pos..pos.checked_add(len)?)?;
                pos += len;
                Field::Bytes(bytes)
            }
            5 => {
                pos += 4;
                continue;
            }
            _ => return None,
        };
        out.push((number, field));
    }
    Some(out)
}

fn text(bytes: &[u8]) -> Option<String> {
    String::from_utf8(bytes.to_vec()).ok()
}

fn string_map_entry(bytes: &[u8]) -> Option<(String, String)> {
    let mut key = String::new();
    let mut value = String::new();
    for (number, field) in fields(bytes)? {
        match (number, field) {
            (1, Field::Bytes(b)) => key = text(b)?,
            (2, Field::Bytes(b)) => value = text(b)?,
            _ => {}
        }
    }
    Some((key, value))
}

fn object_meta(bytes: &[u8]) -> Option<Value> {
    let mut metadata = Map::new();
    let mut labels = Map::new();
    let mut annotations = Map::new();
    let mut finalizers = Vec::new();
    for (number, field) in fields(bytes)? {
        match (number, field) {
            (1, Field::Bytes(b)) if !b.is_empty() => {
                metadata.insert("name".into(), json!(text(b)?));
            }
            (2, Field::Bytes(b)) if !b.is_empty() => {
                metadata.insert("generateName".into(), json!(text(b)?));
            }
            (3, Field::Bytes(b)) if !b.is_empty() => {
                metadata.insert("namespace".into(), json!(text(b)?));
            }
            (6, Field::Bytes(b)) if !b.is_empty() => {
                metadata.insert("resourceVersion".into(), json!(text(b)?));
            }
            (11, Field::Bytes(b)) => {
                let (k, v) = string_map_entry(b)?;
                labels.insert(k, json!(v));
            }
            (12, Field::Bytes(b)) => {
                let (k, v) = string_map_entry(b)?;
                annotations.insert(k, json!(v));
            }
            (14, Field::Bytes(b)) => finalizers.push(json!(text(b)?)),
            _ => {}
        }
    }
    if !labels.is_empty() {
        metadata.insert("labels".into(), Value::Object(labels));
    }
    if !annotations.is_empty() {
        metadata.insert("annotations".into(), Value::Object(annotations));
    }
    if !finalizers.is_empty() {
        metadata.insert("finalizers".into(), Value::Array(finalizers));
    }
    Some(Value::Object(metadata))
}

fn namespace(bytes: &[u8]) -> Option<Value> {
    let mut object = json!({"apiVersion": "v1", "kind": "Namespace"});
    for (number, field) in fields(bytes)? {
        match (number, field) {
            (1, Field::Bytes(b)) => object["metadata"] = object_meta(b)?,
            (2, Field::Bytes(b)) => {
                let finalizers: Option<Vec<Value>> = fields(b)?
                    .into_iter()
                    .filter_map(|(n, f)| match (n, f) {
                        (1, Field::Bytes(s)) => Some(text(s).map(Value::String)),
                        _ => None,
                    })
                    .collect();
                object["spec"] = json!({"finalizers": finalizers?});
            }
            _ => {}
        }
    }
    Some(object)
}

fn lease(bytes: &[u8]) -> Option<Value> {
    let mut object = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease"});
    for (number, field) in fields(bytes)? {
        match (number, field) {
            (1, Field::Bytes(b)) => object["metadata"] = object_meta(b)?,
            (2, Field::Bytes(b)) => {
                let mut spec = Map::new();
                for (n, f) in fields(b)? {
                    match (n, f) {
                        (1, Field::Bytes(s)) => {
                            spec.insert("holderIdentity".into(), json!(text(s)?));
                        }
                        (2, Field::Varint(v)) => {
                            spec.insert("leaseDurationSeconds".into(), json!(v));
                        }
                        (5, Field::Varint(v)) => {
                            spec.insert("leaseTransitions".into(), json!(v));
                        }
                        _ => {}
                    }
                }
                object["spec"] = Value::Object(spec);
            }
            _ => {}
        }
    }
    Some(object)
}

/// Decodes a protobuf body of a supported kind into its JSON form.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or("the protobuf body does not start with the k8s envelope")?;
    let mut kind = String::new();
    let mut raw: &[u8] = &[];
    for (number, field) in fields(envelope).ok_or("malformed protobuf envelope")? {
        match (number, field) {
            (1, Field::Bytes(type_meta)) => {
                for (n, f) in fields(type_meta).ok_or("malformed protobuf type meta")? {
                    if let (2, Field::Bytes(k)) = (n, f) {
                        kind = text(k).unwrap_or_default();
                    }
                }
            }
            (2, Field::Bytes(bytes)) => raw = bytes,
            _ => {}
        }
    }
    let decoded = match kind.as_str() {
        "Namespace" => namespace(raw),
        "Lease" => lease(raw),
        other => {
            return Err(format!(
                "protobuf bodies of kind {other:?} are not supported; send JSON"
            ));
        }
    };
    decoded.ok_or_else(|| format!("malformed protobuf {kind}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn length_delimited(number: u8, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![(number << 3) | 2, u8::try_from(bytes.len()).unwrap()];
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn decodes_a_namespace_like_kubectl_create_sends_it() {
        let label = [length_delimited(1, b"team"), length_delimited(2, b"data")].concat();
        let meta = [length_delimited(1, b"jobs"), length_delimited(11, &label)].concat();
        let namespace = length_delimited(1, &meta);
        let type_meta = [
            length_delimited(1, b"v1"),
            length_delimited(2, b"Namespace"),
        ]
        .concat();
        let envelope = [
            b"k8s\0".to_vec(),
            length_delimited(1, &type_meta),
            length_delimited(2, &namespace),
        ]
        .concat();
        let decoded = decode(&envelope).unwrap();
        assert_eq!(decoded["kind"], "Namespace");
        assert_eq!(decoded["metadata"]["name"], "jobs");
        assert_eq!(decoded["metadata"]["labels"]["team"], "data");
    }

    #[test]
    fn rejects_other_kinds_and_garbage() {
        let type_meta = [length_delimited(1, b"v1"), length_delimited(2, b"Pod")].concat();
        let envelope = [b"k8s\0".to_vec(), length_delimited(1, &type_meta)].concat();
        assert!(decode(&envelope).unwrap_err().contains("Pod"));
        assert!(decode(b"{}").is_err());
    }
}
