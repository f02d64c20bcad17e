#!/usr/bin/env bash
# A two-node Ray cluster and an MLflow tracking server on this machine's loopback, for trying
# (and testing) collide's cluster mode on one box.
#
#   scripts/local_cluster.sh up      start a Ray head, one Ray worker node and `mlflow server`
#   scripts/local_cluster.sh status  say what is running
#   scripts/local_cluster.sh down    stop exactly the processes `up` started
#
# `up` writes everything under $COLLIDE_CLUSTER_DIR (default ./.collide/local-cluster):
#   env.sh        `source` it: RAY_ADDRESS, RAY_AUTH_MODE, RAY_AUTH_TOKEN_PATH, MLFLOW_TRACKING_URI,
#                 RAY_DASHBOARD (for `ray job submit`) and COLLIDE_STORAGE_PATH
#   auth_token    the cluster's Ray token (mode 600); every node, driver and job client reads it
#                 through RAY_AUTH_TOKEN_PATH, so it never appears in a process argument
#   storage/      the sweep storage path every node sees (on one box, any directory is shared)
#   mlflow.db, mlartifacts/   the tracking server's sqlite store and its artifact destination
#   *.sid, *.log  the session id and output of each process tree it started
# Each process tree runs in a session of its own; `down` signals exactly those sessions
# (SIGTERM, then SIGKILL after $COLLIDE_CLUSTER_STOP_S seconds) and checks that none is left.
#
# Ports are explicit and disjoint, counted from $COLLIDE_CLUSTER_PORT (default 26380):
#   +0 Ray GCS (the cluster address), +1..+8 head services, +4 the Ray dashboard (jobs API),
#   +10..+59 head workers, +61..+68 worker-node services, +70..+119 worker-node workers,
#   +120 the MLflow server.
# Other settings: COLLIDE_CLUSTER_CPUS (CPUs per node, default 1),
# COLLIDE_CLUSTER_OBJECT_STORE (bytes per node, default 1000000000).
set -euo pipefail

DIR=${COLLIDE_CLUSTER_DIR:-.collide/local-cluster}
BASE=${COLLIDE_CLUSTER_PORT:-26380}
CPUS=${COLLIDE_CLUSTER_CPUS:-1}
OBJECT_STORE=${COLLIDE_CLUSTER_OBJECT_STORE:-1000000000}
STOP_S=${COLLIDE_CLUSTER_STOP_S:-10}
PYTHON=${PYTHON:-python3}
MARKER=.collide-local-cluster  # written by `up`; `down` touches nothing in a directory without it
HOST=127.0.0.1
MLFLOW_PORT=$((BASE + 120))
# Ray's session directory holds unix sockets, whose paths must stay short: not under $DIR.
RAY_TMP=/tmp/collide-ray-$BASE

die() { echo "local_cluster: error: $*" >&2; exit 2; }

[[ $BASE =~ ^[0-9]+$ ]] && (( BASE >= 1024 && BASE + 120 <= 65535 )) \
  || die "COLLIDE_CLUSTER_PORT must be a number in 1024..65415, got '$BASE'"
[[ $CPUS =~ ^[0-9]+$ ]] && (( CPUS >= 1 )) || die "COLLIDE_CLUSTER_CPUS must be a whole number >= 1, got '$CPUS'"

session_members() {  # pids whose session id is $1
  ps -e -o pid=,sid= | awk -v s="$1" '$2 == s { print $1 }'
}

