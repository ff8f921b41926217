#!/bin/sh
# scripts/bench-etcd.sh — 'make bench-etcd': paxosd and etcd 3.4 side by
# side, on the same machine, the same disk, the same keyspace and the same
# load. It starts three 'paxosd serve' processes and three etcd members on
# loopback, their data in DIR (fsync on: both systems' default), preloads
# KEYS keys of VALUE bytes into each, then, ROUNDS times, runs puts over
# them at each CLIENTS count on paxosd and on etcd in turn (which goes
# first alternates by round), each for DURATION after WARMUP. Per run it
# prints ops/s, p50/p99/p99.9, errors, and the CPU time (user + system)
# the three members spent per put; at the end the medians over the rounds
# with their min-max, and paxosd/etcd ratios. See docs/BENCHMARKS.md, "Side
# by side with etcd".
#
# VERSUS=tls compares paxosd with itself over TLS instead (make bench-tls):
# a second cluster of three 'paxosd serve' processes with TLS and
# --client-cert-auth on, its certificates made with openssl by
# scripts/make-certs.sh, the load generator given the client flags; the
# summary then says tls/paxosd. Nothing of etcd is installed or started.
#
# paxosd's side is 'paxosd bench preload' and 'paxosd bench put --run-id
# scale --json'; etcd's is tools/etcdload (etcd's Go client, its own Go
# module), which measures as 'paxosd bench put' does and prints the same
# JSON. etcd is Debian's etcd-server/etcd-client, installed if missing (as
# root).
#
# Usage: scripts/bench-etcd.sh [PAXOSD_BINARY]      (default bin/paxosd)
#
# Environment:
#   KEYS        keys preloaded into both and overwritten (default 1000000)
#   VALUE       bytes per value (default 256)
#   CLIENTS     client counts, e.g. "64 256" (the default)
#   ROUNDS      rounds; each runs every CLIENTS count on both (default 3)
#   DURATION    measured time of each run (default 60s; s, m or h)
#   WARMUP      unmeasured time before each run (default 10s, at least 1s)
#   SETTLE      pause before each run, for the last one's background work
#               (compactions) to drain (default 5s)
#   CONNS       connections the clients share (default 8)
#   DIR         data, logs, pid files and per-run output (default
#               /var/tmp/paxosd-bench-etcd: on the disk, where /tmp may be a
#               tmpfs); left for inspection unless CLEAN=1
#   PORT        the first of 9 loopback ports to try (default 24100)
#   ETCD_QUOTA  etcd's --quota-backend-bytes (default 8 GiB: etcd keeps
#               every revision, so its backend grows with each put)
#   ETCD_FLAGS  more flags for every etcd member
#   SERVE_FLAGS more flags for every 'paxosd serve'
#   ETCDLOAD_FLAGS more flags for etcdload's runs, e.g. --leader-only
#   VERSUS      what paxosd is compared with: etcd (the default) or tls
#   CLEAN=1     remove DIR at the end
set -eu

