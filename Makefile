# paxosd — the two commands: `make run` and `make test`.
GO      ?= go
BIN     := bin/paxosd
PKGS    := ./...
SEEDS   ?= 2000
FUZZTIME ?= 60s

.PHONY: all build run test test-short vet sim sim-replica fuzz bench bench-scale bench-etcd bench-tls bench-sessions bench-membership soak clean chaos chaos-locks deps

all: build

build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/paxosd

# A local 3-node cluster on the embedded Pebble store (Ctrl-C stops it).
run: build
	./$(BIN) dev

# Every test: vet, formatting, then the whole suite under the race detector
# (the node simulation's and the replica simulation's fixed seed sets, the
# multi-process tests, the fuzz seed corpora, one short fault-injection
# schedule: see `make sim` and `make chaos`).
test: deps vet
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

test-short: vet
	$(GO) test -short -count=1 $(PKGS)

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)

# The Debian packages the tests need (iptables for the fault-injection
# suite, systemd-analyze for the unit file's check, chromium for the status
# page's browser test, python3-msgpack for the Python client's tests),
# installed only if missing.
deps:
	@./scripts/install-deps.sh

# The fault-injection suite at full length (docs/CHAOS.md): CHAOS_SCHEDULES
# randomized fault schedules of CHAOS_DURATION each, every one on a fresh
# 3-node cluster in network namespaces (needs root), then a summary.
# CHAOS_SEED=N replays a run; CHAOS_FLAGS passes more -chaos.* flags.
CHAOS_SCHEDULES ?= 20
CHAOS_DURATION  ?= 60s
CHAOS_SEED      ?= 0
chaos: deps
	$(GO) test -race -count=1 -timeout 120m ./chaos -run 'TestChaos$$' -v -chaos.schedules $(CHAOS_SCHEDULES) -chaos.duration $(CHAOS_DURATION) -chaos.seed $(CHAOS_SEED) $(CHAOS_FLAGS)

# The lock-holders schedule (docs/CHAOS.md, "Lock holders"): LOCKS_SESSIONS
# sessions (TTL 10 s), each holding a lock of its own, kept alive by the Go
# client through kills of the leader and partitions for CHAOS_DURATION;
# not one may be lost, no lock may change hands. LOCKS_RUNS schedules
# (seed, seed+1, ...), about 2 minutes each; CHAOS_SEED=N replays one.
LOCKS_SESSIONS ?= 20000
LOCKS_RUNS     ?= 1
chaos-locks: deps
	$(GO) test -race -count=1 -timeout 60m ./chaos -run 'TestChaosLocks$$' -v -chaos.locks -chaos.locks-sessions $(LOCKS_SESSIONS) -chaos.locks-runs $(LOCKS_RUNS) -chaos.duration $(CHAOS_DURATION) -chaos.seed $(CHAOS_SEED) $(CHAOS_FLAGS)

# The seeded whole-node simulation over many more seeds than CI runs,
# sharded by seed range over parallel processes (scripts/sim.sh): SEEDS
# (default 2000), SIM_FROM, SIM_SHARDS, SIM_TIME, SIM_RACE=1. It prints
# seeds per hour and every failing seed with the command that replays it.
sim:
	SEEDS=$(SEEDS) ./scripts/sim.sh

# The replica-only simulation (paxos/paxostest) over many seeds, with the
# race detector: far more message-level steps per second than the node
# simulation. REPLICA_SEEDS (default 5000).
REPLICA_SEEDS ?= 5000
sim-replica:
	$(GO) test -race -count=1 -timeout 60m ./paxos/paxostest -run TestSim -seeds $(REPLICA_SEEDS) -v

# Run every fuzz target of every package for FUZZTIME each, one after
# another (go test -fuzz takes one target of one package at a time). The
# targets are discovered with go test -list, so new ones join by themselves.
# FUZZFLAGS passes more flags, e.g. FUZZFLAGS='-parallel 1'. Crashers land
# in <pkg>/testdata/fuzz/<Target>/, where make test runs them from then on.
fuzz:
	@targets=$$($(GO) test -list '^Fuzz' $(PKGS) | awk '/^Fuzz/ { t[n++] = $$1 } /^(ok|\?) / { for (i = 0; i < n; i++) print $$2 ":" t[i]; n = 0 }'); \
	if [ -z "$$targets" ]; then echo "no fuzz targets found"; exit 1; fi; \
	for pt in $$targets; do \
		pkg=$${pt%%:*}; t=$${pt##*:}; \
		echo "== $$pkg $$t ($(FUZZTIME))"; \
		$(GO) test $$pkg -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) || exit 1; \
	done

# The load generator against a fresh local cluster: put 1/16/64/256 clients,
# get 64, lock 1/16/64, lock-contended 16, ~10 s each, one table; then
# small runs of the sessions, churn and watch benches (scripts/bench.sh;
# BENCH_DURATION, BENCH_MACHINE=1, BENCH_FAILOVER=1, BENCH_SESSIONS=0; see
# docs/BENCHMARKS.md).
bench: build
	./scripts/bench.sh ./$(BIN)

