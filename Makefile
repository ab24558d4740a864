# pbxha — see README.md. Binaries are found by glob: a new plugin folder or
# command folder is built, installed and tested with no list to edit.
SHELL        := /bin/bash
GO           ?= go
PREFIX       ?= /usr
DESTDIR      ?=
PLUGINDIR    ?= $(PREFIX)/lib/nagios/plugins
SBINDIR      ?= $(PREFIX)/sbin
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS      := -s -w -X pbxha/lib/plugin.Version=$(VERSION)
BIN          := bin

PLUGINS      := $(patsubst plugins/%/main.go,%,$(wildcard plugins/*/main.go))
COMMANDS     := $(patsubst eventhandler/cmd/%/main.go,%,$(wildcard eventhandler/cmd/*/main.go))
TOOLS        := $(patsubst testharness/cmd/%/main.go,%,$(wildcard testharness/cmd/*/main.go))
# Packages whose tests use the shared lab: run one at a time, after lab-up.
LAB_PKGS     := ./testharness/...
FUZZTIME     ?= 60s
FUZZFLAGS    ?=

# Plugins that send ICMP or ARP need CAP_NET_RAW when run as the nagios user.
NETRAW       := check_pbx_master_alive check_pbx_net_failover check_pbx_cluster

.PHONY: all build deb deps test unit labtest lint fmt vet bench fuzz install lab-up lab-down lab-status lab-reset e2e bench-failover demo clean

all: build

deps:
	@scripts/deps

build:
	@mkdir -p $(BIN)
	@for p in $(PLUGINS); do $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/$$p ./plugins/$$p || exit 1; done
	@for c in $(COMMANDS); do $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/$$c ./eventhandler/cmd/$$c || exit 1; done
	@for c in $(TOOLS); do $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/$$c ./testharness/cmd/$$c || exit 1; done
	@echo "built: $(PLUGINS) $(COMMANDS) $(TOOLS)"

# One .deb of the plugins, commands, Icinga config, units and sudoers
# (packaging/, built by scripts/deb with nfpm) into dist/.
deb: build
	$(GO) run ./scripts/deb -bin $(BIN) -version $(VERSION) -out dist/

lint: fmt vet

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# Everything CI runs: dependencies, lint, build, unit and black-box tests
# (loopback only, in parallel), then the lab's integration tests one package
# at a time against one lab brought up for them and taken down after.
test: deps lint build unit
	@if [ -n "$(wildcard testharness/cmd/pbxlab/main.go)" ]; then $(MAKE) --no-print-directory labtest; fi

unit:
	PBXHA_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 $$($(GO) list ./... | grep -v '/testharness')

labtest: build
	$(BIN)/pbxlab up
	PBXHA_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -p 1 $(LAB_PKGS); rc=$$?; $(BIN)/pbxlab down; exit $$rc

# Regenerates BENCHMARKS.md: every local check beside its monitoring-plugins
# peer on the same work, medians of wall, CPU and peak RSS, in one run; as
# root also the network checks inside the lab (brought up when not running).
bench: deps build
	$(GO) run ./scripts/bench -bin $(BIN) -out BENCHMARKS.md

# Every fuzz target for FUZZTIME each; what a run finds new (Go keeps it in
# its cache) is copied into the package's testdata/fuzz, where `go test`
# replays it as seeds from then on.
fuzz:
	@set -e; cache=$$($(GO) env GOCACHE)/fuzz; \
	for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
	    echo "== $$pkg $$f"; $(GO) test $$pkg -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS); \
	    if [ -d "$$cache/$$pkg/$$f" ]; then mkdir -p "$$dir/testdata/fuzz/$$f"; cp -n "$$cache/$$pkg/$$f"/* "$$dir/testdata/fuzz/$$f/" 2>/dev/null || true; fi; \
	  done; done

install: build
	install -d $(DESTDIR)$(PLUGINDIR) $(DESTDIR)$(SBINDIR)
	@for p in $(PLUGINS); do install -m 0755 $(BIN)/$$p $(DESTDIR)$(PLUGINDIR)/$$p; done
	@for c in $(COMMANDS); do install -m 0755 $(BIN)/$$c $(DESTDIR)$(SBINDIR)/$$c; done
	@for p in $(filter $(NETRAW),$(PLUGINS)); do \
	  setcap cap_net_raw+ep $(DESTDIR)$(PLUGINDIR)/$$p || echo "warning: could not give $$p cap_net_raw (run it as root or setcap it)"; done

lab-up: deps build
	@if [ -x $(BIN)/pbxlab ]; then $(BIN)/pbxlab up; else echo "lab: not yet (testharness/cmd/pbxlab is not built yet)"; fi

lab-down:
	@if [ -x $(BIN)/pbxlab ]; then $(BIN)/pbxlab down; else echo "lab: not yet"; fi

lab-status: build
	$(BIN)/pbxlab status

lab-reset: build
	$(BIN)/pbxlab reset

# End to end with the real Icinga 2 on both nodes (testharness/e2e): the
# three failover triggers, then issue 10's fault matrix E2E_RUNS times each,
# and the summary (failovers, split-brain seconds, mails).
E2E_RUNS     ?= 1
e2e: deps build
	$(BIN)/pbxlab up
	PBXHA_E2E=all PBXHA_E2E_RUNS=$(E2E_RUNS) PBXHA_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -p 1 -v -timeout 120m ./testharness/e2e/; rc=$$?; $(BIN)/pbxlab down; exit $$rc

# Issue 10's failover benchmark (testharness/e2e/bench_test.go):
# BENCH_RUNS failovers (link-down node1 all) by pbxha with the real Icinga 2
# and icinga-conf/ as shipped, the transient faults that must not fail
# over, and the same fault against keepalived (VRRP) in the same lab; the
# table is printed and written to BENCHMARKS-failover.md.
BENCH_RUNS   ?= 5
bench-failover: deps build
	$(BIN)/pbxlab up
	PBXHA_BENCH_FAILOVER=$(BENCH_RUNS) PBXHA_BENCH_OUT=$(CURDIR)/BENCHMARKS-failover.md PBXHA_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -p 1 -run BenchFailover -v -timeout 60m ./testharness/e2e/; rc=$$?; $(BIN)/pbxlab down; exit $$rc

demo: deps build
	@scripts/demo

clean:
	rm -rf $(BIN)
