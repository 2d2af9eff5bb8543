# samrack — build, run and test the SAM-rack appliance.
# `make help` lists the targets.

GO        ?= go
BIN       := bin
PKGS      := ./...
GOTESTFLAGS ?=
DATA      ?= /var/lib/samrack-dev
export PATH := $(PATH):/usr/local/go/bin

# Debian packages the build and tests need: gcc and libpcsclite-dev for the PC/SC driver (cgo),
# pcscd and vsmartcard-vpcd to test it through the real PC/SC stack, iproute2 (ip netns) for the VIP tests.
APT_PKGS  := ca-certificates git gcc pkg-config pcscd libpcsclite-dev vsmartcard-vpcd iproute2

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-z-]+:.*## /{printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## install the Debian packages the build needs, if missing
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

.PHONY: build
build: deps ## build samrackd, samctl and samreader into bin/
	$(GO) build -o $(BIN)/ ./appliance/cmd/samrackd ./api/cmd/samctl ./api/cmd/samreader

.PHONY: run
run: build ## run one appliance on its embedded default (simulated rack, embedded storage), in the foreground
	./$(BIN)/samrackd --dev --data $(DATA)

.PHONY: cluster
cluster: build ## three appliances on loopback (ports 7467/7480/7468, 7567/…, 7667/…) in the foreground; Ctrl-C stops them
	./appliance/scripts/cluster.sh

.PHONY: test
test: deps ## run every test with -race (extra go test flags: GOTESTFLAGS=-v)
	$(GO) vet $(PKGS)
	$(GO) test -race -timeout 12m $(GOTESTFLAGS) $(PKGS)

.PHONY: test-hil
test-hil: deps ## only the tests through the real PC/SC stack (pcscd + virtual SAMs on vpcd) and real ptys
	$(GO) test -race -count=1 $(GOTESTFLAGS) ./drivers/pcsc/... ./drivers/serial/...

.PHONY: soak
soak: deps ## the fault tests for SOAK (default 10m) each: raft linearizability (SAMRACK_FAULT_SEED replays), then the samrackd cluster chaos (SAMRACK_CHAOS_SEED replays)
	SAMRACK_SOAK=$(or $(SOAK),10m) $(GO) test -race -count=1 -run '^TestLinearizableUnderFaults$$' -timeout 0 -v $(GOTESTFLAGS) ./cluster/raftstore/
	SAMRACK_SOAK=$(or $(SOAK),10m) $(GO) test -race -count=1 -run '^TestClusterChaos$$' -timeout 0 -v $(GOTESTFLAGS) ./appliance/cmd/samrackd/

.PHONY: demo
demo: build ## start an appliance, provision a reader, read three cards, blacklist one, show the rejection
	./appliance/scripts/demo.sh

.PHONY: bench
bench: deps ## run the benchmarks (figures via b.ReportMetric)
	$(GO) test -run '^$$' -bench . -benchtime 3s $(GOTESTFLAGS) ./...

.PHONY: bench-flood
bench-flood: deps ## readers under a 20,000-connection flood (SAMRACK_FLOOD_CONNS, SAMRACK_FLOOD_REDIAL): reads ok, p99, peak RSS
	$(GO) test -run '^$$' -bench '^BenchmarkReaderFlood$$' -benchtime 1x -timeout 10m $(GOTESTFLAGS) ./appliance/

.PHONY: bench-failover
bench-failover: deps ## as root: >= 5 SIGKILLs of the raft leader (three samrackd in network namespaces, VIP) under a read load: failover-p50-s, failover-max-s
	$(GO) test -run '^$$' -bench '^BenchmarkFailover$$' -benchtime 1x -timeout 10m $(GOTESTFLAGS) ./appliance/cmd/samrackd/

.PHONY: bench-cluster
bench-cluster: deps ## one and three samrackd of 16 virtual SAMs x 100 ms, readers with a 20 ms round trip injected: capacity-ratio, hold-overhead-ms, reader CPU
	$(GO) test -run '^$$' -bench '^BenchmarkClusterSaturation$$' -benchtime 1x -count 2 -timeout 10m $(GOTESTFLAGS) ./appliance/cmd/samrackd/

.PHONY: bench-100m
bench-100m: ## the card blacklist benchmark at 100 M entries (needs ~4 GB of memory, minutes)
	SAMRACK_BLACKLIST_N=100000000 $(GO) test -run '^$$' -bench 'Blacklist100M' -benchtime 1000000x -timeout 60m ./cluster/state/

.PHONY: bench-import
bench-import: ## samctl blacklist import of SAMRACK_IMPORT_N (default 10 M) lines through three raft nodes: entries/s, bytes/entry, heap peak
	SAMRACK_IMPORT_N=$(or $(SAMRACK_IMPORT_N),10000000) SAMRACK_IMPORT_PROGRESS=1 $(GO) test -run '^$$' -bench '^BenchmarkBulkImport$$' -benchtime 1x -timeout 60m ./api/cmd/samctl/

.PHONY: bench-join-100m
bench-join-100m: ## a new appliance joins a three-node cluster holding 100 M cards by snapshot install (four nodes in one process: ~18 GB RSS, ~6 min)
	SAMRACK_JOIN_N=100000000 $(GO) test -run '^$$' -bench '^BenchmarkJoinCatchUp$$' -benchtime 1x -timeout 120m ./cluster/raftstore/

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (default 20s)
	./appliance/scripts/fuzz.sh $(or $(FUZZTIME),20s)

.PHONY: lint
lint: ## gofmt, go vet, staticcheck, go mod tidy check
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)
	cp go.mod /tmp/samrack-go.mod.bak; cp go.sum /tmp/samrack-go.sum.bak; $(GO) mod tidy; \
	  if ! git diff --quiet -- go.mod go.sum; then cp /tmp/samrack-go.mod.bak go.mod; cp /tmp/samrack-go.sum.bak go.sum; echo "go mod tidy changes go.mod/go.sum"; exit 1; fi

.PHONY: clean
clean: ## remove build output
	rm -rf $(BIN)