live_sessions() {  # recorded session ids that still have a process
  local f sid
  for f in "$DIR"/*.sid; do
    [[ -e $f ]] || continue
    sid=$(<"$f")
    [[ -n $(session_members "$sid") ]] && echo "$sid"
  done
  return 0
}

start_session() {  # start_session NAME COMMAND...: run COMMAND in a new session, record its id
  local name=$1; shift
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "$DIR/$name.sid" "$@" >"$DIR/$name.log" 2>&1 </dev/null &
  local i
  for i in $(seq 50); do [[ -s $DIR/$name.sid ]] && return 0; sleep 0.1; done
  die "$name did not start (see $DIR/$name.log)"
}

port_free() {
  ! "$PYTHON" - "$1" <<'EOF'
import socket, sys
with socket.socket() as s:
    sys.exit(0 if s.connect_ex(("127.0.0.1", int(sys.argv[1]))) == 0 else 1)
EOF
}

wait_for() {  # wait_for WHAT SECONDS COMMAND...
  local what=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    (( SECONDS < deadline )) || { down_quietly; die "timed out after ${seconds} s waiting for $what (logs in $DIR)"; }
    sleep 1
  done
}

ray_nodes_alive() {  # succeeds when the cluster has $1 live nodes
  "$PYTHON" - "$1" "$HOST:$BASE" <<'EOF'
import sys, ray
ray.init(address=sys.argv[2], logging_level="ERROR", log_to_driver=False)
alive = sum(1 for n in ray.nodes() if n["Alive"])
ray.shutdown()
sys.exit(0 if alive >= int(sys.argv[1]) else 1)
EOF
}

mlflow_healthy() {
  "$PYTHON" -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://$HOST:$MLFLOW_PORT/health', timeout=2).status == 200 else 1)"
}

stop_sessions() {  # SIGTERM every recorded session, SIGKILL what is left after STOP_S; prints a count
  local sids pids count=0 deadline
  sids=$(live_sessions)
  for sid in $sids; do
    pids=$(session_members "$sid")
    count=$((count + $(wc -w <<<"$pids")))
    kill -TERM $pids 2>/dev/null || true
  done
  deadline=$((SECONDS + STOP_S))
  while [[ -n $(live_sessions) ]] && (( SECONDS < deadline )); do sleep 0.5; done
  for sid in $(live_sessions); do
    kill -KILL $(session_members "$sid") 2>/dev/null || true
  done
  deadline=$((SECONDS + 10))
  while [[ -n $(live_sessions) ]] && (( SECONDS < deadline )); do sleep 0.2; done
  [[ -z $(live_sessions) ]] || die "processes of sessions $(live_sessions | tr '\n' ' ')are still alive"
  echo "$count"
}

down_quietly() { stop_sessions >/dev/null || true; }

up() {
  command -v ray >/dev/null || die "the 'ray' command is not on PATH (pip install -e . installs it)"
  command -v mlflow >/dev/null || die "the 'mlflow' command is not on PATH (pip install -e . installs it)"
  if [[ -d $DIR ]]; then
    [[ -e $DIR/$MARKER ]] || [[ -z $(ls -A "$DIR") ]] \
      || die "$DIR exists and was not written by local_cluster.sh; set COLLIDE_CLUSTER_DIR to another directory"
    [[ -z $(live_sessions) ]] || die "a cluster from $DIR is already up; run '$0 down' first"
  fi
  local port
  for port in $BASE $((BASE + 4)) $MLFLOW_PORT; do
    port_free "$port" || die "port $port on $HOST is in use; set COLLIDE_CLUSTER_PORT to another base port"
  done
  mkdir -p "$DIR/storage" "$DIR/mlartifacts"
  touch "$DIR/$MARKER"
  rm -f "$DIR"/*.sid
  DIR=$(cd "$DIR" && pwd)
  if [[ -e $RAY_TMP ]]; then
    [[ -e $RAY_TMP/$MARKER ]] || die "$RAY_TMP exists and was not written by local_cluster.sh"
    rm -rf "$RAY_TMP"
  fi
  mkdir -p "$RAY_TMP" && touch "$RAY_TMP/$MARKER"
  echo "$RAY_TMP" >"$DIR/ray_tmp"
  (umask 077 && "$PYTHON" -c "import secrets; print(secrets.token_hex(32))" >"$DIR/auth_token")
  export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$DIR/auth_token
  local common=(--block --node-ip-address "$HOST" --num-cpus "$CPUS" --object-store-memory "$OBJECT_STORE"
                --temp-dir "$RAY_TMP" --disable-usage-stats)
  start_session ray-head ray start --head --port "$BASE" "${common[@]}" \
    --node-manager-port $((BASE + 1)) --object-manager-port $((BASE + 2)) \
    --dashboard-host "$HOST" --dashboard-port $((BASE + 4)) \
    --dashboard-agent-listen-port $((BASE + 5)) --dashboard-agent-grpc-port $((BASE + 6)) \
    --runtime-env-agent-port $((BASE + 7)) --metrics-export-port $((BASE + 8)) \
    --min-worker-port $((BASE + 10)) --max-worker-port $((BASE + 59))
  wait_for "the Ray head" 90 ray_nodes_alive 1
  start_session ray-worker ray start --address "$HOST:$BASE" "${common[@]}" \
    --node-manager-port $((BASE + 61)) --object-manager-port $((BASE + 62)) \
    --dashboard-agent-listen-port $((BASE + 65)) --dashboard-agent-grpc-port $((BASE + 66)) \
    --runtime-env-agent-port $((BASE + 67)) --metrics-export-port $((BASE + 68)) \
    --min-worker-port $((BASE + 70)) --max-worker-port $((BASE + 119))
  start_session mlflow mlflow server --backend-store-uri "sqlite:///$DIR/mlflow.db" \
    --artifacts-destination "$DIR/mlartifacts" --host "$HOST" --port "$MLFLOW_PORT" --workers 1
  wait_for "the Ray worker node" 90 ray_nodes_alive 2
  wait_for "the MLflow server" 120 mlflow_healthy
  cat >"$DIR/env.sh" <<EOF
# written by scripts/local_cluster.sh up; source it in the shell that runs collide or ray
export RAY_ADDRESS=$HOST:$BASE
export RAY_AUTH_MODE=token
export RAY_AUTH_TOKEN_PATH=$DIR/auth_token
export RAY_DASHBOARD=http://$HOST:$((BASE + 4))
export MLFLOW_TRACKING_URI=http://$HOST:$MLFLOW_PORT
export COLLIDE_STORAGE_PATH=$DIR/storage
EOF
  echo "local cluster up: Ray head and 1 worker node at $HOST:$BASE ($CPUS CPU each, token auth),"
  echo "  Ray dashboard http://$HOST:$((BASE + 4)), MLflow server http://$HOST:$MLFLOW_PORT"
  echo "  source $DIR/env.sh   # then: collide sweep --address \$RAY_ADDRESS ..."
  echo "  $0 down              # stops exactly these processes"
}

status() {
  if [[ ! -e $DIR/$MARKER ]]; then echo "no local cluster in $DIR"; return 0; fi
  local f sid n
  for f in "$DIR"/*.sid; do
    [[ -e $f ]] || continue
    sid=$(<"$f")
    n=$(session_members "$sid" | wc -l)
    echo "$(basename "$f" .sid): session $sid, $n processes"
  done
}

down() {
  [[ -e $DIR/$MARKER ]] || die "$DIR holds no local cluster (no $MARKER); nothing to stop"
  local count
  count=$(stop_sessions)
  local ray_tmp
  ray_tmp=$(cat "$DIR/ray_tmp" 2>/dev/null || true)
  if [[ -n $ray_tmp && -e $ray_tmp/$MARKER ]]; then rm -rf "$ray_tmp"; fi
  rm -f "$DIR"/*.sid "$DIR/env.sh" "$DIR/ray_tmp"
  echo "local cluster down: stopped $count processes; no process of it is left (logs and the MLflow store stay in $DIR)"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|status|down   (settings: see the top of this script)" >&2; exit 2 ;;
esac
