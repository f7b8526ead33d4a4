/* libe_probe.c: measures the libe.so behaviour the host relies on (run by
 * test_libe.py; prints key=value lines). Usage: libe_probe THREADS ITERS */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qshim.h"

static int iters;
static K shared;                 /* made on the main thread, read and r1/r0'd by all */
static char *interned[16][1000]; /* per thread: ss("sym_i") */
static long long leftover[16];   /* per thread: m4 bytes in use after freeing everything */
static int bad[16];

static long long m4used(void) {
    K m = m4(0);
    long long v = kJ(m)[0];
    r0(m);
    return v;
}

static void *worker(void *arg) {
    long id = (long)arg;
    char name[32];
    long long base = m4used();
    for (int i = 0; i < iters; i++) {
        K v = ktn(KJ, 1 + i % 64);
        for (long long j = 0; j < v->n; j++) kJ(v)[j] = i + j;
        snprintf(name, sizeof name, "sym_%d", i % 1000);
        char *s = qshim_ss(name);
        if (i < 1000) interned[id][i] = s;
        K l = knk(3, kj(i), kf(i * 0.5), kp(name));
        K keys = ktn(KS, 1);
        kS(keys)[0] = s;
        K d = xD(keys, knk(1, r1(shared)));
        K b = b9(3, d);
        K back = d9(b);
        if (!back || back->t != XD || kK(kK(back)[1])[0]->n != shared->n) bad[id]++;
        r1(shared);
        r0(shared);
        r0(back);
        r0(b);
        r0(d);
        r0(l);
        r0(v);
    }
    leftover[id] = m4used() - base;
    m9(); /* [cclient] "m9() should be called when the thread is about to complete" */
    return 0;
}

static void *freer(void *a) {
    K *xs = a;
    for (int i = 0; i < 100; i++) r0(xs[i]);
    return 0;
}

static K made_elsewhere;
static void *maker(void *a) {
    made_elsewhere = ktn(KJ, 10);
    return 0;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 4;
    iters = argc > 2 ? atoi(argv[2]) : 100000;
    if (n > 16) n = 16;
    khp("", -1);
    setm(1);
    printf("ver=%d\n", ver());
    K a = ks("abc"), b = ks("abc");
    char buf[] = "abc";
    printf("ks_interns=%d\n", a->s == b->s && a->s == qshim_ss(buf) && a->s != buf);
    printf("sn_interns=%d\n", sn("abcdef", 3) == a->s);
    r0(a);
    r0(b);
    K v = ktn(KJ, 1);
    printf("fresh_attr_main=%d\n", v->a);
    r0(v);
    K x = kj(7), s1 = b9(3, x), s2 = b9(-1, x);
    printf("b9_3_hdr=%02x%02x%02x%02x\n", kG(s1)[0], kG(s1)[1], kG(s1)[2], kG(s1)[3]);
    printf("b9_m1_hdr=%02x%02x%02x%02x\n", kG(s2)[0], kG(s2)[1], kG(s2)[2], kG(s2)[3]);
    r0(x), r0(s1), r0(s2);

    shared = ktn(KJ, 7);
    pthread_t t[16];
    for (long i = 0; i < n; i++) pthread_create(&t[i], 0, worker, (void *)i);
    for (long i = 0; i < n; i++) pthread_join(t[i], 0);
    int mismatched = 0, badd9 = 0;
    long long left = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < 1000 && j < iters; j++) mismatched += interned[i][j] != interned[0][j];
        badd9 += bad[i];
        left += leftover[i];
    }
    printf("threads=%d iters=%d\n", n, iters);
    printf("shared_r_after=%d\n", shared->r);
    printf("interned_mismatch=%d\n", mismatched);
    printf("roundtrip_failures=%d\n", badd9);
    printf("thread_m4_leftover=%lld\n", left);
    r0(shared);

    pthread_t m;
    pthread_create(&m, 0, maker, 0);
    pthread_join(m, 0);
    printf("fresh_attr_thread=%d\n", made_elsewhere->a);
    long long b0 = m4used();
    r0(made_elsewhere); /* against the rule: freed on a thread that did not allocate it */
    printf("cross_thread_r0_m4_delta=%lld\n", m4used() - b0);
    /* and the other way: made on the main thread (its pool), r0'd on a worker */
    K mine[100];
    long long b1 = m4used();
    for (int i = 0; i < 100; i++) mine[i] = ktn(KJ, 100);
    pthread_t f;
    pthread_create(&f, 0, freer, mine);
    pthread_join(f, 0);
    /* > 0: the main thread still counts them: they went to the worker's pool instead */
    printf("main_pool_freed_elsewhere_leftover=%lld\n", m4used() - b1);
    printf("done=1\n");
    return 0;
}
