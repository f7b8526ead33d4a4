/* fake_ext.c: a stand-in for libqprom.so that exports functions the way the Rust
 * exports will (K in, K out, errors through krr with static messages, sd1 on an eventfd,
 * r1 on what is kept), so that the host and harness can be proven before the Rust side
 * exists. Built without linking libe.so or the shim, like the Rust cdylib: every q API
 * symbol below is resolved by the host's global scope at load time. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "qshim.h"

#define EXPORT __attribute__((visibility("default")))

/* x + 1 for a long atom; 'prom: bad' otherwise */
EXPORT K fake_inc(K x) {
    if (x->t != -KJ) return krr("prom: bad");
    return kj(x->j + 1);
}

/* (`name`value`n)!(sym; val; calls so far) for a symbol and a float */
static long long observe_calls;
EXPORT K fake_observe(K name, K val) {
    if (name->t != -KS || val->t != -KF) return krr("prom: type");
    if (!*name->s) return krr("prom: empty name");
    long long n = __atomic_add_fetch(&observe_calls, 1, __ATOMIC_RELAXED);
    K keys = ktn(KS, 3);
    kS(keys)[0] = qshim_ss("name");
    kS(keys)[1] = qshim_ss("value");
    kS(keys)[2] = qshim_ss("n");
    return xD(keys, knk(3, ks(name->s), kf(val->f), kj(n)));
}

/* the decoupled style of [capiref krr]: set the message, return 0 */
EXPORT K fake_err_decoupled(K x) {
    krr("prom: decoupled");
    return 0;
}

/* returns nothing: q sees (::) */
EXPORT K fake_nothing(K x) { return 0; }

/* returns the argument (r1, as q requires) */
EXPORT K fake_identity(K x) { return r1(x); }

/* ------------------------------------------------------------ kept argument ---- */

static K stored;
EXPORT K fake_store(K x) {
    if (stored) r0(stored);
    stored = r1(x);
    return 0;
}
EXPORT K fake_stored(K x) { return stored ? r1(stored) : krr("prom: nothing stored"); }
EXPORT K fake_release(K x) {
    if (stored) r0(stored);
    stored = 0;
    return 0;
}

/* ------------------------------------------------- sd1 on an eventfd ---- */

static int efd = -1;
static long long cb_calls, cb_total;
static int cb_tid;
static int cb_k_status; /* 0 none, 1 k(0) returned a value, 2 k(0) returned an error */
static long long cb_k_value;
static const char *cb_k_error;
static int cb_call_q;

static K on_event(int fd) {
    uint64_t v;
    if (read(fd, &v, 8) != 8) { /* nothing to read: stop watching (q's efd.c example) */
        sd0(fd);
        efd = -1;
        return orr("prom: read");
    }
    cb_calls++;
    cb_total += (long long)v;
    cb_tid = (int)syscall(SYS_gettid);
    if (cb_call_q) { /* what src/poll.rs does: run .prom.on_poll on the main thread */
        K r = k(0, ".prom.on_poll", kj(cb_total), (K)0);
        if (!r) cb_k_status = 3;
        else if (r->t == -128) {
            cb_k_status = 2;
            cb_k_error = r->s;
        } else {
            cb_k_status = 1;
            cb_k_value = r->t == -KJ ? r->j : -1;
        }
        if (r) r0(r);
    }
    return kj(cb_calls); /* q r0's it */
}

/* watch[call_q]: open an eventfd, register it; returns what sd1 returns (the fd) */
EXPORT K fake_watch(K call_q) {
    if (call_q->t != -KB) return krr("prom: type");
    if (efd >= 0) return krr("prom: already watching");
    cb_call_q = call_q->g;
    int fd = eventfd(0, EFD_CLOEXEC);
    if (fd < 0) return orr("prom: eventfd");
    K r = sd1(-fd, on_event); /* negative: non-blocking, like the Rust poller */
    if (r) efd = fd;
    return r;
}

/* kick[n]: what the HTTP thread does: add n to the eventfd (any thread) */
EXPORT K fake_kick(K n) {
    if (n->t != -KJ) return krr("prom: type");
    uint64_t v = (uint64_t)n->j;
    if (efd < 0) return krr("prom: not watching");
    if (write(efd, &v, 8) != 8) return orr("prom: write");
    return 0;
}

EXPORT K fake_unwatch(K x) {
    if (efd >= 0) sd0(efd);
    efd = -1;
    return 0;
}

/* (calls; total; callback tid; k status; k value) */
EXPORT K fake_watch_stats(K x) {
    K r = ktn(KJ, 5);
    kJ(r)[0] = cb_calls;
    kJ(r)[1] = cb_total;
    kJ(r)[2] = cb_tid;
    kJ(r)[3] = cb_k_status;
    kJ(r)[4] = cb_k_value;
    return r;
}
EXPORT K fake_watch_k_error(K x) { return cb_k_error ? kp((char *)cb_k_error) : kp(""); }

