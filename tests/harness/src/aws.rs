//! AWS clients pointed at LocalStack, and per-test SQS queues.

use anyhow::{Context, Result};
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::names::unique_name;
use crate::world::LocalWorld;

/// SDK configuration for LocalStack: its endpoint, `us-east-1`, the test credentials from the env file.
pub async fn localstack_config(world: &LocalWorld) -> Result<SdkConfig> {
    // SAFETY of credentials: the env file holds LocalStack's well-known test keys, never real ones.
    let credentials = aws_sdk_sqs::config::Credentials::new(
        world.var("AWS_ACCESS_KEY_ID").unwrap_or("test"),
        world.var("AWS_SECRET_ACCESS_KEY").unwrap_or("test"),
        None,
        None,
        "spark-gateway-local-world",
    );
    Ok(aws_config::defaults(BehaviorVersion::latest())
        .http_client(spark_gateway_aws::https_client())
        .endpoint_url(world.aws_endpoint()?)
        .region(Region::new(
            world.var("AWS_REGION").unwrap_or("us-east-1").to_string(),
        ))
        .credentials_provider(credentials)
        .load()
        .await)
}

/// An SQS queue made for one test, with its own dead-letter queue.
#[derive(Debug, Clone)]
pub struct TestQueue {
    /// The queue's URL.
    pub url: String,
    /// The dead-letter queue's URL.
    pub dlq_url: String,
}

impl TestQueue {
    /// Creates `<prefix>-<random>` and `<prefix>-<random>-dlq` with a RedrivePolicy after
    /// `max_receive_count` receives.
    pub async fn create(
        sqs: &aws_sdk_sqs::Client,
        prefix: &str,
        max_receive_count: u32,
    ) -> Result<Self> {
        let name = unique_name(prefix);
        // SQS's largest message size (1 MiB), so oversized requests reach the gateway's own bound.
        const MAX_MESSAGE_SIZE: &str = "1048576";
        let dlq_url = sqs
            .create_queue()
            .queue_name(format!("{name}-dlq"))
            .attributes(QueueAttributeName::MaximumMessageSize, MAX_MESSAGE_SIZE)
            .send()
            .await
            .context("creating a dead-letter queue in LocalStack")?
            .queue_url
            .context("LocalStack returned no queue URL")?;
        let dlq_arn = sqs
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await?
            .attributes
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .context("LocalStack returned no queue ARN")?;
        let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count });
        let url = sqs
            .create_queue()
            .queue_name(&name)
            .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
            .attributes(QueueAttributeName::VisibilityTimeout, "30")
            .attributes(QueueAttributeName::MaximumMessageSize, MAX_MESSAGE_SIZE)
            .send()
            .await
            .context("creating a queue in LocalStack")?
            .queue_url
            .context("LocalStack returned no queue URL")?;
        Ok(Self { url, dlq_url })
    }
}

/// How many messages `url` holds, visible or in flight (SQS's approximate counts).
pub async fn queue_message_count(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<u64> {
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await?
        .attributes
        .unwrap_or_default();
    attributes
        .values()
        .map(|count| Ok(count.parse::<u64>()?))
        .sum()
}

/// Whether `url` holds no message, visible or in flight.
pub async fn queue_is_empty(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<bool> {
    Ok(queue_message_count(sqs, url).await? == 0)
}

/// Receives (and deletes) messages from `url` until `at_least` arrived or `within` passed; returns
/// them with their attributes, in arrival order.
pub async fn drain_queue(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    at_least: usize,
    within: std::time::Duration,
) -> Result<Vec<aws_sdk_sqs::types::Message>> {
    let deadline = tokio::time::Instant::now() + within;
    let mut messages = Vec::new();
    while messages.len() < at_least && tokio::time::Instant::now() < deadline {
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await?
            .messages
            .unwrap_or_default();
        for message in received {
            if let Some(receipt) = &message.receipt_handle {
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(receipt)
                    .send()
                    .await?;
            }
            messages.push(message);
        }
    }
    Ok(messages)
}
