/ runner self-test: exits 0 without its count line
/ fake: nocount
exit 0
