#!/usr/bin/env bash
# make cluster: three appliances on loopback in the foreground, each with
# its own data directory and simulated rack; the first bootstraps the
# cluster, the other two join it with single-use tokens. A second run
# restarts the same cluster. Ctrl-C stops all three (by PID).
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=./bin
BASE=${SAMRACK_CLUSTER_DIR:-/var/lib/samrack-dev-cluster}
SAMS=${SAMRACK_CLUSTER_SAMS:-4}
# node → readers admin raft link
ports=("" "7467 7480 7468 7469" "7567 7580 7568 7569" "7667 7680 7668 7669")
pids=()

stop() {
  trap - INT TERM EXIT
  echo; echo "stopping the three appliances"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  exit 0
}
trap stop INT TERM EXIT

start() { # start N [extra flags...]: samrackd for node N, output prefixed with [nN]
  local n=$1; shift
  read -r r a f l <<<"${ports[$n]}"
  mkdir -p "$BASE/$n"
  rm -f "$BASE/$n/admin.json"
  $BIN/samrackd --dev --data "$BASE/$n" --listen "127.0.0.1:$r" --admin "127.0.0.1:$a" --raft "127.0.0.1:$f" --link "127.0.0.1:$l" \
    --sim-sams "$SAMS" --log-level warn "$@" > >(sed -u "s/^/[n$n] /") 2>&1 &
  pids+=($!)
}

wait_up() { # wait_up N: until node N answers samctl
  for _ in $(seq 300); do
    [ -f "$BASE/$1/admin.json" ] && $BIN/samctl --data "$BASE/$1" health >/dev/null 2>&1 && return 0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || { echo "an appliance exited"; exit 1; }; done
    sleep 0.1
  done
  echo "node $1 did not come up"; exit 1
}

if [ -f "$BASE/1/raft/raft.db" ] && [ -f "$BASE/2/raft/raft.db" ] && [ -f "$BASE/3/raft/raft.db" ]; then
  echo "restarting the cluster in $BASE"
  for n in 1 2 3; do start "$n"; done # together: each waits for a quorum
  for n in 1 2 3; do wait_up "$n"; done
else
  echo "forming a new cluster in $BASE"
  rm -rf "${BASE:?}/1" "${BASE:?}/2" "${BASE:?}/3"
  start 1 --bootstrap
  wait_up 1
  for n in 2 3; do
    token=$($BIN/samctl --data "$BASE/1" cluster token --ttl 5m 2>/dev/null)
    start "$n" --join 127.0.0.1:7480 --token "$token"
    wait_up "$n"
  done
fi

$BIN/samctl --data "$BASE/1" cluster members
cat <<EOT

Three appliances are up (readers / admin / raft / link on 127.0.0.1):
  n1  7467 / 7480 / 7468 / 7469   data $BASE/1
  n2  7567 / 7580 / 7568 / 7569   data $BASE/2
  n3  7667 / 7680 / 7668 / 7669   data $BASE/3

Point samctl at any of them (writes are forwarded to the leader):
  $BIN/samctl --data $BASE/2 cluster members
  $BIN/samctl --data $BASE/3 reader add HOTEL-0001 --out reader.json
  $BIN/samctl --data $BASE/1 blacklist add \$($BIN/samreader card --seed 7 --serial) --reason stolen
  $BIN/samctl --data $BASE/2 --consistent blacklist list
  $BIN/samctl --data $BASE/1 cluster transfer-leader
  $BIN/samctl --data $BASE/1 slots --all          # every appliance's slots, from the replicated inventory
And samreader (the bundle names the appliance that issued it):
  $BIN/samreader read --creds reader.json --seed 8

Ctrl-C stops all three.
EOT
wait -n "${pids[@]}" || true
echo "an appliance exited"
stop
