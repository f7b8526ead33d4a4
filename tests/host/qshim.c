/* qshim.c: the entry points of kdb+'s C API that only the q binary provides, with q's
 * semantics, so that an extension can be loaded and driven without q.
 *
 * libe.so (KX's C-API runtime from the pykx wheel) provides the K allocator and the
 * constructors. It has no sd1/sd0/sd0x/dot/dl (they are "Shared library only" in KX's
 * C API reference), and its k() speaks IPC only. This library defines them, plus krr/orr/
 * ee/k/vak, and is loaded RTLD_GLOBAL with libe.so as its DT_NEEDED dependency, before
 * the extension: the extension's undefined references then bind to the definitions
 * here first and to libe.so for everything else (see README.md, "Load order"). libe's
 * own calls to krr/ee/vak go through its PLT, so they bind here too and libe's errors
 * land in the same error indicator.
 *
 * References, cited below as [capiref X] = docs/interfaces/capiref.md section X and
 * [cclient X] = docs/interfaces/c-client-for-q.md section X, in github:KxSystems/docs
 * (code.kx.com/q/interfaces/capiref/ and .../c-client-for-q/).
 *
 * Emulation-contract breaches by the extension (q API called off the main thread, a
 * valid result returned while an error is pending, an fd closed while registered with
 * sd1) are recorded as "violations" that the harness turns into test failures; with
 * QSHIM_ABORT_ON_VIOLATION=1 in the environment the first one aborts instead (core /
 * valgrind stack at the faulting call).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "qshim.h"

#define EXPORT __attribute__((visibility("default")))

/* ------------------------------------------------------------------ state ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* guards everything below */
static pthread_t main_thread;
static int main_thread_set;
static int initialised;
static int krr_mode = QSHIM_KRR_NULL;
static int abort_on_violation;

/* [capiref krr] "kdb+ recognizes an error returned from a C function via the function's
 * return value being 0, combined with the value of a global error indicator that can be
 * set by calling krr ... (Thread-local if you expect to amend the error string from
 * multiple threads.)" libe.so's own krr keeps it in a __thread variable too. */
static __thread const char *err_ind;
static long long krr_calls;

#define MAX_VIOLATIONS 64
static char violations[MAX_VIOLATIONS][256];
static int n_violations;

struct reg { int fd; K (*f)(int); unsigned long long gen; };
static struct reg *regs;
static int n_regs, cap_regs;
static unsigned long long reg_gen;
static long long n_sd1, n_sd0, n_callbacks, n_cb_errors;
static const char *cb_last_error;

struct def { char *name; qshim_fn fn; void *ctx; };
static struct def *defs;
static int n_defs, cap_defs;

static K (*libe_vak)(int, const char *, va_list);

static int tid(void) { return (int)syscall(SYS_gettid); }

static void violation(const char *fmt, ...) {
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&mu);
    if (n_violations < MAX_VIOLATIONS) memcpy(violations[n_violations], buf, sizeof buf);
    n_violations++;
    pthread_mutex_unlock(&mu);
    fprintf(stderr, "qshim: VIOLATION: %s\n", buf);
    if (abort_on_violation) abort();
}

/* [capiref sd0, sd0x, sd1] "Should only be called from main thread." The same holds
 * for evaluation (k(0,...), dot): q's interpreter runs on its main thread, and DESIGN.md
 * makes it a rule: "q is never called from any other thread". */
static int check_main(const char *what) {
    if (main_thread_set && !pthread_equal(pthread_self(), main_thread)) {
        violation("%s called off q's main thread (tid %d)", what, tid());
        return 0;
    }
    return 1;
}

__attribute__((constructor)) static void qshim_load(void) {
    /* the thread that loads the shim is the harness's main thread: q's main thread */
    main_thread = pthread_self();
    main_thread_set = 1;
    const char *e = getenv("QSHIM_ABORT_ON_VIOLATION");
    abort_on_violation = e && *e && strcmp(e, "0");
    libe_vak = (K(*)(int, const char *, va_list))dlsym(RTLD_NEXT, "vak");
}