me=bench-etcd.sh
die() {
	echo "$me: $*" >&2
	exit 1
}

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/bin/paxosd}
case $bin in /*) ;; *) bin=$(pwd)/$bin ;; esac
etcdload=$root/bin/etcdload
keys=${KEYS:-1000000}
value=${VALUE:-256}
clients=$(echo "${CLIENTS:-64 256}" | tr -s ', ' '  ')
rounds=${ROUNDS:-3}
conns=${CONNS:-8}
dir=${DIR:-/var/tmp/paxosd-bench-etcd}
port=${PORT:-24100}
quota=${ETCD_QUOTA:-8589934592}
versus=${VERSUS:-etcd}
case $versus in
etcd | tls) ;;
*) die "VERSUS=$versus: want etcd or tls" ;;
esac

for v in "KEYS=$keys" "VALUE=$value" "ROUNDS=$rounds" "CONNS=$conns" "PORT=$port" "ETCD_QUOTA=$quota"; do
	case ${v#*=} in '' | *[!0-9]*) die "$v: want a whole number" ;; esac
done
[ -n "$(echo "$clients" | tr -d ' ')" ] || die "CLIENTS lists no client count"
for c in $clients; do
	case $c in '' | *[!0-9]* | 0) die "CLIENTS=$clients: want whole numbers above 0, e.g. \"64 256\"" ;; esac
done
if [ "$rounds" -lt 1 ] || [ "$keys" -lt 1 ] || [ "$conns" -lt 1 ]; then
	die "ROUNDS, KEYS and CONNS must be at least 1"
fi

# secs NAME VALUE: VALUE (N, Ns, Nm or Nh) in whole seconds; both tools
# are then given "<secs>s", and sleep the same number.
secs() {
	case $2 in
	*[0-9]s) n=${2%s} m=1 ;;
	*[0-9]m) n=${2%m} m=60 ;;
	*[0-9]h) n=${2%h} m=3600 ;;
	*) n=$2 m=1 ;;
	esac
	case $n in '' | *[!0-9]*) die "$1=$2: want whole seconds, minutes or hours, e.g. 60s, 2m, 1h" ;; esac
	echo $((n * m))
}
duration=$(secs DURATION "${DURATION:-60s}")
warmup=$(secs WARMUP "${WARMUP:-10s}")
settle=$(secs SETTLE "${SETTLE:-5s}")
[ "$duration" -ge 1 ] || die "DURATION must be at least 1s"
# The warmup mark is where the members' CPU time is first read: the run's
# measured window starts then (give or take the client's connecting).
[ "$warmup" -ge 1 ] || die "WARMUP must be at least 1s"

[ -x "$bin" ] || die "$bin is not an executable (run 'make build')"

# etcd: Debian's package (3.4 in bookworm), installed only if missing.
etcd_version=
if [ "$versus" = etcd ]; then
if ! command -v etcd >/dev/null 2>&1 || ! command -v etcdctl >/dev/null 2>&1; then
	missing=
	command -v etcd >/dev/null 2>&1 || missing="etcd (package etcd-server)"
	command -v etcdctl >/dev/null 2>&1 || missing="$missing${missing:+ and }etcdctl (package etcd-client)"
	if [ "$(id -u)" != 0 ]; then
		die "missing: $missing; run as root to have them installed, or: sudo apt-get install etcd-server etcd-client"
	fi
	echo "$me: installing etcd-server and etcd-client (missing: $missing)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y --no-install-recommends etcd-server etcd-client ||
		{ apt-get update && apt-get install -y --no-install-recommends etcd-server etcd-client; } ||
		die "could not install etcd-server and etcd-client with apt-get"
fi
etcd_version=$(etcd --version 2>/dev/null | sed -n 's/^etcd Version: *//p')
case $etcd_version in
3.4.*) ;;
*) echo "$me: warning: etcd is version '${etcd_version:-unknown}', not 3.4: the comparison is with that" >&2 ;;
esac

# The load generator for etcd: its own module (tools/etcdload/go.mod, which
# borrows only internal/latency from this one through a replace), so
# the paxosd module does not depend on etcd's client.
echo "$me: building $etcdload"
(cd "$root/tools/etcdload" && ${GO:-go} build -o "$etcdload" .) || die "building tools/etcdload failed"
fi

# ours PID: PID runs with DIR in its command line (a member this script,
# or an earlier run of it, started; not another process that got its pid).
ours() {
	{ tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null | grep -qF "$dir/"
}

# DIR: made, or emptied of what an earlier run left; anything else in it
# is refused, since it is removed.
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
for f in "$dir"/* "$dir"/.[!.]*; do
	[ -e "$f" ] || continue
	case ${f##*/} in
	etcd[123] | etcd[123].log | etcd[123].pid | paxosd[123] | paxosd[123].log | paxosd[123].pid | tls[123] | tls[123].log | tls[123].pid | certs | runs | results.tsv | preload-*.log) ;;
	*) die "DIR=$dir holds ${f##*/}, which an earlier run did not leave: give an empty or new directory" ;;
	esac
	case $f in
	*.pid)
		p=$(cat "$f")
		if [ -n "$p" ] && ours "$p"; then
			die "$f: process $p of an earlier run is still running (stop it: kill $p)"
		fi
		;;
	esac
