/ qprom: a q process as a Prometheus target.  \l prom.q
/ The store, the encoders and the listener live in libqprom.so (Rust); this script binds
/ them (one table below) and gives the .prom API.  Nothing is defined outside .prom.
/ Errors are signalled as 'prom: ... ; no input can crash the process.

/ Where the library is: .prom.LIBPATH if set before loading, else $QPROM_LIB, else
/ `:libqprom, which 2: finds in $QHOME/l64 (as `make install` puts it) or LD_LIBRARY_PATH.
.prom.LIB:@[get;`.prom.LIBPATH;{$[count e:getenv`QPROM_LIB;hsym`$e;`:libqprom]}];

/ ---- bindings: every C function, once ---------------------------------------------
/ create[def:dict] -> name:symbol            def: `name`type mandatory; optional `help`labels
/                                            `unit`buckets`quantiles`maxAge`ageBuckets`limit
.prom.i.create:.prom.LIB 2:(`qprom_create;1);
/ series[metric;labels;params:floats;start] -> id:long   get or create (addmetric)
.prom.i.series:.prom.LIB 2:(`qprom_series;4);
/ inc[target;labels;v:number] -> ::         target: metric symbol/string, or a series id
.prom.i.inc:.prom.LIB 2:(`qprom_inc;3);
/ dec[target;labels;v:number] -> ::         gauges only
.prom.i.dec:.prom.LIB 2:(`qprom_dec;3);
/ set[target;labels;v:number] -> ::         gauges; counters (a lower value is a reset)
.prom.i.set:.prom.LIB 2:(`qprom_set;3);
/ obs[target;labels;v:number|numbers] -> :: histograms and summaries
.prom.i.obs:.prom.LIB 2:(`qprom_obs;3);
/ get[target;labels] -> float               value; the sum for histograms and summaries
.prom.i.get:.prom.LIB 2:(`qprom_get;2);
/ del[metric;labels] -> ::                  labels (::) removes the whole metric
.prom.i.del:.prom.LIB 2:(`qprom_del;2);
/ render[fmt:`text|`openmetrics|::] -> string
.prom.i.render:.prom.LIB 2:(`qprom_render;1);
/ metrics[::] -> table (metric;mtype;labels;id;val)   column names clear of q keywords
.prom.i.metrics:.prom.LIB 2:(`qprom_metrics;1);
/ meta[::] -> table (metric;mtype;help;unit;labels;params;limit;series)
.prom.i.meta:.prom.LIB 2:(`qprom_meta;1);
/ limit[n:long] -> ::                       default series limit for new metrics
.prom.i.limit:.prom.LIB 2:(`qprom_limit;1);
/ start[config:dict|::;pollfn] -> port      dedicated listener; pollfn runs on this thread
.prom.i.start:.prom.LIB 2:(`qprom_start;2);
/ stop[::] -> ::                            listener stopped, threads joined, port free
.prom.i.stop:.prom.LIB 2:(`qprom_stop;1);
/ http[(requestText;headers)] -> string     whole HTTP response for .z.ph
.prom.i.http:.prom.LIB 2:(`qprom_http;1);
/ defaults[naming;buckets;info:dict] -> :: registers the default metrics
.prom.i.defaults:.prom.LIB 2:(`qprom_defaults;3);
/ request[handler;t0:timestamp;failed:bool] -> ::   one wrapped handler call
.prom.i.request:.prom.LIB 2:(`qprom_request;3);
/ conn[event:`po`pc`wo`wc] -> ::
.prom.i.conn:.prom.LIB 2:(`qprom_conn;1);
/ sample[.Q.w[];queueBytes;openCounts|::] -> ::      the default on_poll update
.prom.i.sample:.prom.LIB 2:(`qprom_sample;3);

/ ---- KX exporter API (drop-in) -----------------------------------------------------
/ newmetric[metric;metrictype;labelnames;help]
.prom.newmetric:{[metric;metrictype;labelnames;help]
  .prom.i.create`name`type`labels`help!(metric;metrictype;labelnames;help);}
/ addmetric[metric;labelvals;params;startval] -> id of the series (a long); params are
/ bucket bounds (histogram) or quantiles (summary); startval a number, or observations.
/ As in KX both apply to a new series and to one nothing was recorded in yet (an
/ unlabelled metric's, which exists from definition); decided in qprom_series.
.prom.addmetric:{[metric;labelvals;params;startval].prom.i.series[metric;labelvals;params;startval]}
/ updval[id;func;arg]: qprom_updval decides what : + - , do to each metric type (KX's
/ semantics: - lowers a counter, see docs/migration.md); any other func sets
/ func[current;arg], a read then a write. id: what addmetric returned, or the name of an
/ unlabelled metric.
.prom.i.updval:.prom.LIB 2:(`qprom_updval;3);
.prom.updval:{[id;func;arg]
  $[func~(:);.prom.i.updval[id;`set;arg];
    func~(+);.prom.i.updval[id;`add;arg];
    func~(-);.prom.i.updval[id;`sub;arg];
    func~(,);.prom.i.updval[id;`obs;arg];
    .prom.i.updval[id;`set;func[.prom.i.get[id;(::)];arg]]];}

