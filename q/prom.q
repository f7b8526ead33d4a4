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
/ metrics[::] -> table (metric;type;labels;id;value)
.prom.i.metrics:.prom.LIB 2:(`qprom_metrics;1);
/ meta[::] -> table (metric;type;help;unit;labels;params;limit;series)
.prom.i.meta:.prom.LIB 2:(`qprom_meta;1);
/ limit[n:long] -> ::                       default series limit for new metrics
.prom.i.limit:.prom.LIB 2:(`qprom_limit;1);

/ ---- KX exporter API (drop-in) -----------------------------------------------------
/ newmetric[metric;metrictype;labelnames;help]
.prom.newmetric:{[metric;metrictype;labelnames;help]
  .prom.i.create`name`type`labels`help!(metric;metrictype;labelnames;help);}
/ addmetric[metric;labelvals;params;startval] -> id of the series (a long); params are
/ bucket bounds (histogram) or quantiles (summary); startval a number, or observations.
.prom.addmetric:{[metric;labelvals;params;startval].prom.i.series[metric;labelvals;params;startval]}
/ updval[id;func;arg]: : + - , go straight to the store; any other f sets f[current;arg].
/ id: what addmetric returned, or the name of an unlabelled metric.
.prom.updval:{[id;func;arg]
  $[func~(:);.prom.i.set[id;::;arg];
    func~(+);.prom.i.inc[id;::;arg];
    func~(-);.prom.i.dec[id;::;arg];
    func~(,);.prom.i.obs[id;::;arg];
    .prom.i.set[id;::;func[.prom.i.get[id;::];arg]]];}

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