/* -------------------------------------------------------------- host init ---- */

EXPORT int qshim_init(void) {
    pthread_mutex_lock(&mu);
    int first = !initialised;
    initialised = 1;
    main_thread = pthread_self();
    main_thread_set = 1;
    pthread_mutex_unlock(&mu);
    if (first) {
        /* [cclient "Managing memory and reference counting"] "Before calling any
         * 'generator' functions in a standalone application, you must initialize the
         * kdb+ internal memory system ... use khp("",-1);". Measured on libe.so: without
         * it b9 writes 0 (big-endian) in the first header byte and r1/r0 are not atomic. */
        khp("", -1);
        /* ibid.: "to allow symbols to be created in other threads, setm(1) should be
         * called from the main thread before any other threads are started." q runs
         * exports on secondary threads (peach, -p -N), which may intern symbols. */
        setm(1);
    }
    return first;
}

EXPORT int qshim_is_main_thread(void) { return pthread_equal(pthread_self(), main_thread); }

EXPORT int qshim_set_krr_mode(int mode) {
    int old = krr_mode;
    krr_mode = mode;
    return old;
}

/* ------------------------------------------------------------------ errors ---- */

/* An error object as q's k() and ee() return it: [cclient "Error signaling and
 * catching"] "If it has type -128, then r->s will point to the error string. Note that
 * K object with type -128 acts as a marker only". libe's own ee builds exactly this
 * (an atom from ka, s = the message pointer, t = -128), and its r0 frees it as an atom. */
static K errobj(const char *s) {
    K e = ka(-128);
    e->s = (char *)s;
    return e;
}

/* [capiref krr] "As krr records only the passed pointer, you should ensure that the
 * string remains valid after the return from your code into kdb+ ... For convenience,
 * krr returns 0". libe.so's krr does the same (stores the pointer in a __thread slot,
 * returns 0). QSHIM_KRR_OBJECT instead returns an error object (the message still
 * recorded), for checking that the extension copes if q's krr returns non-null. */
static K fail(const char *s) { /* internal: set the indicator, return 0 (never an object) */
    err_ind = s;
    return 0;
}

EXPORT K krr(const char *s) {
    err_ind = s;
    __atomic_add_fetch(&krr_calls, 1, __ATOMIC_RELAXED);
    return krr_mode == QSHIM_KRR_OBJECT ? errobj(s) : (K)0;
}

/* [capiref orr] "appends a system-error message to string S before passing it to krr
 * ... looks at errno ... and, if set, will format using strerror ... copied to a static,
 * thread-local buffer ... limited to 255 characters". The format is libe.so's own orr
 * ("%s. OS reports: %s"), which is also how q prints OS errors. */
static __thread char orr_buf[256];
static const char *orr_format(const char *s) {
    int e = errno;
    if (e) {
        char sys[128];
        const char *m = strerror_r(e, sys, sizeof sys);
        snprintf(orr_buf, sizeof orr_buf, "%s. OS reports: %s", s ? s : "", m);
    } else
        snprintf(orr_buf, sizeof orr_buf, "%s", s ? s : "");
    return orr_buf;
}
EXPORT K orr(const char *s) { return krr(orr_format(s)); }

/* [capiref ee] "Capture (and reset) error string into usual error object, e.g.
 * K x=ee(dot(a,b));if(xt==-128)printf("error %s\n", x->s); ... the error string pointer
 * (x->s) may also be NULL". Defined here because the error indicator is ours. */
EXPORT K ee(K x) {
    if (x) return x;
    const char *s = err_ind;
    err_ind = 0;
    return errobj(s);
}