done
rm -rf "$dir"/etcd[123] "$dir"/etcd[123].* "$dir"/paxosd[123] "$dir"/paxosd[123].* "$dir"/tls[123] "$dir"/tls[123].* "$dir"/certs "$dir"/runs "$dir"/results.tsv "$dir"/preload-*.log
mkdir -p "$dir/runs"
fstype=$(stat -f -c %T "$dir" 2>/dev/null || echo unknown)
case $fstype in
tmpfs | ramfs) echo "$me: warning: $dir is on $fstype: fsync costs nothing there; set DIR to a directory on a disk" >&2 ;;
esac

# Everything this script starts is stopped on exit, also on Ctrl-C or
# SIGTERM: the members by their pid files (checked against DIR in their
# command line, so that a reused pid is left alone), the load generator by
# the pid its wrapper wrote.
gen_wrapper='' gen_pidfile=
cleanup() {
	status=$?
	trap - EXIT INT TERM
	pids=
	if [ -n "$gen_wrapper" ]; then
		g=$(cat "$gen_pidfile" 2>/dev/null || true)
		if [ -n "$g" ]; then kill -TERM "$g" 2>/dev/null || true; fi
		pids=$gen_wrapper
	fi
	for f in "$dir"/etcd[123].pid "$dir"/paxosd[123].pid "$dir"/tls[123].pid; do
		[ -f "$f" ] || continue
		p=$(cat "$f")
		if [ -n "$p" ] && ours "$p"; then
			kill -TERM "$p" 2>/dev/null || true
			pids="$pids $p"
		fi
		rm -f "$f"
	done
	if [ -n "$pids" ]; then
		# shellcheck disable=SC2086 # pids is a list
		(sleep 20 && kill -KILL $pids 2>/dev/null) &
		watchdog=$!
		for p in $pids; do wait "$p" 2>/dev/null || true; done
		kill "$watchdog" 2>/dev/null || true
		wait "$watchdog" 2>/dev/null || true
	fi
	if [ "${CLEAN:-}" = 1 ]; then
		rm -rf "$dir"
	else
		echo "data, logs, per-run output: $dir (CLEAN=1 removes it)"
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Twelve free loopback ports from PORT on: etcd's client and peer ports,
# paxosd's and the TLS cluster's, three each (those of the system not
# compared stay unused). Free means no listener in /proc/net/tcp{,6}.
listening() {
	cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
		awk -v p="$(printf ':%04X' "$1")" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }'
}
ports=
p=$port
while [ "$(echo "$ports" | wc -w)" -lt 12 ]; do
	[ "$p" -le 65535 ] || die "no 12 free ports from PORT=$port on"
	listening "$p" || ports="$ports $p"
	p=$((p + 1))
done
# nthport N: the Nth of them; etcd member i has client port i and peer port
# 3+i, paxosd node i port 6+i, TLS node i port 9+i.
nthport() { echo "$ports" | awk -v n="$1" '{ print $n }'; }
etcd_eps='' pax_eps='' cluster='' peers='' tls_eps='' tls_peers=''
for i in 1 2 3; do
	etcd_eps=$etcd_eps${etcd_eps:+,}127.0.0.1:$(nthport "$i")
	cluster=$cluster${cluster:+,}e$i=http://127.0.0.1:$(nthport $((3 + i)))
	pax_eps=$pax_eps${pax_eps:+,}127.0.0.1:$(nthport $((6 + i)))
	peers=$peers${peers:+,}$i=127.0.0.1:$(nthport $((6 + i)))
	tls_eps=$tls_eps${tls_eps:+,}127.0.0.1:$(nthport $((9 + i)))
	tls_peers=$tls_peers${tls_peers:+,}$i=127.0.0.1:$(nthport $((9 + i)))
