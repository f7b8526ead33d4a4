#!/usr/bin/env bash
# q-level tests: run where a licensed `q` is on PATH, skipped (and said so) elsewhere.
#
# Each tests/q/test_*.q runs in its own q, from q/ (so `\l prom.q` finds the script),
# with 2 secondary threads (-s 2: peach is parallel) and any options its "/ args:" line
# gives. A file passes only if q exits 0 AND it printed exactly
# "tests/q/<file>: N passed, 0 failed". q carries on after a script aborts (a top-level
# signal, a failed \l) and exits 0 at the end of stdin, so the exit code alone proves
# nothing: a missing count line is a failure. The library path is given without .so,
# as 2: wants it (q appends .so); its .so must exist.
#
#   tests/q/run.sh [test_file.q ...]     (default: every tests/q/test_*.q)
# Environment: Q (the q binary, default q), QPROM_LIB (library path without .so).
set -uo pipefail
cd "$(dirname "$0")/../.."
Q="${Q:-q}"
if ! command -v "$Q" >/dev/null 2>&1; then
  echo "tests/q: SKIPPED (no q on PATH; these run on a machine with kdb+)"
  exit 0
fi
export QPROM_LIB="${QPROM_LIB:-$PWD/target/l64/libqprom}"
case "$QPROM_LIB" in *.so) echo "tests/q: QPROM_LIB must not end in .so (2: appends it): $QPROM_LIB" >&2; exit 1 ;; esac
[ -f "$QPROM_LIB.so" ] || { echo "tests/q: $QPROM_LIB.so not found (make build)" >&2; exit 1; }

# verdict FILE RC OUTPUT: 0 when the file passed (used by tests/q/selftest.sh too)
verdict() {
  local name="$1" rc="$2" out="$3"
  if [ "$rc" -ne 0 ]; then echo "FAIL $name: q exited $rc"; return 1; fi
  if ! grep -Eq "^$name: [0-9]+ passed, 0 failed\$" <<<"$out"; then
    echo "FAIL $name: no \"$name: N passed, 0 failed\" line (the script aborted, or did not finish)"
    return 1
  fi
  grep -E "^$name: [0-9]+ passed" <<<"$out"
}

status=0
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(tests/q/test_*.q)
# KX's exporter.q at tag 1.0.1, for the drop-in tests (fetched, never committed)
if printf '%s\n' "${files[@]}" | grep -q kx && [ -x tests/q/kx_fetch.sh ]; then
  tests/q/kx_fetch.sh || { echo "tests/q: could not fetch KX's exporter.q" >&2; exit 1; }
fi
for t in "${files[@]}"; do
  echo "== $t"
  # shellcheck disable=SC2046  # the args line is split into words on purpose
  args=$(sed -n 's|^/ args: ||p' "$t" | head -1)
  out=$(cd q && "$Q" "../$t" -s 2 $args -q </dev/null 2>&1)
  rc=$?
  printf '%s\n' "$out" | tail -20
  verdict "$t" "$rc" "$out" || status=1
done
exit $status
