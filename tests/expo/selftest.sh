#!/usr/bin/env bash
# Test tests/expo/check.py itself on the hand-made fixtures in tests/expo/selftest/:
#   good/  must all pass (one run over the directory);
#   bad/   each case must fail, and for the reason listed below (a substring
#          that must appear in check.py's output for that case).
# Needs scripts/deps.sh to have run (target/venv, promtool).
# Override the interpreter with PYTHON=... if needed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-${TARGET_DIR:-target}/venv/bin/python}"
CHECK=tests/expo/check.py
DIR=tests/expo/selftest
[ -x "$PY" ] || { echo "selftest: $PY not found; run scripts/deps.sh first" >&2; exit 1; }

# bad case | substring expected in the output
EXPECT='
wrong_value.txt|value expected 1.25, got 1.5
wrong_value.om|value expected 1.25, got 1.5
nan_vs_number.om|value expected 0, got NaN
big_int_inexact.txt|value expected 9007199254740993, got 9007199254740992
quantile_outside_error.om|value expected 1.0 within 0.02 relative, got 1.0202
missing_sample.txt|sample g{a="y"}: missing
missing_sample.om|sample g{a="y"}: missing
unexpected_sample.txt|sample g{a="y"}: unexpected
label_escape.txt|sample g{path="C:\\new"}: missing
label_escape.om|sample g{path="C:\\new"}: missing
unescaped_quote.txt|promtool parse error (exit 1)
unescaped_quote.om|OpenMetrics parser rejected it
missing_eof.om|Missing # EOF
duplicate_series.om|2 sample lines but the parser returned 1
duplicate_series.txt|present 2 times
help_escaped_quote.txt|invalid escape sequence
wrong_help.om|help expected '"'"'Another help.'"'"'
wrong_type.txt|type expected '"'"'counter'"'"', got '"'"'gauge'"'"'
missing_help_line.txt|promtool lint: g no help text
no_final_newline.txt|does not end with
interleaved.txt|family g appears 2 times
counter_no_total.om|Clashing name: c
histogram_no_inf.om|+Inf bucket missing
blank_line.om|Received blank line
exemplar_wrong.om|exemplar expected {'"'"'labels'"'"': {'"'"'user'"'"': '"'"'dave'"'"'}
exemplar_unexpected.om|unexpected exemplar
'

passed=0 failed=0
ok()  { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }

# good: must pass, and report every good case as PASS.
out="$("$PY" "$CHECK" "$DIR/good" 2>&1)" && rc=0 || rc=$?
n_good=$(find "$DIR/good" -name '*.txt' -o -name '*.om' | grep -vc '\.json$' || true)
if [ "$rc" = 0 ] && [ "$(tail -n1 <<<"$out")" = "$n_good passed, 0 failed" ]; then
    ok "good/ ($n_good cases pass)"
else
    bad "good/ should pass (exit $rc):"; sed 's/^/    /' <<<"$out"
fi

# bad: each must fail for its reason.
listed=()
while IFS='|' read -r name want; do
    [ -n "$name" ] || continue
    listed+=("$name")
    f="$DIR/bad/$name"
    if [ ! -f "$f" ]; then bad "bad/$name: fixture missing"; continue; fi
    out="$("$PY" "$CHECK" "$f" 2>&1)" && rc=0 || rc=$?
    if [ "$rc" != 1 ]; then
        bad "bad/$name should fail with exit 1, got $rc:"; sed 's/^/    /' <<<"$out"
    elif [ "$(tail -n1 <<<"$out")" != "0 passed, 1 failed" ]; then
        bad "bad/$name: unexpected summary line: $(tail -n1 <<<"$out")"
    elif ! grep -qF -- "$want" <<<"$out"; then
        bad "bad/$name failed, but not with '$want':"; sed 's/^/    /' <<<"$out"
    else
        ok "bad/$name ($want)"
    fi
done <<<"$EXPECT"

# every bad fixture must be listed above
for f in "$DIR"/bad/*.txt "$DIR"/bad/*.om; do
    name="${f##*/}"
    [[ " ${listed[*]} " == *" $name "* ]] || bad "bad/$name has no expectation in selftest.sh"
done

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
