# paxosd — the two commands: `make run` and `make test`.
GO      ?= go
BIN     := bin/paxosd
PKGS    := ./...
SEEDS   ?= 5000
FUZZTIME ?= 60s

.PHONY: all build run test test-short vet sim fuzz bench clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/paxosd

# A local 3-node cluster on the embedded Pebble store (Ctrl-C stops it).
run: build
	./$(BIN) dev

# Every test: vet, formatting, then the whole suite under the race detector
# (the simulation's fixed seed set, the multi-process tests, the fuzz seed
# corpora).
test: vet
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

test-short: vet
	$(GO) test -short -count=1 $(PKGS)

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)

# Many more simulation seeds than CI runs, with the race detector.
sim:
	$(GO) test -race -count=1 -timeout 60m ./paxos/paxostest -run TestSim -seeds $(SEEDS) -v

# Run each fuzz target for FUZZTIME.
fuzz:
	@for t in $$($(GO) test -list '^Fuzz' ./wire | grep ^Fuzz); do $(GO) test ./wire -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) || exit 1; done
	@for t in $$($(GO) test -list '^Fuzz' ./wal | grep ^Fuzz); do $(GO) test ./wal -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) || exit 1; done
	@for t in $$($(GO) test -list '^Fuzz' ./service | grep ^Fuzz); do $(GO) test ./service -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) || exit 1; done

# The load generator against a fresh local cluster: put 1/16/64/256 clients,
# get 64, lock 1/16/64, lock-contended 16, ~10 s each, one table
# (scripts/bench.sh; BENCH_DURATION, BENCH_MACHINE=1, BENCH_FAILOVER=1;
# see docs/BENCHMARKS.md).
bench: build
	./scripts/bench.sh ./$(BIN)

clean:
	rm -rf bin
