#!/usr/bin/env bash
# The Makefile's promises to a new user, read from `make -n` (nothing is run):
#   * `make demo` installs what it needs first (scripts/deps.sh), then builds and serves;
#   * `make build` gets its build tools itself (scripts/deps.sh --build) and builds the
#     glibc-2.17 l64 library; `make install` installs the stripped one;
#   * `make dist` builds both platforms and writes the archives.
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
exit $status
