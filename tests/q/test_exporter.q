/ exporter.q given every .prom.init key as -prom.<key> (with -prom.noinit 1: parsed, not
/ started), then the parsed configuration used. Run by tests/q/run.sh with these options:
/ args: -prom.noinit 1 -prom.port 0 -prom.bind 127.0.0.1 -prom.path /m -prom.workers 2 -prom.maxInFlight 3 -prom.timeout 1.5 -prom.maxRequestBytes 4096 -prom.pollTimeout 0.25 -prom.gzip 0 -prom.processMetrics 1 -prom.maxConnections 64 -prom.tlsCertFile c.pem -prom.tlsKeyFile k.pem -prom.tlsClientCAFile ca.pem -prom.tlsMinVersion TLS13 -prom.basicAuthUsers ../tests/q/fixtures/users.htpasswd -prom.inflight 1 -prom.sizes 1 -prom.sizeBuckets 100,1000 -prom.httpStatus 1 -prom.user 1 -prom.functions upd,query -prom.naming standard -prom.buckets 0.1,1,10 -prom.quantiles 0.5,0.9 -prom.maxAge 600 -prom.handlers pg,ps,ts -prom.limit 5000 -prom.defaults 1 -prom.fileSd /tmp -prom.nativeHistograms 1 -prom.exemplars 1
\l exporter.q
.t.n:0;
.t.ok:{[name;b] .t.n+:1; if[not b~1b; -2 "FAIL ",name; exit 1]}
.t.ok["noinit: nothing wrapped"; not .prom.i.defined`.z.pg];
r:.prom.i.cli .Q.opt .z.x;
.t.ok["no unknown option"; 0=count r`unknown];
.t.ok["every key parsed"; 32=count r`cfg];
c:r`cfg;
.t.ok["numbers"; (0~c`port)&(1.5~c`timeout)&5000~c`limit];
.t.ok["booleans"; (0b~c`gzip)&1b~c`inflight];
.t.ok["lists"; (0.1 1 10f~c`buckets)&`pg`ps`ts~c`handlers];
.t.ok["strings"; ("/m"~c`path)&"127.0.0.1"~c`bind];
.t.ok["native histograms and exemplars"; (1b~c`nativeHistograms)&1b~c`exemplars];
.t.ok["htpasswd"; (enlist`prometheus)~key c`basicAuthUsers];
/ the configuration starts (TLS files and fileSd left out: they name files not here)
p:.prom.init(`tlsCertFile`tlsKeyFile`tlsClientCAFile`tlsMinVersion`fileSd)_c;
.t.ok["init from the options"; p>0];
.t.ok["handlers from the option"; (not .prom.i.defined`.z.po)&.prom.i.defined`.z.pg];
.t.ok["middleware from the options"; .prom.i.inflight];
.prom.stop[];
.t.ok["unknown option reported"; (enlist`nope)~(.prom.i.cli enlist[`prom.nope]!enlist enlist"1")`unknown];
-1 "tests/q/test_exporter.q: ",string[.t.n]," passed, 0 failed";
exit 0
