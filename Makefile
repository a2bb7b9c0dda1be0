# sluice — build, run, test, benchmark, package.
# `make run` and `make test` do all the set-up a fresh Debian machine needs (see README).

CARGO ?= cargo
NPM ?= npm
# Where cargo puts binaries (honours CARGO_TARGET_DIR, as cargo does).
TARGET := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)

.PHONY: all frontend build release run test test-rust test-ui bench bench-logs deb clean

all: build

frontend/node_modules/.installed: frontend/package.json frontend/package-lock.json
	cd frontend && $(NPM) ci --no-audit --no-fund
	touch $@

# The web UI, embedded into the binary by rust-embed at compile time.
frontend: frontend/node_modules/.installed
	cd frontend && $(NPM) run build

build: frontend
	$(CARGO) build --bins

release: frontend
	$(CARGO) build --release --bins

# Runs sluice with the embedded default config: http://127.0.0.1:3000, data under ./data.
run: release
	$(TARGET)/release/sluice serve

test: frontend
	$(CARGO) build --bins
	$(MAKE) test-rust test-ui

test-rust:
	$(CARGO) test --all-targets

test-ui:
	cd frontend && SLUICE_BIN=$(TARGET)/debug/sluice node --test e2e/

# Load test: sluice pinned to CPU 0, the mock upstream and the load generator on CPU 1.
bench: release
	$(TARGET)/release/sluice-bench

# Log search and totals over 1,000,000 synthetic rows (sluice gen-logs); writes docs/performance.md.
bench-logs: release
	$(TARGET)/release/sluice-logbench

deb: release
	$(CARGO) deb --no-build --no-strip

clean:
	$(CARGO) clean
	rm -rf frontend/dist frontend/node_modules
