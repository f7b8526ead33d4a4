/ GENERATED from docs/reference.md by tests/host/docsnippets.py: do not edit; after changing the
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
.t.line["docs/reference.md:28";"\\l prom.q";();""];
/ not run: docs/reference.md:47: .prom.LIBPATH:`:/opt/qprom/lib/libqprom: an install path this machine lacks (prom.q loaded after it would fail to bind)
.t.line["docs/reference.md:48";"\\l prom.q";();""];
.t.line["docs/reference.md:110";".prom.create`name`type`help`labels!(`trades_total;`counter;\"Trades seen.\";`sym)";();"`trades_total"];
.t.line["docs/reference.md:112";"@[.prom.incr[`trades_total;`AAPL];-1;{x}]";();"\"prom: counter increment must be >= 0\""];
.t.line["docs/reference.md:214";".prom.newmetric[`number_tables;`gauge;`region;\"number of tables\"]";();""];
.t.line["docs/reference.md:215";".prom.newmetric[`size_updates;`summary;();\"size of updates\"]";();""];
.t.line["docs/reference.md:254";"numtab1:.prom.addmetric[`number_tables;`amer;();0f]";();""];
.t.line["docs/reference.md:255";"numtab2:.prom.addmetric[`number_tables;`emea;();0f]";();""];
.t.line["docs/reference.md:256";"updsz:.prom.addmetric[`size_updates;();0.25 0.5 0.75;`float$()]";();""];
.t.line["docs/reference.md:257";"type numtab1";();"-7h"];
.t.line["docs/reference.md:303";".prom.updval[numtab1;:;count tables[]]";();""];
.t.line["docs/reference.md:304";".prom.updval[numtab2;+;1]";();""];
.t.line["docs/reference.md:305";".prom.updval[numtab2;-;1]";();""];
.t.line["docs/reference.md:306";".prom.updval[updsz;,;10 15 20f]";();""];
.t.line["docs/reference.md:307";".prom.updval[numtab1;{x*y};2]";();""];
.t.line["docs/reference.md:376";".prom.create`name`type`help`labels!(`trades_total;`counter;\"Trades seen.\";`sym)";();"`trades_total"];
.t.line["docs/reference.md:378";".prom.create`name`type`help`labels`buckets!(`query_seconds;`histogram;\"Query time.\";`fn;0.001 0.01 0.1 1 10)";();"`query_seconds"];
.t.line["docs/reference.md:380";".prom.create`name`type`quantiles`maxAge`ageBuckets!(`tick_lag_seconds;`summary;0.5 0.99;0D00:05:00;5)";();"`tick_lag_seconds"];
.t.line["docs/reference.md:382";".prom.create`name`type`help`labels!(`build_info;`info;\"Build of this process.\";`version`commit)";();"`build_info"];
.t.line["docs/reference.md:406";".prom.create`name`type`help`unit`nativeFactor!(`hdb_scan_seconds;`histogram;\"HDB scans.\";`seconds;1.1)";();"`hdb_scan_seconds"];
.t.line["docs/reference.md:408";".prom.create`name`type`buckets`nativeSchema`nativeMaxBuckets!(`gw_query_seconds;`histogram;0.01 0.1 1 10;4;320)";();"`gw_query_seconds"];
.t.line["docs/reference.md:410";".prom.obs[`hdb_scan_seconds;();0.000042 3.5 7200]";();""];
.t.line["docs/reference.md:437";".prom.inc[`trades_total;`AAPL]";();""];
.t.line["docs/reference.md:438";".prom.incr[`trades_total;`AAPL;100]";();""];
.t.line["docs/reference.md:439";".prom.incr[`trades_total;enlist[`sym]!enlist`MSFT;5]";();""];
.t.line["docs/reference.md:454";".prom.create`name`type`help!(`open_orders;`gauge;\"Orders open now.\")";();"`open_orders"];
.t.line["docs/reference.md:456";".prom.inc[`open_orders;()]";();""];
.t.line["docs/reference.md:457";".prom.decr[`open_orders;();1]";();""];
.t.line["docs/reference.md:474";".prom.setv[`open_orders;();42]";();""];
.t.line["docs/reference.md:491";".prom.obs[`query_seconds;`getTrades;0.0042]";();""];
.t.line["docs/reference.md:492";".prom.obs[`query_seconds;`getTrades;0.001 0.002 0.5]";();""];
.t.line["docs/reference.md:523";".prom.incEx[`trades_total;`AAPL;100;enlist[`trace_id]!enlist\"4bf92f3577b34da6\"]";();""];
.t.line["docs/reference.md:524";".prom.obsEx[`query_seconds;`getTrades;0.42;`trace_id`user!(\"4bf92f3577b34da6\";\"alice\")]";();""];
.t.line["docs/reference.md:542";".prom.getv[`trades_total;`AAPL]";();"101f"];
.t.line["docs/reference.md:560";".prom.del[`trades_total;`AAPL]";();""];
.t.line["docs/reference.md:561";".prom.del[`trades_total;::]";();""];
.t.line["docs/reference.md:588";"m:select from .prom.metrics[] where metric=`query_seconds";();""];
.t.line["docs/reference.md:589";"m`val";();""];
.t.line["docs/reference.md:590";"(first m`val)`buckets";();""];
.t.line["docs/reference.md:591";"select metric,labels from .prom.metrics[] where mtype=`counter";();""];
.t.line["docs/reference.md:608";"select metric,series,limit from .prom.metricMeta[] where series>1000";();""];
.t.line["docs/reference.md:629";"1 .prom.serve[];";();""];
.t.line["docs/reference.md:648";".prom.setLimit 50000";();""];
.t.line["docs/reference.md:767";".prom.init[]";();""];
.t.line["docs/reference.md:768";".prom.stop[]";();""];
.t.line["docs/reference.md:769";".prom.init enlist[`port]!enlist 9612";enlist "prom: port in use";"9612"];
.t.line["docs/reference.md:771";".prom.stop[]";();""];
.t.line["docs/reference.md:772";".prom.init`port`bind!(0;`127.0.0.1)";();""];
.t.line["docs/reference.md:773";".prom.stop[]";();""];
.t.line["docs/reference.md:774";".prom.init`port`pollTimeout`maxInFlight!(9612;0D00:00:02;2)";enlist "prom: port in use";"9612"];
.t.line["docs/reference.md:776";".prom.stop[]";();""];
.t.line["docs/reference.md:777";".prom.init`handlers`buckets!(`pg`ps`po`pc;0.001 0.01 0.1 1 10)";();""];
.t.line["docs/reference.md:778";".prom.stop[]";();""];
.t.line["docs/reference.md:779";".prom.init`port`nativeHistograms`exemplars!(9612;1b;1b)";enlist "prom: port in use";"9612"];
.t.line["docs/reference.md:781";".prom.stop[]";();""];
.t.line["docs/reference.md:782";".prom.init`port`nativeHistograms!(9612;`factor`maxBuckets!(1.05;320))";enlist "prom: port in use";"9612"];
.t.line["docs/reference.md:784";".prom.stop[]";();""];
.t.line["docs/reference.md:785";"users:enlist[`prometheus]!enlist\"$2y$10$Pc0ypNl8n1pePSKBo4vbWOUFQqnfpeoE3r0Ml0YrNdg1Cp7SZMFPO\"";();""];
.t.line["docs/reference.md:786";".prom.init`port`tlsCertFile`tlsKeyFile`basicAuthUsers!(9612;`:/etc/kdb/tls.pem;`:/etc/kdb/tls.key;users)";("prom: tls certificate file unreadable or without a PEM certificate";"prom: port in use");"9612"];
.t.line["docs/reference.md:818";".prom.stop[]";();""];
.t.line["docs/reference.md:819";".prom.init enlist[`port]!enlist 9613";enlist "prom: port in use";"9613"];
.t.line["docs/reference.md:1011";".prom.create`name`type`help`labels!(`api_duration_seconds;`histogram;\"API call time.\";`fn)";();"`api_duration_seconds"];
.t.line["docs/reference.md:1013";"getTrades:{[s;d]([]date:enlist d;sym:enlist s;price:enlist 101.5)}";();""];
.t.line["docs/reference.md:1014";".prom.time[`api_duration_seconds;`getTrades;getTrades;(`AAPL;2024.06.03)]";();""];
.t.line["docs/reference.md:1031";".prom.create`name`type`help!(`batch_duration_seconds;`histogram;\"Batch time.\")";();"`batch_duration_seconds"];
.t.line["docs/reference.md:1033";"t0:.z.p";();""];
.t.line["docs/reference.md:1034";"r:sum til 1000000";();""];
.t.line["docs/reference.md:1035";".prom.obsSince[`batch_duration_seconds;();t0]";();""];
.t.line["docs/reference.md:1055";".prom.create`name`type`help!(`upd_errors_total;`counter;\"Failed updates.\")";();"`upd_errors_total"];
.t.line["docs/reference.md:1057";"upd:{[t;x]if[not 98h=type x;'\"type\"];count x}";();""];
.t.line["docs/reference.md:1058";"data:([]sym:`AAPL`MSFT;price:101.5 402.1)";();""];
.t.line["docs/reference.md:1059";".prom.countErrors[`upd_errors_total;();upd;(`trade;data)]";();(),"2"];
.t.line["docs/reference.md:1061";"@[.prom.countErrors[`upd_errors_total;();upd];(`trade;1 2 3);{x}]";();"\"type\""];
.t.line["docs/reference.md:1063";".prom.getv[`upd_errors_total;()]";();"1f"];
.t.line["docs/reference.md:1065";".prom.countErrorsLike[`upd_errors_total;();(\"type\";\"length\");upd;(`trade;data)]";();(),"2"];
.t.line["docs/reference.md:1083";".prom.create`name`type`help!(`eod_in_progress;`gauge;\"End-of-day jobs running.\")";();"`eod_in_progress"];
.t.line["docs/reference.md:1085";"eod:{[d]-1\"end of day \",string d;}";();""];
.t.line["docs/reference.md:1086";".prom.trackInprogress[`eod_in_progress;();eod;enlist .z.d]";();""];
.t.line["docs/reference.md:1102";".prom.create`name`type`help!(`eod_last_success_seconds;`gauge;\"Last successful end of day.\")";();"`eod_last_success_seconds"];
.t.line["docs/reference.md:1104";".prom.setToCurrentTime[`eod_last_success_seconds;()]";();""];
.t.line["docs/reference.md:1136";".prom.create`name`type`help!(`tp_logged_messages_total;`counter;\"Messages in today's tickerplant log.\")";();"`tp_logged_messages_total"];
.t.line["docs/reference.md:1138";".prom.on_poll:{[f;msg] f msg; .prom.mirror[`tp_logged_messages_total;();.u.i;::];}[.prom.on_poll]";();""];
.t.line["docs/reference.md:1140";".prom.create`name`type`help`labels!(`feed_messages_total;`counter;\"Messages from each feed.\";`feed)";();"`feed_messages_total"];
.t.line["docs/reference.md:1142";"st:`count`started!(123456789;2024.06.03D07:00:00.000000000)";();""];
.t.line["docs/reference.md:1143";".prom.mirror[`feed_messages_total;`feed1;st`count;st`started]";();""];
.t.line["docs/reference.md:1216";".prom.init`port`inflight`sizes`httpStatus!(9612;1b;1b;1b)";enlist "prom: port in use";""];
.t.line["docs/reference.md:1217";".prom.init`port`user`functions!(9612;1b;`getTrades`getQuotes`.u.upd)";enlist "prom: port in use";""];
.t.line["docs/reference.md:1241";".z.ts:{.prom.write\"/var/lib/prometheus/node-exporter/kdb_eod.prom\"}";();""];
.t.line["docs/reference.md:1242";"\\t 15000";();""];
.t.line["docs/reference.md:1260";".prom.init`port`fileSd!(9612;`:/etc/prometheus/kdb.d)";("prom: directory does not exist";"prom: directory is not writable";"prom: port in use");""];
.t.line["docs/reference.md:1261";".prom.stop[]";();""];
.t.line["docs/reference.md:1262";".prom.init`port`fileSd!(9612;`dir`labels!(`:/etc/prometheus/kdb.d;`job`env!(\"tp\";\"prod\")))";("prom: directory does not exist";"prom: directory is not writable";"prom: port in use");""];
.t.line["docs/reference.md:1338";".prom.push[\"http://pushgw:9091\";`nightly_load;`instance`date!(`eod;\"2024/05/31\")]";("prom: push failed: host not found";"prom: push failed: connection refused";"prom: push failed: timed out (10 s)");""];
.t.line["docs/reference.md:1340";".prom.pushDelete[\"http://pushgw:9091\";`nightly_load;`instance`date!(`eod;\"2024/05/31\")]";("prom: push failed: host not found";"prom: push failed: connection refused";"prom: push failed: timed out (10 s)");""];
-1 "tests/q/test_docs_reference.q: ",string[.t.n-.t.fail]," passed, ",string[.t.fail]," failed";
exit $[0<.t.fail;1;0]
