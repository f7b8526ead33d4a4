/ KX's exporter.q (prometheus-kdb-exporter 1.0.1), unchanged, on prom.q: the drop-in of
/ issue #12. tests/q/kx_fetch.sh puts KX's file in target/kx/ (sha256-pinned) next to a
/ stand-in extract.q that loads prom.q, so the script's own `\l extract.q` loads qprom.
/ The same calls as export calls, where no q runs: tests/host/test_kx_dropin.py.
/ One boolean per line; exits 1 on the first failure.
.t.n:0;
.t.ok:{[name;b] .t.n+:1; if[not b~1b; -2 "FAIL ",name; exit 1]}
.t.err:{[f;args] @[{x . y;`noerr}[f];args;{x}]}
/ the repository root, from this script's path (.z.f as given: run from q/ or the root)
.t.p:"/"vs string .z.f;
.t.root:$[3<.t.np:count .t.p;"/"sv -3_.t.p;3=.t.np;".";2=.t.np;"..";"../.."];
.t.kx:.t.root,"/target/kx";
if[()~key hsym`$.t.kx,"/exporter.q"; -2 "FAIL ",.t.kx,"/exporter.q missing: run tests/q/kx_fetch.sh"; exit 1];
/ exporter.q loads extract.q from the current directory, as KX's README runs it
.t.cwd:first system"pwd";
system"cd ",.t.kx;
@[system;"l exporter.q";{-2 "FAIL loading KX's exporter.q: ",x; exit 1}];
system"cd ",.t.cwd;

/ KX's families (exporter.q 1.0.1's newmetric lines), with their types
.t.kxfam:`kdb_info`memory_usage_bytes`memory_heap_bytes`memory_heap_peak_bytes`memory_heap_limit_bytes`memory_mapped_bytes`memory_physical_bytes`kdb_syms_total`kdb_syms_memory_bytes`kdb_ipc_opened_total`kdb_ipc_closed_total`kdb_ws_opened_total`kdb_ws_closed_total`kdb_handles_total`kdb_sync_total`kdb_async_total`kdb_http_get_total`kdb_http_post_total`kdb_ws_total`kdb_ts_total`kdb_sync_err_total`kdb_async_err_total`kdb_http_get_err_total`kdb_http_post_err_total`kdb_ws_err_total`kdb_ts_err_total`kdb_sync_summary_seconds`kdb_async_summary_seconds`kdb_http_get_summary_seconds`kdb_http_post_summary_seconds`kdb_ws_summary_seconds`kdb_ts_summary_seconds`kdb_sync_histogram_seconds`kdb_async_histogram_seconds`kdb_http_get_histogram_seconds`kdb_http_post_histogram_seconds`kdb_ws_histogram_seconds`kdb_ts_histogram_seconds!`gauge`gauge`gauge`counter`gauge`gauge`gauge`counter`counter`counter`counter`counter`counter`gauge`counter`counter`counter`counter`counter`counter`counter`counter`counter`counter`counter`counter`summary`summary`summary`summary`summary`summary`histogram`histogram`histogram`histogram`histogram`histogram;
.t.meta:{exec metric!mtype from .prom.metricMeta[]};
.t.val:{[m]first exec val from .prom.metrics[] where metric=m};
.t.v:{[id].prom.getv[id;::]};
.t.has:{[text;s]0<count text ss s};

/ the script ran to its end: .prom.init[] (standard naming) succeeded
.t.ok["init wrapped .z.pg"; not -11h=type @[get;`.z.pg;{[e]`undefined}]];
.t.ok["KX's 38 families, with KX's types"; (value .t.kxfam)~.t.meta[]key .t.kxfam];
.t.ok["kdb_info is KX's gauge, with KX's labels"; `release_date`release_version`os_version`process_cores`license_expiry_date~first exec labels from .prom.metricMeta[] where metric=`kdb_info];
.t.ok["qprom's standard families beside them"; all`kdb_requests_total`kdb_request_duration_seconds`kdb_memory_used_bytes in key .t.meta[]];
.t.ok["addmetric returned ids"; all -7h=type each(qry_sync;err_sync;summ_sync;hist_sync;mem;ipc_opened;hdl_open)];
.t.ok["KX's quantiles from addmetric"; .25 .5 .75~key .t.val[`kdb_sync_summary_seconds]`quantiles];
.t.ok["KX's buckets from addmetric"; (.25 .5 1 5 10,0w)~key .t.val[`kdb_sync_histogram_seconds]`buckets];

/ requests through the wrapped handlers run KX's before/after hooks
.t.ok["a sync request"; 2~.z.pg"1+1"];
.t.ok["counted once, the error taken back by after (updval -)"; (1f;0f)~.t.v each(qry_sync;err_sync)];
.t.ok["after observed the duration"; 1 1~(.t.val[`kdb_sync_histogram_seconds]`count;.t.val[`kdb_sync_summary_seconds]`count)];
.t.ok["no hook failed"; 0=count select from .prom.metrics[] where metric=`qprom_hook_errors_total];
.t.ok["a failing sync request signals as without prom.q"; "type"~.t.err[.z.pg;enlist"1+`a"]];
.t.ok["KX's error count: the +1 of before stays"; (2f;1f)~.t.v each(qry_sync;err_sync)];
.t.ok["no duration for a failed request (KX's after is not called)"; 1=.t.val[`kdb_sync_histogram_seconds]`count];
.z.ps"1+1";
.t.ok["an async request"; (1f;0f)~.t.v each(qry_async;err_async)];
.z.po 7i;
.t.ok["KX's on_po"; (1f;"f"$count .z.W)~.t.v each(ipc_opened;hdl_open)];
.t.r:.z.ph("metrics";()!());
.t.ok["/metrics on q's port"; .t.r like "HTTP/1.1 200 OK*"];
.t.ok["KX's on_poll ran for the scrape"; 0<.t.v mem];
.t.ok["KX's families in the exposition"; all .t.has[.t.r]each("# TYPE kdb_info gauge";"# TYPE memory_heap_peak_bytes counter";"\nkdb_sync_total 2\n";"\nkdb_sync_err_total 1\n";"kdb_sync_histogram_seconds_bucket{le=\"0.25\"}")];
.t.ok["still no hook failed"; 0=count select from .prom.metrics[] where metric=`qprom_hook_errors_total];

/ naming kx: the script defined every family of it, so qprom adds none and counts nothing twice
.prom.stop[];
.t.nf:count .prom.metricMeta[];
.prom.init enlist[`naming]!enlist`kx;
.t.ok["kx naming: no family added"; .t.nf=count .prom.metricMeta[]];
.t.ok["memory_heap_peak_bytes stays 1.0.1's counter"; `counter=.t.meta[]`memory_heap_peak_bytes];
.z.pg"1+1";
.t.err[.z.pg;enlist"1+`a"];
.t.ok["kx naming: each request counted once"; (4f;2f)~.t.v each(qry_sync;err_sync)];
.t.ok["kx naming: one more duration"; 2=.t.val[`kdb_sync_histogram_seconds]`count];
.prom.stop[];
-1 "tests/q/test_kx_exporter.q: ",string[.t.n]," passed, 0 failed";
exit 0