EXPORT K qshim_error(const char *msg) { return errobj(qshim_ss((char *)(msg ? msg : ""))); }
EXPORT const char *qshim_take_error(void) { const char *s = err_ind; err_ind = 0; return s; }
EXPORT const char *qshim_peek_error(void) { return err_ind; }
EXPORT long long qshim_krr_calls(void) { return __atomic_load_n(&krr_calls, __ATOMIC_RELAXED); }

EXPORT int qshim_violation_count(void) {
    pthread_mutex_lock(&mu);
    int n = n_violations;
    pthread_mutex_unlock(&mu);
    return n;
}
EXPORT const char *qshim_violation(int i) {
    return i >= 0 && i < n_violations && i < MAX_VIOLATIONS ? violations[i] : 0;
}
EXPORT void qshim_clear_violations(void) {
    pthread_mutex_lock(&mu);
    n_violations = 0;
    pthread_mutex_unlock(&mu);
}

/* -------------------------------------------------- in-process evaluation ---- */

EXPORT int qshim_define(const char *name, qshim_fn fn, void *ctx) {
    pthread_mutex_lock(&mu);
    int i, replaced = 0;
    for (i = 0; i < n_defs && strcmp(defs[i].name, name); i++) {}
    if (i < n_defs) {
        replaced = 1;
        if (fn) {
            defs[i].fn = fn;
            defs[i].ctx = ctx;
        } else {
            free(defs[i].name);
            defs[i] = defs[--n_defs];
        }
    } else if (fn) {
        if (n_defs == cap_defs) {
            cap_defs = cap_defs ? 2 * cap_defs : 16;
            defs = realloc(defs, cap_defs * sizeof *defs);
        }
        defs[n_defs++] = (struct def){strdup(name), fn, ctx};
    }
    pthread_mutex_unlock(&mu);
    return replaced;
}

EXPORT void qshim_undefine_all(void) {
    pthread_mutex_lock(&mu);
    for (int i = 0; i < n_defs; i++) free(defs[i].name);
    free(defs);
    defs = 0;
    n_defs = cap_defs = 0;
    pthread_mutex_unlock(&mu);
}

/* (::), [cclient "Return values"]: "ka(101) ... id->g=0". */
static K identity(void) {
    K x = ka(101);
    x->g = 0;
    return x;
}

/* Apply the test-defined function `name` to args (general list, borrowed).
 * Returns a new reference, or 0 with the error indicator set (dot's convention). */
static K apply_named(const char *name, K args) {
    qshim_fn fn = 0;
    void *ctx = 0;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < n_defs; i++)
        if (!strcmp(defs[i].name, name)) {
            fn = defs[i].fn;
            ctx = defs[i].ctx;
            break;
        }
    pthread_mutex_unlock(&mu);
    if (!fn) return fail("host: no q");
    err_ind = 0;
    K r = fn(ctx, name, args);
    if (r && r->t == -128) { /* an error object: turn it into the indicator */
        const char *m = r->s;
        r0(r);
        err_ind = m ? m : "host: error";
        return 0;
    }
    if (!r && !err_ind) return identity();
    if (r && err_ind) {
        violation("q function %s returned a value with an error pending (%s)", name, err_ind);
        err_ind = 0;
    }
    return r;
}

/* [capiref vak] va_list version of k. [capiref k] "handle==0 is valid only for a plugin,
 * and executes against the kdb+ process in which it is loaded ... The last argument must
 * be NULL ... Takes ownership of references to its arguments." The result is a new
 * reference; an error comes back as an object of type -128 with r->s the message
 * ([cclient "Error signaling and catching"]: "K r=k(0, "1+`a", (K)0); if(r && -128==r->t)
 * return r;"). q would parse and evaluate the string; here the string must name a
 * function defined with qshim_define (a test's stand-in for that q code), else the
 * result is the error "host: no q". handle != 0 (IPC) goes to libe.so's vak. */
