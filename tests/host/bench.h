/* Shared by the host benchmarks (bench_export.c, bench_middleware.c): a clock, an error
 * check, and the median of five timed samples. */
#ifndef QPROM_BENCH_H
#define QPROM_BENCH_H
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "k.h"
#include "qshim.h" /* qshim_ss: k.h declares ss as returning char */

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

/* Exits with the q error a call left behind; frees a result. */
static void check(K r, const char *what) {
  const char *e = qshim_take_error();
  if (e) { fprintf(stderr, "bench: %s: %s\n", what, e); exit(1); }
  if (r) r0(r);
}

/* Median of five samples, each timing `n` runs of `step(arg)`; ns per run. */
static double median5(void (*step)(void *), void *arg, long n) {
  double s[5];
  for (int i = 0; i < 5; i++) {
    double t0 = now_ns();
    for (long j = 0; j < n; j++) step(arg);
    s[i] = (now_ns() - t0) / n;
  }
  for (int i = 0; i < 5; i++)
    for (int j = i + 1; j < 5; j++)
      if (s[j] < s[i]) { double t = s[i]; s[i] = s[j]; s[j] = t; }
  check(NULL, "run");
  return s[2];
}
#endif
