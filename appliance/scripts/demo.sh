#!/usr/bin/env bash
# make demo: start an appliance, provision a reader, read three virtual
# cards, blacklist one of them and show that read rejected with its code.
# Stops everything it started (by PID) and exits 0 only if all of it happened.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=./bin
work=$(mktemp -d /tmp/samrack-demo.XXXXXX)
reader_port=${DEMO_READER_PORT:-17433}
admin_port=${DEMO_ADMIN_PORT:-17480}
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "start samrackd (dev mode: simulated rack of 4 SAMs, embedded storage in $work)"
$BIN/samrackd --dev --data "$work/data" --listen "127.0.0.1:$reader_port" --admin "127.0.0.1:$admin_port" \
  --sim-sams 4 >"$work/samrackd.log" 2>&1 &
pid=$!
# samctl finds the admin credentials the daemon wrote in its data directory
# (admin.json, 0600) and talks HTTPS with its client certificate.
for _ in $(seq 100); do
  $BIN/samctl --data "$work/data" health >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/samrackd.log"; echo "samrackd exited"; exit 1; }
  sleep 0.1
done
$BIN/samctl --data "$work/data" slots

step "provision reader DEMO-0001 (writes its credential bundle)"
$BIN/samctl --data "$work/data" reader add DEMO-0001 --out "$work/reader.json"

step "read three virtual cards"
for seed in 1 2 3; do
  $BIN/samreader read --creds "$work/reader.json" --seed "$seed"
done

step "blacklist the card of seed 2"
serial=$($BIN/samreader card --seed 2 --serial)
$BIN/samctl --data "$work/data" blacklist add "$serial" --reason "demo: reported stolen"
$BIN/samctl --data "$work/data" blacklist list

step "read card 2 again: the appliance must refuse it"
set +e
out=$($BIN/samreader read --creds "$work/reader.json" --seed 2 2>&1)
rc=$?
set -e
echo "$out"
if [ $rc -eq 0 ] || ! grep -q "201" <<<"$out"; then
  echo "demo FAILED: the blacklisted card was not refused with code 201"; exit 1
fi

step "card 1 still reads"
$BIN/samreader read --creds "$work/reader.json" --seed 1 --json | head -c 300; echo

step "an operator identity for the hardware team: it may blacklist, not provision readers"
$BIN/samctl --data "$work/data" operator add hw-team --role operator --out "$work/hw.json"
$BIN/samctl --creds "$work/hw.json" slot locate-on 1 >/dev/null
set +e
out=$($BIN/samctl --creds "$work/hw.json" reader add DEMO-0002 --out "$work/r2.json" 2>&1)
rc=$?
set -e
echo "$out"
if [ $rc -eq 0 ] || ! grep -q "needs role admin" <<<"$out"; then
  echo "demo FAILED: an operator-role identity provisioned a reader"; exit 1
fi
$BIN/samctl --data "$work/data" operator revoke hw-team
if $BIN/samctl --creds "$work/hw.json" slots >/dev/null 2>&1; then
  echo "demo FAILED: a revoked identity was still accepted"; exit 1
fi

step "audit trail of the changes, with who made them (card serials appear only as keyed hashes)"
$BIN/samctl --data "$work/data" audit --n 8 --kind blacklist
$BIN/samctl --data "$work/data" audit --n 8 --actor hw-team
$BIN/samctl --data "$work/data" audit --n 6 --kind read
echo
echo "demo OK"