EXPORT K vak(int h, const char *s, va_list ap) {
    if (h != 0) return libe_vak ? libe_vak(h, s, ap) : fail("host: no libe vak");
    K args = ktn(0, 0), a;
    while ((a = va_arg(ap, K))) jk(&args, a); /* args now owns them */
    if (!check_main("k(0,...)")) {
        r0(args);
        return errobj("host: k(0) off main thread");
    }
    K r = s ? apply_named(s, args) : fail("host: no q");
    r0(args);
    if (!r) {
        const char *m = err_ind;
        err_ind = 0;
        return errobj(m ? m : "host: error");
    }
    return r;
}

EXPORT K k(int h, const char *s, ...) {
    va_list ap;
    va_start(ap, s);
    K r = vak(h, s, ap);
    va_end(ap);
    return r;
}

EXPORT K qshim_lambda(const char *name) {
    /* q keeps a lambda (type 100) as a list of its parts; libe's r0 frees type 100 as a
     * general list, so a one-item list holding the name is a well-formed stand-in. */
    K f = knk(1, ks((char *)name));
    f->t = 100;
    return f;
}

/* [capiref dl] "K dl(V* f, J n) ... takes a C function that would take n K objects as
 * arguments and returns a K object ... Returns a q function." Represented like
 * qshim_lambda, tagged `qshim.dl`, with the pointer and the rank; dot() calls it. */
EXPORT K dl(void *f, long long n) {
    K x = knk(3, ks("qshim.dl"), kj((long long)(intptr_t)f), kj(n));
    x->t = 100;
    return x;
}

static K call_n(void *fn, int n, K *a) {
    switch (n) {
    case 0: return ((K(*)(void))fn)();
    case 1: return ((K(*)(K))fn)(a[0]);
    case 2: return ((K(*)(K, K))fn)(a[0], a[1]);
    case 3: return ((K(*)(K, K, K))fn)(a[0], a[1], a[2]);
    case 4: return ((K(*)(K, K, K, K))fn)(a[0], a[1], a[2], a[3]);
    case 5: return ((K(*)(K, K, K, K, K))fn)(a[0], a[1], a[2], a[3], a[4]);
    case 6: return ((K(*)(K, K, K, K, K, K))fn)(a[0], a[1], a[2], a[3], a[4], a[5]);
    case 7: return ((K(*)(K, K, K, K, K, K, K))fn)(a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
    case 8: return ((K(*)(K, K, K, K, K, K, K, K))fn)(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7]);
    }
    return fail("rank");
}

static int type_width(int t) {
    static const signed char w[20] = {0, 1, 16, 0, 1, 2, 4, 8, 4, 8, 1, 8, 8, 4, 4, 8, 8, 4, 4, 4};
    return t > 0 && t < 20 ? w[t] : 0;
}

/* y as a general list of its items (new reference): what `.` spreads over f's args. */
static K arg_list(K y) {
    if (y->t == 0) return r1(y);
    if (y->t < 0 || y->t >= 20 || !type_width(y->t)) return knk(1, r1(y)); /* atom etc.: one argument */
    int w = type_width(y->t);
    K l = ktn(0, y->n);
    for (long long i = 0; i < y->n; i++) {
        K a;
        if (w == 16) { /* a guid atom is t=-2, n=1, its 16 bytes at G0 (as libe's ku makes it) */
            a = ktn(UU, 1);
            a->t = -UU;
            memcpy(kG(a), kG(y) + 16 * i, 16);
        } else {
            a = ka(-y->t);
            memcpy(&a->g, kG(y) + w * i, w);
        }
        kK(l)[i] = a;
    }
    return l;
}

/* [capiref dot] "K dot(K x, K y) ... The same as the q function Apply, i.e. .[x;y].
 * Shared library only. On success, returns a K object with the result of the .
 * application. On error, NULL is returned. See ee". Tagged neither `own` nor anything
 * else: x and y stay the caller's. x may be a symbol naming a function (q's `.` accepts
 * one), a lambda from qshim_lambda, or a function from dl(). */
