#!/usr/bin/env bash
# The Makefile's promises to a new user, read from `make -n` (nothing is run):
#   * `make demo` installs what it needs first (scripts/deps.sh), then builds and serves;
#   * `make build` gets its build tools itself (scripts/deps.sh --build) and builds the
#     glibc-2.17 l64 library; `make install` installs the stripped one;
#   * `make dist` builds both platforms and writes the archives;
#   * a plain `cargo build` makes no libqprom.so (read from `cargo metadata`).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
status=0

# expect TARGET "regex A" "regex B" ...: each matches a line of `make -n TARGET`, in order
expect() {
  local target=$1; shift
  local out pos=0 line
  out=$(QHOME=/nonexistent make -n --no-print-directory "$target" 2>&1) || {
    echo "make_targets: FAIL: make -n $target failed: $out"; status=1; return; }
  for want in "$@"; do
    line=$(grep -n -E -- "$want" <<<"$out" | head -1 | cut -d: -f1)
    if [[ -z $line ]]; then
      echo "make_targets: FAIL: make $target does not run '$want'"; status=1; return
    fi
    if (( line < pos )); then
      echo "make_targets: FAIL: make $target runs '$want' too early"; status=1; return
    fi
    pos=$line
  done
  echo "make_targets: ok: make $target runs: $(printf "'%s' " "$@")"
}

# the full deps (libe.so, the venv with prometheus_client), not only the build tools
expect demo "scripts/deps.sh$" "scripts/build_so.sh l64$" "tests/host/build.sh" "tests/host/demo.py"
expect build "scripts/deps.sh --build$" "scripts/build_so.sh l64$"
expect install "scripts/build_so.sh l64$" 'install -m 0755 target/l64/libqprom.so '
expect dist "scripts/build_so.sh l64$" "scripts/build_so.sh l64arm$" "scripts/dist.sh "

# A plain `cargo build --release` makes no shared object: one linked on this machine needs
# its glibc (GLIBC_2.34 here) and would not load on RHEL 7/8 or Ubuntu 20.04, yet would sit
# in target/release/ looking like the library. Only scripts/build_so.sh asks for a cdylib.
types=$(cargo metadata --no-deps --format-version 1 2>/dev/null |
  python3 -c 'import json,sys; m=json.load(sys.stdin); print(" ".join(t for p in m["packages"] if p["name"]=="qprom" for k in p["targets"] if set(k["kind"]) & {"lib", "rlib", "cdylib", "dylib", "staticlib"} for t in k["crate_types"]))')
if [[ $types == rlib ]]; then
  echo "make_targets: ok: the library target is rlib only (cargo build makes no libqprom.so)"
else
  echo "make_targets: FAIL: the library target's crate types are '$types', not rlib alone"; status=1
fi
exit $status
