#!/usr/bin/env bash
# What the drand lock costs a put and a get on a 6-node loopback devnet of real processes (its
# local test chain stands in for drand): the same file put with --lock drand and --lock peer
# back to back, both fetched right at their release time; prints each elapsed time and the
# drand ÷ peer ratio. The get of a drand-locked file starts the moment its round is due, so its
# time is also "round published → file back". Usage:
#   cargo build --release && scripts/bench-lock.sh [MiB ...]     (default: 1 1024)
set -euo pipefail
K=${KAIROS:-$(cd "$(dirname "$0")/.." && pwd)/target/release/kairos}
[ -x "$K" ] || { echo "build first: cargo build --release (or set KAIROS=path/to/kairos)"; exit 1; }
SIZES=${*:-1 1024}
D=$(mktemp -d)
DEV=""
cleanup() { [ -n "$DEV" ] && kill -TERM "$DEV" 2>/dev/null && wait "$DEV" 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
mkfifo "$D/out"
"$K" devnet --nodes 6 --home "$D/net" > "$D/out" 2> "$D/devnet.err" &
DEV=$!
read -r line < "$D/out"
echo "devnet: $line"
field() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
for mib in $SIZES; do
  head -c $((mib * 1024 * 1024)) /dev/urandom > "$D/f.bin"
  declare -A put_ms get_ms ids rels
  rel=$(( $(date +%s) + 20 + mib / 50 ))
  for lock in drand peer; do
    out=$(KAIROS_HOME="$D/net/node-0" "$K" put "$D/f.bin" --release-time "+$(( rel - $(date +%s) ))s" --lock $lock --json 2>/dev/null)
    put_ms[$lock]=$(echo "$out" | field "['elapsed_ms']")
    ids[$lock]=$(echo "$out" | field "['id']")
    rels[$lock]=$(echo "$out" | field "['release']")
  done
  for lock in drand peer; do
    while [ "$(date +%s)" -lt "${rels[$lock]}" ]; do sleep 0.05; done
    s=$(date +%s%N)
    KAIROS_HOME="$D/net/node-5" "$K" get "${ids[$lock]}" --output "$D/back-$lock.bin" > /dev/null 2> "$D/get.err" \
      || { cat "$D/get.err"; exit 1; }
    get_ms[$lock]=$(( ($(date +%s%N) - s) / 1000000 ))
    cmp -s "$D/f.bin" "$D/back-$lock.bin" || { echo "$lock: bytes differ"; exit 1; }
    rm -f "$D/back-$lock.bin"
  done
  printf '%5d MiB  put: drand %6d ms, peer %6d ms (×%s)   get at release: drand %6d ms, peer %6d ms (×%s)\n' \
    "$mib" "${put_ms[drand]}" "${put_ms[peer]}" "$(echo "scale=3; ${put_ms[drand]} / ${put_ms[peer]}" | bc)" \
    "${get_ms[drand]}" "${get_ms[peer]}" "$(echo "scale=3; ${get_ms[drand]} / ${get_ms[peer]}" | bc)"
done
