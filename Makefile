# qprom — see README.md. `make test` is the one test command (CI runs exactly it).
SHELL := /bin/bash
CARGO ?= cargo
# What ships: linked against glibc 2.17 by Zig (cargo-zigbuild), stripped, debug info in
# libqprom.so.debug beside each (scripts/build_so.sh). The suites load these same files.
SO := target/l64/libqprom.so
SO_ARM := target/l64arm/libqprom.so
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
# Tests and benches link the rlib, which must not reference q's symbols: see Cargo.toml.
CORE := --no-default-features

# The host suites that also run under valgrind memcheck (the end-to-end and load tests
# need no second run; the export tests shrink their loops under valgrind).
VALGRIND_TESTS := tests/host/test_host.py tests/host/test_exports.py tests/host/test_exports_fuzz.py tests/host/test_instrument.py tests/host/test_helpers.py tests/host/test_push.py tests/host/test_outputs.py tests/host/test_lifecycle.py tests/host/test_around.py tests/host/test_native.py

.PHONY: all build build-arm build-deps test test-unit test-expo test-release deps bench install clean demo soak dist

all: build

# l64 (x86_64): target/l64/libqprom.so
build: build-deps
	scripts/build_so.sh l64

# l64arm (aarch64): target/l64arm/libqprom.so (needs the Rust target and aarch64 binutils: deps)
build-arm: deps
	scripts/build_so.sh l64arm

# Only what the build needs (Zig and cargo-zigbuild into target/venv; no root).
build-deps:
	scripts/deps.sh --build

# Besides prometheus/promtool and valgrind: the real components the ecosystem tests use.
deps:
	DEPS_EXTRA_APT="$(DEPS_EXTRA_APT) prometheus-node-exporter prometheus-pushgateway" scripts/deps.sh

test: deps build build-arm
	$(MAKE) test-release
	$(CARGO) test $(CORE) --release
	$(MAKE) soak SOAK_SECONDS=60
	$(MAKE) test-expo
	tests/expo/selftest.sh
	tests/host/run.sh -q
	QHOST_TESTS="$(VALGRIND_TESTS)" tests/host/run.sh --valgrind -q
	tests/q/selftest.sh
	tests/q/run.sh
	@echo "make test: all suites passed"

# The release: both .so files audited (glibc <= 2.17, libraries, exports), k.h's layout
# checked against src/ffi/qapi.rs on both architectures, the l64arm build's exports and
# listener under qemu, the Makefile's own promises (make -n).
test-release:
	tests/release/audit.sh $(SO) $(SO_ARM)
	tests/abi/run.sh
	tests/arm/run.sh $(SO_ARM)
	tests/release/make_targets.sh

# Property test: random registries rendered in all three formats, checked by promtool,
# the Python client's parsers and protobuf decoding against what was stored.
test-expo:
	rm -rf target/expo-cases && mkdir -p target/expo-cases
	$(CARGO) run $(CORE) --release --quiet --example expo_cases -- target/expo-cases $${EXPO_CASES:-200}
	target/venv/bin/python tests/expo/check.py target/expo-cases

bench: build
	$(CARGO) bench $(CORE) --bench store
	$(CARGO) bench $(CORE) --bench proto
	tests/host/build.sh
	target/host/bench_export $(SO)
	target/host/bench_middleware $(SO)
	target/venv/bin/python tests/host/bench_lag.py

# Scrapes/s and p50/p99 for 10k series at 1/4/16 clients (wrk), qprom's listener in the
# stand-in q host vs prometheus_client's server; then scrapes with q's main thread blocked.
.PHONY: bench-http
bench-http: build
	tests/host/build.sh
	target/venv/bin/python tests/host/bench_http.py
	target/venv/bin/python tests/host/bench_scrapers.py

# The extension in the stand-in q host under synthetic load, listener on DEMO_PORT (default
# 9612, bind DEMO_BIND, default 0.0.0.0); runs until Ctrl-C.
demo: deps build
	tests/host/build.sh
	target/venv/bin/python tests/host/demo.py

# The stripped l64 library (about 2.5 MB); its debug info stays in target/l64/libqprom.so.debug
# (copy it beside the installed .so for symbolised backtraces: gdb follows .gnu_debuglink).
install: build
	@if [ -z "$$QHOME" ]; then echo "make install: QHOME is not set (q's home, holding q.k and l64/)" >&2; exit 1; fi
	install -d "$$QHOME/l64"
	install -m 0755 $(SO) "$$QHOME/l64/libqprom.so"
	install -m 0644 q/prom.q q/exporter.q "$$QHOME/"
	@echo "installed $$QHOME/l64/libqprom.so (stripped; debug info: $(CURDIR)/$(SO).debug), $$QHOME/prom.q and $$QHOME/exporter.q"

# dist/qprom-$(VERSION)-l64.tar.gz and -l64arm.tar.gz (the stripped .so, prom.q, exporter.q,
# README, LICENSE, docs) and dist/SHA256SUMS.
dist: build build-arm
	scripts/dist.sh $(VERSION) $(SO) $(SO_ARM)

clean:
	$(CARGO) clean

# A long fuzz run of every export through the host (FUZZ_CALLS, default 1,000,000; the
# seed: QPROM_FUZZ_SEED). It loads a private copy of the library, so that a build during
# the run cannot replace the file under it.
fuzz: build
	tests/host/build.sh
	install -D -m 0755 $(SO) target/host/fuzz/libqprom.so
	QPROM_SO=$(CURDIR)/target/host/fuzz/libqprom.so QPROM_FUZZ_CALLS=$${FUZZ_CALLS:-1000000} \
	  target/venv/bin/python -m pytest tests/host/test_exports_fuzz.py -p no:cacheprovider -q -s

# Soak: observer threads at full speed into summaries and histograms while real HTTP
# scrapes (text and OpenMetrics, gzip), a cardinality attacker and series churn run;
# fails on any wrong answer or if RSS at the end exceeds RSS after warm-up by more than
# the bound in examples/soak.rs. SOAK_SECONDS (default 600); `make test` runs 60.
SOAK_SECONDS ?= 600
soak:
	$(CARGO) run $(CORE) --release --quiet --example soak -- --seconds $(SOAK_SECONDS)
