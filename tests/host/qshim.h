/* qshim.h: host-control API of libqshim.so, the stand-in for the q-only parts of
 * kdb+'s C API (see qshim.c). Included by qshim.c and by the C test extension;
 * the Python harness (qhost.py) binds the same functions with ctypes. */
#ifndef QSHIM_H
#define QSHIM_H
#ifndef KXVER
#define KXVER 3
#endif
#include "k.h"

/* Two fixes for KX's k.h (the copy shipped in the pykx wheel):
 * - it declares `extern char* sn(char*,int), ss(char*);`: the `*` binds to sn only, so ss
 *   is declared as returning `char` and every C call through that prototype truncates
 *   the interned pointer (crashes). Call ss through qshim_ss below instead.
 * - m4 (memory statistics, capiref "m4") is exported by libe.so but not declared. */
extern char *qshim_ss(char *) __asm__("ss");
extern K m4(int);

/* A q function implemented by the test: `k(0,name,...)` and `dot(f,args)` with f a
 * symbol `name` or a lambda made by qshim_lambda(name) land here. `args` is a general
 * list, borrowed. Return a new reference (the result), or a -128 error object from
 * qshim_error(), or 0 after calling krr(). */
typedef K (*qshim_fn)(void *ctx, const char *name, K args);

/* krr behaviour, see krr() in qshim.c. */
#define QSHIM_KRR_NULL 0   /* documented: record the message pointer, return 0 (default) */
#define QSHIM_KRR_OBJECT 1 /* record it and return a -128 error object */

int qshim_init(void);                 /* khp("",-1) + setm(1) + this thread is q's main thread; idempotent */
int qshim_is_main_thread(void);
int qshim_set_krr_mode(int mode);     /* returns the previous mode */

/* in-process evaluation */
int qshim_define(const char *name, qshim_fn fn, void *ctx); /* fn=0 removes; returns 1 if it replaced one */
void qshim_undefine_all(void);
K qshim_error(const char *msg);       /* -128 error object; the message is interned (lives forever) */
K qshim_lambda(const char *name);     /* a q function value (type 100) that dot() resolves to `name` */

/* calling an export the way q calls a 2: function */
K qshim_call(void *fn, int n, K *args, const char **err);

/* the sd1 event loop */
int qshim_poll(int timeout_ms);       /* one turn of q's main loop; returns callbacks run, -1 off main thread */
int qshim_sd1_count(void);
int qshim_sd1_fds(int *out, int max);
long long qshim_sd1_calls(void);      /* sd1 calls that registered a callback */
long long qshim_sd0_calls(void);
long long qshim_callbacks_run(void);
long long qshim_callback_errors(void);
const char *qshim_callback_last_error(void);

/* error indicator of the calling thread */
const char *qshim_take_error(void);   /* read and clear */
const char *qshim_peek_error(void);
long long qshim_krr_calls(void);      /* all threads, since load */

/* emulation contract breaches by the extension (see violation() in qshim.c) */
int qshim_violation_count(void);
const char *qshim_violation(int i);   /* first 64 kept */
void qshim_clear_violations(void);
#endif
