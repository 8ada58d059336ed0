# feederd — make run starts the demo, make test runs every check CI runs.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
INFLUXD_VERSION := v1.8.10
ALERTMANAGER_VERSION := v0.28.1
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# Fuzz targets run briefly in make test; longer with FUZZTIME=5m make fuzz.
FUZZTIME ?= 10s

.PHONY: all build run test check fmt-check vet unit fuzz bench fleet-bench tools clean

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

tools: $(BIN)/influxd $(BIN)/alertmanager $(BIN)/amtool
	@command -v socat >/dev/null && command -v mbpoll >/dev/null || { \
	  echo "installing socat and mbpoll (Debian packages)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq socat mbpoll; }

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
	FEEDERD_INFLUXD=$(BIN)/influxd FEEDERD_ALERTMANAGER=$(BIN)/alertmanager FEEDERD_AMTOOL=$(BIN)/amtool $(GO) test -race -count=1 -timeout 12m ./...

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseRTURequest$$' -fuzztime $(FUZZTIME) ./internal/sim
	$(GO) test -run '^$$' -fuzz '^FuzzReadRecord$$' -fuzztime $(FUZZTIME) ./internal/influx
	$(GO) test -run '^$$' -fuzz '^FuzzEncoderLineProtocol$$' -fuzztime $(FUZZTIME) ./internal/influx

test: fmt-check vet unit fuzz

check: test

bench:
	set -o pipefail; $(GO) test -run '^$$' -bench . -benchmem -count 3 ./... | tee bench.out

fleet-bench: build
	bash scripts/fleet-bench.sh

clean:
	rm -rf $(BIN)/feederd $(BIN)/rtusim var bench.out
