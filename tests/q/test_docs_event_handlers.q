/ GENERATED from docs/event-handlers.md by tests/host/docsnippets.py: do not edit; after changing the
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
.t.line["docs/event-handlers.md:182";".prom.create`name`type`help!(`tables_count;`gauge;\"Tables in the root namespace.\")";();"`tables_count"];
.t.line["docs/event-handlers.md:184";".prom.on_poll:{[f;msg] f msg; .prom.setv[`tables_count;();count tables[]];}[.prom.on_poll]";();""];
.t.line["docs/event-handlers.md:194";".prom.create`name`type`help`labels!(`queries_by_user_total;`counter;\"Sync queries by user.\";`user)";();"`queries_by_user_total"];
.t.line["docs/event-handlers.md:196";".prom.after_pg:{[f;tmp;msg;res] f[tmp;msg;res]; .prom.inc[`queries_by_user_total;.z.u];}[.prom.after_pg]";();""];
.t.line["docs/event-handlers.md:205";".prom.create`name`type`help!(`timer_lag_seconds;`gauge;\"Delay of the last timer call.\")";();"`timer_lag_seconds"];
.t.line["docs/event-handlers.md:207";".prom.before_ts:{[dtm] .prom.setv[`timer_lag_seconds;();1e-9*\"j\"$.z.p-dtm]; .z.p}";();""];
.t.line["docs/event-handlers.md:254";".z.pg:{[x] value x}";();""];
.t.line["docs/event-handlers.md:255";"\\l prom.q";();""];
.t.line["docs/event-handlers.md:256";".prom.init[]";();""];
.t.line["docs/event-handlers.md:257";".prom.stop[]";();""];
.t.line["docs/event-handlers.md:294";"mylog:{[msg]-1\"sync: \",-3!msg;}";();""];
.t.line["docs/event-handlers.md:295";".prom.after_pg:{[f;tmp;msg;res] f[tmp;msg;res]; mylog msg;}[.prom.after_pg]";();""];
-1 "tests/q/test_docs_event_handlers.q: ",string[.t.n-.t.fail]," passed, ",string[.t.fail]," failed";
exit $[0<.t.fail;1;0]