done
# The TLS cluster's certificates, and the client flags that go with them.
certs=$dir/certs
tls_client="--cacert $certs/ca.crt --cert $certs/bench.crt --key $certs/bench.key"
if [ "$versus" = tls ]; then
	"$root/scripts/make-certs.sh" "$certs" "1 2 3" bench || die "making the TLS certificates failed"
fi

echo "bench-etcd: $(nproc) cores; data in $dir ($fstype); versus ${versus}${etcd_version:+ $etcd_version}; $("$bin" version 2>/dev/null | head -n 1)"
echo "bench-etcd: $keys keys of $value bytes; puts at clients $clients over $conns connections, $duration s each after $warmup s warmup, $rounds round(s)"

# The members. etcd: its defaults (fsync on every commit, --snapshot-count
# 100000, no auto-compaction) but for the quota; paxosd: as 'paxosd bench
# scale' starts its nodes (internal/bench/nodes.go).
for i in 1 2 3; do
	[ "$versus" = etcd ] || break
	cp=$(nthport "$i") pp=$(nthport $((3 + i)))
	# shellcheck disable=SC2086 # ETCD_FLAGS is a list of flags
	etcd --name "e$i" --data-dir "$dir/etcd$i" \
		--listen-client-urls "http://127.0.0.1:$cp" --advertise-client-urls "http://127.0.0.1:$cp" \
		--listen-peer-urls "http://127.0.0.1:$pp" --initial-advertise-peer-urls "http://127.0.0.1:$pp" \
		--initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token paxosd-bench-etcd \
		--quota-backend-bytes "$quota" ${ETCD_FLAGS:-} >"$dir/etcd$i.log" 2>&1 &
	echo $! >"$dir/etcd$i.pid"
done
for i in 1 2 3; do
	xp=$(nthport $((6 + i)))
	# shellcheck disable=SC2086 # SERVE_FLAGS is a list of flags
	"$bin" serve --id "$i" --listen "127.0.0.1:$xp" --peers "$peers" --data-dir "$dir/paxosd$i" \
		--log-level warn --new-cluster ${SERVE_FLAGS:-} >"$dir/paxosd$i.log" 2>&1 &
	echo $! >"$dir/paxosd$i.pid"
	[ "$versus" = tls ] || continue
	xp=$(nthport $((9 + i)))
	# shellcheck disable=SC2086 # SERVE_FLAGS is a list of flags
	"$bin" serve --id "$i" --listen "127.0.0.1:$xp" --peers "$tls_peers" --data-dir "$dir/tls$i" \
		--log-level warn --new-cluster --cert-file "$certs/node$i.crt" --key-file "$certs/node$i.key" \
		--trusted-ca-file "$certs/ca.crt" --client-cert-auth ${SERVE_FLAGS:-} >"$dir/tls$i.log" 2>&1 &
	echo $! >"$dir/tls$i.pid"
done
pids() { echo "$(cat "$dir/${1}1.pid") $(cat "$dir/${1}2.pid") $(cat "$dir/${1}3.pid")"; }
pax_pids=$(pids paxosd)
versus_pids=$(pids "$versus")

# alive NAME: every member of NAME (etcd, paxosd) still runs, else its
# log. A member that exited may linger as a zombie until this shell reaps
# it: its state (the field after the command name) is Z then.
alive() {
	for i in 1 2 3; do
		p=$(cat "$dir/$1$i.pid")
		state=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d ' ' -f 1)
		if [ -z "$state" ] || [ "$state" = Z ]; then
			echo "$me: $1 member $i (pid $p) has exited; the end of $dir/$1$i.log:" >&2
			tail -n 20 "$dir/$1$i.log" >&2
			exit 1
		fi
	done
}

