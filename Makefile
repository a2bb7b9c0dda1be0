# sluice — build, run, test, benchmark, package.
# `make run` and `make test` do all the set-up a fresh Debian machine needs (see README).

CARGO ?= cargo
NPM ?= npm
# Where cargo puts binaries (honours CARGO_TARGET_DIR, as cargo does).
TARGET := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)

.PHONY: all frontend build release run test test-rust test-ui test-schema bench bench-logs deb cargo-deb test-deb test-systemd image test-image clean

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
	$(MAKE) test-rust test-ui test-schema

test-rust:
	$(CARGO) test --all-targets

test-ui:
	cd frontend && SLUICE_BIN=$(TARGET)/debug/sluice node --test e2e/

# schemathesis (pinned, in target/schemathesis-venv) against the OpenAPI document the debug
# binary serves, isolated in a network namespace; a few minutes (tests/schemathesis/run.sh).
test-schema:
	SLUICE_BIN=$(TARGET)/debug/sluice tests/schemathesis/run.sh

# Load test: sluice pinned to CPU 0, the mock upstream and the load generator on CPU 1.
bench: release
	$(TARGET)/release/sluice-bench

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
