#!/usr/bin/env bash
# put + get of a 1 GiB file on a 6-node loopback devnet of real processes (kairos devnet +
# the kairos CLI), next to the disk's own fsync'd write rate measured in the same run, and the
# peak RSS of every process. Usage: cargo build --release && scripts/bench-devnet.sh
set -euo pipefail
K=${KAIROS:-$(cd "$(dirname "$0")/.." && pwd)/target/release/kairos}
[ -x "$K" ] || { echo "build first: cargo build --release (or set KAIROS=path/to/kairos)"; exit 1; }
D=$(mktemp -d)
trap 'rm -rf "$D"' EXIT
head -c $((1024*1024*1024)) /dev/urandom > $D/big.bin
echo "disk: dd 1 GiB with fsync:"; dd if=$D/big.bin of=$D/dd.out bs=4M conv=fsync 2>&1 | tail -1; rm -f $D/dd.out
mkfifo $D/out
$K devnet --nodes 6 --home $D/net > $D/out 2>$D/devnet.err &
DEV=$!
read -r line < $D/out
echo "devnet: $line"
RT=$(( $(date +%s) + 60 ))
REL=$(date -u -d @$RT +%Y-%m-%dT%H:%M:%SZ)
S=$(date +%s.%N)
KAIROS_HOME=$D/net/node-0 /usr/bin/time -f "put CLI maxrss %M KiB" $K put $D/big.bin --release-time $REL > $D/id 2>$D/put.err || { cat $D/put.err; kill $DEV; exit 1; }
E=$(date +%s.%N)
tail -1 $D/put.err
echo "put: $(echo "1073.741824 / ($E - $S)" | bc -l | cut -c1-6) MB/s ($(echo "$E - $S" | bc) s)"
while [ $(date +%s) -le $RT ]; do sleep 0.5; done
S=$(date +%s.%N)
KAIROS_HOME=$D/net/node-5 /usr/bin/time -f "get CLI maxrss %M KiB" $K get $(tail -1 $D/id) --output $D/back.bin > /dev/null 2>$D/get.err || { cat $D/get.err; kill $DEV; exit 1; }
E=$(date +%s.%N)
tail -1 $D/get.err
echo "get: $(echo "1073.741824 / ($E - $S)" | bc -l | cut -c1-6) MB/s ($(echo "$E - $S" | bc) s)"
cmp $D/big.bin $D/back.bin && echo "identical"
for n in directory node-0 node-1 node-2 node-3 node-4 node-5; do
  pid=$(grep '^pid=' $D/net/$n/ready | cut -d= -f2)
  echo "$n peak RSS: $(grep VmHWM /proc/$pid/status | awk '{print $2, $3}')"
done
kill -TERM $DEV; wait $DEV || true

