#!/usr/bin/env bash
# Soak: a put load over a fixed key space for SOAK_DURATION (default 10m) on
# three `paxosd serve` processes that snapshot every SOAK_SNAPSHOT slots.
# One node is stopped a fifth of the way in and restarted at the half, after
# the others have truncated their logs past it: it must rejoin by snapshot
# transfer and then serve the latest values (kv get --serializable on it).
# Every data directory is sampled every 15 s and must stay under
# SOAK_BOUND_MB. Prints a summary; exits non-zero on any failure.
#
#   scripts/soak.sh bin/paxosd          (make soak)
set -euo pipefail

BIN=${1:-bin/paxosd}
DURATION=${SOAK_DURATION:-10m}
SNAPSHOT=${SOAK_SNAPSHOT:-500}
BOUND_MB=${SOAK_BOUND_MB:-64}
KEYS=${SOAK_KEYS:-1000}
BASE=${SOAK_BASE_PORT:-7611}

dir=$(mktemp -d /tmp/paxosd-soak-XXXXXX)
peers="1=127.0.0.1:$BASE,2=127.0.0.1:$((BASE + 1)),3=127.0.0.1:$((BASE + 2))"
endpoints="127.0.0.1:$BASE,127.0.0.1:$((BASE + 1)),127.0.0.1:$((BASE + 2))"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

start() { # start NODE
	local i=$1
	"$BIN" serve --id "$i" --listen "127.0.0.1:$((BASE + i - 1))" --peers "$peers" \
		--data-dir "$dir/node$i" --new-cluster --snapshot-entries "$SNAPSHOT" \
		--log-level info >>"$dir/node$i.log" 2>&1 &
	pids[$i]=$!
}

seconds() { # 10m, 90s, 1h -> seconds
	local d=$1
	case $d in
	*h) echo $((${d%h} * 3600)) ;;
	*m) echo $((${d%m} * 60)) ;;
	*s) echo "${d%s}" ;;
	*) echo "$d" ;;
	esac
}

total=$(seconds "$DURATION")
echo "soak: ${DURATION} of puts over $KEYS keys, snapshot every $SNAPSHOT slots, bound ${BOUND_MB} MiB per data dir; in $dir"
for i in 1 2 3; do start "$i"; done
sleep 2

"$BIN" bench put --endpoints "$endpoints" --clients 16 --keys "$KEYS" --duration "$DURATION" --warmup 0s \
	--timeout 10s >"$dir/bench.txt" 2>&1 &
bench=$!

maxmb=(0 0 0 0)
sample() {
	for i in 1 2 3; do
		[ -d "$dir/node$i" ] || continue
		local kb
		kb=$(du -sk "$dir/node$i" | cut -f1)
		local mb=$((kb / 1024))
		if [ "$mb" -gt "${maxmb[$i]}" ]; then maxmb[$i]=$mb; fi
	done
	echo "soak: t=${1}s data dirs MiB: node1 $(($(du -sk "$dir/node1" | cut -f1) / 1024)) node2 $(($(du -sk "$dir/node2" | cut -f1) / 1024)) node3 $(($(du -sk "$dir/node3" | cut -f1) / 1024))"
}

stop_at=$((total / 5))
restart_at=$((total / 2))
stopped=0
t=0
while [ "$t" -lt "$total" ]; do
	sleep 15
	t=$((t + 15))
	if [ "$stopped" = 0 ] && [ "$t" -ge "$stop_at" ]; then
		echo "soak: t=${t}s stopping node 3"
		kill -9 "${pids[3]}"
		stopped=1
	fi
	if [ "$stopped" = 1 ] && [ "$t" -ge "$restart_at" ]; then
		echo "soak: t=${t}s restarting node 3"
		start 3
		stopped=2
	fi
	sample "$t"
done
wait "$bench" || { echo "soak: FAIL: the load generator failed"; cat "$dir/bench.txt"; exit 1; }
cat "$dir/bench.txt"

fail=0
if ! grep -q "installed the leader's snapshot" "$dir/node3.log"; then
	echo "soak: FAIL: node 3 did not rejoin by snapshot"
	fail=1
fi
# Latest values: write a marker through the cluster, then read every key
# both linearizably and from node 3's own state.
"$BIN" kv put --endpoints "$endpoints" soak-final done >/dev/null
node3=127.0.0.1:$((BASE + 2))
ok=0
for _ in $(seq 1 50); do
	if [ "$("$BIN" kv get --endpoints "$node3" --serializable soak-final 2>/dev/null)" = "done" ]; then ok=1; break; fi
	sleep 0.2
done
[ "$ok" = 1 ] || { echo "soak: FAIL: node 3 does not serve the latest value"; fail=1; }
# Every bench key, linearizably from the cluster and from node 3's own
# state, once node 3 has applied the marker written after the load.
want=$("$BIN" kv ls --endpoints "$endpoints" bench/ | md5sum)
got=$("$BIN" kv ls --endpoints "$node3" --serializable bench/ | md5sum)
nkeys=$("$BIN" kv ls --endpoints "$node3" --serializable --keys-only bench/ | wc -l)
mismatch=0
[ "$want" = "$got" ] || mismatch=1
[ "$mismatch" = 0 ] || { echo "soak: FAIL: node 3's keys and values differ from the cluster's"; fail=1; }
for i in 1 2 3; do
	if [ "${maxmb[$i]}" -ge "$BOUND_MB" ]; then
		echo "soak: FAIL: node $i's data dir reached ${maxmb[$i]} MiB (bound $BOUND_MB)"
		fail=1
	fi
done
snaps=$(grep -c 'snapshot taken' "$dir/node1.log" || true)
echo "soak: summary: duration $DURATION, snapshots on node 1: $snaps, max data dir MiB: node1 ${maxmb[1]} node2 ${maxmb[2]} node3 ${maxmb[3]} (bound $BOUND_MB), node 3 rejoined by snapshot: $(grep -c "installed the leader's snapshot" "$dir/node3.log" || true) install(s), node 3 serves the cluster's $nkeys keys and values: $([ "$mismatch" = 0 ] && echo yes || echo NO)"
[ "$fail" = 0 ] && echo "soak: PASS" || { echo "soak: logs in $dir"; exit 1; }
rm -rf "$dir"