/* a callback that re-registers itself on a fresh eventfd from inside the loop (sd0 then
 * sd1 within a callback) n times */
static int hop_fd = -1, hops_left;
static long long hop_count;
static K hop(int fd) {
    uint64_t v;
    if (read(fd, &v, 8) != 8) return 0;
    hop_count++;
    sd0(fd); /* closes fd */
    hop_fd = -1;
    if (--hops_left > 0) {
        int nfd = eventfd(1, EFD_CLOEXEC); /* readable at once */
        K r = sd1(nfd, hop);
        if (!r) return 0;
        r0(r);
        hop_fd = nfd;
    }
    return 0;
}
EXPORT K fake_hop(K n) {
    if (n->t != -KJ || n->j < 1) return krr("prom: type");
    hops_left = (int)n->j;
    hop_count = 0;
    int fd = eventfd(1, EFD_CLOEXEC);
    K r = sd1(fd, hop);
    if (!r) return 0;
    hop_fd = fd;
    return r;
}
EXPORT K fake_hop_count(K x) { return kj(hop_count); }

/* --------------------------------------------------------- q evaluation ---- */

/* k[name;arg]: k(0,name,arg) (k takes ownership, hence r1), errors rethrown */
EXPORT K fake_k(K name, K arg) {
    if (name->t != -KS) return krr("prom: type");
    return k(0, name->s, r1(arg), (K)0);
}

/* apply[f;args]: dot, errors through ee and rethrown */
EXPORT K fake_apply(K f, K args) { return ee(dot(f, args)); }

/* a q function made with dl(): dl[] returns f where f[x;y] is x+y on longs */
static K add2(K x, K y) {
    if (x->t != -KJ || y->t != -KJ) return krr("prom: type");
    return kj(x->j + y->j);
}
EXPORT K fake_dl(K x) { return dl((void *)add2, 2); }

/* ------------------------------------------------------- binding checks ---- */

/* the address this object's krr reference was bound to */
EXPORT K fake_krr_addr(K x) { return kj((long long)(intptr_t)&krr); }

/* ------------------------------------------------------ deliberate misuse ---- */

/* "Do not call krr() and then return a valid pointer!" [capiref krr] */
EXPORT K fake_bug_krr_then_value(K x) {
    krr("prom: oops");
    return kj(1);
}
/* takes a reference it does not own */
EXPORT K fake_bug_r0_arg(K x) {
    r0(x);
    return 0;
}
/* keeps a reference it never gives back */
EXPORT K fake_bug_r1_arg(K x) {
    r1(x);
    return 0;
}
/* leaks a K object (libe pool memory: only m4 sees it, not valgrind) */
EXPORT K fake_bug_leak_k(K x) {
    K junk = ktn(KJ, 100);
    (void)junk;
    return kj(0);
}
/* sd1 from a secondary thread */
static void *sd1_thread(void *a) {
    int fd = eventfd(0, EFD_CLOEXEC);
    K r = sd1(fd, on_event);
    if (r) {
        sd0(fd);
        r0(r);
    }
    return 0;
}
EXPORT K fake_bug_sd1_off_main(K x) {
    pthread_t t;
    pthread_create(&t, 0, sd1_thread, 0);
    pthread_join(t, 0);
    return 0;
}
/* closes a registered fd without sd0 */
EXPORT K fake_bug_close_registered(K x) {
    int fd = eventfd(1, EFD_CLOEXEC);
    K r = sd1(fd, on_event);
    if (!r) return 0;
    r0(r);
    close(fd);
    return 0;
}

/* Memory bugs for the valgrind self-test only: they misbehave only when
 * QHOST_ENABLE_BUGS=1, so an accidental call in a normal run is harmless. */
static int bugs_enabled(void) {
    const char *e = getenv("QHOST_ENABLE_BUGS");
    return e && !strcmp(e, "1");
}
static void *volatile sink; /* keeps the compiler from eliding the malloc */
EXPORT K fake_bug_malloc_leak(K x) {
    if (!bugs_enabled()) return krr("fake: bugs disabled");
    sink = malloc(48);
    memset(sink, 1, 48);
    sink = 0; /* the only pointer is gone: definitely lost */
    return kj(48);
}
EXPORT K fake_bug_overread(K x) {
    if (!bugs_enabled()) return krr("fake: bugs disabled");
    volatile char *p = malloc(8);
    memset((char *)p, 2, 8);
    long long s = 0;
    for (int i = 0; i <= 8; i++) s += p[i]; /* p[8]: invalid read of size 1 */
    free((char *)p);
    return kj(s);
}
