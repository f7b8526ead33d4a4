/ runner self-test: a failed assertion exits 1
/ fake: fail
-2 "FAIL deliberate";
exit 1
