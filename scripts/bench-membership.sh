#!/usr/bin/env bash
# Writes while the membership changes (issue 13's mark: pauses of at most
# 1 s under 'paxosd bench put --clients 16' over 100,000 keys): three
# 'paxosd serve' processes with their data on the disk (fsync on), KEYS keys
# preloaded, then DURATION of puts at CLIENTS clients, a line per second,
# while an operator does what issue 13's done-when says: adds node 4 as a
# learner (serve --join on an empty data dir) and promotes it, removes the
# leader of the time and kills its process, grows the cluster to five
# (nodes 5 and 6 added and promoted) and shrinks it to three (4 and 5
# removed, killed). The slowest put of each second is the pause a client
# saw; the run's ERRORS column counts failed puts; --verify makes each
# client write distinct values to keys of its own and read every key back
# at the end: the "verify:" line counts acknowledged writes LOST (the run
# fails if there is one). Usage:
#   scripts/bench-membership.sh ./paxosd
# Environment: KEYS (100000), CLIENTS (16), DURATION (60s), DIR
# (/var/tmp/paxosd-bench-membership, removed at the end unless KEEP=1),
# BASE_PORT (17501).
set -euo pipefail
BIN=$(readlink -f "${1:?usage: $0 PAXOSD_BINARY}")
KEYS=${KEYS:-100000}
CLIENTS=${CLIENTS:-16}
DURATION=${DURATION:-60s}
DIR=${DIR:-/var/tmp/paxosd-bench-membership}
PORT=${BASE_PORT:-17501}
rm -rf "$DIR" && mkdir -p "$DIR"
addr() { echo "127.0.0.1:$((PORT + $1 - 1))"; }
PEERS="1=$(addr 1),2=$(addr 2),3=$(addr 3)"
pids=()
cleanup() {
	# The operator's nodes were started in its own subshell: found by
	# their data directories.
	pkill -f -- "--data-dir $DIR/" 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ "${KEEP:-0}" = 1 ] || rm -rf "$DIR"
}
trap cleanup EXIT
serve() { # id, then serve's flags
	local id=$1
	shift
	"$BIN" serve --id "$id" --listen "$(addr "$id")" --data-dir "$DIR/node$id" --log-level info "$@" >"$DIR/node$id.log" 2>&1 &
	pids+=($!)
	eval "pid$id=$!"
}
for i in 1 2 3; do serve $i --peers "$PEERS" --new-cluster; done
export PAXOSD_ENDPOINTS="$(addr 1),$(addr 2),$(addr 3)"
for _ in $(seq 100); do "$BIN" kv put bench/ready 1 >/dev/null 2>&1 && break; sleep 0.1; done
echo "preloading $KEYS keys"
"$BIN" bench preload --keys "$KEYS" --clients 64 >/dev/null
leader() { # status exits 1 while a listed endpoint is down: its JSON still names the leader
	{ "$BIN" status -w json 2>/dev/null || true; } | python3 -c 'import json,sys; print([m["id"] for m in json.load(sys.stdin)["members"] if m.get("role")=="leader"][0])'
}
step() { echo "$(date +%T.%3N) $*"; }
operator() {
	sleep 8
	step "member add 4 (learner), serve --join"; "$BIN" member add 4="$(addr 4)" --learner >/dev/null
	serve 4 --join "$(addr 1)"
	step "member promote 4 --wait"; "$BIN" member promote 4 --wait >/dev/null
	sleep 5
	local l; l=$(leader)
	step "member remove $l (the leader), then kill it"; "$BIN" member remove "$l" >/dev/null
	pkill -f -- "--data-dir $DIR/node$l "
	sleep 5
	step "grow to 5: member add 5 and 6 (learners), serve --join, promote"
	for id in 5 6; do
		"$BIN" member add "$id=$(addr "$id")" --learner >/dev/null
		serve "$id" --join "$(addr 4)"
		"$BIN" member promote "$id" --wait >/dev/null
	done
	sleep 5
	step "shrink to 3: member remove 4, then 5 (each killed once removed)"
	for id in 4 5; do
		"$BIN" member remove "$id" >/dev/null
		pkill -f -- "--data-dir $DIR/node$id "
	done
	step "done"; "$BIN" member list
}
export PAXOSD_ENDPOINTS="$(addr 1),$(addr 2),$(addr 3),$(addr 4),$(addr 5),$(addr 6)"
operator 2>&1 | sed 's/^/operator: /' &
op=$!
"$BIN" bench put --run-id scale --keys "$KEYS" --clients "$CLIENTS" --duration "$DURATION" --warmup 0s --interval 1s --verify
wait $op
