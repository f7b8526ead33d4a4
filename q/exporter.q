/ exporter.q: a q process reporting itself to Prometheus with the default kdb+ metrics.
/   q exporter.q -p 5000 -prom.port 9612 [-prom.naming kx] [-prom.pollTimeout 2] ...
/   TLS and basic auth: -prom.tlsCertFile c.pem -prom.tlsKeyFile k.pem -prom.basicAuthUsers users.htpasswd
/ Every .prom.init key can be given as -prom.<key> <value>; -prom.noinit 1 loads without
/ starting. Nothing is defined outside .prom.
\l prom.q

/ option -> parser from the command-line string
.prom.i.cli:`port`workers`maxInFlight`maxRequestBytes`limit`maxConnections!6#{"J"$x};
.prom.i.cli,:`timeout`pollTimeout!2#{"F"$x};
.prom.i.cli,:`gzip`processMetrics`defaults!3#{"1"~first x};
.prom.i.cli,:`bind`path`tlsCertFile`tlsKeyFile`tlsClientCAFile!5#{x};
.prom.i.cli,:(enlist`tlsMinVersion)!enlist{`$x};
/ basicAuthUsers: an htpasswd file (user:bcrypt-hash lines, as `htpasswd -nbB` writes)
.prom.i.cli,:(enlist`basicAuthUsers)!enlist{l:l where 0<count each l:read0 hsym`$x;i:l?\:":";(`$i#'l)!(1+i)_'l};
.prom.i.cli,:`naming`handlers!({`$x};{`$","vs x});
.prom.i.cli,:`buckets`quantiles!2#{"F"$","vs x};
.prom.i.cli,:(enlist`maxAge)!enlist{"F"$x};

{[opts]
  k:key[opts]where key[opts]like"prom.*";
  cfg:(`$5_'string k)!" "sv'opts k;
  if[count u:(key cfg)except(key .prom.i.cli),`noinit;'"prom: unknown option -prom.",string first u];
  if[`noinit in key cfg;if["1"~first cfg`noinit;:(::)]];
  cfg:(enlist`noinit)_cfg;
  .prom.init(key cfg)!.prom.i.cli[key cfg]@'value cfg
 }.Q.opt .z.x;