/ ---- modern API -----------------------------------------------------------------------
/ labels: a dictionary (name!value), or values in order: a symbol, a string, a list of
/ them; () or (::) when the metric has none. Series are created on first update.
.prom.create:.prom.i.create                       / create[dict] -> name
.prom.inc:{[metric;labels].prom.i.inc[metric;labels;1]}
.prom.incr:.prom.i.inc                            / incr[metric;labels;v]
.prom.dec:{[metric;labels].prom.i.dec[metric;labels;1]}
.prom.decr:.prom.i.dec                            / decr[metric;labels;v]
.prom.setv:.prom.i.set                            / setv[metric;labels;v]
.prom.obs:.prom.i.obs                             / obs[metric;labels;v or list]
.prom.getv:.prom.i.get                            / getv[metric;labels] -> float
.prom.del:.prom.i.del                             / del[metric;labels] / del[metric;::]
.prom.metrics:.prom.i.metrics                     / metrics[] -> table
.prom.metricMeta:.prom.i.meta                     / metricMeta[] -> table
.prom.serve:.prom.i.render                        / serve[] or serve`openmetrics -> string
.prom.setLimit:.prom.i.limit                      / setLimit[n]

/ ---- event handlers ----------------------------------------------------------------------
/ Hooks, as KX's exporter names them: .prom.on_poll[msg], .prom.on_po[hdl] (pc wo wc),
/ .prom.before_X[msg] -> tmp, .prom.after_X[tmp;msg;res], and .prom.error_X[tmp;msg;err]
/ when the original handler signals (X: pg ps ph pp ws ts; ts gets the timestamp).
/ Assign any of them, before or after .prom.init. The defaults below record the standard
/ metrics; a hook that signals is counted (qprom_hook_errors_total) and never breaks the
/ request it observes. Defaults are set only where the user has not defined the hook.
.prom.i.def:{[n;f] if[not n in key`.prom;(` sv`.prom,n)set f]}
.prom.i.def[`on_poll;{[msg].prom.i.sample[.Q.w[];sum value sum each .z.W;(::)];}];
{.prom.i.def[`$"on_",string x;{[e;hdl].prom.i.conn e}x]}each`po`pc`wo`wc;
/ with middleware on (.prom.init keys, see "helpers and middleware" below) before_X also
/ bumps the in-flight gauge, and after_X/error_X make their one call with more arguments
{.prom.i.def[`$"before_",string x;{[h;msg]if[.prom.i.inflight;.prom.i.enter h];.z.p}x];
 .prom.i.def[`$"after_",string x;{[h;tmp;msg;res]if[-12h=type tmp;$[.prom.i.mw;.prom.i.mwf[h][tmp;msg;res;0b];.prom.i.request[h;tmp;0b]]];}x];
 .prom.i.def[`$"error_",string x;{[h;tmp;msg;err]if[-12h=type tmp;$[.prom.i.mw;.prom.i.mwf[h][tmp;msg;err;1b];.prom.i.request[h;tmp;1b]]];}x]}each`pg`ps`ph`pp`ws`ts;

/ hook callers: the user's hook is looked up at each call (so reassignment works) and trapped
.prom.i.hookfail:{[n;e]@[.prom.i.inc[`qprom_hook_errors_total;n];1;{}];}
.prom.i.hook1:{[n;x]@[.prom n;x;.prom.i.hookfail n]}
.prom.i.hook3:{[n;a;b;c].[.prom n;(a;b;c);.prom.i.hookfail n]}

