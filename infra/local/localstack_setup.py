"""Create-or-update the local world's AWS resources in LocalStack, in one process (the AWS CLI takes ~2 s a call).

Run by infra/local/lib.sh with the LocalStack venv's Python (boto3 comes with localstack-core):
    python localstack_setup.py ENDPOINT REQUEST_QUEUE DLQ SECRET_NAME SECRET_FILE STATE_DIR LEDGER_BUCKET \
        RECORDS_BUCKET RECORD_RETENTION_DAYS REPLY_QUEUE NOTIFY_DLQ WEBHOOK_SECRET_NAME
Creates the dead-letter queue, the request queue (visibility timeout 180 s, RedrivePolicy maxReceiveCount 5)
the Secrets Manager secret holding the AppRole credentials and the S3 bucket of the replay ledger; the reply
queue pipelines name in `notify`, the notifier's dead-letter queue and the cluster's webhook signing secret
(a random Standard Webhooks `whsec_` key, kept across runs); writes the queue URLs to
STATE_DIR/request-queue-url, dlq-url, reply-queue-url and notify-dlq-url.
"""

import base64
import json
import pathlib
import secrets as random_bytes
import sys

import boto3


def main(endpoint, request_queue, dlq, secret_name, secret_file, state_dir, ledger_bucket,
         records_bucket, record_retention_days, reply_queue, notify_dlq, webhook_secret_name):
    session = boto3.session.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    )
    sqs = session.client("sqs", endpoint_url=endpoint)
    secrets = session.client("secretsmanager", endpoint_url=endpoint)

    dlq_url = sqs.create_queue(QueueName=dlq)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # create_queue is idempotent only for equal attributes: create plain, then set the attributes.
    url = sqs.create_queue(QueueName=request_queue)["QueueUrl"]
    sqs.set_queue_attributes(
        QueueUrl=url,
        Attributes={
            "VisibilityTimeout": "180",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5}),
        },
    )
    print(f"queues: {url} -> {dlq_url}")

    secret = pathlib.Path(secret_file).read_text()
    try:
        secrets.put_secret_value(SecretId=secret_name, SecretString=secret)
        print(f"secret {secret_name}: new version")
    except secrets.exceptions.ResourceNotFoundException:
        secrets.create_secret(
            Name=secret_name,
            Description="Vault AppRole credentials of Spark Gateway (local world)",
            SecretString=secret,
        )
        print(f"secret {secret_name}: created")

    s3 = session.client("s3", endpoint_url=endpoint)
    for bucket in (ledger_bucket, records_bucket):
        try:
            s3.create_bucket(Bucket=bucket)
            print(f"bucket {bucket}: created")
        except s3.exceptions.BucketAlreadyOwnedByYou:
            print(f"bucket {bucket}: exists")
    # The job records' retention, as the SAM template sets it: records and their request-id index
    # entries expire together.
    s3.put_bucket_lifecycle_configuration(
        Bucket=records_bucket,
        LifecycleConfiguration={"Rules": [{
            "ID": "job-record-retention",
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "Expiration": {"Days": int(record_retention_days)},
        }]},
    )
    print(f"bucket {records_bucket}: records expire after {record_retention_days} days")

    reply_url = sqs.create_queue(QueueName=reply_queue)["QueueUrl"]
    notify_dlq_url = sqs.create_queue(QueueName=notify_dlq)["QueueUrl"]
    print(f"notify: reply queue {reply_url}, dead letters {notify_dlq_url}")
    try:
        secrets.describe_secret(SecretId=webhook_secret_name)
        print(f"secret {webhook_secret_name}: exists")
    except secrets.exceptions.ResourceNotFoundException:
        key = base64.b64encode(random_bytes.token_bytes(24)).decode()
        secrets.create_secret(
            Name=webhook_secret_name,
            Description="Webhook signing secret of the local cluster (Standard Webhooks)",
            SecretString=f"whsec_{key}",
        )
        print(f"secret {webhook_secret_name}: created")

    state = pathlib.Path(state_dir)
    (state / "request-queue-url").write_text(url + "\n")
    (state / "dlq-url").write_text(dlq_url + "\n")
    (state / "reply-queue-url").write_text(reply_url + "\n")
    (state / "notify-dlq-url").write_text(notify_dlq_url + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