# Both clusters healthy: every etcd endpoint answers etcdctl's health
# check, and 'paxosd status' sees every member and a leader.
versus_healthy() {
	if [ "$versus" = etcd ]; then
		ETCDCTL_API=3 etcdctl --endpoints "$etcd_eps" --command-timeout 2s endpoint health >/dev/null 2>&1
	else
		# shellcheck disable=SC2086 # tls_client is a list of flags
		"$bin" status --endpoints "$tls_eps" --timeout 2s $tls_client >/dev/null 2>&1
	fi
}
t=0
until versus_healthy && "$bin" status --endpoints "$pax_eps" --timeout 2s >/dev/null 2>&1; do
	alive "$versus"
	alive paxosd
	t=$((t + 1))
	[ "$t" -le 120 ] || die "the clusters are not healthy after 60 s: see $dir/$versus*.log and $dir/paxosd*.log"
	sleep 0.5
done
if [ "$versus" = etcd ]; then
	echo "bench-etcd: etcd at $etcd_eps, paxosd at $pax_eps"
else
	echo "bench-etcd: paxosd over TLS at $tls_eps, paxosd at $pax_eps"
fi

# The same keyspace in both: bench/scale/key/0 .. KEYS-1, a zero-filled
# value each, 256 concurrent puts over CONNS connections.
echo "bench-etcd: preloading paxosd"
"$bin" bench preload --endpoints "$pax_eps" --keys "$keys" --value-size "$value" --conns "$conns" 2>&1 |
	tee "$dir/preload-paxosd.log" | sed 's/^/paxosd /'
grep -q "^preload: $keys keys in" "$dir/preload-paxosd.log" || die "preloading paxosd failed: see $dir/preload-paxosd.log"
if [ "$versus" = tls ]; then
	echo "bench-etcd: preloading paxosd over TLS"
	# shellcheck disable=SC2086 # tls_client is a list of flags
	"$bin" bench preload --endpoints "$tls_eps" --keys "$keys" --value-size "$value" --conns "$conns" $tls_client 2>&1 |
		tee "$dir/preload-tls.log" | sed 's/^/tls /'
	grep -q "^preload: $keys keys in" "$dir/preload-tls.log" || die "preloading paxosd over TLS failed: see $dir/preload-tls.log"
else
echo "bench-etcd: preloading etcd"
# shellcheck disable=SC2086 # ETCDLOAD_FLAGS is a list of flags
"$etcdload" --preload --endpoints "$etcd_eps" --keys "$keys" --value-size "$value" --clients 256 --conns "$conns" \
	${ETCDLOAD_FLAGS:-} 2>&1 | tee "$dir/preload-etcd.log" | grep -v '^{' || true
grep -q '"workload":"preload"' "$dir/preload-etcd.log" || die "preloading etcd failed: see $dir/preload-etcd.log"
sed -n 's/.*"seconds":\([0-9.]*\),"keys_per_sec":\([0-9.]*\).*/etcd preload: '"$keys"' keys in \1 s, \2 keys\/s/p' "$dir/preload-etcd.log"
fi

clk=$(getconf CLK_TCK)

# nap SECONDS: sleep, but let a signal's trap run at once (the shell runs
# a trap only between commands, and a wait is interrupted by it).
nap() {
	sleep "$1" &
	wait $!
}

# ticks PID...: their user + system CPU time together, in clock ticks
# (fields 14 and 15 of /proc/PID/stat: the 12th and 13th after the command
# name, which may hold spaces); fails if one of them is gone.
ticks() {
	for p; do
		cat "/proc/$p/stat" 2>/dev/null || echo "missing $p"
	done | awk '/^missing/ { bad = 1; next } { sub(/.*\) /, ""); t += $12 + $13 } END { if (bad) exit 1; print t }'
}

# jnum FILE KEY: the number KEY holds in FILE's last JSON line (both load
# generators print flat objects but for latency_ms, whose keys are unique).
jnum() {
	tail -n 1 "$1" | sed -n 's/.*"'"$2"'":\([-0-9.eE+]*\).*/\1/p'
}

