"""The peer as a long-running SQS consumer: long polling, the messages of each batch submitted by a thread
pool (8 at once, as the Rust consumer's default), then deleted in one batch call. Runs until killed."""

import concurrent.futures
import os
import sys

import boto3

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gateway import Gateway  # noqa: E402


def main():
    queue = os.environ["SPARK_GATEWAY_REQUEST_QUEUE_URL"]
    sqs = boto3.client("sqs")
    gateway = Gateway()
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        while True:
            messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []
            )
            done = []
            for message, outcome in zip(messages, pool.map(lambda m: _submit(gateway, m), messages)):
                if outcome:
                    done.append({"Id": message["MessageId"], "ReceiptHandle": message["ReceiptHandle"]})
            if done:
                sqs.delete_message_batch(QueueUrl=queue, Entries=done)


def _submit(gateway, message):
    try:
        gateway.submit(message["Body"])
        return True
    except Exception as error:
        print(f"retry {message['MessageId']}: {error}", file=sys.stderr)
        return False


if __name__ == "__main__":
    main()