/ wrappers, projected on the hook names and the original handler f
/ pg ps pp ws ts: the original's result, or its error re-signalled unchanged
.prom.i.wrap:{[hs;f;x]
  tmp:.prom.i.hook1[hs 0;x];
  r:@[{(1b;x y)}f;x;{(0b;x)}];
  $[r 0;[.prom.i.hook3[hs 1;tmp;x;r 1];r 1];[.prom.i.hook3[hs 2;tmp;x;r 1];'r 1]]}
/ ph: the metrics path is answered here (after on_poll), every other path goes on
.prom.i.ph:{[f;x]$[.prom.i.qpath~first"?"vs x 0;[.prom.i.hook1[`on_poll;x];.prom.i.http x];.prom.i.wrap[`before_ph`after_ph`error_ph;f;x]]}
/ po pc wo wc: the hook, then the original
.prom.i.conn1:{[n;f;h].prom.i.hook1[n;h];f h}
/ exit: stop the listener cleanly, then the original
.prom.i.exit:{[f;x]@[.prom.stop;(::);{}];f x}

/ what q does when a handler is not defined; (::) where q has no callable default
/ (.z.pp, .z.ws are then left alone; .z.ph always exists, from q.k)
.prom.i.default:`pg`ps`ph`pp`ws`ts`po`pc`wo`wc`exit!(value;value;{[x]"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"};(::);(::);{[x]};{[x]};{[x]};{[x]};{[x]};{[x]})
.prom.i.wrapper:{[z;f]$[z in`pg`ps`pp`ws`ts;.prom.i.wrap[`$("before_";"after_";"error_"),\:string z;f];
  z=`ph;.prom.i.ph f; z=`exit;.prom.i.exit f; .prom.i.conn1[`$"on_",string z;f]]}

/ state survives a reload of this script
.prom.i.on:@[get;`.prom.i.on;0b];
.prom.i.orig:@[get;`.prom.i.orig;()!()];    / handler -> original, or ` when it was undefined
.prom.i.mine:@[get;`.prom.i.mine;()!()];    / handler -> the wrapper we installed
.prom.i.qpath:@[get;`.prom.i.qpath;"metrics"];
.prom.i.port:@[get;`.prom.i.port;(::)];

.prom.i.wrapone:{[z]
  n:` sv`.z,z;
  o:@[get;n;{[e]`}];
  f:$[-11h=type o;.prom.i.default z;o];
  if[(::)~f;:(::)];
  .prom.i.orig[z]:o;
  .prom.i.mine[z]:w:.prom.i.wrapper[z;f];
  n set w;}
.prom.i.unwrapone:{[z]
  n:` sv`.z,z;
  / a handler the user replaced after init is theirs: leave it
  if[.prom.i.mine[z]~@[get;n;{[e]`}];$[-11h=type o:.prom.i.orig z;system"x ",string n;n set o]];}

/ ---- init and stop ------------------------------------------------------------------------
.prom.i.listenkeys:`port`bind`path`workers`maxInFlight`timeout`maxRequestBytes`pollTimeout`gzip`processMetrics,
  `maxConnections`tlsCertFile`tlsKeyFile`tlsClientCAFile`tlsMinVersion`basicAuthUsers
