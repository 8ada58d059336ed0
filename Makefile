# feederd — make run starts the demo, make test runs every check CI runs.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
INFLUXD_VERSION := v1.8.10
ALERTMANAGER_VERSION := v0.28.1
PROMTOOL_VERSION := v0.316.0
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# Fuzz targets run briefly in make test; longer with FUZZTIME=5m make fuzz.
FUZZTIME ?= 10s

.PHONY: all build run test check fmt-check vet unit fuzz bench bench-all fleet-bench telegraf tools clean dist

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/feederd ./cmd/feederd
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/rtusim ./cmd/rtusim

# The real InfluxDB, built from its Go module (pure Go, about a minute once).
$(BIN)/influxd:
	@echo "building InfluxDB $(INFLUXD_VERSION) into $(BIN) (once)"
	GOBIN=$(BIN) $(GO) install github.com/influxdata/influxdb/cmd/influxd@$(INFLUXD_VERSION)

# The real Alertmanager, built from its Go module (about 30 s once; v0.28.1
# is known to build, the v0.35.0 module lacks its UI assets).
$(BIN)/alertmanager:
	@echo "building Alertmanager $(ALERTMANAGER_VERSION) into $(BIN) (once)"
	GOBIN=$(BIN) $(GO) install github.com/prometheus/alertmanager/cmd/alertmanager@$(ALERTMANAGER_VERSION)

# Its command-line client (same module, seconds once it is built): checks
# configs/alertmanager.yml in the tests and queries alerts in the demo.
$(BIN)/amtool: $(BIN)/alertmanager
	GOBIN=$(BIN) $(GO) install github.com/prometheus/alertmanager/cmd/amtool@$(ALERTMANAGER_VERSION)

# Prometheus's promtool (about 3 minutes once): checks and unit-tests the
# rules under deploy/prometheus and lints a live /metrics in the tests.
$(BIN)/promtool:
	@echo "building promtool $(PROMTOOL_VERSION) into $(BIN) (once)"
	GOBIN=$(BIN) $(GO) install github.com/prometheus/prometheus/cmd/promtool@$(PROMTOOL_VERSION)

tools: $(BIN)/influxd $(BIN)/alertmanager $(BIN)/amtool $(BIN)/promtool
	@command -v socat >/dev/null && command -v mbpoll >/dev/null && command -v chromium >/dev/null || { \
	  echo "installing socat, mbpoll and chromium (Debian packages; chromium for the desk page's browser test)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq socat mbpoll chromium; }
	@command -v systemd-analyze >/dev/null && command -v curl >/dev/null || { \
	  echo "installing systemd (systemd-analyze checks the unit) and curl (the demo test)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd curl; }

# The demo: InfluxDB, Alertmanager, rtusim with the demo fleet, feederd;
# Ctrl-C stops all.
run: build $(BIN)/influxd $(BIN)/alertmanager $(BIN)/amtool
	@bash scripts/run-demo.sh

fmt-check:
	@out=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go' 2>/dev/null || find . -name '*.go' -not -path './var/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit: tools
	FEEDERD_INFLUXD=$(BIN)/influxd FEEDERD_ALERTMANAGER=$(BIN)/alertmanager FEEDERD_AMTOOL=$(BIN)/amtool FEEDERD_PROMTOOL=$(BIN)/promtool $(GO) test -race -count=1 -timeout 12m ./...

# One go test per target: -fuzz takes a single target.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseRTURequest$$' -fuzztime $(FUZZTIME) ./internal/sim/devsrv
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./internal/config
	$(GO) test -run '^$$' -fuzz '^FuzzParseProfile$$' -fuzztime $(FUZZTIME) ./internal/config
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./internal/profile
	$(GO) test -run '^$$' -fuzz '^FuzzReadRecord$$' -fuzztime $(FUZZTIME) ./internal/influx
	$(GO) test -run '^$$' -fuzz '^FuzzEncoderLineProtocol$$' -fuzztime $(FUZZTIME) ./internal/influx

test: fmt-check vet unit fuzz

check: test

# One table: micro-benchmarks, a bare-poller floor and the fleet at 1,000,
# 5,000 and 10,000 devices (and Telegraf when bin/telegraf exists); about
# 15 minutes. FLEET="1000" DUR=20 for a quick look.
bench: build $(BIN)/influxd
	bash scripts/bench.sh

# Every Go benchmark of the tree, raw.
bench-all:
	set -o pipefail; $(GO) test -run '^$$' -bench . -benchmem -count 3 ./... | tee bench-all.out

# Telegraf's modbus input, for the side-by-side figures of make bench only
# (never a dependency; several minutes once).
telegraf: $(BIN)/telegraf
$(BIN)/telegraf:
	GOBIN=$(BIN) $(GO) install -tags "custom,inputs.modbus,outputs.influxdb_v2" github.com/influxdata/telegraf/cmd/telegraf@v1.37.2

# Release tarballs for linux/amd64 and linux/arm64 (industrial gateways are
# often ARM): dist/feederd-$(VERSION)-linux-<arch>.tar.gz, laid out as they
# install (README, "Running as a service").
dist:
	bash scripts/dist.sh $(VERSION) dist amd64 arm64

fleet-bench: build
	bash scripts/fleet-bench.sh

clean:
	rm -rf $(BIN)/feederd $(BIN)/rtusim $(BIN)/benchfloor var bench.out bench.log bench-all.out dist
