/* driver.c: every qprom_* export called the way q calls a 2: function, with good and bad
 * input, results and exact error texts checked; then the listener is started and left
 * serving until the controller (tests/arm/scrape.py, on the x86 side) has scraped it.
 *
 * Built for aarch64 by tests/arm/run.sh with zig cc and run under qemu-aarch64 with KX's
 * l64arm libe.so and the stand-in q host (tests/host/qshim.c, built for aarch64 too),
 * because no Python runs there. The same file is built for x86_64 and run natively
 * against the l64 library first, so that both architectures pass the same assertions.
 *
 *   driver LIBQPROM.so WORKDIR PUSH_URL
 *
 * Protocol on stdout/stdin: after the export checks it prints "PORT <n>" and keeps q's
 * main loop turning (qshim_poll, which runs the listener's poll callback) until a line
 * arrives on stdin; it then stops the listener and prints "driver: N checks passed" or
 * the failures, exiting 0 only when every check held. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "qshim.h"

static void *lib;
static int checks, failures;

static void check(int ok, const char *what, const char *fmt, ...) {
    checks++;
    if (ok) return;
    failures++;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "driver: FAIL: %s: ", what);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- q values ---------------------------------------------------------------------- */
static K sym(const char *s) { return ks((char *)s); }
static K str(const char *s) { return kp((char *)s); }
static K nil(void) { K k = ka(101); k->g = 0; return k; }           /* (::) */
static K syms(int n, ...) {
    K v = ktn(KS, n);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) kS(v)[i] = qshim_ss(va_arg(ap, char *));
    va_end(ap);
    return v;
}
static K floats(int n, ...) {
    K v = ktn(KF, n);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) kF(v)[i] = va_arg(ap, double);
    va_end(ap);
    return v;
}
/* keys!values with values a general list; takes both */
static K dict(K keys, K vals) { return xD(keys, vals); }
/* a timestamp `secs` seconds before now (q's epoch is 2000.01.01) */
static K ts_ago(double secs) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    long long ns = (long long)t.tv_sec * 1000000000LL + t.tv_nsec - 946684800000000000LL;
    return ktj(-KP, ns - (long long)(secs * 1e9));
}

/* ---- calls --------------------------------------------------------------------------- */
/* Calls export `name` with n arguments (taken: released after the call, as q would) and
 * returns its result (owned) and the error text, if any. */
static K call(const char *name, const char **err, int n, ...) {
    K args[8];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) args[i] = va_arg(ap, K);
    va_end(ap);
    void *fn = dlsym(lib, name);
    if (!fn) {
        check(0, name, "not exported");
        *err = "not exported";
        return 0;
    }
    int refs[8];
    for (int i = 0; i < n; i++) refs[i] = args[i]->r;
    K r = qshim_call(fn, n, args, err);
    for (int i = 0; i < n; i++) {
        /* arguments are borrowed: the export must leave their counts as they were (but
         * qprom_start keeps the poll function: one reference more, released by stop) */
        check(args[i]->r == refs[i] || (!strcmp(name, "qprom_start") && i == 1 && args[i]->r == refs[i] + 1), name, "argument %d: reference count %d -> %d", i, refs[i], args[i]->r);
        r0(args[i]);
    }
    return r;
}

/* (statement expressions: the error is read after the call) */
#define ERR(name, want, n, ...) ({ K r_ = call(name, &e_, n, __VA_ARGS__); expect_err(name, want, r_, e_); })
#define OK(name, n, ...) ({ K r_ = call(name, &e_, n, __VA_ARGS__); expect_ok(name, r_, e_); })

static const char *e_;

static void expect_err(const char *name, const char *want, K r, const char *err) {
    check(r == 0 && err && !strcmp(err, want), name, "wanted error '%s', got %s '%s'", want,
          r ? "a result and" : "error", err ? err : "(none)");
    if (r) r0(r);
}
/* the result (may be 0: (::)); the call must not have failed */
static K expect_ok(const char *name, K r, const char *err) {
    check(err == 0, name, "unexpected error '%s'", err ? err : "");
    return r;
}
static void expect_null(const char *name, K r) {
    check(r == 0 || r->t == 101, name, "wanted (::), got type %d", r ? r->t : 0);
    if (r) r0(r);
}
static void expect_float(const char *what, K r, double want) {
    check(r && r->t == -KF && (r->f == want || (isnan(want) && isnan(r->f))), what,
          "wanted %.17g, got %s %.17g", want, r ? "float" : "nothing", r && r->t == -KF ? r->f : 0.0);
    if (r) r0(r);
}
static char *kstr(K r) { /* a char vector's text, malloc'd */
    char *s = malloc(r->n + 1);
    memcpy(s, kC(r), r->n);
    s[r->n] = 0;
    return s;
}
static int file_contains(const char *path, const char *needle) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, needle) != 0;
}

