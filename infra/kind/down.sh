#!/usr/bin/env bash
# Removes what infra/kind/up.sh made: the local world it started on the host and the kind cluster.
set -euo pipefail

repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)
cluster=${SPARK_GATEWAY_KIND_CLUSTER:-spark-gateway}
run=${SPARK_GATEWAY_KIND_RUN_DIR:-$repo/target/kind}

SPARK_GATEWAY_LOCAL_RUN_DIR=$run/local SPARK_GATEWAY_LOCAL_COMPONENTS="openbao localstack tansu" \
  "$repo/infra/local/down" --purge
if command -v kind >/dev/null && kind get clusters | grep -qx "$cluster"; then
  kind delete cluster --name "$cluster"
fi
rm -rf "$run"
