#!/usr/bin/env bash
# Spark Gateway on a kind cluster with the real Apache Spark Kubernetes Operator 0.5.0 and real Spark:
# the seed's pi-test goes from a request on SQS through the gateway (the consumer on the host) to a
# SparkApplication, and its states come back from the watcher (in the cluster) on Kafka. The job
# namespace gets infra/k8s/jobs (Pod Security, quota, limits, network policies, the drivers' RBAC) and the
# operator only a Role there (operator-values.yaml).
# Needs Linux with docker, kind, kubectl, helm, cargo, jq. Not run by CI (no container engine there).
# Idempotent; infra/kind/down.sh removes everything. See infra/kind/README.md.
set -euo pipefail

repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
cd "$repo"
cluster=${SPARK_GATEWAY_KIND_CLUSTER:-spark-gateway}
run=${SPARK_GATEWAY_KIND_RUN_DIR:-$repo/target/kind}
chart_version=1.3.0 # Helm chart spark-kubernetes-operator 1.3.0 is operator 0.5.0 (its appVersion)
jobs_ns=sjns-data-control
image=spark-gateway-watcher:dev
bin=${CARGO_TARGET_DIR:-$repo/target}/debug
# The kind world's own ports, so that it runs beside the ordinary local world (LocalStack listens on all
# interfaces whatever its host).
export SPARK_GATEWAY_LOCALSTACK_PORT=${SPARK_GATEWAY_LOCALSTACK_PORT:-4576} \
  SPARK_GATEWAY_OPENBAO_PORT=${SPARK_GATEWAY_OPENBAO_PORT:-8210} SPARK_GATEWAY_KAFKA_PORT=${SPARK_GATEWAY_KAFKA_PORT:-9192}

say() { printf '\n==> %s\n' "$*"; }
die() {
  printf 'error: %s\n' "$1" >&2
  [[ -z ${2:-} ]] || { printf -- '--- last lines of %s ---\n' "$2" >&2; tail -n 30 "$2" >&2; }
  exit 1
}

for tool in docker kind kubectl helm cargo jq; do
  command -v "$tool" >/dev/null || die "$tool is not installed (infra/kind/README.md)"
done
mkdir -p "$run/watcher"
export KUBECONFIG=$run/kubeconfig

say "1/7 kind cluster $cluster (kubeconfig: $KUBECONFIG)"
if kind get clusters | grep -qx "$cluster"; then
  kind export kubeconfig --name "$cluster" --kubeconfig "$KUBECONFIG"
else
  kind create cluster --name "$cluster" --kubeconfig "$KUBECONFIG" --wait 120s
fi
# The host as the pods see it: the kind network's gateway. The local world listens there.
host_ip=$(docker network inspect kind | jq -r '[.[0].IPAM.Config[].Gateway // empty | select(test("^[0-9.]+$"))][0] // empty')
[[ -n $host_ip ]] || die "no IPv4 gateway on docker network kind"

# The API server as drivers reach it, for their NetworkPolicy (it cannot select the API server by label):
# the `kubernetes` Service's ClusterIP and the endpoints behind it. A JSON patch of
# allow-driver-to-apiserver (infra/k8s/jobs/base/networkpolicy.yaml) for a generated kustomization.
apiserver_patch() {
  local ip
  printf '%s\n' "patches:" "  - target: {kind: NetworkPolicy, name: allow-driver-to-apiserver}" "    patch: |-" \
    "      - op: replace" "        path: /spec/egress/0/to" "        value:"
  for ip in $(kubectl -n default get service kubernetes -o jsonpath='{.spec.clusterIP}') \
    $(kubectl -n default get endpointslices -l kubernetes.io/service-name=kubernetes \
      -o jsonpath='{.items[*].endpoints[*].addresses[*]}'); do
    if [[ $ip == *:* ]]; then ip=$ip/128; else ip=$ip/32; fi
    printf '          - ipBlock: {cidr: %s}\n' "$ip"
  done
}
apiserver=$(apiserver_patch)
[[ $apiserver == *ipBlock* ]] || die "no address for the API server (service kubernetes in default)"

say "2/7 job namespace $jobs_ns (infra/k8s/jobs/$jobs_ns, API server egress to its addresses)"
mkdir -p "$run/jobs"
cat >"$run/jobs/kustomization.yaml" <<YAML
resources:
  - $(realpath --relative-to="$run/jobs" "infra/k8s/jobs/$jobs_ns")
$apiserver
YAML
# Before the chart: its Role for the operator goes into this namespace.
kubectl apply --server-side -k "$run/jobs"
# A cluster made by an earlier up.sh keeps the chart's broad workload RBAC (annotated
# helm.sh/resource-policy: keep, so the upgrade below leaves it): drop it, the Role above replaces it.
kubectl -n "$jobs_ns" delete rolebinding spark-workload-rolebinding --ignore-not-found
kubectl delete clusterrole spark-workload-clusterrole --ignore-not-found

