#!/usr/bin/env bash
# Runs the seeded whole-node simulation (service TestNodeSim) over a seed
# range, split into shards that run in parallel, and prints what it did:
# seeds, wall time, seeds per hour, and each failing seed with the command
# that replays it. Exits 1 if any seed failed.
#
#   SEEDS        how many seeds in all (default 2000)
#   SIM_FROM     the first seed (default 0)
#   SIM_SHARDS   parallel processes (default: the number of CPUs)
#   SIM_TIME     virtual time of each seed's fault phase (default 12s)
#   SIM_RACE=1   build with the race detector (about 5x slower)
#   SIM_OUT      directory for the shards' logs (default a temporary one)
set -euo pipefail
cd "$(dirname "$0")/.."

seeds=${SEEDS:-2000}
from=${SIM_FROM:-0}
shards=${SIM_SHARDS:-$(nproc)}
simtime=${SIM_TIME:-12s}
out=${SIM_OUT:-$(mktemp -d -t paxosd-sim.XXXXXX)}
mkdir -p "$out"

flags=()
[ "${SIM_RACE:-0}" = 1 ] && flags+=(-race)
bin="$out/service.test"
go test -c "${flags[@]}" -o "$bin" ./service

per=$(( (seeds + shards - 1) / shards ))
echo "node simulation: seeds $from..$((from + seeds - 1)) in $shards shards of up to $per, fault phase $simtime; logs in $out"
start=$(date +%s)
pids=()
for ((i = 0; i < shards; i++)); do
	s=$((from + i * per))
	n=$per
	[ $((s + n)) -gt $((from + seeds)) ] && n=$((from + seeds - s))
	[ "$n" -le 0 ] && break
	# -sim.keepgoing: a failing seed is reported and the shard goes on.
	(cd service && exec "$bin" -test.run 'TestNodeSim$' -test.timeout 0 -test.v \
		-sim.from "$s" -sim.seeds "$n" -sim.time "$simtime" -sim.keepgoing) >"$out/shard$i.log" 2>&1 &
	pids+=($!)
done
status=0
for pid in "${pids[@]}"; do
	wait "$pid" || status=1
done
secs=$(( $(date +%s) - start ))
[ "$secs" -gt 0 ] || secs=1

failed=$(grep -h '^    nodesim_test.go:[0-9]*: seed [0-9]*:' "$out"/shard*.log | sed 's/^ *nodesim_test.go:[0-9]*: //' || true)
nfailed=$(printf '%s' "$failed" | grep -c '^seed' || true)
echo "seeds: $seeds, failed: $nfailed, wall time: ${secs}s, $(( seeds * 3600 / secs )) seeds/hour on $shards shards"
grep -h 'seeds in' "$out"/shard*.log | sed 's/^ *nodesim_test.go:[0-9]*: /  /' || true
if [ -n "$failed" ]; then
	printf '%s\n' "$failed" | cut -c1-400
	printf '%s\n' "$failed" | sed -n 's/^seed \([0-9]*\):.*/  replay: go test .\/service -run '"'"'TestNodeSim$'"'"' -sim.seed \1 -sim.trace/p'
	status=1
fi
exit $status