# The cluster at scale, on the disk (scripts/bench-scale.sh, 'paxosd bench
# scale'): three 'paxosd serve' processes with their data in DIR, KEYS keys
# of VALUE bytes preloaded, then puts over them at each of CLIENTS for
# DURATION, a line per INTERVAL (ops/s, p50/p99/p99.9/max, each node's RSS
# and data size, CPU per put); with OUTAGE (e.g. 5m, less than DURATION) one
# more put run at the first CLIENTS count with a follower down for its first
# OUTAGE, then rejoining under load (SERVE_FLAGS: flags for every 'paxosd
# serve', e.g. --snapshot-entries 2000); then a follower restarted: how
# long until it serves again; each node's peak RSS against 2 x live + 150
# MiB. About 25 minutes with the defaults. DIR is left for inspection
# unless CLEAN=1. See docs/BENCHMARKS.md.
KEYS     ?= 1000000
VALUE    ?= 256
CLIENTS  ?= 64 256
DURATION ?= 10m
INTERVAL ?= 1m
OUTAGE   ?= 0
DIR      ?= /var/tmp/paxosd-bench-scale
bench-scale: build
	KEYS='$(KEYS)' VALUE='$(VALUE)' CLIENTS='$(CLIENTS)' DURATION='$(DURATION)' INTERVAL='$(INTERVAL)' OUTAGE='$(OUTAGE)' \
		SERVE_FLAGS='$(SERVE_FLAGS)' SCALE_ARGS='$(SCALE_ARGS)' DIR='$(DIR)' CLEAN='$(CLEAN)' \
		./scripts/bench-scale.sh ./$(BIN)

# paxosd and etcd 3.4 side by side (scripts/bench-etcd.sh): three 'paxosd
# serve' processes and three etcd members (Debian's etcd-server, installed
# if missing) on loopback with their data in DIR, the same KEYS keys of
# VALUE bytes preloaded into both, then ROUNDS rounds of puts at each
# CLIENTS count on one and the other in turn, DURATION each after WARMUP:
# ops/s, p50/p99, and the members' CPU time per put; at the end medians,
# min-max and paxosd/etcd ratios. About 25 minutes with the defaults. Its
# knobs are environment variables (or make variables on the command line),
# with their own defaults, which the script's header lists: KEYS 1000000,
# VALUE 256, CLIENTS "64 256", ROUNDS 3, DURATION 60s, WARMUP 10s, DIR
# /var/tmp/paxosd-bench-etcd (left for inspection unless CLEAN=1),
# ETCD_FLAGS, SERVE_FLAGS, ETCDLOAD_FLAGS. They are not passed on as
# bench-scale's are: the make defaults above (DURATION 10m, DIR) are
# bench-scale's, and reach the script only when given. See
# docs/BENCHMARKS.md, "Side by side with etcd".
bench-etcd: build
	GO='$(GO)' ./scripts/bench-etcd.sh ./$(BIN)

# Put throughput with TLS next to without (scripts/bench-etcd.sh with
# VERSUS=tls): two clusters of three 'paxosd serve' processes, one with TLS
# and --client-cert-auth (certificates made by openssl with
# scripts/make-certs.sh), the same keyspace preloaded into both, interleaved
# rounds. Its own defaults, overridden from the command line or the
# environment: KEYS 100000, CLIENTS "1 64", DURATION 30s, ROUNDS 3, DIR
# /var/tmp/paxosd-bench-tls. About 10 minutes. See docs/BENCHMARKS.md,
# "TLS".
bench-tls: build
	VERSUS=tls KEYS="$${KEYS:-100000}" CLIENTS="$${CLIENTS:-1 64}" DURATION="$${DURATION:-30s}" \
		DIR="$${DIR:-/var/tmp/paxosd-bench-tls}" ./scripts/bench-etcd.sh ./$(BIN)

# Writes while the membership changes (scripts/bench-membership.sh):
# three 'paxosd serve' processes on the disk, 100,000 keys preloaded, puts
# at 16 clients for a minute, a line per second, while an operator adds a
# learner (serve --join), promotes it, removes the leader and replaces a
# member. The slowest put of each second is the pause clients saw. About
# 2 minutes; KEYS, CLIENTS, DURATION, DIR as environment variables.
bench-membership: build
	./scripts/bench-membership.sh ./$(BIN)

# Sessions and watches at the sizes of issue 16 ('paxosd bench sessions',
# 'churn', 'watch'; docs/BENCHMARKS.md, "Sessions, churn and watches"):
# SESSIONS sessions (default 100000) of a 10 s TTL held for HOLD (default
# 10m); churn (open a session, put, close it) with 64 workers for a
# minute; 10,000 watchers on one prefix with a writer at 20 puts/s, then
# 1,000 watchers with 200 puts/s, a minute each after a 30 s baseline of
# the writer alone. Each bench starts its own three 'paxosd serve'
# processes, their data under SESSIONS_DIR (default $TMPDIR), removed at
# the end. About 17 minutes with the defaults.
SESSIONS     ?= 100000
HOLD         ?= 10m
SESSIONS_DIR ?=
bench-sessions: build
	./$(BIN) bench sessions --sessions $(SESSIONS) --ttl 10s --hold $(HOLD) --conns 64 --interval 1m $(if $(SESSIONS_DIR),--dir $(SESSIONS_DIR))
	@echo
	./$(BIN) bench churn --workers 64 --duration 60s --warmup 5s $(if $(SESSIONS_DIR),--dir $(SESSIONS_DIR))
	@echo
	./$(BIN) bench watch --watchers 10000 --rate 20 --duration 60s --baseline 30s --conns 64 $(if $(SESSIONS_DIR),--dir $(SESSIONS_DIR))
	@echo
	./$(BIN) bench watch --watchers 1000 --rate 200 --duration 60s --baseline 30s --conns 64 $(if $(SESSIONS_DIR),--dir $(SESSIONS_DIR))

# Ten minutes of puts with a small snapshot interval: data directories stay
# bounded, and a node stopped meanwhile rejoins by snapshot
# (scripts/soak.sh; SOAK_DURATION, SOAK_SNAPSHOT, SOAK_BOUND_MB).
soak: build
	./scripts/soak.sh ./$(BIN)

clean:
	rm -rf bin
