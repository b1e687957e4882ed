//! A request message as the handlers see it, whatever carried it: its bytes, where it came from, and the
//! application it is about (read best-effort, so even a message that fails validation keeps its place in
//! its application's order).

use std::borrow::Cow;

use spark_gateway_events::MessageOrigin;

/// One message from SQS or Kafka.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    /// The body (SQS) or record value (Kafka), unchanged.
    pub body: Vec<u8>,
    /// Where it was read.
    pub origin: MessageOrigin,
    /// The Kafka record key, kept for the dead-letter copy.
    pub key: Option<Vec<u8>>,
    /// How many times it has been delivered, when the transport says (SQS `ApproximateReceiveCount`).
    pub delivery_count: Option<u32>,
}

impl InboundMessage {
    /// The application this message addresses, as `cluster/namespace/name`; messages too broken to say
    /// get a key of their own, so they never hold up others.
    pub fn ordering_key(&self) -> String {
        // A body far beyond any request's size is not parsed just to be ordered: it is refused anyway.
        const PARSED_BYTES: usize = 1 << 20;
        let target = (self.body.len() <= PARSED_BYTES)
            .then(|| serde_json::from_slice::<Target<'_>>(&self.body).ok())
            .flatten();
        match target {
            Some(Target {
                cluster,
                namespace,
                application_name,
            }) => format!(
                "{}/{namespace}/{application_name}",
                cluster.unwrap_or_default()
            ),
            None => format!("unordered/{}", self.origin.locator()),
        }
    }
}

/// The fields that name a request's application, read without building the rest of the body (every
/// message of a batch is keyed before any is decoded).
#[derive(serde::Deserialize)]
struct Target<'a> {
    #[serde(borrow, default)]
    cluster: Option<Cow<'a, str>>,
    #[serde(borrow)]
    namespace: Cow<'a, str>,
    #[serde(borrow)]
    application_name: Cow<'a, str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str, id: &str) -> InboundMessage {
        InboundMessage {
            body: body.as_bytes().to_vec(),
            origin: MessageOrigin::Sqs {
                queue: "q".into(),
                message_id: id.into(),
            },
            key: None,
            delivery_count: Some(1),
        }
    }

    #[test]
    fn messages_for_one_application_share_a_key_even_when_invalid() {
        let submit = message(
            r#"{"action":"submit","namespace":"ns","application_name":"pi","bogus":1}"#,
            "1",
        );
        let delete = message(
            r#"{"action":"delete","namespace":"ns","application_name":"pi"}"#,
            "2",
        );
        assert_eq!(submit.ordering_key(), delete.ordering_key());
        assert_eq!(submit.ordering_key(), "/ns/pi");
    }

    #[test]
    fn a_name_written_with_escapes_is_the_same_application() {
        let plain = message(
            r#"{"cluster":"c","namespace":"ns","application_name":"pi"}"#,
            "1",
        );
        let escaped = message(
            r#"{"cluster":"c","namespace":"n\u0073","application_name":"p\u0069"}"#,
            "2",
        );
        assert_eq!(plain.ordering_key(), "c/ns/pi");
        assert_eq!(escaped.ordering_key(), plain.ordering_key());
    }

    #[test]
    fn unreadable_messages_are_keyed_by_their_origin() {
        assert_eq!(message("not json", "7").ordering_key(), "unordered/sqs/q/7");
        assert_ne!(
            message("{}", "1").ordering_key(),
            message("{}", "2").ordering_key()
        );
    }
}