/* ---- the poll callback the listener puts on q's main loop ---------------------------- */
static int polls;
static K on_poll(void *ctx, const char *name, K args) {
    polls++;
    const char *err;
    /* what .prom.on_poll would do: refresh a gauge from q's main thread */
    K r = qshim_call(dlsym(lib, "qprom_set"), 3, (K[]){sym("arm_polls"), nil(), kj(polls)}, &err);
    if (r) r0(r);
    return nil();
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: driver LIBQPROM.so WORKDIR PUSH_URL\n");
        return 2;
    }
    const char *dir = argv[2], *push_url = argv[3];
    setvbuf(stdout, 0, _IOLBF, 0);
    qshim_init();
    lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "driver: dlopen %s: %s\n", argv[1], dlerror());
        return 1;
    }
    K r;

    /* create */
    r = OK("qprom_create", 1, dict(syms(4, "name", "type", "help", "labels"),
        knk(4, sym("arm_requests_total"), sym("counter"), str("Requests, by path and code."), syms(2, "path", "code"))));
    check(r && r->t == -KS && !strcmp(r->s, "arm_requests_total"), "qprom_create", "wanted `arm_requests_total");
    if (r) r0(r);
    r = OK("qprom_create", 1, dict(syms(4, "name", "type", "help", "labels"),
        knk(4, sym("arm_temperature_celsius"), sym("gauge"), str("Temperature."), sym("room"))));
    if (r) r0(r);
    r = OK("qprom_create", 1, dict(syms(4, "name", "type", "help", "buckets"),
        knk(4, sym("arm_latency_seconds"), sym("histogram"), str("Latency."), floats(2, 0.1, 1.0))));
    if (r) r0(r);
    r = OK("qprom_create", 1, dict(syms(3, "name", "type", "help"), knk(3, sym("arm_polls"), sym("gauge"), str("Poll callbacks run."))));
    if (r) r0(r);
    r = OK("qprom_create", 1, dict(syms(3, "name", "type", "help"), knk(3, sym("arm_tp_messages_total"), sym("counter"), str("Mirrored."))));
    if (r) r0(r);
    ERR("qprom_create", "prom: metric definition must be a dictionary with symbol keys", 1, kj(42));
    ERR("qprom_create", "prom: invalid metric name", 1, dict(syms(2, "name", "type"), knk(2, sym("1bad"), sym("gauge"))));
    ERR("qprom_create", "prom: metric type must be one of counter gauge histogram summary info", 1,
        dict(syms(2, "name", "type"), knk(2, sym("arm_x"), sym("meter"))));

    /* inc, get */
    expect_null("qprom_inc", OK("qprom_inc", 3, sym("arm_requests_total"), syms(2, "/metrics", "200"), kj(2)));
    expect_float("qprom_get", OK("qprom_get", 2, sym("arm_requests_total"), syms(2, "/metrics", "200")), 2.0);
    ERR("qprom_inc", "prom: counter increment must be >= 0", 3, sym("arm_requests_total"), syms(2, "/metrics", "200"), kj(-1));
    ERR("qprom_inc", "prom: label count mismatch", 3, sym("arm_requests_total"), sym("/metrics"), kj(1));
    ERR("qprom_inc", "prom: value must be a number (short, int, long, real or float)", 3,
        sym("arm_requests_total"), syms(2, "/metrics", "200"), sym("one"));
    expect_float("qprom_get", OK("qprom_get", 2, sym("arm_requests_total"), syms(2, "/metrics", "200")), 2.0);
    ERR("qprom_get", "prom: unknown metric", 2, sym("arm_nope"), nil());
    ERR("qprom_get", "prom: expected a metric name (symbol or string) or a series id (long)", 2, kf(1.5), nil());

    /* series (addmetric), set, dec by id */
    r = OK("qprom_series", 4, sym("arm_temperature_celsius"), sym("kitchen"), knk(0), kf(21.5));
    check(r && r->t == -KJ, "qprom_series", "wanted a long id, got type %d", r ? r->t : 0);
    long long id = r && r->t == -KJ ? r->j : -1;
    if (r) r0(r);
    expect_float("qprom_get", OK("qprom_get", 2, kj(id), nil()), 21.5);
    ERR("qprom_series", "prom: unknown metric", 4, sym("arm_nope"), sym("x"), knk(0), kf(1));
    expect_null("qprom_dec", OK("qprom_dec", 3, kj(id), nil(), kf(0.5)));
    expect_float("qprom_get", OK("qprom_get", 2, kj(id), nil()), 21.0);
    ERR("qprom_dec", "prom: counter cannot decrease", 3, sym("arm_requests_total"), syms(2, "/metrics", "200"), kj(1));
    ERR("qprom_dec", "prom: a series id takes no labels", 3, kj(id), sym("kitchen"), kj(1));
    expect_null("qprom_set", OK("qprom_set", 3, kj(id), nil(), kf(-3.25)));
    expect_float("qprom_get", OK("qprom_get", 2, sym("arm_temperature_celsius"), sym("kitchen")), -3.25);
    ERR("qprom_set", "prom: value is null", 3, kj(id), nil(), kf(NAN));
    expect_float("qprom_get", OK("qprom_get", 2, kj(id), nil()), -3.25);

    /* obs: a list of observations; get gives the sum */
    expect_null("qprom_obs", OK("qprom_obs", 3, sym("arm_latency_seconds"), nil(), floats(3, 0.05, 0.5, 2.0)));
    expect_float("qprom_get", OK("qprom_get", 2, sym("arm_latency_seconds"), nil()), 2.55);
    ERR("qprom_obs", "prom: value is null", 3, sym("arm_latency_seconds"), nil(), floats(2, 1.0, NAN));
    ERR("qprom_obs", "prom: operation not supported by this metric type", 3, kj(id), nil(), kf(1));
    expect_float("qprom_get", OK("qprom_get", 2, sym("arm_latency_seconds"), nil()), 2.55);

    /* native histograms and exemplars */
    r = OK("qprom_create", 1, dict(syms(5, "name", "type", "help", "nativeSchema", "nativeMaxBuckets"),
        knk(5, sym("arm_native_seconds"), sym("histogram"), str("Native."), kj(3), kj(20))));
    if (r) r0(r);
    ERR("qprom_create", "prom: native histogram needs nativeSchema -4 to 8 or nativeFactor > 1, nativeZeroThreshold >= 0, "
        "nativeMaxBuckets 1 to 32768, nativeMinReset >= 0", 1,
        dict(syms(3, "name", "type", "nativeSchema"), knk(3, sym("arm_bad_seconds"), sym("histogram"), kj(9))));
    expect_null("qprom_obs_ex", OK("qprom_obs_ex", 4, sym("arm_native_seconds"), nil(), kf(0.25),
        dict(syms(1, "trace_id"), knk(1, str("abc123")))));
    expect_float("qprom_get", OK("qprom_get", 2, sym("arm_native_seconds"), nil()), 0.25);
    {
        char long_value[131];
        memset(long_value, 'x', 130);
        long_value[130] = 0;
        ERR("qprom_obs_ex", "prom: exemplar labels exceed 128 characters", 4, sym("arm_native_seconds"), nil(), kf(1),
            dict(syms(1, "a"), knk(1, str(long_value))));
    }
    expect_float("qprom_get", OK("qprom_get", 2, sym("arm_native_seconds"), nil()), 0.25);
    r = OK("qprom_create", 1, dict(syms(3, "name", "type", "help"), knk(3, sym("arm_exemplar_total"), sym("counter"), str("Exemplars."))));
    if (r) r0(r);
    expect_null("qprom_inc_ex", OK("qprom_inc_ex", 4, sym("arm_exemplar_total"), nil(), kj(1),
        dict(syms(1, "user"), syms(1, "alice"))));
    expect_float("qprom_get", OK("qprom_get", 2, sym("arm_exemplar_total"), nil()), 1.0);
    ERR("qprom_inc_ex", "prom: operation not supported by this metric type", 4, sym("arm_latency_seconds"), nil(), kf(1),
        dict(syms(1, "user"), syms(1, "alice")));
    ERR("qprom_inc_ex", "prom: exemplar must be a non-empty dictionary of distinct label names to strings", 4,
        sym("arm_exemplar_total"), nil(), kj(1), kj(7));

    /* limit */
    expect_null("qprom_limit", OK("qprom_limit", 1, kj(5000)));
    ERR("qprom_limit", "prom: series limit must be >= 1", 1, kj(0));

    /* helpers: elapsed, set_now, mirror */
    expect_null("qprom_elapsed", OK("qprom_elapsed", 3, sym("arm_latency_seconds"), nil(), ts_ago(0.25)));
    r = OK("qprom_get", 2, sym("arm_latency_seconds"), nil());
    check(r && r->t == -KF && r->f >= 2.55 + 0.25 && r->f < 2.55 + 60, "qprom_elapsed", "sum %.6f not 2.55 + >= 0.25 s", r ? r->f : 0);
    if (r) r0(r);
    ERR("qprom_elapsed", "prom: start time must be a timestamp (.z.p)", 3, sym("arm_latency_seconds"), nil(), kj(5));
    expect_null("qprom_set_now", OK("qprom_set_now", 2, kj(id), nil()));
    r = OK("qprom_get", 2, kj(id), nil());
    check(r && r->t == -KF && fabs(r->f - (double)time(0)) < 60, "qprom_set_now", "got %.3f, now is %lld", r ? r->f : 0, (long long)time(0));
    if (r) r0(r);
    ERR("qprom_set_now", "prom: operation not supported by this metric type", 2, sym("arm_requests_total"), syms(2, "/metrics", "200"));
    expect_null("qprom_mirror", OK("qprom_mirror", 4, sym("arm_tp_messages_total"), nil(), kj(100), nil()));
    expect_null("qprom_mirror", OK("qprom_mirror", 4, sym("arm_tp_messages_total"), nil(), kj(7), nil()));
    /* a lower value is a reset (the source restarted), never a decrease */
    expect_float("qprom_get", OK("qprom_get", 2, sym("arm_tp_messages_total"), nil()), 7.0);
    ERR("qprom_mirror", "prom: created must be a timestamp or (::)", 4, sym("arm_tp_messages_total"), nil(), kj(200), kj(1));

    /* del */
    expect_null("qprom_del", OK("qprom_del", 2, sym("arm_temperature_celsius"), sym("kitchen")));
    ERR("qprom_get", "prom: unknown series", 2, kj(id), nil());
    ERR("qprom_del", "prom: unknown metric", 2, sym("arm_nope"), nil());

    /* render */
    r = OK("qprom_render", 1, sym("text"));
    check(r && r->t == KC, "qprom_render", "wanted a string");
    if (r && r->t == KC) {
        char *s = kstr(r);
        check(strstr(s, "arm_requests_total{path=\"/metrics\",code=\"200\"} 2\n") != 0, "qprom_render", "no arm_requests_total sample in:\n%s", s);
        check(strstr(s, "arm_latency_seconds_count 4\n") != 0, "qprom_render", "arm_latency_seconds_count is not 4");
        check(strstr(s, "qprom_build_info{") != 0 && strstr(s, "target=\"" QPROM_TARGET "\"") != 0,
              "qprom_render", "no qprom_build_info with target " QPROM_TARGET);
        free(s);
    }
    if (r) r0(r);
    r = OK("qprom_render", 1, sym("openmetrics"));
    check(r && r->t == KC && r->n > 6 && !memcmp(kC(r) + r->n - 6, "# EOF\n", 6), "qprom_render", "OpenMetrics must end in # EOF");
    if (r) r0(r);
    ERR("qprom_render", "prom: format must be `text, `openmetrics or `protobuf", 1, sym("xml"));

    /* metrics, meta: tables */
    r = OK("qprom_metrics", 1, nil());
    check(r && r->t == XT, "qprom_metrics", "wanted a table, got type %d", r ? r->t : 0);
    if (r) r0(r);
    r = OK("qprom_meta", 1, nil());
    check(r && r->t == XT, "qprom_meta", "wanted a table, got type %d", r ? r->t : 0);
    if (r) r0(r);
    /* metrics, meta, stop and sd_remove ignore their argument (q passes (::)): there is
     * no bad input, only other input, which must change nothing */
    r = OK("qprom_metrics", 1, kj(42));
    check(r && r->t == XT, "qprom_metrics", "wanted a table for any argument, got type %d", r ? r->t : 0);
    if (r) r0(r);
    r = OK("qprom_meta", 1, str("x"));
    check(r && r->t == XT, "qprom_meta", "wanted a table for any argument, got type %d", r ? r->t : 0);
    if (r) r0(r);

    /* http: .z.ph's (requestText;headers) */
    r = OK("qprom_http", 1, knk(2, str("GET /metrics HTTP/1.1"), dict(ktn(KS, 0), knk(0))));
    check(r && r->t == KC && r->n > 15 && !memcmp(kC(r), "HTTP/1.1 200 OK", 15), "qprom_http", "wanted HTTP/1.1 200 OK");
    if (r) r0(r);
    ERR("qprom_http", "prom: expected .z.ph's (requestText;headerDictionary)", 1, kj(42));

    /* defaults, conn, sample, request, enter, middleware, request_ex */
    K info = dict(syms(5, "release", "version", "os", "cores", "licence_expiry"),
                  knk(5, str("4.1"), str("2024.10.16"), str("l64arm"), str("4"), str("")));
    /* the families left to the user (none defined first here): an empty symbol list */
    r = OK("qprom_defaults", 3, sym("standard"), knk(0), info);
    check(r && r->t == KS && r->n == 0, "qprom_defaults", "wanted an empty symbol list, got type %d", r ? r->t : 0);
    if (r) r0(r);
    ERR("qprom_defaults", "prom: unknown configuration key", 3, sym("standard"), dict(syms(1, "nope"), knk(1, kj(1))),
        dict(ktn(KS, 0), knk(0)));
    expect_null("qprom_conn", OK("qprom_conn", 1, sym("po")));
    ERR("qprom_conn", "prom: wrong type for a configuration key", 1, sym("zz"));
    K w = dict(syms(8, "used", "heap", "peak", "wmax", "mmap", "mphy", "syms", "symw"), ktn(KJ, 8));
    for (int i = 0; i < 8; i++) kJ(kK(w)[1])[i] = 1000 * (i + 1);
    expect_null("qprom_sample", OK("qprom_sample", 3, w, kj(123456), nil()));
    ERR("qprom_sample", "prom: value must be a number (short, int, long, real or float)", 3, kj(1), kj(0), nil());
    expect_null("qprom_request", OK("qprom_request", 3, sym("pg"), ts_ago(0.01), kb(0)));
    ERR("qprom_request", "prom: value must be a number (short, int, long, real or float)", 3, sym("pg"), sym("x"), kb(0));
    expect_null("qprom_enter", OK("qprom_enter", 1, sym("pg")));
    ERR("qprom_enter", "prom: wrong type for a configuration key", 1, sym("zz"));
    r = OK("qprom_middleware", 1, dict(syms(2, "inflight", "sizes"), knk(2, kb(1), kb(1))));
    check(r && r->t == XD, "qprom_middleware", "wanted a dictionary, got type %d", r ? r->t : 0);
    if (r) r0(r);
    ERR("qprom_middleware", "prom: unknown configuration key", 1, dict(syms(1, "nope"), knk(1, kb(1))));
    expect_null("qprom_request_ex", OK("qprom_request_ex", 7, sym("pg"), ts_ago(0.01), kb(0), kj(100), kj(200), sym("alice"), nil()));
    ERR("qprom_request_ex", "prom: value must be a number (short, int, long, real or float)", 7, sym("pg"), sym("x"), kb(0), kj(100), kj(200), sym("alice"), nil());

    /* KX's updval, the helpers around user functions, hook errors, logins, peers */
    r = OK("qprom_create", 1, dict(syms(3, "name", "type", "help"), knk(3, sym("arm_kx_total"), sym("counter"), str("KX updval."))));
    if (r) r0(r);
    expect_null("qprom_updval", OK("qprom_updval", 3, sym("arm_kx_total"), sym("add"), kj(3)));
    expect_null("qprom_updval", OK("qprom_updval", 3, sym("arm_kx_total"), sym("sub"), kj(1)));
    expect_float("qprom_updval", OK("qprom_get", 2, sym("arm_kx_total"), nil()), 2.0);
    ERR("qprom_updval", "prom: updval operation must be `set`add`sub`obs", 3, sym("arm_kx_total"), sym("mul"), kj(1));
    r = OK("qprom_create", 1, dict(syms(3, "name", "type", "help"), knk(3, sym("arm_inprogress"), sym("gauge"), str("Calls in progress."))));
    if (r) r0(r);
    expect_null("qprom_around_before", OK("qprom_around_before", 3, sym("trackInprogress"), sym("arm_inprogress"), nil()));
    expect_float("qprom_around_before", OK("qprom_get", 2, sym("arm_inprogress"), nil()), 1.0);
    expect_null("qprom_around_after", OK("qprom_around_after", 6, sym("trackInprogress"), sym("arm_inprogress"), nil(), nil(), kb(1), kb(0)));
    expect_float("qprom_around_after", OK("qprom_get", 2, sym("arm_inprogress"), nil()), 0.0);
    ERR("qprom_around_before", "prom: helper must be `time, `countErrors or `trackInprogress", 3, sym("tim"), sym("arm_inprogress"), nil());
    ERR("qprom_around_after", "prom: value must be a number (short, int, long, real or float)", 6, sym("trackInprogress"), sym("arm_inprogress"), nil(), nil(), kj(1), kb(0));
    expect_null("qprom_hook_error", OK("qprom_hook_error", 1, sym("arm_hook")));
    expect_float("qprom_hook_error", OK("qprom_get", 2, sym("qprom_hook_errors_total"), sym("arm_hook")), 1.0);
    ERR("qprom_hook_error", "prom: metric name must be a symbol or string", 1, kj(1));
    expect_null("qprom_login", OK("qprom_login", 2, sym("alice"), kb(0)));
    expect_float("qprom_login", OK("qprom_get", 2, sym("kdb_logins_total"), syms(2, "alice", "refused")), 1.0);
    ERR("qprom_login", "prom: value must be a number (short, int, long, real or float)", 2, sym("alice"), kj(1));
    expect_null("qprom_peer", OK("qprom_peer", 4, sym("po"), ki(5), sym("alice"), ki(167772161)));
    ERR("qprom_peer", "prom: wrong type for a configuration key", 4, sym("zz"), ki(5), sym("alice"), ki(1));
    r = OK("qprom_is_metrics", 1, str("metrics?x=1"));
    check(r && r->t == -KB && r->g == 1, "qprom_is_metrics", "wanted 1b");
    if (r) r0(r);
    ERR("qprom_is_metrics", "prom: expected .z.ph's (requestText;headerDictionary)", 1, kj(1));
    r = OK("qprom_path", 1, nil());
    check(r && r->t == KC && r->n == 7 && !memcmp(kC(r), "metrics", 7), "qprom_path", "wanted \"metrics\"");
    if (r) r0(r);
    r = OK("qprom_cli", 1, dict(syms(2, "prom.port", "p"), knk(2, knk(1, str("9612")), knk(1, str("5000")))));
    check(r && r->t == XD, "qprom_cli", "wanted a dictionary, got type %d", r ? r->t : 0);
    if (r) r0(r);
    ERR("qprom_cli", "prom: bad value for a -prom.<key> option (see exporter.q's header)", 1,
        dict(syms(1, "prom.port"), knk(1, knk(1, str("x")))));
    /* init and restore as prom.q calls them: 12 handlers, all undefined here */
    {
        K cur = ktn(0, 12), ws = ktn(0, 12);
        for (int i = 0; i < 12; i++) {
            kK(cur)[i] = knk(2, kb(0), nil());
            kK(ws)[i] = str("a wrapper");
        }
        K w8 = dict(syms(2, "used", "heap"), ktn(KJ, 2));
        kJ(kK(w8)[1])[0] = 1; kJ(kK(w8)[1])[1] = 2;
        K env = dict(syms(10, "w", "conns", "host", "qport", "script", "k", "K", "o", "c", "l"),
                     knk(10, w8, kj(0), sym("arm"), ki(0), sym("arm.q"), kd(9000), kf(4.1), sym("l64arm"), ki(4), knk(0)));
        r1(cur);
        r = OK("qprom_init", 5, dict(syms(1, "lagProbe"), knk(1, kf(0.05))), cur, ws, env, nil());
        check(r && r->t == XD, "qprom_init", "wanted a dictionary, got type %d", r ? r->t : 0);
        if (r) r0(r);
        r = OK("qprom_restore", 1, cur);
        check(r && r->t == XD, "qprom_restore", "wanted a dictionary, got type %d", r ? r->t : 0);
        if (r) r0(r);
    }
    ERR("qprom_init", "prom: configuration must be a dictionary", 5, kj(1), knk(0), knk(0), knk(0), nil());
    ERR("qprom_restore", "prom: internal: prom.q passed malformed handler state (reload prom.q)", 1, nil());

    /* write: node_exporter's textfile */
    char path[4096];
    snprintf(path, sizeof path, "%s/arm.prom", dir);
    expect_null("qprom_write", OK("qprom_write", 1, str(path)));
    check(file_contains(path, "arm_requests_total{path=\"/metrics\",code=\"200\"} 2\n"), "qprom_write", "%s lacks the sample", path);
    snprintf(path, sizeof path, "%s/arm.txt", dir);
    ERR("qprom_write", "prom: file name must end in .prom (node_exporter reads only *.prom)", 1, str(path));

    /* file_sd */
    r = OK("qprom_sd_register", 3, str(dir), str("127.0.0.1:9612"), dict(syms(1, "job"), knk(1, str("arm"))));
    check(r && r->t == KC, "qprom_sd_register", "wanted the path as a string");
    if (r && r->t == KC) {
        char *p = kstr(r);
        check(file_contains(p, "127.0.0.1:9612") && file_contains(p, "\"job\""), "qprom_sd_register", "%s lacks target or job", p);
        free(p);
    }
    if (r) r0(r);
    ERR("qprom_sd_register", "prom: file_sd target must be host:port (port 1-65535)", 3, str(dir), str("nohost"), dict(ktn(KS, 0), knk(0)));
    r = OK("qprom_sd_remove", 1, nil());
    check(r && r->t == -KB && r->g == 1, "qprom_sd_remove", "wanted 1b (a file removed)");
    if (r) r0(r);
    r = OK("qprom_sd_remove", 1, sym("any"));
    check(r && r->t == -KB && r->g == 0, "qprom_sd_remove", "wanted 0b (nothing registered)");
    if (r) r0(r);

    /* Pushgateway: the controller's stub records what arrives */
    expect_null("qprom_push", OK("qprom_push", 3, str(push_url), sym("arm"), dict(syms(1, "instance"), knk(1, sym("qemu")))));
    expect_null("qprom_push_delete", OK("qprom_push_delete", 3, str(push_url), sym("arm"), dict(syms(1, "instance"), knk(1, sym("qemu")))));
    ERR("qprom_push", "prom: push url must be a string or symbol like \"http://host:port\" (http only)", 3, str("ftp://x"), sym("arm"), nil());
    ERR("qprom_push_delete", "prom: push job must be a non-empty symbol or string", 3, str(push_url), str(""), nil());

    /* the listener */
    ERR("qprom_start", "prom: unknown configuration key", 2, dict(syms(1, "nope"), knk(1, kj(1))), nil());
    qshim_define("arm.on_poll", on_poll, 0);
    r = OK("qprom_start", 2, dict(syms(2, "port", "bind"), knk(2, kj(0), str("127.0.0.1"))), qshim_lambda("arm.on_poll"));
    check(r && (r->t == -KJ || r->t == -KI), "qprom_start", "wanted the port, got type %d", r ? r->t : 0);
    long long port = r ? (r->t == -KJ ? r->j : r->i) : 0;
    if (r) r0(r);
    ERR("qprom_start", "prom: listener already running: .prom.stop[] first", 2, dict(syms(1, "port"), knk(1, kj(0))), nil());
    printf("PORT %lld\n", port);
    /* q's main loop, until the controller says it has scraped */
    for (;;) {
        qshim_poll(20);
        struct pollfd in = {.fd = 0, .events = POLLIN};
        if (poll(&in, 1, 0) > 0) break;
    }
    check(polls > 0, "qprom_start", "the poll callback never ran on q's main thread");
    expect_null("qprom_stop", OK("qprom_stop", 1, nil()));
    expect_null("qprom_stop", OK("qprom_stop", 1, kj(42))); /* stopping twice is fine */
    /* stopped means the port is free again for a listener (SO_REUSEADDR, as the listener
     * itself binds: the scrapes leave TIME_WAIT entries on the port) */
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    check(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(fd, 1) == 0, "qprom_stop", "port %lld still taken after stop", port);
    if (fd >= 0) close(fd);
    check(qshim_violation_count() == 0, "host", "%d emulation contract breaches, first: %s",
          qshim_violation_count(), qshim_violation(0) ? qshim_violation(0) : "");

    if (failures) {
        printf("driver: %d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("driver: %d checks passed\n", checks);
    return 0;
}
