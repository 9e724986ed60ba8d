#!/usr/bin/env bash
# Put + get over a loopback devnet of real processes (`kairos devnet` + the kairos CLI), one
# file per size given, next to the disk's own fsync'd write rate measured in the same run.
# Prints, per size, the put and get times and rates and the peak RSS of every process during
# each phase (peaks are reset between phases), and exits non-zero if any peak is above the
# bound.
#
# Usage: cargo build --release && scripts/bench-devnet.sh [SIZE ...]   (default: 1G 4G)
#   SIZE: bytes with an optional K, M or G suffix (binary), e.g. 64M 256M 1G 4G
# Environment:
#   NODES=6          daemons in the devnet
#   CODING=4+2       coding of the uploads (K+M)
#   RSS_LIMIT_MIB=96 the bound every daemon and CLI must stay under
#   KAIROS=path      the binary (default target/release/kairos)
#   TOR=1            run the devnet over a private Tor network on 127.0.0.1 (each daemon with
#                    its own tor; the RSS figures are kairos's processes, not the tors)
set -euo pipefail
K=${KAIROS:-$(cd "$(dirname "$0")/.." && pwd)/target/release/kairos}
[ -x "$K" ] || { echo "build first: cargo build --release (or set KAIROS=path/to/kairos)"; exit 1; }
NODES=${NODES:-6}
CODING=${CODING:-4+2}
LIMIT=${RSS_LIMIT_MIB:-96}
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(1G 4G)
D=$(mktemp -d)
DEV=
cleanup() { [ -n "$DEV" ] && kill -TERM "$DEV" 2>/dev/null && wait "$DEV" 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT

bytes() { numfmt --from=iec "$1"; }
now() { date +%s.%N; }
mbs() { echo "scale=1; $1 / 1000000 / $2" | bc; }

head -c $((1024*1024*1024)) /dev/urandom > "$D/dd.in"
echo "disk: dd 1 GiB with fsync: $(dd if="$D/dd.in" of="$D/dd.out" bs=4M conv=fsync 2>&1 | tail -1 | awk -F, '{print $NF}')"
rm -f "$D/dd.in" "$D/dd.out"

mkfifo "$D/out"
S=$(now)
TOR_FLAG=()
[ "${TOR:-0}" = 1 ] && TOR_FLAG=(--tor)
"$K" devnet --nodes "$NODES" --coding "$CODING" "${TOR_FLAG[@]}" --home "$D/net" > "$D/out" 2>"$D/devnet.err" &
DEV=$!
read -r line < "$D/out" || { cat "$D/devnet.err"; exit 1; }
[ "$line" = ready ] || { echo "devnet: $line"; cat "$D/devnet.err"; exit 1; }
READY=$(echo "$(now) - $S" | bc)
NAMES=(directory)
for i in $(seq 0 $((NODES - 1))); do NAMES+=("node-$i"); done
declare -A PID
TOTAL=0
for n in "${NAMES[@]}"; do
  PID[$n]=$(grep '^pid=' "$D/net/$n/ready" | cut -d= -f2)
  TOTAL=$((TOTAL + $(awk '/VmRSS/ {print $2}' "/proc/${PID[$n]}/status")))
done
echo "devnet: $NODES nodes${TOR_FLAG:+ over Tor}, coding $CODING, ready in ${READY} s, total RSS at ready $((TOTAL / 1024)) MiB"

FAILED=0
reset_peaks() { for n in "${NAMES[@]}"; do echo 5 > "/proc/${PID[$n]}/clear_refs"; done; }
# Prints "max-peak-MiB process" over the daemons, and every peak when there are few.
peaks() {
  local worst=0 who= all=
  for n in "${NAMES[@]}"; do
    local kib
    kib=$(awk '/VmHWM/ {print $2}' "/proc/${PID[$n]}/status")
    all+=" $n=$((kib / 1024))"
    if [ "$kib" -gt "$worst" ]; then worst=$kib; who=$n; fi
  done
  echo "$((worst / 1024)) $who"
  [ "$NODES" -le 8 ] && echo "   $all" >&2
  return 0
}
check() { # name MiB
  if [ "$2" -gt "$LIMIT" ]; then echo "   OVER THE BOUND: $1 peaked at $2 MiB > $LIMIT MiB"; FAILED=1; fi
}

printf '%-6s %-9s %-9s %-12s %-12s %-9s %-9s %-12s %-12s\n' size "put s" "put MB/s" "put daemon" "put CLI" "get s" "get MB/s" "get daemon" "get CLI"
for size in "${SIZES[@]}"; do
  b=$(bytes "$size")
  head -c "$b" /dev/urandom > "$D/in.bin"
  rel=$(date -u -d @$(( $(date +%s) + 15 )) +%Y-%m-%dT%H:%M:%SZ)
  reset_peaks
  S=$(now)
  KAIROS_HOME=$D/net/node-0 /usr/bin/time -f "%M" -o "$D/put.rss" "$K" put "$D/in.bin" --release-time "$rel" > "$D/id" 2>"$D/put.err" \
    || { cat "$D/put.err"; exit 1; }
  put_s=$(echo "$(now) - $S" | bc)
  read -r put_peak put_who < <(peaks 2>"$D/put.all")
  put_cli=$(( $(cat "$D/put.rss") / 1024 ))
  while [ "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \< "$rel" ] || [ "$(date -u +%Y-%m-%dT%H:%M:%SZ)" = "$rel" ]; do sleep 0.2; done
  reset_peaks
  S=$(now)
  KAIROS_HOME=$D/net/node-$((NODES - 1)) /usr/bin/time -f "%M" -o "$D/get.rss" "$K" get "$(tail -1 "$D/id")" --output "$D/back.bin" > /dev/null 2>"$D/get.err" \
    || { cat "$D/get.err"; exit 1; }
  get_s=$(echo "$(now) - $S" | bc)
  read -r get_peak get_who < <(peaks 2>"$D/get.all")
  get_cli=$(( $(cat "$D/get.rss") / 1024 ))
  cmp -s "$D/in.bin" "$D/back.bin" || { echo "$size: the file came back different"; exit 1; }
  printf '%-6s %-9s %-9s %-12s %-12s %-9s %-9s %-12s %-12s\n' "$size" "$put_s" "$(mbs "$b" "$put_s")" \
    "$put_peak MiB" "$put_cli MiB" "$get_s" "$(mbs "$b" "$get_s")" "$get_peak MiB" "$get_cli MiB"
  [ -s "$D/put.all" ] && echo "   put peaks (MiB):$(cat "$D/put.all")" && echo "   get peaks (MiB):$(cat "$D/get.all")"
  check "$put_who (put)" "$put_peak"; check "put CLI" "$put_cli"
  check "$get_who (get)" "$get_peak"; check "get CLI" "$get_cli"
  rm -f "$D/in.bin" "$D/back.bin"
done
echo "files identical after the round trip; peak RSS bound $LIMIT MiB: $([ $FAILED = 0 ] && echo kept || echo EXCEEDED)"
exit $FAILED