EXPORT K dot(K x, K y) {
    if (!check_main("dot")) return fail("host: dot off main thread");
    if (!x || !y) return fail("host: dot(0)");
    K args = arg_list(y), r;
    if (x->t == -KS) {
        r = apply_named(x->s, args);
    } else if (x->t == 100 && x->n >= 1 && kK(x)[0]->t == -KS) {
        const char *name = kK(x)[0]->s;
        if (!strcmp(name, "qshim.dl") && x->n == 3) {
            long long rank = kK(x)[2]->j;
            if (rank != args->n) r = fail("rank");
            else {
                err_ind = 0;
                r = call_n((void *)(intptr_t)kK(x)[1]->j, (int)rank, kK(args));
                if (r && r->t == -128) { /* rethrown error object */
                    err_ind = r->s;
                    r0(r);
                    r = 0;
                }
            }
        } else
            r = apply_named(name, args);
    } else
        r = fail("type");
    r0(args);
    return r;
}

/* --------------------------------------------------------- calling exports ---- */

/* Call an export as q calls a 2: function: n K arguments, borrowed ([capiref "Reference
 * counting"]: "all functions from dynamically-linked modules, do not take ownership of
 * references to their parameters"); the K result is q's. The error indicator is cleared
 * before and read after, on this thread; *err gets it. [capiref krr] "Do not call krr()
 * and then return a valid pointer!" is recorded as a violation. */
EXPORT K qshim_call(void *fn, int n, K *args, const char **err) {
    if (n < 0 || n > 8) {
        *err = "rank";
        return 0;
    }
    err_ind = 0;
    K r = call_n(fn, n, args);
    *err = err_ind;
    err_ind = 0;
    if (r && r->t != -128 && *err) {
        violation("export returned a valid K (type %d) with an error pending (%s)", r->t, *err);
    }
    return r;
}

/* ---------------------------------------------------------------- sd1 loop ---- */

static int find_reg(int fd) {
    for (int i = 0; i < n_regs; i++)
        if (regs[i].fd == fd) return i;
    return -1;
}

/* [capiref sd1] "K sd1(I d, f) Put the function K f(I d){...} on the q main event loop
 * given a socket d. Should only be called from main thread. If d is negative, the socket
 * is switched to non-blocking ... On success, sd1 returns a K object of type integer,
 * containing d. On error, NULL is returned and d is closed. Since 4.1t 2023.09.15, sd1
 * no longer imposes a limit of 1023 on the value of the descriptor". Not specified, so
 * chosen here: the integer holds d as passed; a second sd1 on a registered fd replaces
 * its callback (q keeps one callback per descriptor, as sd0(d) shows); the error message
 * is orr("sd1"). */
