/ runner self-test: aborts at top level; q then reads stdin to EOF and exits 0, so only
/ the missing count line shows the failure
/ fake: abort
'"deliberate abort"
-1 "tests/q/selftest/abort.q: 1 passed, 0 failed";
exit 0