.prom.i.qkeys:`naming`buckets`quantiles`maxAge`handlers`limit`defaults`fileSd
.prom.i.handlers:`pg`ps`ph`pp`ws`ts`po`pc`wo`wc
.prom.i.poll:{[x].prom.i.hook1[`on_poll;(.prom.i.qpath;()!())];}

/ init[] or init[config] -> the listener's port, or (::) when /metrics is served on q's
/ own port (no `port given) by .z.ph. Wraps the .z handlers and registers the default
/ metrics. Listener keys: port bind path workers maxInFlight timeout maxRequestBytes
/ pollTimeout gzip processMetrics maxConnections, TLS: tlsCertFile tlsKeyFile
/ tlsClientCAFile (file names, strings or file symbols) tlsMinVersion (`TLS12|`TLS13),
/ basic auth: basicAuthUsers (user symbols!bcrypt hash strings). Others: naming (`standard|`kx), buckets (request
/ duration bounds, seconds), quantiles and maxAge (KX mode's summaries), handlers (a
/ subset of pg ps ph pp ws ts po pc wo wc), limit (default series limit), defaults (0b:
/ no default metrics). Middleware (all off by default): inflight sizes httpStatus user
/ (booleans), sizeBuckets (bytes), functions (allow-list of symbols).
/ A second init while running changes nothing and returns the port.
.prom.init:{[cfg]
  if[not(99h=type cfg)|(::)~cfg;'"prom: configuration must be a dictionary"];
  cfg:$[99h=type cfg;cfg;(`$())!()];
  if[count(key cfg)except .prom.i.listenkeys,.prom.i.qkeys,.prom.i.mwkeys;'"prom: unknown configuration key"];
  if[.prom.i.on;:.prom.i.port];
  hs:$[`handlers in key cfg;(),cfg`handlers;.prom.i.handlers];
  if[count hs except .prom.i.handlers;'"prom: handlers must be among pg ps ph pp ws ts po pc wo wc"];
  if[`limit in key cfg;.prom.i.limit cfg`limit];
  if[$[`defaults in key cfg;cfg`defaults;1b];
    info:`release`version`os`cores`licence_expiry!(string .z.k;.Q.f[1;.z.K];string .z.o;string .z.c;$[1<count .z.l;.z.l 1;""]);
    .prom.i.defaults[$[`naming in key cfg;cfg`naming;`standard];(`buckets`quantiles`maxAge inter key cfg)#cfg;info];
    / connections opened before init: all counted as IPC (q does not say which are websockets)
    .prom.i.sample[.Q.w[];(::);(count .z.W;0)]];
  .prom.i.create`name`type`help`labels!(`qprom_hook_errors_total;`counter;"Errors signalled by .prom hooks, by hook.";`hook);
  / handler middleware: every key off unless given (see "helpers and middleware" below)
  .prom.i.mwinit[((`buckets,.prom.i.mwkeys)inter key cfg)#cfg];
  / the metrics path: "/metrics" for the listener, "metrics" as .z.ph sees it
  p:$[`path in key cfg;$[10h=type p:cfg`path;p;string p];"/metrics"];
  p:$["/"=first p;p;"/",p];
  lc:(.prom.i.listenkeys inter key cfg)#cfg;
  if[`path in key lc;lc[`path]:p];
  .prom.i.port:$[`port in key cfg;.prom.i.start[lc;.prom.i.poll];(::)];
  .prom.i.qpath:1_p;
  .prom.i.wrapone each hs,`exit;
  .prom.i.on:1b;
  if[`fileSd in key cfg;.prom.i.sdinit[cfg`fileSd;cfg]];   / see "files for other readers" below
  .prom.i.port}
/ stop[]: stop the listener and restore every original handler (an undefined one is
/ expunged, as \x does, so q's default behaviour returns).
.prom.stop:{[]
  .prom.i.sdremove[];
  .prom.i.stop[];
  if[.prom.i.on;.prom.i.unwrapone each key .prom.i.orig;.prom.i.orig:.prom.i.mine:()!();.prom.i.on:0b];
  .prom.i.qpath:"metrics";.prom.i.port:(::);}

/ ---- helpers and middleware -----------------------------------------------------------
/ elapsed[target;labels;t0] -> ::          seconds since t0 (.z.p): histogram/summary
/                                           observe, gauge set
.prom.i.elapsed:.prom.LIB 2:(`qprom_elapsed;3);
/ setnow[target;labels] -> ::               gauge set to now, unix seconds
.prom.i.setnow:.prom.LIB 2:(`qprom_set_now;2);
/ mirror[target;labels;v;created] -> ::     counter set to v; lower v = reset; created
/                                           a timestamp or (::)
.prom.i.mirror:.prom.LIB 2:(`qprom_mirror;4);
/ middleware[config] -> `inflight`sizes`any!bools   registers the middleware families
.prom.i.middleware:.prom.LIB 2:(`qprom_middleware;1);
/ enter[handler] -> ::                      one more request in flight
.prom.i.enter:.prom.LIB 2:(`qprom_enter;1);
/ requestx[handler;t0;failed;req;resp;user;fn] -> ::   request[] plus the middleware
.prom.i.requestx:.prom.LIB 2:(`qprom_request_ex;7);

/ Helpers for user code, as the Python client's decorators. f . args is how f is called:
/ args is f's argument list (enlist x for a unary f, enlist(::) for a niladic one).
/ f's result is returned; f's error is re-signalled unchanged after the metric is
/ updated (a metric update that fails then is counted in qprom_hook_errors_total and
/ never replaces f's error; on success it signals, as any .prom update).
.prom.i.try:{[f;args]@[{(1b;x . y)}f;args;{(0b;x)}]}
.prom.i.quiet:{[n;f;x]@[f;x;.prom.i.hookfail n];}
/ time[metric;labels;f;args]: the duration of f . args, observed (histogram, summary) or
/ set (gauge), also when f signals
.prom.time:{[metric;labels;f;args]
  t0:.z.p;r:.prom.i.try[f;args];
  if[r 0;.prom.i.elapsed[metric;labels;t0];:r 1];
  .prom.i.quiet[`time;.prom.i.elapsed[metric;labels];t0];'r 1}
/ obsSince[metric;labels;t0]: the same for a start time taken earlier (t0:.z.p)
.prom.obsSince:.prom.i.elapsed
/ countErrors[metric;labels;f;args]: +1 (counter or gauge) when f signals
.prom.countErrors:{[metric;labels;f;args]
  r:.prom.i.try[f;args];
  if[r 0;:r 1];
  .prom.i.quiet[`countErrors;.prom.i.inc[metric;labels];1];'r 1}
/ countErrorsLike[metric;labels;pattern;f;args]: only errors whose text matches pattern
/ (q's like: a string; or a list of strings or a symbol list, any of which matches)
.prom.countErrorsLike:{[metric;labels;pattern;f;args]
  r:.prom.i.try[f;args];
  if[r 0;:r 1];
  if[.prom.i.like[r 1;pattern];.prom.i.quiet[`countErrors;.prom.i.inc[metric;labels];1]];'r 1}
.prom.i.like:{[e;p]$[10h=abs type p;e like(),p;11h=abs type p;any e like/:string(),p;any e like/:p]}
/ trackInprogress[metric;labels;f;args]: a gauge +1 while f runs, -1 when it returns or
/ signals (the +1 failing signals before f runs)
.prom.trackInprogress:{[metric;labels;f;args]
  .prom.i.inc[metric;labels;1];r:.prom.i.try[f;args];
  if[r 0;.prom.i.dec[metric;labels;1];:r 1];
  .prom.i.quiet[`trackInprogress;.prom.i.dec[metric;labels];1];'r 1}
/ setToCurrentTime[metric;labels]: a gauge set to now, unix seconds
.prom.setToCurrentTime:.prom.i.setnow
/ mirror[metric;labels;value;created]: a counter kept elsewhere (a tickerplant's own
/ message count): value a number >= 0 (longs exact beyond 2^53); a value lower than the
/ last one is a reset, never a decrease. created: a timestamp, always applied as the
/ series' _created; or (::): kept, and now on a reset.
.prom.mirror:.prom.i.mirror

/ Handler middleware, as promhttp's, switched on by .prom.init keys (all off by default):
/   inflight 1b    kdb_requests_in_flight{handler}: a second call per request, at before_X
/   sizes 1b       kdb_request_size_bytes{handler}, kdb_response_size_bytes{handler}:
/                  -22! of message and result (IPC), text and headers / response (HTTP)
/   sizeBuckets    bounds of the size histograms (bytes)
/   httpStatus 1b  kdb_http_requests_total{code,method}: .z.ph GET, .z.pp POST
/   user 1b        kdb_user_request_duration_seconds{handler,user} (.z.u), and errors
/   functions `f`g kdb_function_request_duration_seconds{handler,function} for (`f;args)
/                  messages to .z.pg/.z.ps calling a listed function, and errors
/ All of it rides on after_X/error_X's one call (qprom_request_ex instead of qprom_request).
.prom.i.mwkeys:`inflight`sizes`sizeBuckets`httpStatus`user`functions
.prom.i.inflight:@[get;`.prom.i.inflight;0b];   / before_X calls enter
.prom.i.szon:@[get;`.prom.i.szon;0b];           / -22! sizes for pg/ps
.prom.i.mw:@[get;`.prom.i.mw;0b];               / after_X/error_X call requestx
.prom.i.mwinit:{[c]f:.prom.i.middleware c;.prom.i.inflight:f`inflight;.prom.i.szon:f`sizes;.prom.i.mw:f`any;}
.prom.i.sz:{@[{-22!x};x;0N]}
.prom.i.fn:{$[0h=type x;$[-11h=type f:first x;f;(::)];(::)]}
/ per handler: requestx[h;t0;failed;request;response;user;function]; an HTTP request or
/ response, a websocket message, go as they are (Rust takes their length)
.prom.i.mwf:`pg`ps`ph`pp`ws`ts!(
  {[t;m;r;e].prom.i.requestx[`pg;t;e;$[.prom.i.szon;.prom.i.sz m;(::)];$[.prom.i.szon&not e;.prom.i.sz r;(::)];.z.u;.prom.i.fn m]};
  {[t;m;r;e].prom.i.requestx[`ps;t;e;$[.prom.i.szon;.prom.i.sz m;(::)];(::);.z.u;.prom.i.fn m]};
  {[t;m;r;e].prom.i.requestx[`ph;t;e;m;r;.z.u;(::)]};
  {[t;m;r;e].prom.i.requestx[`pp;t;e;m;r;.z.u;(::)]};
  {[t;m;r;e].prom.i.requestx[`ws;t;e;m;(::);.z.u;(::)]};
  {[t;m;r;e].prom.i.requestx[`ts;t;e;(::);(::);(::);(::)]})

/ ---- files for other readers: node_exporter's textfile collector, Prometheus file_sd ----
/ write[path] -> ::                         text 0.0.4, no timestamps, written atomically
/                                           (path.tmp.<pid> in the same directory, fsync,
/                                           rename); path `:/dir/x.prom or "/dir/x.prom"
.prom.i.write:.prom.LIB 2:(`qprom_write;1);
/ sdregister[dir;target;labels:dict] -> path:string   <dir>/qprom-<host>-<port>.json, atomically;
/                                           target "host:port"; labels symbol!strings
.prom.i.sdregister:.prom.LIB 2:(`qprom_sd_register;3);
/ sdremove[::] -> bool                      the registered file removed (1b), or none (0b)
.prom.i.sdremove:.prom.LIB 2:(`qprom_sd_remove;1);

/ write[path]: the current metrics for node_exporter's textfile collector
/ (--collector.textfile.directory=dir). The name must end in .prom (node_exporter reads
/ nothing else); the directory must exist and be writable. For a process Prometheus
/ cannot scrape directly (a batch job, a q behind a firewall): e.g. from .z.ts.
.prom.write:.prom.i.write

/ .prom.init's key fileSd: a directory Prometheus watches with file_sd_configs (symbol or
/ string), or a dictionary with `dir and optionally `labels (a dictionary of labels added
/ to, or replacing, the defaults, e.g. `job`env!("tp";"prod")). init writes
/ <dir>/qprom-<host>-<port>.json with the target host:port and the labels
/ job:"kdb", instance_name (the script, .z.f without its directory, else "q"), host, port;
/ host is .z.h (or the listener's bind address when it is not a wildcard), port the
/ listener's, else q's own -p port. .prom.stop[] (so also exit) removes the file.
.prom.i.sdname:{$[count f:string .z.f;last"/"vs f;enlist"q"]}
.prom.i.sdinit:{[v;cfg]
  d:$[99h=type v;v;enlist[`dir]!enlist v];
  if[not`dir in key d;'"prom: fileSd needs a directory"];
  b:$[`bind in key cfg;$[10h=type b:cfg`bind;b;string b];""];
  h:$[any b~/:("";"0.0.0.0";"::";enlist"*");string .z.h;b];
  p:string $[(::)~.prom.i.port;system"p";.prom.i.port];
  l:`job`instance_name`host`port!("kdb";.prom.i.sdname[];h;p);
  if[`labels in key d;l:l,d`labels];
  .prom.i.sdregister[d`dir;h,":",p;l]}

/ Pushgateway (src/ffi/push.rs): PUT/DELETE <url>/metrics/job/<job>{/<label>/<value>},
/ synchronous on this thread, 10 s timeout, http:// only, http_proxy ignored.
/ push[url;job;grouping] -> ::           url "http://host:port" (string or symbol);
/                                        job symbol/string; grouping symbol!symbols/strings or (::)
.prom.i.push:.prom.LIB 2:(`qprom_push;3);
/ pushDelete[url;job;grouping] -> ::     same arguments
.prom.i.pushdelete:.prom.LIB 2:(`qprom_push_delete;3);

/ push[url;job;grouping]: replace the group job+grouping on a Pushgateway with the whole
/ registry's text exposition (the Python client's push_to_gateway). For batch jobs:
/ .prom.push["http://pushgw:9091";`nightly_load;`instance`date!(`eod;"2024/05/31")]
.prom.push:.prom.i.push
/ pushDelete[url;job;grouping]: delete that group (delete_from_gateway).
.prom.pushDelete:.prom.i.pushdelete
