"""The Python peer of the job-requests function: the same submit work done the way a competent Python
Lambda would do it (boto3, hvac, the kubernetes client, confluent-kafka; clients built once and reused), so
the benchmark compares like with like.

Per submit message: the AppRole credentials from Secrets Manager and the Vault login and token read (all
cached after the first), the SparkApplication created through the cluster proxy (a 409 read back as a
duplicate), and the RequestApplied CloudEvent published to the completion topic and acknowledged by the
broker before the message counts as done. The Kafka producer is configured as the Rust one is.
"""

import json
import os
import threading
import time
import uuid

import boto3
import confluent_kafka
import hvac
import kubernetes


def _producer():
    return confluent_kafka.Producer(
        {
            "bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"],
            "acks": "all",
            "enable.idempotence": os.environ.get("PEER_KAFKA_IDEMPOTENCE", "false") == "true",
            "max.in.flight.requests.per.connection": 1,
            "linger.ms": 0,
            "message.timeout.ms": 10000,
        }
    )


class Gateway:
    def __init__(self):
        clusters = json.loads(os.environ["SPARK_GATEWAY_CLUSTERS"])
        self.cluster_name = clusters["default_cluster"]
        self.cluster = clusters["clusters"][self.cluster_name]
        self.events_topic = os.environ.get("SPARK_GATEWAY_EVENTS_TOPIC", "spark-gateway.events")
        self.secrets = boto3.client("secretsmanager")
        self.producer = _producer()
        self.lock = threading.Lock()
        self.api = None

    def _custom_objects(self):
        with self.lock:
            if self.api is None:
                secret = self.secrets.get_secret_value(SecretId=os.environ["SPARK_GATEWAY_APPROLE_SECRET_ID"])
                approle = json.loads(secret["SecretString"])
                vault = hvac.Client(url=os.environ["VAULT_ADDR"])
                vault.auth.approle.login(role_id=approle["role_id"], secret_id=approle["secret_id"])
                token = vault.secrets.kv.v2.read_secret_version(
                    path=self.cluster.get("token_path", "spark-gateway/cluster-proxy-service/token"),
                    mount_point=self.cluster.get("kv_mount", "secret"),
                    raise_on_deleted_version=True,
                )["data"]["data"][self.cluster.get("token_key", "token")]
                config = kubernetes.client.Configuration()
                config.host = self.cluster["proxy_url"]
                config.ssl_ca_cert = self.cluster.get("ca_file")
                config.api_key = {"authorization": "Bearer " + token}
                self.api = kubernetes.client.CustomObjectsApi(kubernetes.client.ApiClient(config))
            return self.api

    @staticmethod
    def spark_application(request):
        conf = dict(request.get("spark_conf", {}))
        if "image" in request:
            conf["spark.kubernetes.container.image"] = request["image"]
        for role in ("driver", "executor"):
            for key, value in request.get(role, {}).items():
                if key == "service_account":
                    conf[f"spark.kubernetes.authenticate.{role}.serviceAccountName"] = value
                else:
                    conf[f"spark.{role}.{key}"] = str(value)
        labels = dict(request.get("labels", {}))
        labels["app.kubernetes.io/managed-by"] = "spark-gateway"
        labels["spark-gateway.io/request-id"] = request["request_id"]
        return {
            "apiVersion": "spark.apache.org/v1",
            "kind": "SparkApplication",
            "metadata": {"name": request["application_name"], "namespace": request["namespace"], "labels": labels},
            "spec": {
                "pyFiles": request["py_files"][0],
                "runtimeVersions": {"sparkVersion": request["runtime_versions"]["spark_version"]},
                "sparkConf": conf,
            },
        }

    def submit(self, body):
        """Applies one submit message and publishes its RequestApplied; returns the result."""
        request = json.loads(body)
        api = self._custom_objects()
        app = self.spark_application(request)
        namespace = request["namespace"]
        try:
            created = api.create_namespaced_custom_object("spark.apache.org", "v1", namespace, "sparkapplications", app)
            result, uid = "created", created["metadata"]["uid"]
        except kubernetes.client.ApiException as error:
            if error.status != 409:
                raise
            existing = api.get_namespaced_custom_object(
                "spark.apache.org", "v1", namespace, "sparkapplications", request["application_name"]
            )
            result, uid = "duplicate", existing["metadata"]["uid"]
        event = {
            "specversion": "1.0",
            "id": "applied/" + request["request_id"],
            "source": "/spark-gateway/functions/job-requests",
            "type": "io.spark-gateway.request.applied.v1",
            "subject": f"{namespace}/{request['application_name']}",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "datacontenttype": "application/json",
            "data": {
                "request_id": request["request_id"],
                "action": "submit",
                "application_name": request["application_name"],
                "namespace": namespace,
                "uid": uid,
                "result": result,
            },
        }
        done = threading.Event()
        failure = []

        def delivered(error, _message):
            if error is not None:
                failure.append(error)
            done.set()

        self.producer.produce(
            self.events_topic,
            key=request["request_id"],
            value=json.dumps(event),
            headers={"content-type": "application/cloudevents+json"},
            on_delivery=delivered,
        )
        while not done.is_set():
            self.producer.poll(0.0005)
        if failure:
            raise RuntimeError(f"publish failed: {failure[0]}")
        return result


def new_request_id():
    return str(uuid.uuid4())
