/* What a q user pays per exported call: qprom_inc called as q calls a 2: function (K
 * arguments in, K result out), through the stand-in host, in a tight loop on one thread.
 * Compare with `make bench`'s store rows (Series::inc, family.with_series) printed in the
 * same `make bench` run: the difference is the export's own cost (decode, guard, lookup
 * of the family by name). PERF.md's target: <= 50 ns above the store operation.
 * Usage: bench_export path/to/libqprom.so */
#define KXVER 3
#include <dlfcn.h>
#include <string.h>
#include "bench.h"

typedef K (*fn1)(K);
typedef K (*fn3)(K, K, K);

/* one call's arguments */
struct call { fn3 f; K a, b, c; };
static void step(void *p) {
  struct call *c = p;
  K r = c->f(c->a, c->b, c->c);
  if (r) r0(r);
}
static double run(fn3 f, K a, K b, K c, long n) {
  struct call x = {f, a, b, c};
  return median5(step, &x, n);
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: bench_export libqprom.so\n"); return 2; }
  qshim_init();
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) { fprintf(stderr, "bench_export: %s\n", dlerror()); return 1; }
  fn1 create = (fn1)dlsym(h, "qprom_create");
  fn3 inc = (fn3)dlsym(h, "qprom_inc");
  K (*series)(K, K, K, K) = (K (*)(K, K, K, K))dlsym(h, "qprom_series");
  if (!create || !inc || !series) { fprintf(stderr, "bench_export: missing exports\n"); return 1; }

  K keys = ktn(KS, 3);
  kS(keys)[0] = qshim_ss("name"); kS(keys)[1] = qshim_ss("type"); kS(keys)[2] = qshim_ss("labels");
  K labels = ktn(KS, 2);
  kS(labels)[0] = qshim_ss("method"); kS(labels)[1] = qshim_ss("code");
  K def = xD(keys, knk(3, ks("bench_requests_total"), ks("counter"), labels));
  check(create(def), "create");
  r0(def);

  K name = ks("bench_requests_total"), lv = ktn(KS, 2), one = kj(1), none = ka(101);
  kS(lv)[0] = qshim_ss("GET"); kS(lv)[1] = qshim_ss("200");
  K dict = xD(ktn(KS, 2), ktn(KS, 2));
  kS(kK(dict)[0])[0] = qshim_ss("code"); kS(kK(dict)[0])[1] = qshim_ss("method");
  kS(kK(dict)[1])[0] = qshim_ss("200"); kS(kK(dict)[1])[1] = qshim_ss("GET");
  K empty = ktn(0, 0);
  K id = series(name, lv, empty, empty);
  check(NULL, "series");
  long n = 2000000;
  run(inc, name, lv, one, n / 10); /* warm up */
  printf("export call (qprom_inc through the q host), 1 thread, median of 5 x %ld calls\n", n);
  printf("  by series id        (.prom.updval[id;+;1])          %6.1f ns/call\n", run(inc, id, none, one, n));
  printf("  by name + sym list  (.prom.inc[`m;`GET`200])        %6.1f ns/call\n", run(inc, name, lv, one, n));
  printf("  by name + dict      (.prom.inc[`m;`code`method!..]) %6.1f ns/call\n", run(inc, name, dict, one, n));
  printf("  (store alone: see `Series::inc` and `family.with_series` in the cargo bench table;\n"
         "   target: export <= store + 50 ns)\n");
  check(NULL, "inc");
  return 0;
}
