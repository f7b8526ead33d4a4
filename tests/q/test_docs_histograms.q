/ GENERATED from docs/histograms.md by tests/host/docsnippets.py: do not edit; after changing the
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
.t.line["docs/histograms.md:164";".prom.create`name`type`help`buckets`nativeFactor!(`hdb_query_seconds;`histogram;\"HDB query time.\";0.01 0.1 1 10 60;1.1)";();"`hdb_query_seconds"];
.t.line["docs/histograms.md:166";".prom.obsEx[`hdb_query_seconds;();0.42;`trace_id`user!(\"4bf92f3577b34da6\";\"alice\")]";();""];
.t.line["docs/histograms.md:167";".prom.init`port`nativeHistograms`exemplars!(9612;1b;1b)";();"9612"];
-1 "tests/q/test_docs_histograms.q: ",string[.t.n-.t.fail]," passed, ",string[.t.fail]," failed";
exit $[0<.t.fail;1;0]
