#!/bin/sh
# scripts/bench.sh — 'make bench': start a fresh local cluster ('paxosd dev'
# with a temporary data directory and ports of its own), wait until it has
# a leader, run the standard set ('paxosd bench suite': put 1/16/64/256
# clients, get 64, lock 1/16/64, lock-contended 16), print one table, and
# stop the cluster. Then the sessions, churn and watch benches, small, each
# on three 'paxosd serve' processes of its own (make bench-sessions runs
# them at full size).
#
# Usage: scripts/bench.sh [PAXOSD_BINARY]      (default bin/paxosd)
#
# Environment:
#   BENCH_DURATION   measured time of each run (default 10s)
#   BENCH_WARMUP     unmeasured time before each run (default 2s)
#   BENCH_ARGS       more flags for 'paxosd bench suite', e.g. "--conns 16"
#   BENCH_DEV_ARGS   more flags for 'paxosd dev', e.g. "--window 512"
#   BENCH_DIR        where the cluster's data directory is made (default $TMPDIR
#                    or /tmp); put it on the disk you mean to measure
#   BENCH_MACHINE=1  also measure this machine's fdatasync and loopback RTT
#   BENCH_FAILOVER=1 also run 'paxosd bench failover' (its own 3 processes)
#   BENCH_SESSIONS=0 skip the sessions, churn and watch benches (about 40 s)
set -eu

bin=${1:-bin/paxosd}
duration=${BENCH_DURATION:-10s}
warmup=${BENCH_WARMUP:-2s}
parent=${BENCH_DIR:-${TMPDIR:-/tmp}}

[ -x "$bin" ] || { echo "bench.sh: $bin is not an executable (run 'make build')" >&2; exit 1; }
dir=$(mktemp -d "$parent/paxosd-bench.XXXXXX")
pid=
stop_cluster() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	pid=
}
cleanup() {
	stop_cluster
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fstype=$(stat -f -c %T "$dir" 2>/dev/null || echo unknown)
case $fstype in
tmpfs | ramfs) echo "bench.sh: warning: $dir is on $fstype: fsync costs nothing there; set BENCH_DIR to a directory on a disk" >&2 ;;
esac

# Ports of its own: try random base ports until 'paxosd dev' stays up and
# elects a leader (a port in use makes it exit at once).
started=
for attempt in 1 2 3 4 5; do
	base=$(awk -v s="$$$attempt" 'BEGIN { srand(s); print 20000 + int(rand() * 12000) }')
	eps="127.0.0.1:$base,127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2))"
	rm -rf "$dir/data"
	# shellcheck disable=SC2086
	"$bin" dev --data-dir "$dir/data" --base-port "$base" --http-base-port "$((base + 10))" --enable-pprof ${BENCH_DEV_ARGS:-} >"$dir/dev.log" 2>&1 &
	pid=$!
	i=0
	while [ $i -lt 100 ]; do
		if ! kill -0 "$pid" 2>/dev/null; then
			break
		fi
		if "$bin" status --endpoints "$eps" --timeout 1s 2>/dev/null | grep -qw leader; then
			started=1
			break
		fi
		sleep 0.1
		i=$((i + 1))
	done
	[ -n "$started" ] && break
	stop_cluster
done
if [ -z "$started" ]; then
	echo "bench.sh: the local cluster did not start; its log:" >&2
	cat "$dir/dev.log" >&2
	exit 1
fi
echo "bench.sh: cluster at $eps (data in $dir on $fstype); each run ${duration} after ${warmup} warmup" >&2

# shellcheck disable=SC2086
"$bin" bench suite --endpoints "$eps" --duration "$duration" --warmup "$warmup" ${BENCH_ARGS:-}
stop_cluster

if [ "${BENCH_SESSIONS:-1}" != 0 ]; then
	# A hold of one TTL: each session is kept alive three times.
	echo
	"$bin" bench sessions --sessions 2000 --ttl 10s --hold 10s --interval 5s --dir "$dir"
	echo
	"$bin" bench churn --workers 64 --duration 5s --warmup 1s --dir "$dir"
	echo
	"$bin" bench watch --watchers 200 --rate 50 --duration 5s --baseline 5s --dir "$dir"
fi

if [ "${BENCH_MACHINE:-}" = 1 ]; then
	echo
	"$bin" bench fsync --dir "$dir"
	"$bin" bench rtt
fi
if [ "${BENCH_FAILOVER:-}" = 1 ]; then
	echo
	"$bin" bench failover --rounds "${BENCH_ROUNDS:-10}"
fi