EXPORT K sd1(int d, K (*f)(int)) {
    check_main("sd1");
    int fd = d < 0 ? -d : d;
    if (fd <= 0 || !f || fcntl(fd, F_GETFD) == -1) {
        if (!f) errno = EINVAL;
        fail(orr_format("sd1"));
        if (fd > 0) close(fd);
        return 0;
    }
    if (d < 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    pthread_mutex_lock(&mu);
    int i = find_reg(fd);
    if (i < 0) {
        if (n_regs == cap_regs) {
            cap_regs = cap_regs ? 2 * cap_regs : 16;
            regs = realloc(regs, cap_regs * sizeof *regs);
        }
        i = n_regs++;
    }
    regs[i] = (struct reg){fd, f, ++reg_gen};
    n_sd1++;
    pthread_mutex_unlock(&mu);
    return ki(d);
}

/* [capiref sd0x] "V sd0x(I d, I f) Remove the callback on d and call kclose on d if f
 * is 1. Should only be called from main thread." [capiref sd0] "Remove the callback on
 * d and call kclose." kclose(d) of a non-IPC descriptor is close(d). */
EXPORT void sd0x(int d, int f) {
    check_main("sd0x");
    int fd = d < 0 ? -d : d;
    pthread_mutex_lock(&mu);
    int i = find_reg(fd);
    if (i >= 0) regs[i] = regs[--n_regs];
    n_sd0++;
    pthread_mutex_unlock(&mu);
    if (f == 1) close(fd);
}

EXPORT void sd0(int d) { sd0x(d, 1); }

/* One turn of q's main loop over the sd1 descriptors, on the calling (main) thread:
 * wait up to timeout_ms for any to be readable, then call each readable one's callback
 * once, with its fd. [capiref sd1] "The function f should return NULL or a pointer to a K
 * object. If the return value of f is a pointer to a K object, its reference count is
 * decremented i.e. passed to r0." [cclient Callbacks] "Callbacks from sd1 are executed on
 * the main thread of q". Level-triggered like select(): a callback that leaves data
 * unread runs again next turn. Callbacks may call sd1/sd0 (the set is snapshotted, and an
 * entry removed or replaced by an earlier callback of the same turn is skipped). An
 * error from a callback (0 with krr, or a -128 object) is counted, not raised: q has no
 * caller to raise it to. */
EXPORT int qshim_poll(int timeout_ms) {
    if (!pthread_equal(pthread_self(), main_thread)) return -1;
    pthread_mutex_lock(&mu);
    int n = n_regs;
    struct reg *snap = malloc((n ? n : 1) * sizeof *snap);
    struct pollfd *p = malloc((n ? n : 1) * sizeof *p);
    memcpy(snap, regs, n * sizeof *snap);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < n; i++) p[i] = (struct pollfd){.fd = snap[i].fd, .events = POLLIN};
    int rc;
    do rc = poll(p, n, timeout_ms); while (rc < 0 && errno == EINTR);
    int ran = 0;
    for (int i = 0; rc > 0 && i < n; i++) {
        if (!p[i].revents) continue;
        pthread_mutex_lock(&mu);
        int j = find_reg(snap[i].fd);
        int live = j >= 0 && regs[j].gen == snap[i].gen;
        if (live && (p[i].revents & POLLNVAL)) regs[j] = regs[--n_regs];
        pthread_mutex_unlock(&mu);
        if (!live) continue;
        if (p[i].revents & POLLNVAL) {
            violation("fd %d was closed while registered with sd1 (use sd0/sd0x)", snap[i].fd);
            continue;
        }
        err_ind = 0;
        K r = snap[i].f(snap[i].fd);
        ran++;
        __atomic_add_fetch(&n_callbacks, 1, __ATOMIC_RELAXED);
        const char *e = r && r->t == -128 ? r->s : err_ind;
        if (e || (r && r->t == -128)) {
            pthread_mutex_lock(&mu);
            n_cb_errors++;
            cb_last_error = e;
            pthread_mutex_unlock(&mu);
        }
        err_ind = 0;
        if (r) r0(r);
    }
    free(snap);
    free(p);
    return ran;
}

EXPORT int qshim_sd1_count(void) {
    pthread_mutex_lock(&mu);
    int n = n_regs;
    pthread_mutex_unlock(&mu);
    return n;
}

EXPORT int qshim_sd1_fds(int *out, int max) {
    pthread_mutex_lock(&mu);
    int n = n_regs < max ? n_regs : max;
    for (int i = 0; i < n; i++) out[i] = regs[i].fd;
    n = n_regs;
    pthread_mutex_unlock(&mu);
    return n;
}

EXPORT long long qshim_sd1_calls(void) { return n_sd1; }
EXPORT long long qshim_sd0_calls(void) { return n_sd0; }
EXPORT long long qshim_callbacks_run(void) { return n_callbacks; }
EXPORT long long qshim_callback_errors(void) { return n_cb_errors; }
EXPORT const char *qshim_callback_last_error(void) { return cb_last_error; }