say "3/7 Apache Spark Kubernetes Operator 0.5.0 (chart spark-kubernetes-operator $chart_version), watching $jobs_ns"
helm repo add spark https://apache.github.io/spark-kubernetes-operator --force-update >/dev/null
# operator-values.yaml: a Role per job namespace instead of the ClusterRole (operatorRbac.clusterRole.create
# and clusterRoleBinding.create false, role.create and roleBinding.create true), and none of the chart's
# namespaces, service account or workload RBAC (workloadResources.*.create false).
# workloadResources.namespaces.data names the job namespaces and, through overrideWatchedNamespaces,
# the operator's spark.kubernetes.operator.watchedNamespaces.
helm upgrade --install spark spark/spark-kubernetes-operator --version "$chart_version" \
  --namespace spark-operator --create-namespace -f infra/kind/operator-values.yaml \
  --set "workloadResources.namespaces.data={$jobs_ns}" --wait --timeout 10m

say "4/7 watcher image $image (infra/k8s/Dockerfile), loaded into kind"
DOCKER_BUILDKIT=1 docker build -f infra/k8s/Dockerfile -t "$image" .
kind load docker-image "$image" --name "$cluster"

say "5/7 watcher (infra/k8s/overlays/dev, Kafka at $host_ip:$SPARK_GATEWAY_KAFKA_PORT) and the gateway's service account"
cat >"$run/watcher/kustomization.yaml" <<YAML
resources:
  - $(realpath --relative-to="$run/watcher" infra/k8s/overlays/dev)
configMapGenerator:
  - name: spark-gateway-watcher-config
    behavior: merge
    literals: [WATCHER_CLUSTER=kind, KAFKA_BOOTSTRAP_SERVERS=$host_ip:$SPARK_GATEWAY_KAFKA_PORT]
# The dev overlay carries both job namespaces; keep the API server addresses step 2 set.
$apiserver
YAML
# Server-side: the CRD is too large for a client-side apply (the chart installed the same file already).
kubectl apply --server-side --force-conflicts -k "$run/watcher"
kubectl apply -f infra/kind/gateway-access.yaml
token=$(kubectl -n spark-gateway create token spark-gateway --duration 24h)

say "6/7 local world on $host_ip (LocalStack, OpenBao with the token, Tansu; run dir $run/local)"
export SPARK_GATEWAY_LOCAL_RUN_DIR=$run/local SPARK_GATEWAY_LOCAL_HOST=$host_ip \
  SPARK_GATEWAY_LOCAL_COMPONENTS="openbao localstack tansu" SPARK_GATEWAY_CLUSTER_TOKEN=$token
infra/local/up
# shellcheck source=/dev/null
source "$run/local/env"
kubectl -n spark-gateway rollout status deployment/spark-gateway-watcher --timeout 180s

say "7/7 pi-test through the flow (consumer log: $run/consumer.log)"
cargo build --bins -p spark-gateway-consumer -p spark-gateway-cli
kubectl config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}' |
  base64 -d >"$run/kind-ca.crt"
server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
export SPARK_GATEWAY_CLUSTER_NAME=kind SPARK_GATEWAY_ALLOWED_NAMESPACES=$jobs_ns \
  SPARK_GATEWAY_ALLOWED_IMAGE_PREFIXES=apache/spark: \
  SPARK_GATEWAY_CLUSTER_CA_FILE=$run/kind-ca.crt SPARK_GATEWAY_CLUSTER_URL=$server
"$bin/spark-gateway-consumer" --health-listen 127.0.0.1:8189 >"$run/consumer.log" 2>&1 &
consumer=$!
trap 'kill "$consumer" 2>/dev/null || true' EXIT
for _ in $(seq 60); do curl -sf -o /dev/null http://127.0.0.1:8189/readyz && break; sleep 1; done
curl -sf -o /dev/null http://127.0.0.1:8189/readyz || die "the consumer is not ready" "$run/consumer.log"
# The first run pulls apache/spark:4.1.0-python3 (about 1 GB) onto the node: allow 15 minutes.
"$bin/spark-gateway" submit events-schema/examples/submit-job-request.v1/seed-pi-test.json --via sqs --wait \
  --timeout 900 || die "pi-test did not succeed" "$run/consumer.log"
"$bin/spark-gateway" delete --namespace "$jobs_ns" --name pi-test --via sqs --wait ||
  die "delete failed" "$run/consumer.log"
say "done: pi-test ran on kind and its completion event came back (infra/kind/down.sh removes it all)"
