"""The peer as a Lambda function: the Runtime API loop (what awslambdaric does, in a few lines) around
gateway.Gateway, answering SQS events with partial batch responses."""

import json
import os
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gateway import Gateway  # noqa: E402

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"


def main():
    gateway = Gateway()
    while True:
        with urllib.request.urlopen(API + "/invocation/next") as response:
            request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.loads(response.read())
        failures = []
        for record in event.get("Records", []):
            try:
                gateway.submit(record["body"])
            except Exception as error:  # a failed message is retried by SQS, as in the Rust function
                print(f"retry {record['messageId']}: {error}", file=sys.stderr)
                failures.append({"itemIdentifier": record["messageId"]})
        body = json.dumps({"batchItemFailures": failures}).encode()
        urllib.request.urlopen(
            urllib.request.Request(API + f"/invocation/{request_id}/response", data=body, method="POST")
        ).read()


if __name__ == "__main__":
    main()
