#!/usr/bin/env bash
# q-level tests: run where a licensed `q` is on PATH, skipped (and said so) elsewhere.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v q >/dev/null 2>&1; then
  echo "tests/q: SKIPPED (no q on PATH; these run on a machine with kdb+)"
  exit 0
fi
export QPROM_LIB="$PWD/target/release/libqprom.so"
status=0
for t in tests/q/test_*.q; do
  echo "== $t"
  if ! (cd q && q "../$t" -q </dev/null); then status=1; fi
done
exit $status
