#!/usr/bin/env bash
# Build the stand-in q host and run its tests (tests/host), optionally under valgrind.
#
#   tests/host/run.sh [--valgrind] [pytest args...]
# QHOST_TESTS selects test files or folders (default: tests/host).
#
# --valgrind: run the suite under memcheck and judge it with valgrind_check.py (fails on
# invalid reads/writes/frees, uninitialised use and definite leaks with a frame in
# libqprom.so, libfake_ext.so or libqshim.so), then the self-test: the deliberate bugs
# in fake_ext.c run under memcheck and the checker must flag both.
#
# Environment: QPROM_SO (extension under test, default target/l64/libqprom.so),
# QHOST_PYTHON (default target/venv/bin/python, else python3; needs pytest).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
valgrind=0
if [[ ${1:-} == --valgrind ]]; then valgrind=1; shift; fi

tests/host/build.sh

# An .so built with `--no-default-features` (e.g. build_so.sh with such CARGO_BUILD_FLAGS,
# given as QPROM_SO) has no q exports: say so rather than fail test by test.
so=${QPROM_SO:-${TARGET_DIR:-target}/l64/libqprom.so}
if [[ -f $so ]] && ! nm -D --defined-only "$so" | grep -q ' qprom_start$'; then
  echo "run.sh: $so has no qprom_* exports (built with --no-default-features?): run 'make build'" >&2
  exit 1
fi

target=${TARGET_DIR:-target}
py=${QHOST_PYTHON:-}
if [[ -z $py ]]; then
  if [[ -x $target/venv/bin/python ]]; then py=$target/venv/bin/python; else py=python3; fi
fi
if ! "$py" -c 'import pytest' 2>/dev/null; then
  echo "run.sh: $py has no pytest (create target/venv from tests/requirements.txt, or set QHOST_PYTHON)" >&2
  exit 1
fi

if [[ $valgrind == 0 ]]; then
  exec "$py" -m pytest ${QHOST_TESTS:-tests/host} -p no:cacheprovider "$@"
fi

command -v valgrind >/dev/null || { echo "run.sh: valgrind not installed (apt-get install valgrind)" >&2; exit 1; }
out=$target/host/valgrind
rm -rf "$out"
mkdir -p "$out"
# PYTHONMALLOC=malloc: Python's small-object allocator would hide its blocks from memcheck
# and report false uninitialised reads. --errors-for-leak-kinds=definite: only definite
# leaks are errors. valgrind's own exit status is ignored; valgrind_check.py decides.
vg=(valgrind --tool=memcheck --xml=yes --leak-check=full --show-leak-kinds=definite
    --errors-for-leak-kinds=definite --num-callers=40 --error-exitcode=0
    --child-silent-after-fork=yes)

start=$(date +%s)
status=0
PYTHONMALLOC=malloc "${vg[@]}" --xml-file="$out/suite-%p.xml" \
  "$py" -m pytest ${QHOST_TESTS:-tests/host} -p no:cacheprovider "$@" || status=$?
"$py" tests/host/valgrind_check.py "$out"/suite-*.xml || status=1
echo "run.sh: suite under valgrind took $(( $(date +%s) - start ))s"

start=$(date +%s)
QHOST_VALGRIND_SELFTEST=1 QHOST_ENABLE_BUGS=1 PYTHONMALLOC=malloc "${vg[@]}" \
  --xml-file="$out/selftest-%p.xml" \
  "$py" -m pytest tests/host/test_host.py -p no:cacheprovider -q -k selftest || status=1
"$py" tests/host/valgrind_check.py "$out"/selftest-*.xml \
  --expect Leak_DefinitelyLost:fake_bug_malloc_leak --expect InvalidRead:fake_bug_overread \
  || { echo "run.sh: valgrind_check.py missed a deliberate bug" >&2; status=1; }
echo "run.sh: valgrind self-test took $(( $(date +%s) - start ))s"
exit $status
