#!/usr/bin/env bash
# make fuzz: run every FuzzXxx target of the module for $1 (default 20s) each.
set -euo pipefail
cd "$(dirname "$0")/../.."
t=${1:-20s}
for pkg in $(go list ./...); do
  for f in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
    echo "== $pkg $f"
    go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg"
  done
done
