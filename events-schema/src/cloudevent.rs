//! The CloudEvents 1.0 envelope (structured JSON mode) for every event the gateway publishes.
//!
//! Written with serde rather than the `cloudevents-sdk` crate: the envelope is a handful of attributes,
//! the SDK's Kafka binding pins an older rdkafka, and our JSON Schemas check the result against the spec's
//! required attributes in tests.

use std::borrow::Cow;

use jiff::Timestamp;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The media type of a structured-mode CloudEvent; the Kafka `content-type` header carries it.
pub const CLOUDEVENTS_JSON_CONTENT_TYPE: &str = "application/cloudevents+json";

/// The only CloudEvents version produced and accepted.
pub const SPEC_VERSION: &str = "1.0";

/// Kafka header carrying the content type (CloudEvents Kafka binding, structured mode).
pub const CONTENT_TYPE_HEADER: &str = "content-type";
/// Kafka header carrying the W3C trace context.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// A CloudEvent as a Kafka record in the binding's structured mode, the one encoding every producer of
/// the system uses: the whole event is the value, the key is its `partitionkey` (its id when it has
/// none), the `content-type` header says [`CLOUDEVENTS_JSON_CONTENT_TYPE`], and the request's
/// `traceparent` travels as a header besides the extension attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaRecord {
    /// The record key.
    pub key: String,
    /// The structured-mode CloudEvent, JSON.
    pub payload: Vec<u8>,
    /// The `traceparent` header value, when the event has one.
    pub traceparent: Option<String>,
}

impl KafkaRecord {
    /// The record that carries `event`.
    pub fn structured<T: Serialize>(event: &CloudEvent<T>) -> Self {
        Self {
            key: event
                .partitionkey
                .clone()
                .unwrap_or_else(|| event.id.clone()),
            payload: serde_json::to_vec(event).expect("a CloudEvent of plain fields serializes"),
            traceparent: event.traceparent.clone(),
        }
    }

    /// The Kafka headers as `(name, value)` pairs.
    pub fn headers(&self) -> Vec<(&'static str, &str)> {
        let mut headers = vec![(CONTENT_TYPE_HEADER, CLOUDEVENTS_JSON_CONTENT_TYPE)];
        if let Some(traceparent) = &self.traceparent {
            headers.push((TRACEPARENT_HEADER, traceparent.as_str()));
        }
        headers
    }
}

/// Event data that has a CloudEvents `type` of its own.
pub trait EventData {
    /// The CloudEvents `type` attribute.
    const EVENT_TYPE: &'static str;
}

/// A CloudEvents 1.0 event whose `data` is a `T`.
///
/// Readers are tolerant: unknown attributes (extensions) are ignored, so producers may add them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CloudEvent<T> {
    /// Always `"1.0"`.
    pub specversion: SpecVersion,
    /// Unique per `source`; a redelivered event keeps its id, so consumers de-duplicate on `(source, id)`.
    pub id: String,
    /// The producer, as a URI reference (for example `/spark-gateway/clusters/dev`).
    pub source: String,
    /// The event type, for example `io.spark-gateway.application.state-changed.v1`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// What the event is about: `namespace/name` of the application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// When the occurrence happened (for a state change, when the state was entered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Timestamp>,
    /// Always `application/json` for our events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacontenttype: Option<String>,
    /// Partitioning extension: the Kafka key the event was published with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitionkey: Option<String>,
    /// Distributed tracing extension: the W3C trace context of the request behind the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The event's payload.
    pub data: T,
}

impl<T: EventData> CloudEvent<T> {
    /// An event of `T`'s type with JSON data and no optional attributes.
    pub fn new(id: impl Into<String>, source: impl Into<String>, data: T) -> Self {
        Self {
            specversion: SpecVersion,
            id: id.into(),
            source: source.into(),
            event_type: T::EVENT_TYPE.to_string(),
            subject: None,
            time: None,
            datacontenttype: Some("application/json".to_string()),
            partitionkey: None,
            traceparent: None,
            data,
        }
    }
}

/// The `specversion` attribute; only `"1.0"` exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpecVersion;

impl Serialize for SpecVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(SPEC_VERSION)
    }
}

impl<'de> Deserialize<'de> for SpecVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let version = Cow::<str>::deserialize(deserializer)?;
        if version == SPEC_VERSION {
            Ok(Self)
        } else {
            Err(serde::de::Error::custom(format!(
                "unsupported CloudEvents specversion {version:?}, expected \"{SPEC_VERSION}\""
            )))
        }
    }
}

impl JsonSchema for SpecVersion {
    fn schema_name() -> Cow<'static, str> {
        "SpecVersion".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "description": "CloudEvents specification version.", "const": SPEC_VERSION })
    }
}