results=$dir/results.tsv
printf 'round\tsystem\tclients\tops\tops_per_sec\tp50_ms\tp99_ms\tp999_ms\tmax_ms\terrors\tcpu_ms_per_put\tgen_cpu_ms_per_put\n' >"$results"

# run ROUND SYSTEM CLIENTS: one put run; its output in DIR/runs, a line in
# results.tsv and on stdout.
run() {
	r=$1 sys=$2 c=$3
	out=$dir/runs/$sys-c$c-r$r
	alive "$sys"
	nap "$settle"
	if [ "$sys" = paxosd ]; then
		members=$pax_pids
		set -- "$bin" bench put --endpoints "$pax_eps" --run-id scale --keys "$keys" --value-size "$value" \
			--clients "$c" --conns "$conns" --duration "${duration}s" --warmup "${warmup}s" --json
	elif [ "$sys" = tls ]; then
		members=$versus_pids
		# shellcheck disable=SC2086 # tls_client is a list of flags
		set -- "$bin" bench put --endpoints "$tls_eps" --run-id scale --keys "$keys" --value-size "$value" \
			--clients "$c" --conns "$conns" --duration "${duration}s" --warmup "${warmup}s" --json $tls_client
	else
		members=$versus_pids
		# shellcheck disable=SC2086 # ETCDLOAD_FLAGS is a list of flags
		set -- "$etcdload" --endpoints "$etcd_eps" --keys "$keys" --value-size "$value" \
			--clients "$c" --conns "$conns" --duration "${duration}s" --warmup "${warmup}s" ${ETCDLOAD_FLAGS:-}
	fi
	# The wrapper shell runs the generator, reaps it, and then reads its
	# own children's CPU time (cutime + cstime): the generator's whole CPU
	# time, which /proc no longer has once it exited.
	gen_pidfile=$out.pid
	OUT=$out sh -c '"$@" >"$OUT.json" 2>"$OUT.err" & echo $! >"$OUT.pid"; wait $!; s=$?
		read -r st </proc/$$/stat; echo "$st" >"$OUT.wrapper-stat"; exit $s' wrapper "$@" &
	gen_wrapper=$!
	nap "$warmup"
	# shellcheck disable=SC2086 # members is a list of pids
	m0=$(ticks $members) || die "$sys: a member exited during the warmup (see $dir/${sys}N.log)"
	g0=$(ticks "$(cat "$gen_pidfile")" 2>/dev/null) || g0=0 # exited early: its status says why
	status=0
	wait "$gen_wrapper" || status=$?
	gen_wrapper=
	# shellcheck disable=SC2086
	m1=$(ticks $members) || die "$sys: a member exited during the run (see $dir/${sys}N.log)"
	if [ "$status" != 0 ]; then
		cat "$out.err" >&2
		die "$sys put run with $c clients failed (exit $status): $out.err"
	fi
	# cutime + cstime: fields 16 and 17, the 14th and 15th after the name.
	gtot=$(sed 's/.*) //' "$out.wrapper-stat" | awk '{ print $14 + $15 }')
	ops=$(jnum "$out.json" ops) errs=$(jnum "$out.json" errors)
	[ -n "$ops" ] || die "$sys: no result in $out.json"
	line=$(awk -v r="$r" -v s="$sys" -v c="$c" -v ops="$ops" -v ops_s="$(jnum "$out.json" ops_per_sec)" \
		-v p50="$(jnum "$out.json" p50)" -v p99="$(jnum "$out.json" p99)" -v p999="$(jnum "$out.json" p999)" \
		-v mx="$(jnum "$out.json" max)" -v e="$errs" -v dm="$((m1 - m0))" -v dg="$((gtot - g0))" -v clk="$clk" 'BEGIN {
		cpu = ops > 0 ? dm * 1000 / clk / ops : 0
		gen = ops > 0 ? dg * 1000 / clk / ops : 0
		printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.4f\t%.4f\n", r, s, c, ops, ops_s, p50, p99, p999, mx, e, cpu, gen
	}')
	printf '%s\n' "$line" >>"$results"
	printf '%s\n' "$line" | awk -F '\t' '{ printf "%5s  %-6s  %7s  %9.0f  %7.2f  %7.2f  %8.2f  %6s  %10.3f  %10.3f\n", $1, $2, $3, $5, $6, $7, $8, $10, $11, $12 }'
	[ "${errs:-0}" = 0 ] || echo "$me: $sys: $errs puts failed; the last error is in $out.json" >&2
}

