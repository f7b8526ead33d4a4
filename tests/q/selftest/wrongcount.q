/ runner self-test: a count line with failures is not a pass
/ fake: wrongcount
-1 "tests/q/selftest/wrongcount.q: 3 passed, 1 failed";
exit 0
