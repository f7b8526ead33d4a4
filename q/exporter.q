/ exporter.q: a q process reporting itself to Prometheus with the default kdb+ metrics.
/   q exporter.q -p 5000 -prom.port 9612 [-prom.naming kx] [-prom.pollTimeout 2] ...
/   TLS and basic auth: -prom.tlsCertFile c.pem -prom.tlsKeyFile k.pem -prom.basicAuthUsers users.htpasswd
/ Every .prom.init key can be given as -prom.<key> <value>: numbers as text, booleans as
/ 1 0 1b 0b true false yes no, lists comma-separated (-prom.handlers pg,ps -prom.buckets
/ 0.1,1,10), file names and fileSd's directory as they are, tlsMinVersion and naming as
/ symbols, basicAuthUsers an htpasswd file (user:bcrypt lines). -prom.noinit 1 loads
/ without starting. The options are parsed by the library (qprom_cli; docs/reference.md
/ lists each key's parser); nothing is defined outside .prom.
\l prom.q
{[o]r:.prom.i.cli o;if[count r`unknown;'"prom: unknown option -prom.",string first r`unknown];if[not r`noinit;.prom.init r`cfg]}.Q.opt .z.x
