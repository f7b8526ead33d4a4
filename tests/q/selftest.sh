#!/usr/bin/env bash
# Proves tests/q/run.sh's verdicts: a file passes only with exit 0 and its exact count
# line; an aborted script, a failed load, a missing or failing count line and a non-zero
# exit each fail the run; and the library is given to 2: without .so.
# Runs here with a stand-in `q` (a shell script that behaves as each fixture's "/ fake:"
# line says, as q would); where a real q is on PATH, the same fixtures also run in it.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
check() {  # check WANT_RC DESCRIPTION cmd...
  local want="$1" what="$2"; shift 2
  set +e; out=$("$@" 2>&1); rc=$?; set -e
  if { [ "$want" = 0 ] && [ "$rc" -ne 0 ]; } || { [ "$want" != 0 ] && [ "$rc" -eq 0 ]; }; then
    echo "selftest FAIL: $what (exit $rc)"; printf '%s\n' "$out" | sed 's/^/  | /'; fails=$((fails+1))
  else
    echo "selftest ok: $what"
  fi
}

# the stand-in q: records its arguments and QPROM_LIB, then acts out the fixture
cat > "$tmp/q" <<'FAKE'
#!/usr/bin/env bash
echo "$QPROM_LIB|$*" >> "$FAKEQ_LOG"
script="$1"
mode=$(sed -n 's|^/ fake: ||p' "$script" | head -1)
name="tests/q/${script#../tests/q/}"
case "$mode" in
  pass) echo "$name: 1 passed, 0 failed"; exit 0 ;;
  abort) echo "'deliberate abort"; exit 0 ;;           # q goes on to stdin, EOF, exit 0
  nocount) exit 0 ;;
  fail) echo "FAIL deliberate" >&2; exit 1 ;;
  wrongcount) echo "$name: 3 passed, 1 failed"; exit 0 ;;
  *) echo "fake q: no mode in $script" >&2; exit 2 ;;
esac
FAKE
chmod +x "$tmp/q"
touch "$tmp/libqprom.so"
export FAKEQ_LOG="$tmp/log"
run() { PATH="$tmp:$PATH" QPROM_LIB="$tmp/libqprom" tests/q/run.sh "$@"; }

check 0 "a passing file passes" run tests/q/selftest/pass.q
check 1 "an aborted script fails" run tests/q/selftest/abort.q
check 1 "a failed load fails" run tests/q/selftest/badload.q
check 1 "a missing count line fails" run tests/q/selftest/nocount.q
check 1 "a failed assertion (exit 1) fails" run tests/q/selftest/fail.q
check 1 "a count line with failures fails" run tests/q/selftest/wrongcount.q
check 1 "one failure among passes fails the run" run tests/q/selftest/pass.q tests/q/selftest/abort.q tests/q/selftest/pass.q
check 1 "QPROM_LIB ending in .so is refused" env PATH="$tmp:$PATH" QPROM_LIB="$tmp/libqprom.so" tests/q/run.sh tests/q/selftest/pass.q
check 1 "a missing library is refused" env PATH="$tmp:$PATH" QPROM_LIB="$tmp/nolib" tests/q/run.sh tests/q/selftest/pass.q
if grep -q -- '-s 2' "$FAKEQ_LOG" && ! grep -q '\.so|' "$FAKEQ_LOG"; then
  echo "selftest ok: q ran with -s 2 and a library path without .so"
else
  echo "selftest FAIL: q's arguments: $(head -1 "$FAKEQ_LOG")"; fails=$((fails+1))
fi
# the default library path is the release build without .so
if grep -q 'QPROM_LIB:-$PWD/target/l64/libqprom}' tests/q/run.sh; then
  echo "selftest ok: default QPROM_LIB is target/l64/libqprom"
else
  echo "selftest FAIL: default QPROM_LIB"; fails=$((fails+1))
fi

if command -v q >/dev/null 2>&1; then   # the same fixtures in a real q
  for f in abort badload nocount fail wrongcount; do
    check 1 "real q: $f.q fails" tests/q/run.sh "tests/q/selftest/$f.q"
  done
  check 0 "real q: pass.q passes" tests/q/run.sh tests/q/selftest/pass.q
else
  echo "tests/q/selftest: real-q part SKIPPED (no q on PATH)"
fi
[ "$fails" -eq 0 ] || { echo "tests/q/selftest: $fails failed"; exit 1; }
echo "tests/q/selftest: all passed"
