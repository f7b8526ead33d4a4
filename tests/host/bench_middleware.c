/* What the handler middleware costs per request, in export calls as the default hooks
 * make them (through the stand-in host, one thread): middleware off (after_X calls
 * qprom_request once) versus on (before_X calls qprom_enter, after_X calls
 * qprom_request_ex with the extras), all of it and one feature at a time.
 * Not included: the q side (the hook lambdas, .z.p, .z.u, -22! of message and result),
 * which only a q process can measure. Usage: bench_middleware path/to/libqprom.so */
#define KXVER 3
#include <dlfcn.h>
#include <string.h>
#include "bench.h"

typedef K (*fn1)(K);
typedef K (*fn3)(K, K, K);
typedef K (*fn7)(K, K, K, K, K, K, K);

static fn1 mw, enter;
static fn3 request;
static fn7 request_ex;

/* one request's arguments, as the hooks pass them */
struct req { K h, t0, ok, sz_req, sz_resp, user, fn; };
static K none;

static void off(struct req *r) { K x = request(r->h, r->t0, r->ok); if (x) r0(x); }
static void on(struct req *r) {
  K x = enter(r->h); if (x) r0(x);
  x = request_ex(r->h, r->t0, r->ok, r->sz_req, r->sz_resp, r->user, r->fn); if (x) r0(x);
}
static void on_no_enter(struct req *r) {
  K x = request_ex(r->h, r->t0, r->ok, r->sz_req, r->sz_resp, r->user, r->fn); if (x) r0(x);
}

/* ns per request: median of five samples of n requests */
static double run(void (*step)(struct req *), struct req *r, long n) {
  return median5((void (*)(void *))step, r, n);
}

static void configure(const char *what, int inflight, int sizes, int http, int user, int fns) {
  K keys = ktn(KS, 5), vals = ktn(0, 5);
  const char *names[5] = {"inflight", "sizes", "httpStatus", "user", "functions"};
  int on_[4] = {inflight, sizes, http, user};
  for (int i = 0; i < 5; i++) kS(keys)[i] = qshim_ss((char *)names[i]);
  for (int i = 0; i < 4; i++) kK(vals)[i] = kb(on_[i]);
  K f = ktn(KS, fns ? 2 : 0);
  if (fns) { kS(f)[0] = qshim_ss("getTrades"); kS(f)[1] = qshim_ss(".u.upd"); }
  kK(vals)[4] = f;
  K cfg = xD(keys, vals);
  check(mw(cfg), what);
  r0(cfg);
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: bench_middleware libqprom.so\n"); return 2; }
  qshim_init();
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) { fprintf(stderr, "bench_middleware: %s\n", dlerror()); return 1; }
  fn3 defaults = (fn3)dlsym(h, "qprom_defaults");
  mw = (fn1)dlsym(h, "qprom_middleware");
  enter = (fn1)dlsym(h, "qprom_enter");
  request = (fn3)dlsym(h, "qprom_request");
  request_ex = (fn7)dlsym(h, "qprom_request_ex");
  if (!defaults || !mw || !enter || !request || !request_ex) {
    fprintf(stderr, "bench_middleware: missing exports (an older libqprom.so?)\n");
    return 1;
  }
  K ik = ktn(KS, 5);
  const char *inames[5] = {"release", "version", "os", "cores", "licence_expiry"};
  for (int i = 0; i < 5; i++) kS(ik)[i] = qshim_ss((char *)inames[i]);
  K info = xD(ik, knk(5, kp("2024.05.31"), kp("4.1"), kp("l64"), kp("8"), kp("2027.01.01")));
  K naming = ks("standard"), params = ktn(0, 0);
  check(defaults(naming, params, info), "defaults");

  none = ka(101);
  none->g = 0; /* (::) */
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  long long q_now = ((long long)ts.tv_sec - 946684800LL) * 1000000000LL + ts.tv_nsec;
  /* .z.pg: (`getTrades;5), -22! sizes as longs, .z.u */
  struct req pg = {ks("pg"), ktj(-KP, q_now), kb(0), kj(31), kj(56), ks("alice"), ks("getTrades")};
  /* .z.ph: (requestText;headers), the response string */
  K hk = ktn(KS, 2);
  kS(hk)[0] = qshim_ss("Host"); kS(hk)[1] = qshim_ss("Accept");
  K hreq = knk(2, kp("index.html?x=1"), xD(hk, knk(2, kp("localhost:5000"), kp("*/*"))));
  struct req ph = {ks("ph"), ktj(-KP, q_now), kb(0), hreq,
                   kp("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\n\r\nhi"),
                   ks("alice"), none};
  struct req nothing = {ks("pg"), ktj(-KP, q_now), kb(0), none, none, none, none};

  long n = 1000000;
  configure("off", 0, 0, 0, 0, 0);
  run(off, &pg, n / 10); /* warm up */
  printf("handler middleware: export calls per request through the q host, 1 thread,\n"
         "median of 5 x %ld requests (q-side work of the hooks not included)\n", n);
  printf("  off            .z.pg  qprom_request                        %6.1f ns/request\n", run(off, &pg, n));
  printf("  off            .z.pg  qprom_request_ex, no extras           %6.1f ns/request\n", run(on_no_enter, &nothing, n));
  configure("all", 1, 1, 1, 1, 1);
  printf("  all on         .z.pg  qprom_enter + qprom_request_ex        %6.1f ns/request\n", run(on, &pg, n));
  printf("  all on         .z.ph  qprom_enter + qprom_request_ex        %6.1f ns/request\n", run(on, &ph, n));
  configure("inflight", 1, 0, 0, 0, 0);
  printf("  inflight only  .z.pg  qprom_enter + qprom_request_ex        %6.1f ns/request\n", run(on, &pg, n));
  configure("sizes", 0, 1, 0, 0, 0);
  printf("  sizes only     .z.pg  qprom_request_ex                      %6.1f ns/request\n", run(on_no_enter, &pg, n));
  configure("httpStatus", 0, 0, 1, 0, 0);
  printf("  httpStatus     .z.ph  qprom_request_ex                      %6.1f ns/request\n", run(on_no_enter, &ph, n));
  configure("user", 0, 0, 0, 1, 0);
  printf("  user only      .z.pg  qprom_request_ex                      %6.1f ns/request\n", run(on_no_enter, &pg, n));
  configure("functions", 0, 0, 0, 0, 1);
  printf("  functions only .z.pg  qprom_request_ex                      %6.1f ns/request\n", run(on_no_enter, &pg, n));
  configure("off", 0, 0, 0, 0, 0);
  return 0;
}
