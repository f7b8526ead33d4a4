/ runner self-test: passes (prints its count line, exits 0)
/ fake: pass
-1 "tests/q/selftest/pass.q: 1 passed, 0 failed";
exit 0
