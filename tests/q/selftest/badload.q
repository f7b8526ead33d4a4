/ runner self-test: a script that fails to load (a missing file) aborts the same way
/ fake: abort
\l no_such_file_qprom.q
-1 "tests/q/selftest/badload.q: 1 passed, 0 failed";
exit 0
