#!/usr/bin/env bash
# Measures how long writes pause when the leader is restarted with SIGTERM
# (systemctl restart): three `paxosd serve` processes of BIN on the real
# disk (fsync on) under `paxosd bench put --clients 16`; every 5 s the
# leader is stopped with SIGTERM and started again. Prints the bench's JSON
# (latency_ms.max is the longest put: the worst pause).
#
#   scripts/restart-pause.sh BIN [RESTARTS]     (BENCH: the bench binary; default bin/paxosd)
set -euo pipefail
bin=$(realpath "$1"); restarts=${2:-3}
bench=$(realpath "${BENCH:-bin/paxosd}")
dir=$(mktemp -d /var/tmp/paxosd-restart.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
ports=(17401 17402 17403)
peers="1=127.0.0.1:${ports[0]},2=127.0.0.1:${ports[1]},3=127.0.0.1:${ports[2]}"
endpoints="127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
declare -a pids
start() {
	"$bin" serve --id "$1" --peers "$peers" --data-dir "$dir/n$1" --new-cluster --log-format json >>"$dir/n$1.log" 2>&1 &
	pids[$1]=$!
}
for i in 1 2 3; do start "$i"; done
until "$bench" status --endpoints "$endpoints" >/dev/null 2>&1; do sleep 0.2; done
duration=$(( restarts * 5 + 5 ))
"$bench" bench put --clients 16 --warmup 1s --duration "${duration}s" --json --endpoints "$endpoints" >"$dir/bench.json" &
bpid=$!
sleep 3
for _ in $(seq "$restarts"); do
	leader=$("$bench" status --endpoints "$endpoints" | awk '$3 == "leader" { print $1 }')
	kill -TERM "${pids[$leader]}"; wait "${pids[$leader]}" || true
	start "$leader"
	sleep 5
done
wait "$bpid"
cat "$dir/bench.json"
