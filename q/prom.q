/ qprom: a q process as a Prometheus target.  \l prom.q
/ The store, the encoders and the listener live in libqprom.so (Rust); this script binds
/ them (one table below) and gives the .prom API.  Nothing is defined outside .prom.
/ Errors are signalled as 'prom: ... ; no input can crash the process.

/ Where the library is: .prom.LIBPATH if set before loading, else $QPROM_LIB, else
/ `:libqprom, which 2: finds in $QHOME/l64 (l64arm on ARM; as `make install` or the archive
/ puts it) or LD_LIBRARY_PATH.
.prom.LIB:@[get;`.prom.LIBPATH;{$[count e:getenv`QPROM_LIB;hsym`$e;`:libqprom]}];

/ ---- bindings: every C function, once ---------------------------------------------
/ create[def:dict] -> name:symbol            def: `name`type mandatory; optional `help`labels
/                                            `unit`buckets`quantiles`maxAge`ageBuckets`limit,
/                                            native histograms: `nativeSchema or `nativeFactor,
/                                            `nativeZeroThreshold`nativeMaxBuckets`nativeMinReset
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
/ incex[target;labels;v:number;ex:dict] -> ::   counters; ex: label names!strings or symbols
.prom.i.incex:.prom.LIB 2:(`qprom_inc_ex;4);
/ obsex[target;labels;v:number;ex:dict] -> ::   histograms: ex kept for v's bucket
.prom.i.obsex:.prom.LIB 2:(`qprom_obs_ex;4);
/ get[target;labels] -> float               value; the sum for histograms and summaries
.prom.i.get:.prom.LIB 2:(`qprom_get;2);
/ del[metric;labels] -> ::                  labels (::) removes the whole metric
.prom.i.del:.prom.LIB 2:(`qprom_del;2);
/ render[fmt:`text|`openmetrics|`protobuf|::] -> string (bytes for `protobuf)
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
/ defaults[naming;buckets;info:dict] -> symbols   registers the default metrics; returns the
/                                           families left to the user (defined by them first)
.prom.i.defaults:.prom.LIB 2:(`qprom_defaults;3);
/ request[handler;t0:timestamp;failed:bool] -> ::   one wrapped handler call
.prom.i.request:.prom.LIB 2:(`qprom_request;3);
/ conn[event:`po`pc`wo`wc] -> ::
.prom.i.conn:.prom.LIB 2:(`qprom_conn;1);
/ peer[event;handle;user;address:int] -> ::   conn, plus who the handle is (.z.u .z.a at open)
.prom.i.peer:.prom.LIB 2:(`qprom_peer;4);
/ login[user;accepted:bool] -> ::           one .z.pw answer, counted by user and result
.prom.i.login:.prom.LIB 2:(`qprom_login;2);
/ sample[.Q.w[];queue;openCounts|::] -> ::  the default on_poll update; queue: bytes, or
/                                           handle!bytes (sum each .z.W: also per connection)
.prom.i.sample:.prom.LIB 2:(`qprom_sample;3);
/ init[cfg;cur;wrappers;env;pollfn] -> `port`z`f`inflight`sizes`mw!(port|::;names;fns;b;b;b)
/                                           cur: .prom.i.current[]; wrappers: one per
/                                           .prom.i.zs; q assigns f[i] to z[i]
.prom.i.init:.prom.LIB 2:(`qprom_init;5);
/ restore[cur] -> `set`to`expunge!(names;fns;names)   listener stopped, file_sd removed
.prom.i.restore:.prom.LIB 2:(`qprom_restore;1);
/ hookerr[hook:symbol] -> ::                qprom_hook_errors_total{hook} +1 (before init too)
.prom.i.hookerr:.prom.LIB 2:(`qprom_hook_error;1);
/ ismetrics[requestText] -> bool           a .z.ph request for the metrics path
.prom.i.ismetrics:.prom.LIB 2:(`qprom_is_metrics;1);
/ path[::] -> string                        the metrics path as .z.ph sees it
.prom.i.path:.prom.LIB 2:(`qprom_path;1);
/ cli[.Q.opt .z.x] -> `cfg`unknown`noinit!(config;symbols;bool)   exporter.q's -prom.* options
.prom.i.cli:.prom.LIB 2:(`qprom_cli;1);

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
.prom.incEx:.prom.i.incex                         / incEx[metric;labels;v;exemplar]
.prom.obsEx:.prom.i.obsex                         / obsEx[metric;labels;v;exemplar]
.prom.getv:.prom.i.get                            / getv[metric;labels] -> float
.prom.del:.prom.i.del                             / del[metric;labels] / del[metric;::]
.prom.metrics:.prom.i.metrics                     / metrics[] -> table
.prom.metricMeta:.prom.i.meta                     / metricMeta[] -> table
.prom.serve:.prom.i.render                        / serve[], serve`openmetrics -> string; serve`protobuf -> bytes
.prom.setLimit:.prom.i.limit                      / setLimit[n]

/ ---- event handlers ----------------------------------------------------------------------
/ Hooks, as KX's exporter names them: .prom.on_poll[msg], .prom.on_po[hdl] (pc wo wc),
/ .prom.before_X[msg] -> tmp, .prom.after_X[tmp;msg;res], and .prom.error_X[tmp;msg;err]
/ when the original handler signals (X: pg ps ph pp ws ts; ts gets the timestamp).
/ Assign any of them, before or after .prom.init. The defaults below record the standard
/ metrics; a hook that signals is counted (qprom_hook_errors_total) and never breaks the
/ request it observes. Defaults are set only where the user has not defined the hook.
.prom.i.def:{[n;f] if[not n in key`.prom;(` sv`.prom,n)set f]}
.prom.i.def[`on_poll;{[msg].prom.i.sample[.Q.w[];sum each .z.W;(::)];}];
{.prom.i.def[`$"on_",string x;{[e;hdl].prom.i.peer[e;hdl;.z.u;.z.a]}x]}each`po`pc`wo`wc;
/ with middleware on (.prom.init keys, see "helpers and middleware" below) before_X also
/ bumps the in-flight gauge, and after_X/error_X make their one call with more arguments
{.prom.i.def[`$"before_",string x;{[h;msg]if[.prom.i.inflight;.prom.i.enter h];.z.p}x];
 .prom.i.def[`$"after_",string x;{[h;tmp;msg;res]if[-12h=type tmp;$[.prom.i.mw;.prom.i.mwf[h;tmp;msg;res;0b];.prom.i.request[h;tmp;0b]]];}x];
 .prom.i.def[`$"error_",string x;{[h;tmp;msg;err]if[-12h=type tmp;$[.prom.i.mw;.prom.i.mwf[h;tmp;msg;err;1b];.prom.i.request[h;tmp;1b]]];}x]}each`pg`ps`ph`pp`ws`ts;

/ hook callers: the user's hook is looked up at each call (so reassignment works) and trapped
.prom.i.hookfail:{[n;e]@[.prom.i.hookerr;n;{}];}
.prom.i.hook1:{[n;x]@[.prom n;x;.prom.i.hookfail n]}
.prom.i.hook3:{[n;a;b;c].[.prom n;(a;b;c);.prom.i.hookfail n]}

/ wrappers, projected on the hook names and the original handler f
/ pg ps pp ws ts: the original's result, or its error re-signalled unchanged
.prom.i.wrap:{[hs;f;x]
  tmp:.prom.i.hook1[hs 0;x];
  r:@[{(1b;x y)}f;x;{(0b;x)}];
  $[r 0;[.prom.i.hook3[hs 1;tmp;x;r 1];r 1];[.prom.i.hook3[hs 2;tmp;x;r 1];'r 1]]}
/ ph: the metrics path is answered here (after on_poll), every other path goes on
.prom.i.ph:{[f;x]$[@[.prom.i.ismetrics;x 0;0b];[.prom.i.hook1[`on_poll;x];.prom.i.http x];.prom.i.wrap[`before_ph`after_ph`error_ph;f;x]]}
/ po pc wo wc: the hook, then the original
.prom.i.conn1:{[n;f;h].prom.i.hook1[n;h];f h}
/ pw: the original's answer, counted by user (an error counts as refused, and goes on)
.prom.i.pw:{[f;u;p]r:@[{(1b;x . y)}f;(u;p);{(0b;x)}];.prom.i.quiet[`login;.prom.i.login u;$[r 0;r 1;0b]];$[r 0;r 1;'r 1]}
/ exit: stop the listener cleanly, then the original
.prom.i.exit:{[f;x]@[.prom.stop;(::);{}];f x}

/ The handlers, in the order qprom_init and qprom_restore take them (src/initconfig.rs).
/ Which are wrapped, the originals and the installed wrappers are kept in the library.
.prom.i.zs:`.z.pg`.z.ps`.z.ph`.z.pp`.z.ws`.z.ts`.z.po`.z.pc`.z.wo`.z.wc`.z.pw`.z.exit
/ what q does where a handler is undefined (docs/ref/dotz.md: pg ps as value, pw as
/ {[user;pswd]1b}, exit as {}); undefined pp ws ts pw are never wrapped (placeholders)
.prom.i.default:.prom.i.zs!(value;value;{[x]"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"};{[x]};{[x]};{[x]};{[x]};{[x]};{[x]};{[x]};{[u;p]1b};{[x]})
/ each handler's wrapper, still to be applied to the original (or the default)
.prom.i.wrapper:.prom.i.zs!(.prom.i.wrap`before_pg`after_pg`error_pg;.prom.i.wrap`before_ps`after_ps`error_ps;
  .prom.i.ph;.prom.i.wrap`before_pp`after_pp`error_pp;.prom.i.wrap`before_ws`after_ws`error_ws;
  .prom.i.wrap`before_ts`after_ts`error_ts;.prom.i.conn1`on_po;.prom.i.conn1`on_pc;.prom.i.conn1`on_wo;
  .prom.i.conn1`on_wc;.prom.i.pw;.prom.i.exit)
/ each handler now: (1b;value), or (0b;::) when undefined
.prom.i.current:{{@[{(1b;get x)};x;{[e](0b;::)}]}each .prom.i.zs}
.prom.i.build:{[z;c]f:$[c 0;c 1;.prom.i.default z];(.prom.i.wrapper z)[f]}
/ what init needs to know of this process
.prom.i.env:{`w`conns`host`qport`script`k`K`o`c`l!(.Q.w[];count .z.W;.z.h;system"p";.z.f;.z.k;.z.K;.z.o;.z.c;.z.l)}
.prom.i.defined:{@[{get x;1b};x;0b]}
/ put[name;value] -> 1b when assigned; unset[name]: \x restores q's default (dotz.md);
/ where \x leaves the handler defined (documented for .z.p* and .z.exit only), q's
/ default's equivalent is assigned instead
.prom.i.put:{[n;v]@[{x set y;1b}n;v;0b]}
.prom.i.unset:{[n]@[system;"x ",string n;0b];$[.prom.i.defined n;.prom.i.put[n;.prom.i.default n];1b]}
.prom.i.poll:{[x].prom.i.hook1[`on_poll;(.prom.i.path[];()!())];}
/ hot-path switches of the middleware, set by init (state survives a reload of this script)
.prom.i.inflight:@[get;`.prom.i.inflight;0b];   / before_X calls enter
.prom.i.szon:@[get;`.prom.i.szon;0b];           / -22! sizes for pg/ps
.prom.i.mw:@[get;`.prom.i.mw;0b];               / after_X/error_X call requestx

/ ---- init and stop ------------------------------------------------------------------------
/ init[] or init[config] -> the listener's port, or (::) when /metrics is served on q's own
/ port by .z.ph. Wraps the .z handlers and registers the default metrics. Every key is
/ checked before anything changes, and a failure undoes what was done: nothing stays
/ wrapped or running. Keys and values: docs/reference.md. A second init while running
/ changes nothing and returns the port.
.prom.init:{[cfg]
  c:.prom.i.current[];
  r:.prom.i.init[cfg;c;.prom.i.build'[.prom.i.zs;c];.prom.i.env[];.prom.i.poll];
  .prom.i.inflight:r`inflight;.prom.i.szon:r`sizes;.prom.i.mw:r`mw;
  @[{x[`z]set'x`f};r;{.prom.stop[];'x}];
  r`port}
/ stop[]: stop the listener, remove the file_sd file, restore every handler init wrapped
/ (one undefined before is expunged, so q's default behaviour returns; one the user
/ replaced since is left alone). Every handler is attempted before any failure is signalled.
.prom.stop:{[]
  r:.prom.i.restore .prom.i.current[];
  .prom.i.inflight:.prom.i.szon:.prom.i.mw:0b;
  if[not all(.prom.i.put'[r`set;r`to]),.prom.i.unset each r`expunge;'"prom: a .z handler could not be restored"];}

/ ---- helpers and middleware -----------------------------------------------------------
/ elapsed[target;labels;t0] -> ::          seconds since t0 (.z.p): histogram/summary
/                                           observe, gauge set
.prom.i.elapsed:.prom.LIB 2:(`qprom_elapsed;3);
/ setnow[target;labels] -> ::               gauge set to now, unix seconds
.prom.i.setnow:.prom.LIB 2:(`qprom_set_now;2);
/ mirror[target;labels;v;created] -> ::     counter set to v; lower v = reset; created
/                                           a timestamp or (::)
.prom.i.mirror:.prom.LIB 2:(`qprom_mirror;4);
/ enter[handler] -> ::                      one more request in flight
.prom.i.enter:.prom.LIB 2:(`qprom_enter;1);
/ requestx[handler;t0;failed;req;resp;user;fn] -> ::   request[] plus the middleware
.prom.i.requestx:.prom.LIB 2:(`qprom_request_ex;7);

/ before[kind;metric;labels] -> state     kind `time`countErrors`trackInprogress: checks the
/                                           metric (trackInprogress: +1) before f runs
.prom.i.before:.prom.LIB 2:(`qprom_around_before;3);
/ after[kind;metric;labels;state;ok;matched] -> ::   the update once f returned (ok) or
/                                           signalled; after f's error a failing update is
/                                           counted in qprom_hook_errors_total, not signalled
.prom.i.after:.prom.LIB 2:(`qprom_around_after;6);

/ Helpers for user code, as the Python client's decorators. f . args is how f is called:
/ args is f's argument list (enlist x for a unary f, enlist(::) for a niladic one).
/ f's result is returned; f's error is re-signalled unchanged after the metric is
/ updated. A wrong metric signals before f runs.
/ run[kind;metric;labels;matches;f;args]: f . args between before and after; matches[err]
/ says whether f's error is one to count (countErrorsLike's pattern)
.prom.i.run:{[k;m;l;p;f;a]
  s:.prom.i.before[k;m;l];r:@[{(1b;x . y)}f;a;{(0b;x)}];
  .prom.i.after[k;m;l;s;r 0;$[r 0;0b;@[p;r 1;0b]]];$[r 0;r 1;'r 1]}
/ time[metric;labels;f;args]: the duration of f . args (monotonic clock), observed
/ (histogram, summary) or set (gauge), also when f signals
.prom.time:{[metric;labels;f;args].prom.i.run[`time;metric;labels;{1b};f;args]}
/ obsSince[metric;labels;t0]: the same for a start time taken earlier (t0:.z.p)
.prom.obsSince:.prom.i.elapsed
/ countErrors[metric;labels;f;args]: +1 (counter or gauge) when f signals
.prom.countErrors:{[metric;labels;f;args].prom.i.run[`countErrors;metric;labels;{1b};f;args]}
/ countErrorsLike[metric;labels;pattern;f;args]: only errors whose text matches pattern
/ (q's like: a string; or a list of strings or a symbol list, any of which matches)
.prom.countErrorsLike:{[metric;labels;pattern;f;args].prom.i.run[`countErrors;metric;labels;.prom.i.like pattern;f;args]}
.prom.i.like:{[p;e]$[10h=abs type p;e like(),p;11h=abs type p;any e like/:string(),p;any e like/:p]}
/ trackInprogress[metric;labels;f;args]: a gauge +1 while f runs, -1 when it returns or
/ signals (the +1 failing signals before f runs)
.prom.trackInprogress:{[metric;labels;f;args].prom.i.run[`trackInprogress;metric;labels;{1b};f;args]}
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
/   exemplars 1b   each request's kdb_request_duration_seconds observation keeps an
/                  exemplar: user and function (pg ps), path (ph pp), user (ws)
/ All of it rides on after_X/error_X's one call (qprom_request_ex instead of qprom_request).
.prom.i.sz:{@[{-22!x};x;0N]}
/ mwf[handler;t0;msg;res;failed]: pg and ps give -22! sizes when sizes is on (of the result
/ only after a success); the library takes from the rest what each handler has
.prom.i.mwf:{[h;t;m;r;e]s:.prom.i.szon&h in`pg`ps;.prom.i.requestx[h;t;e;$[s;.prom.i.sz m;m];$[s&not e;.prom.i.sz r;r];.z.u;m]}

/ ---- files for other readers: node_exporter's textfile collector, Prometheus file_sd ----
/ write[path] -> ::                         text 0.0.4, no timestamps, written atomically
/                                           (path.tmp.<pid> in the same directory, fsync,
/                                           rename); path `:/dir/x.prom or "/dir/x.prom"
.prom.i.write:.prom.LIB 2:(`qprom_write;1);
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
