# qprom — see README.md. `make test` is the one test command (CI runs exactly it).
SHELL := /bin/bash
CARGO ?= cargo
SO := target/release/libqprom.so
# Tests and benches link the rlib, which must not reference q's symbols: see Cargo.toml.
CORE := --no-default-features

# The host suites that also run under valgrind memcheck (the end-to-end and load tests
# need no second run; the export tests shrink their loops under valgrind).
VALGRIND_TESTS := tests/host/test_host.py tests/host/test_exports.py tests/host/test_exports_fuzz.py tests/host/test_instrument.py tests/host/test_helpers.py tests/host/test_push.py tests/host/test_outputs.py

.PHONY: all build test test-unit test-expo deps bench install clean demo soak

all: build

build:
	$(CARGO) build --release

# Besides prometheus/promtool and valgrind: the real components the ecosystem tests use.
deps:
	DEPS_EXTRA_APT="$(DEPS_EXTRA_APT) prometheus-node-exporter prometheus-pushgateway" scripts/deps.sh

test: deps build
	$(CARGO) test $(CORE) --release
	$(MAKE) soak SOAK_SECONDS=60
	$(MAKE) test-expo
	tests/expo/selftest.sh
	tests/host/run.sh -q
	QHOST_TESTS="$(VALGRIND_TESTS)" tests/host/run.sh --valgrind -q
	tests/q/run.sh
	@echo "make test: all suites passed"

# Property test: random registries rendered in both formats, checked by promtool and
# the Python client's parsers against what was stored.
test-expo:
	rm -rf target/expo-cases && mkdir -p target/expo-cases
	$(CARGO) run $(CORE) --release --quiet --example expo_cases -- target/expo-cases $${EXPO_CASES:-200}
	target/venv/bin/python tests/expo/check.py target/expo-cases

bench: build
	$(CARGO) bench $(CORE) --bench store
	tests/host/build.sh
	target/host/bench_export $(SO)
	target/host/bench_middleware $(SO)

# Scrapes/s and p50/p99 for 10k series at 1/4/16 clients (wrk), qprom's listener in the
# stand-in q host vs prometheus_client's server; then scrapes with q's main thread blocked.
.PHONY: bench-http
bench-http: build
	tests/host/build.sh
	target/venv/bin/python tests/host/bench_http.py
	target/venv/bin/python tests/host/bench_scrapers.py

# The extension in the stand-in q host under synthetic load, listener on DEMO_PORT (default
# 9612, bind DEMO_BIND, default 0.0.0.0); runs until Ctrl-C.
demo: build
	tests/host/build.sh
	target/venv/bin/python tests/host/demo.py

install: build
	@if [ -z "$$QHOME" ]; then echo "make install: QHOME is not set (q's home, holding q.k and l64/)" >&2; exit 1; fi
	install -d "$$QHOME/l64"
	install -m 0755 $(SO) "$$QHOME/l64/libqprom.so"
	install -m 0644 q/prom.q q/exporter.q "$$QHOME/"
	@echo "installed $$QHOME/l64/libqprom.so, $$QHOME/prom.q and $$QHOME/exporter.q"

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
