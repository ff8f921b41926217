#!/bin/sh
# scripts/bench-scale.sh — 'make bench-scale': 'paxosd bench scale' with
# its parameters from the environment. It starts three 'paxosd serve'
# processes on loopback with their data in DIR (fsync on), preloads KEYS
# keys of VALUE bytes, runs puts over them at each CLIENTS count for
# DURATION with a table line per INTERVAL (ops/s, p50, p99, p99.9, slowest,
# each node's RSS and data size, the members' CPU time per put); with OUTAGE,
# one more put run at the first CLIENTS count with a follower down for its
# first OUTAGE, then rejoining under load; then restarts a follower and
# prints how long until it serves again, and each node's peak RSS against
# 2 x live data + 150 MiB. See docs/BENCHMARKS.md, "Scale benchmark".
#
# Usage: scripts/bench-scale.sh [PAXOSD_BINARY]      (default bin/paxosd)
#
# Environment:
#   KEYS        keys preloaded and overwritten (default 1000000)
#   VALUE       bytes per value (default 256)
#   CLIENTS     client counts, one put run each, e.g. "64 256" (the default)
#   DURATION    measured time of each put run (default 10m)
#   INTERVAL    one line per this much of a run (default 1m)
#   DIR         the nodes' data, logs and pid files (default
#               /var/tmp/paxosd-bench-scale: on the disk, where /tmp may be
#               a tmpfs); left for inspection unless CLEAN=1
#   OUTAGE      e.g. 5m: one more put run at the first CLIENTS count, a
#               follower stopped (SIGTERM) as it starts and restarted OUTAGE
#               later; must be shorter than DURATION (default: none)
#   SERVE_FLAGS flags for every 'paxosd serve', e.g. "--snapshot-entries 2000"
#   CLEAN=1     remove DIR at the end
#   SCALE_ARGS  more flags for 'paxosd bench scale', e.g. "--warmup 30s"
#               (split at spaces: no quoting inside)
set -eu

bin=${1:-bin/paxosd}
keys=${KEYS:-1000000}
value=${VALUE:-256}
clients=$(echo "${CLIENTS:-64 256}" | tr -s ' ,' ',' | sed 's/^,//; s/,$//')
duration=${DURATION:-10m}
interval=${INTERVAL:-1m}
dir=${DIR:-/var/tmp/paxosd-bench-scale}
outage=${OUTAGE:-0}

[ -x "$bin" ] || { echo "bench-scale.sh: $bin is not an executable (run 'make build')" >&2; exit 1; }
mkdir -p "$dir"
fstype=$(stat -f -c %T "$dir" 2>/dev/null || echo unknown)
case $fstype in
tmpfs | ramfs) echo "bench-scale.sh: warning: $dir is on $fstype: fsync costs nothing there; set DIR to a directory on a disk" >&2 ;;
esac

# paxosd bench scale stops its nodes itself, also on SIGINT/SIGTERM. Should
# it die without doing so, the nodes' pid files name what is left to stop.
pid=
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	for f in "$dir"/node*.pid; do
		[ -f "$f" ] || continue
		p=$(cat "$f")
		if [ -n "$p" ] && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q ' serve '; then
			kill -TERM "$p" 2>/dev/null || true
		fi
		rm -f "$f"
	done
	if [ "${CLEAN:-}" = 1 ]; then
		rm -rf "$dir"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

clean=
[ "${CLEAN:-}" = 1 ] && clean=--clean
# shellcheck disable=SC2086
"$bin" bench scale --dir "$dir" --keys "$keys" --value-size "$value" --clients "$clients" \
	--duration "$duration" --interval "$interval" --outage "$outage" --serve-flags "${SERVE_FLAGS:-}" \
	$clean ${SCALE_ARGS:-} &
pid=$!
status=0
wait "$pid" || status=$?
pid=
exit "$status"
