/ GENERATED from docs/formats.md by tests/host/docsnippets.py: do not edit; after changing the
/ document run `target/venv/bin/python tests/host/docsnippets.py --write` (the host test
/ test_docs_snippets.py fails while this file is stale).
/ Every q) line of the document's ```q blocks, in order, in one fresh q, as a user
/ pasting them would type them (trailing comments dropped), after \l prom.q. A line
/ passes when it evaluates without error (and, where the document shows q's one-line
/ answer, q's answer prints the same), or signals an error tolerated for it (something
/ this machine may lack: a file, a host, a free port). System commands (\l, \t) run
/ with system, as the console runs them (docs/ref/system.md).
\l prom.q
.t.n:0;.t.fail:0;
/ q's console display of a value, without the final newline
.t.disp:{[r]s:.Q.s r;(-1+count s)#s}
.t.eval:{[code]$["\\"=first code;system 1_code;value code]}
/ line[loc;code;tolerated errors;the one-line answer shown, or ""]
.t.line:{[loc;code;errs;want]
  r:@[{(1b;.t.eval x)};code;{(0b;x)}];
  ok:$[r 0;$[0<count want;want~.t.disp r 1;1b];any errs~\:r 1];
  .t.n+:1;
  if[not ok;.t.fail+:1;-2 loc,": ",code," -> ",$[r 0;.t.disp r 1;"'",r 1],$[0<count want;" (the document shows ",want,")";""]];}
.t.line["docs/formats.md:77";".prom.create`name`type`help`labels!(`trades;`counter;\"Trades \\\"seen\\\", by\\\\venue.\\nSecond line\";`venue)";();""];
.t.line["docs/formats.md:78";".prom.incr[`trades;\"a\\\"b\\\\c\\nd\";3]";();""];
.t.line["docs/formats.md:79";".prom.setv[`trades;`LSE;100000000000000000]";();""];
.t.line["docs/formats.md:80";".prom.create`name`type`help`labels!(`build_info;`info;\"Build.\";`version)";();""];
.t.line["docs/formats.md:81";".prom.addmetric[`build_info;\"1.2\";();()]";();""];
.t.line["docs/formats.md:82";".prom.create`name`type`unit!(`temp_celsius;`gauge;`celsius)";();""];
.t.line["docs/formats.md:83";".prom.setv[`temp_celsius;();-0.1]";();""];
.t.line["docs/formats.md:84";".prom.create`name`type`buckets!(`lat_seconds;`histogram;0.1 1)";();""];
.t.line["docs/formats.md:85";".prom.obs[`lat_seconds;();0.05 0.5 5]";();""];
-1 "tests/q/test_docs_formats.q: ",string[.t.n-.t.fail]," passed, ",string[.t.fail]," failed";
exit $[0<.t.fail;1;0]