echo
echo "ROUND  SYSTEM  CLIENTS      OPS/S   P50 ms   P99 ms  P99.9 ms     ERR  CPU ms/put  GEN ms/put"
r=1
while [ "$r" -le "$rounds" ]; do
	for c in $clients; do
		# Odd rounds paxosd first, even rounds etcd first: whatever drifts
		# over the bench (data growth, the other cluster's background
		# work, the machine's other load) falls on both alike.
		if [ $((r % 2)) = 1 ]; then
			run "$r" paxosd "$c"
			run "$r" "$versus" "$c"
		else
			run "$r" "$versus" "$c"
			run "$r" paxosd "$c"
		fi
	done
	r=$((r + 1))
done

# The summary: per client count and system, the median over the rounds
# and [min-max]; then paxosd/etcd (or tls/paxosd) of the medians.
echo
echo "summary: medians over $rounds round(s), [min-max]; CPU ms/put: the three members' user+system CPU per put; GEN: the load generator's"
awk -F '\t' -v order="$clients" -v versus="$versus" '
function sort(a, n,   i, j, t) { for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t } }
function med(key, col,   a, n, i) {
	n = cnt[key]
	for (i = 1; i <= n; i++) a[i] = v[key, i, col] + 0
	sort(a, n)
	lo[key, col] = a[1]; hi[key, col] = a[n]
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function cell(key, col, fmt) { m = med(key, col); return sprintf(fmt " [" fmt "-" fmt "]", m, lo[key, col], hi[key, col]) }
NR > 1 { key = $3 SUBSEP $2; n = ++cnt[key]; for (i = 4; i <= NF; i++) v[key, n, i] = $i }
END {
	printf "%-7s  %-6s  %-24s  %-22s  %-22s  %-22s  %s\n", "CLIENTS", "SYSTEM", "OPS/S", "P50 ms", "P99 ms", "CPU ms/put", "GEN ms/put"
	k = split(order, cs, " ")
	for (j = 1; j <= k; j++) {
		c = cs[j]
		for (s = 1; s <= 2; s++) {
			sys = s == 1 ? "paxosd" : versus; key = c SUBSEP sys
			if (!cnt[key]) continue
			printf "%-7s  %-6s  %-24s  %-22s  %-22s  %-22s  %s\n", c, sys, cell(key, 5, "%.0f"), cell(key, 6, "%.2f"),
				cell(key, 7, "%.2f"), cell(key, 11, "%.3f"), cell(key, 12, "%.3f")
		}
		# The ratio is paxosd/etcd, or tls/paxosd: the system in question
		# over the one it is measured against.
		pk = c SUBSEP "paxosd"; ek = c SUBSEP versus
		if (versus == "tls") { t = pk; pk = ek; ek = t }
		if (cnt[pk] && cnt[ek]) {
			pt = med(pk, 5); et = med(ek, 5); pc = med(pk, 11); ec = med(ek, 11)
			tr = et > 0 ? sprintf("%.2fx", pt / et) : "-"
			cr = ec > 0 ? sprintf("%.2fx", pc / ec) : "-"
			p50r = med(ek, 6) > 0 ? sprintf("%.2fx", med(pk, 6) / med(ek, 6)) : "-"
			printf "%-7s  %s: throughput %s, CPU per put %s, p50 %s\n", c, versus == "tls" ? "tls/paxosd" : "paxosd/etcd", tr, cr, p50r
		}
	}
}' "$results"
[ "${CLEAN:-}" = 1 ] || echo "every run: $results"
