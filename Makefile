# sluice — build, run, test, benchmark, package.
# `make run` and `make test` do all the set-up a fresh Debian machine needs (see README).

CARGO ?= cargo
NPM ?= npm
# Where cargo puts binaries (honours CARGO_TARGET_DIR, as cargo does).
TARGET := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)

.PHONY: all frontend build release run test test-rust test-ui browser test-schema bench bench-nginx bench-logs deb cargo-deb test-deb test-systemd image test-image clean

all: build

frontend/node_modules/.installed: frontend/package.json frontend/package-lock.json
	cd frontend && $(NPM) ci --no-audit --no-fund
	touch $@

# The web UI, embedded into the binary by rust-embed at compile time. Only files whose bytes
# changed are rewritten in frontend/dist (scripts/sync-dist.mjs), so cargo relinks only then.
frontend: frontend/node_modules/.installed
	cd frontend && $(NPM) run build

build: frontend
	$(CARGO) build --bins

release: frontend
	$(CARGO) build --release --bins

# Runs sluice with the embedded default config: http://127.0.0.1:3000, data under ./data.
run: release
	$(TARGET)/release/sluice serve

# Both profiles: the browser tests run the debug binary, the 1M-row page-data budget the release
# one (as shipped); CI builds release for `make deb` right after anyway.
test: frontend
	$(CARGO) build --bins
	$(CARGO) build --release --bins
	$(MAKE) test-rust test-ui test-schema

test-rust:
	$(CARGO) test --all-targets

# The console's browser tests drive Debian's Chromium (Playwright cannot download its own here),
# with a CJK font so the Chinese screenshots show text. A fresh machine gets both here when make
# runs as root; otherwise it stops with the one command that does.
CHROMIUM ?= /usr/bin/chromium
BROWSER_PKGS := chromium fonts-wqy-microhei
browser:
	@if [ ! -x $(CHROMIUM) ] || [ ! -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing $(BROWSER_PKGS) for the browser tests"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_PKGS) >/dev/null; \
	  else \
	    echo "The browser tests need Chromium and a CJK font: sudo apt-get install -y $(BROWSER_PKGS)"; exit 1; \
	  fi; \
	fi

# The first-load budget (60 KiB gzip of what index.html loads), then the browser tests against
# the debug binary and the mock upstream, one file at a time (one browser each); the logs and
# usage pages over 1M rows (e2e/perf.test.mjs) against the release binary.
test-ui: browser
	cd frontend && node scripts/check-budget.mjs
	cd frontend && CHROMIUM_BIN=$(CHROMIUM) SLUICE_BIN=$(TARGET)/debug/sluice \
	  SLUICE_PERF_BIN=$(TARGET)/release/sluice node --test --test-concurrency=1 e2e/

# schemathesis (pinned, in target/schemathesis-venv) against the OpenAPI document the debug
# binary serves, isolated in a network namespace; a few minutes (tests/schemathesis/run.sh).
test-schema:
	SLUICE_BIN=$(TARGET)/debug/sluice tests/schemathesis/run.sh

# Load test: sluice and nginx (the floor: a bare reverse proxy) pinned to CPU 0, the mock upstream
# and the load generator on CPU 1 (docs/performance.md). nginx is Debian's nginx-light, installed
# here when make runs as root; otherwise it stops with the one command that does.
bench: release bench-nginx
	$(TARGET)/release/sluice-bench

bench-nginx:
	@if [ ! -x /usr/sbin/nginx ] && ! command -v nginx >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing nginx-light for the benchmark's nginx row"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; \
	  else \
	    echo "make bench compares sluice with nginx: sudo apt-get install -y nginx-light"; exit 1; \
	  fi; \
	fi

# Log search and totals over 1,000,000 synthetic rows (sluice gen-logs); writes docs/performance.md.
bench-logs: release
	$(TARGET)/release/sluice-logbench

# The Debian package: target/debian/sluice_<version>_<arch>.deb (packaging/README.md).
# --no-strip: the release profile already strips debug info and keeps the symbol table the
# built-in profiler names flamegraph frames from. DEB_VERSION=x.y.z overrides the version.
deb: cargo-deb release target/man/sluice.1.gz target/man/changelog.gz
	$(CARGO) deb --no-build --no-strip $(if $(DEB_VERSION),--deb-version $(DEB_VERSION))

# cargo-deb, installed on first use as `make test` installs the UI's npm packages (cargo finds
# subcommands in ~/.cargo/bin as well as on PATH). About a minute on 2 cores; needs the crate
# registry once.
cargo-deb:
	@$(CARGO) deb --version >/dev/null 2>&1 || { \
	  echo "cargo-deb is missing: installing it with 'cargo install cargo-deb --locked'"; \
	  $(CARGO) install cargo-deb --locked || { \
	    echo "could not install cargo-deb; run 'cargo install cargo-deb --locked' where the crate registry is reachable, then make deb again" >&2; \
	    exit 1; }; }

# -n: no name or timestamp in the gzip header, so the package builds reproducibly.
target/man/sluice.1.gz: packaging/sluice.1
	mkdir -p target/man
	gzip -9n -c $< > $@

target/man/changelog.gz: packaging/changelog
	mkdir -p target/man
	gzip -9n -c $< > $@

# Builds the package, then installs, runs, upgrades, removes and purges it on this machine
# (as root; see packaging/test-deb.sh).
test-deb: deb
	packaging/test-deb.sh

# The package under systemd as PID 1: boots a debootstrapped Debian with systemd-nspawn and
# checks start, readiness, watchdog, reload, stop, upgrade and the sandbox (as root; see
# packaging/test-systemd.sh; CI runs the script directly after test-deb).
test-systemd: deb
	packaging/test-systemd.sh

# The container image localhost/sluice:<version> (Containerfile, packaging/image.sh): the
# release binary on a Debian 12 base, as user sluice, data in a volume. Without BASE the base is
# imported from a debootstrapped root (no registry needed; as root); BASE=<image> uses another.
image: release
	$(if $(BASE),BASE=$(BASE) )packaging/image.sh

# Builds the image, then runs it: a relayed call, a restart, the row still in the volume
# (as root; see packaging/test-image.sh).
test-image: image release
	packaging/test-image.sh

clean:
	$(CARGO) clean
	rm -rf frontend/dist frontend/node_modules
