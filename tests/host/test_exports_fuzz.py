"""A seeded random fuzzer over every qprom_* export (all the .so defines).

Each call gets random K objects: every atom and vector type, nulls and infinities of each,
general and nested lists, dictionaries, tables, keyed tables, (::), lambdas, empty and
long (10k) lists, long (100k) and non-UTF-8 symbols and strings; and, more often than
not, arguments shaped like the export's real ones (names from a small pool of valid
metric names, label values, numbers, timestamps, handler names, middleware and listener
configurations, .z.ph requests, file paths, pushgateway URLs) so that calls reach the
store and the outputs, not only the type checks. Every call must either succeed with the
result type the export documents, or fail with a `prom: ` message from src/error.rs
(qprom_start also: the listener's own messages in src/http/mod.rs), never `prom: internal
error` (a caught panic). Per call: argument refcounts unchanged (nested ones too; the one
exception, checked exactly: qprom_start keeps one reference to its poll function until
qprom_stop), this thread's K memory back where it was once the result is freed, no host
violation.

Side effects stay inside the run:
* files: the test runs in a fresh temporary directory (cwd); every path given to
  qprom_write and qprom_sd_register resolves inside it (random text that would not is
  replaced before the call), and sd_register's result must lie inside it;
* network: qprom_push/qprom_push_delete only reach 127.0.0.1:<port> where <port> is held
  by a socket that is bound but never listens (connection refused at once, and no other
  process can take the port meanwhile); URLs that would go elsewhere are replaced;
* listener: qprom_start always gets port 0 and bind 127.0.0.1 (they end its
  configuration, so they win over any random entries); at most one runs (a second start
  gets `prom: listener already running`), qprom_stop is in the mix and ends each cycle;
  after each stop the poll function's reference and q's sd1 registration are back where
  they were, and at the end no listener thread is left.

No growth in memory: the calls run in cycles (QPROM_FUZZ_CYCLES, default 10): fresh random
calls, then REPLAYS cycles that each replay one seeded sequence. Each cycle ends by
emptying the registry (every family that was not there before the fuzzer began is
deleted with qprom_del; listener stopped, file_sd file removed, middleware off, default
series limit back) and must leave exactly the families it started with. The process RSS
after the first replayed (warm-up) cycle and after the last must be within RSS_BOUND,
malloc's bytes in use after the first cycle and the last within MALLOC_BOUND, and the RSS
growth over the whole run, less q's heap and malloc's arenas (resident by design, and
judged by the checks on K memory and MALLOC_BOUND), within RSS_BOUND_RUN (see there). The random
texts come from pools interned before the first cycle (q never frees a symbol, so fresh
random symbols would grow q's symbol table by design). Skipped under valgrind
(memcheck's leak check judges there), saying so.

    QPROM_FUZZ_CALLS=200000 QPROM_FUZZ_SEED=7 target/venv/bin/python -m pytest tests/host/test_exports_fuzz.py
    (default 20000 calls; 2000 under valgrind, i.e. in run.sh --valgrind / make test;
    make fuzz: 1,000,000)
    QPROM_FUZZ_TRACE=/tmp/fuzz.log ...   # each call written (and flushed) before it runs
    QPROM_FUZZ_LEAK_BYTES=100 ...        # self-check: malloc (and never free) 100 bytes
                                         # per call; the RSS checks must then fail
    QPROM_FUZZ_LEAK_MAPPED=100 ...       # self-check: 100 bytes per call kept in mappings
                                         # of their own; the whole-run check must fail
    QPROM_FUZZ_DIAG=1 ...                # RSS and malloc's bytes in use after each cycle,
                                         # and which mappings' RSS changed

The counts (calls, ok, errors per message, per export, RSS per cycle) are printed at the end.
"""
from __future__ import annotations

import collections
import ctypes
import gc
import math
import mmap
import os
import random
import re
import socket
import struct
import time
import uuid
import weakref
from pathlib import Path

import pytest
from qhost import QError, _sym_bytes

# 20000 by default; under valgrind (run.sh --valgrind, what `make test` runs: ~60x
# slower) 2000, unless QPROM_FUZZ_CALLS says otherwise.
UNDER_VALGRIND = "vgpreload" in os.environ.get("LD_PRELOAD", "")
CALLS = int(os.environ.get("QPROM_FUZZ_CALLS") or (2000 if UNDER_VALGRIND else 20000))
SEED = int(os.environ.get("QPROM_FUZZ_SEED", "20240611"))
TRACE = os.environ.get("QPROM_FUZZ_TRACE")
CYCLES = max(3, int(os.environ.get("QPROM_FUZZ_CYCLES") or 10))
REPLAYS = 4                 # the last 4 cycles replay one seeded sequence (see _plan)
REPLAY_CALLS = 20_000       # calls per replayed cycle at most
LEAK_BYTES = int(os.environ.get("QPROM_FUZZ_LEAK_BYTES") or 0)
LEAK_MAPPED = int(os.environ.get("QPROM_FUZZ_LEAK_MAPPED") or 0)

# Memory growth, measured after each cycle, once the registry is emptied and
# malloc_trim(0) has handed free pages back (so RSS follows the memory in use, not the
# allocator's high-water mark):
# * RSS_BOUND: process RSS (/proc/self/statm) over the replayed cycles. They run the very
#   same calls from the same emptied registry, so after the first of them (the warm-up)
#   nothing but a leak can make RSS grow; measured without one: -20 to +56 KiB. The calls
#   measured are those of the last 3 replays: 6,000 in the default run (2,000 per cycle),
#   60,000 in make fuzz (20,000 per cycle). A leak of L bytes per call adds about
#   L x 6,000 (resp. x 60,000): 100 B/call is 600 KB in the default run (2.3x the bound)
#   and 6 MB in make fuzz (23x); the smallest per-call leak that fails is 44 B/call
#   (default) and 4.4 B/call (make fuzz).
# * MALLOC_BOUND: bytes in use in malloc's arenas (mallinfo2: the extension's Rust
#   allocations, the host's, Python's larger objects) from the first cycle to the last,
#   fresh random cycles included. Hash maps and slot tables keep the capacity of the
#   largest cycle so far: measured +110 to +220 KiB in the default run, +233 KiB in make
#   fuzz. Over the 18,000 calls after cycle 1 of the default run the bound catches
#   58 B/call; over make fuzz's 846,667 it catches 1.2 B/call (100 B/call: +85 MB).
# * RSS_BOUND_RUN: RSS from the first cycle to the last, less what is resident by design
#   and bounded elsewhere, so that only memory that could leak unseen is judged:
#   - q's own heap (libe's m4: what its allocator holds from the OS, plus the resident
#     part of its first pool, which q holds from the start but touches only as big
#     objects need it). q keeps its high-water mark, and one cycle of make fuzz renders a
#     registry big enough to double it (+10 to +13 MiB, in one cycle, flat after). Every
#     call's K memory is checked to come back, and the whole run's too.
#   - malloc's arenas: the main one ([heap]) and the per-thread ones (64 MiB-aligned
#     reservations, see _malloc_arenas_rss). Free memory stays resident in a thread
#     arena: malloc_trim(0) releases only free chunks inside it, never its top, and
#     free() trims the top only above malloc's trim threshold (128 KiB, raised as far as
#     32 MiB once a large mmapped block has been freed). How many arenas the listener's
#     threads get depends on how often they contend, i.e. on the machine and its load:
#     +5 to +9 MiB once, in the cycle that first renders a big registry (traced with
#     QPROM_FUZZ_DIAG=1; +5.0, +5.1 and +7.0 MiB in three make fuzz runs here). What is *in
#     use* there is judged by MALLOC_BOUND.
#   The rest (Python's own arenas, thread stacks, malloc's mmapped chunks, any other
#   mapping) measured +8 to +12 KiB in make fuzz, so this one catches leaks the two
#   above miss (allocations with a mapping of their own, say) above ~5 B/call in make
#   fuzz, and gross ones in the default run. QPROM_FUZZ_LEAK_MAPPED=100 leaks that way
#   (100 bytes per call, in 64 KiB mappings of their own) and must fail here.
# QPROM_FUZZ_LEAK_BYTES=100 shows the first two checks failing on a malloc leak.
RSS_BOUND = 256 << 10
MALLOC_BOUND = 1 << 20
RSS_BOUND_RUN = 4 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")

ROOT = Path(__file__).resolve().parents[2]
Q_EPOCH_NS = 946_684_800 * 10**9          # 2000.01.01 (q's epoch) in unix nanoseconds


def _messages(path) -> set:
    """Every `c"prom: …"` literal of a Rust source file, unescaped."""
    lits = re.findall(r'c"((?:[^"\\]|\\.)*)"', (ROOT / path).read_text())
    return {re.sub(r"\\(.)", r"\1", m) for m in lits if m.startswith("prom: ")}


MESSAGES = _messages("src/error.rs")
# qprom_start returns the listener's own start errors (StartError in src/http/mod.rs) too
START_MESSAGES = _messages("src/http/mod.rs")
INTERNAL = "prom: internal error"
ERR_RUNNING = "prom: listener already running: .prom.stop[] first"

# export -> (argument count, q type of a successful result; None = (::)).
# Signatures and results as documented on each export in src/ffi/*.rs (and bound in
# q/prom.q). qprom_push/qprom_push_delete can only fail here (their gateway is a closed
# port).
EXPORTS = {
    # the store (src/ffi/exports.rs)
    "qprom_create": (1, -11), "qprom_series": (4, -7), "qprom_inc": (3, None),
    "qprom_dec": (3, None), "qprom_set": (3, None), "qprom_obs": (3, None),
    "qprom_get": (2, -9), "qprom_del": (2, None), "qprom_render": (1, (10, 4)),
    "qprom_metrics": (1, 98), "qprom_meta": (1, 98), "qprom_limit": (1, None),
    "qprom_updval": (3, None), "qprom_inc_ex": (4, None), "qprom_obs_ex": (4, None),
    # helpers and middleware (src/ffi/helpers.rs)
    "qprom_elapsed": (3, None), "qprom_set_now": (2, None), "qprom_mirror": (4, None),
    "qprom_middleware": (1, 99), "qprom_enter": (1, None), "qprom_request_ex": (7, None),
    # default hooks (src/ffi/instrument.rs)
    "qprom_peer": (4, None), "qprom_login": (2, None),
    "qprom_defaults": (3, 11), "qprom_request": (3, None), "qprom_conn": (1, None),
    "qprom_sample": (3, None),
    # files (src/ffi/outputs.rs)
    "qprom_write": (1, None), "qprom_sd_register": (3, 10), "qprom_sd_remove": (1, -1),
    # pushgateway (src/ffi/push.rs)
    "qprom_push": (3, None), "qprom_push_delete": (3, None),
    # listener and q-port scrapes (src/ffi/server.rs)
    "qprom_start": (2, -7), "qprom_stop": (1, None), "qprom_http": (1, 10),
    # .prom.init/.prom.stop and exporter.q's options (src/ffi/lifecycle.rs)
    "qprom_init": (5, 99), "qprom_restore": (1, 99), "qprom_hook_error": (1, None),
    "qprom_is_metrics": (1, -1), "qprom_path": (1, 10), "qprom_cli": (1, 99),
    # .prom.time/countErrors/trackInprogress around the user's function (src/ffi/helpers.rs);
    # before: the start (a long) for `time, (::) otherwise
    "qprom_around_before": (3, (None, -7)), "qprom_around_after": (6, None),
}
# How often each is called: the store's updates most (what q calls most); the scrapes,
# limit, files, push and the listener take more time or touch the outside, so less.
# qprom_start is rare (about 1 call in 240) and qprom_stop as frequent: a listener runs
# for a few hundred calls (and to the end of its cycle at most); a second start while it
# runs is refused, so at most one ever runs.
WEIGHTS = {"qprom_create": 10, "qprom_series": 10, "qprom_inc": 12, "qprom_dec": 6,
           "qprom_set": 8, "qprom_obs": 12, "qprom_get": 8, "qprom_del": 6,
           "qprom_render": 2, "qprom_metrics": 1, "qprom_meta": 1, "qprom_limit": 2,
           "qprom_updval": 8, "qprom_inc_ex": 4, "qprom_obs_ex": 4,
           "qprom_elapsed": 5, "qprom_set_now": 3, "qprom_mirror": 5, "qprom_middleware": 1,
           "qprom_enter": 3, "qprom_request_ex": 6, "qprom_defaults": 1, "qprom_request": 4,
           "qprom_conn": 3, "qprom_sample": 3, "qprom_write": 1, "qprom_sd_register": 2,
           "qprom_sd_remove": 1, "qprom_push": 1, "qprom_push_delete": 1,
           "qprom_start": 0.5, "qprom_stop": 0.5, "qprom_http": 1, "qprom_init": 1,
           "qprom_restore": 1, "qprom_hook_error": 1, "qprom_is_metrics": 1, "qprom_path": 0.5,
           "qprom_cli": 1, "qprom_around_before": 3, "qprom_around_after": 3, "qprom_peer": 2, "qprom_login": 2}
# With enough calls, each of these must succeed at least once (realistic arguments reach
# the success path), and each of these messages must show up (the deep checks are reached).
# qprom_init/qprom_restore need prom.q's 12 (defined;value) pairs, which random arguments
# never make: they are fuzzed for their refusals (tests/host/test_lifecycle.py has the rest).
NEVER_OK = {"qprom_push", "qprom_push_delete", "qprom_init", "qprom_restore"}
DEEP = {
    "prom: unknown series", "prom: label count mismatch", "prom: too many series",
    "prom: counter increment must be >= 0", "prom: operation not supported by this metric type",
    "prom: metric exists with another type", "prom: buckets must be finite, sorted and unique",
    "prom: start time must be a timestamp (.z.p)", "prom: created must be a timestamp or (::)",
    "prom: unknown configuration key", "prom: wrong type for a configuration key",
    "prom: file name must end in .prom (node_exporter reads only *.prom)",
    "prom: directory does not exist", "prom: file_sd target must be host:port (port 1-65535)",
    "prom: file_sd labels must be a dictionary of symbols or strings",
    "prom: push failed: connection refused", "prom: push job must be a non-empty symbol or string",
    "prom: push grouping must be a dictionary of symbols or strings, or (::)",
    'prom: push url must be a string or symbol like "http://host:port" (http only)',
    "prom: expected .z.ph's (requestText;headerDictionary)", ERR_RUNNING,
    "prom: poll callback must be a q function or (::)", "prom: value is null",
    "prom: text must be UTF-8 without NUL bytes",
    "prom: exemplar must be a non-empty dictionary of distinct label names to strings",
    "prom: exemplar labels exceed 128 characters",
    "prom: native histogram needs nativeSchema -4 to 8 or nativeFactor > 1, nativeZeroThreshold >= 0, "
    "nativeMaxBuckets 1 to 32768, nativeMinReset >= 0",
}

ATOM_TYPES = "bgxhijefcspmdznuvt"
INT_TYPES = {"h": 16, "i": 32, "j": 64, "p": 64, "m": 32, "d": 32, "n": 64, "u": 32, "v": 32, "t": 32}
MTYPES = ["counter", "gauge", "histogram", "summary", "info"]
KEYS = ["name", "type", "help", "labels", "unit", "buckets", "quantiles", "maxAge",
        "ageBuckets", "limit", "nativeSchema", "nativeFactor", "nativeZeroThreshold",
        "nativeMaxBuckets", "nativeMinReset"]
EXEMPLAR_NAMES = ["trace_id", "user", "function", "path", "1bad", "a b", ""]
HANDLERS = ["pg", "ps", "ph", "pp", "ws", "ts"]
CONNS = ["po", "pc", "wo", "wc"]
HTTP_KEYS = ["path", "workers", "maxInFlight", "timeout", "maxRequestBytes", "pollTimeout",
             "gzip", "processMetrics", "maxConnections", "tlsCertFile", "tlsKeyFile",
             "tlsClientCAFile", "tlsMinVersion", "basicAuthUsers"]
# a valid bcrypt hash (cost 4) of "pw", as htpasswd -nbB writes ($2y$ = $2b$)
BCRYPT_PW = "$2y$04$jDXhD9qA6L9kiCdn.MRC3eZBr12H2sxJbxCAU5StjrollXXpUnlVW"
MW_FLAGS = ["inflight", "sizes", "httpStatus", "user"]
INFO_KEYS = ["release", "version", "os", "cores", "licence_expiry"]
MEM_KEYS = ["used", "heap", "peak", "wmax", "mmap", "mphy", "syms", "symw"]
USERS = ["alice", "bob", "", "svc.feed", "é", "a b"]
FUNCTIONS = ["getTrades", ".u.upd", "f", ".q.show", ""]
POOL = 1024        # random texts of each kind (see Gen.__init__)


class Gen:
    def __init__(self, q, rng: random.Random, root: str, push_port: int):
        self.q, self.r = q, rng
        self.root = root                              # the run's directory (and cwd)
        self.push_port = push_port                    # bound, never listening: refused
        p = f"fz{SEED % 100000}"
        # family specs: name -> (type, label names); the fuzzer mostly keeps to them so
        # that calls get past the type and label checks into the store
        self.specs = {}
        for t in MTYPES:
            for k, labels in enumerate([[], ["a"], ["a", "b"]]):
                self.specs[f"{p}_{t}{k}" + ("_info" if t == "info" else "")] = (t, labels)
        # names that collide with the samples of the ones above, or need a unit
        for n, t in [(f"{p}_counter0_total", "gauge"), (f"{p}_histogram0_bucket", "counter"),
                     (f"{p}_summary1_count", "gauge"), (f"{p}_lat_seconds", "histogram"),
                     (f"{p}_info0", "gauge")]:
            self.specs[n] = (t, ["a"])
        self.names = list(self.specs)
        self.prefix = p
        self.label_names = ["a", "b", "c", "d", "le", "quantile", "__x", "1bad", "", "a-b"]
        self.label_values = ["x", "y", "z", "", "é", 'q"\\', "a\nb", "x" * 300]
        self.handles = []                            # ids from successful qprom_series
        # Random texts come from pools made (and interned as symbols) here, before the
        # warm-up cycle: q never frees a symbol, so a fresh random symbol per call would
        # grow q's symbol table through the run by design, hiding (or faking) a leak.
        r = rng
        self.pool_printable = [bytes(r.randrange(32, 127) for _ in range(r.randrange(0, 12)))
                               for _ in range(POOL)]
        self.pool_unicode = ["".join(chr(r.choice([0xe9, 0x20ac, 0x1f600, 0x4e2d, 0x3b1]))
                                     for _ in range(r.randrange(1, 5))).encode()
                             for _ in range(POOL)]
        self.pool_binary = [bytes(r.randrange(128, 256) for _ in range(r.randrange(1, 6)))
                            + r.choice([b"", b"x", b"\xc3"]) for _ in range(POOL)]
        self.pool_names = [(p + "_" + "".join(r.choice("abc_:0") for _ in range(r.randrange(1, 20))))
                           .encode() for _ in range(POOL)]
        self.pool_long = [(p + "_long_" + "a" * 100_000).encode()] + \
            [bytes(r.randrange(1, 256) for _ in range(100_000)) for _ in range(3)]
        fixed = [n.encode() for n in self.names] + [v.encode() for v in self.label_values] + \
            [x.encode() for x in MTYPES + KEYS + self.label_names + HANDLERS + CONNS + HTTP_KEYS
             + MW_FLAGS + INFO_KEYS + MEM_KEYS + USERS + FUNCTIONS]
        for b in (self.pool_printable + self.pool_unicode + self.pool_binary + self.pool_names
                  + self.pool_long + fixed + [f"s{i}".encode() for i in range(10_000)]):
            q.s(b.split(b"\x00")[0]).free()
        self.poll_hold = None                        # (poll function K, its refcount before start)
        self.safe_configs = weakref.WeakSet()        # qprom_start configs made by _start_dict

    # -------------------------------------------------------------- primitives --
    def chance(self, p):
        return self.r.random() < p

    def text(self) -> bytes:
        r = self.r
        k = r.randrange(100)
        if k < 30:
            return r.choice(self.names).encode()
        if k < 45:
            return r.choice(self.label_values).encode()
        if k < 52:
            return r.choice(MTYPES + KEYS + ["text", "openmetrics"]).encode()
        if k < 60:
            return r.choice(self.label_names).encode()
        if k < 68:                                   # random valid-looking metric name
            return r.choice(self.pool_names)
        if k < 76:                                   # arbitrary printable
            return r.choice(self.pool_printable)
        if k < 82:                                   # unicode
            return r.choice(self.pool_unicode)
        if k < 92:                                   # not UTF-8
            return r.choice(self.pool_binary)
        if k < 97:                                   # NUL inside (strings only keep it)
            return b"a\x00b" if self.chance(0.5) else b"\x00"
        # long: 100k, valid name or garbage
        return self.pool_long[0] if self.chance(0.5) else r.choice(self.pool_long[1:])

    def sym(self):
        t = self.text().split(b"\x00")[0]           # a q symbol ends at its first NUL
        return self.q.s(t)

    def string(self):
        t = self.text()
        return self.q.c(t[:1]) if len(t) == 1 and self.chance(0.3) else self.q.string(t)

    def textk(self, b):
        """Text as a symbol (mostly), a string, or a char atom when it is one byte."""
        k = self.r.randrange(10)
        if k < 6:
            return self.q.s(b.split(b"\x00")[0] if isinstance(b, bytes) else b)
        if k < 9 or len(_sym_bytes(b)) != 1:
            return self.q.string(b)
        return self.q.c(_sym_bytes(b))

    def atom_value(self, t):
        r = self.r
        if t in INT_TYPES:
            bits = INT_TYPES[t]
            hi = 2 ** (bits - 1) - 1
            return r.choice([None, hi, -hi, 0, 1, -1, 2, 10, hi - 1, -hi + 1,
                             r.randrange(-hi, hi), r.randrange(0, 1000)])
        if t in "ef":
            return r.choice([None, math.inf, -math.inf, float("nan"), -float("nan"), 0.0, -0.0,
                             1.0, 0.5, -2.5, 1e308 if t == "f" else 3e38, 5e-324 if t == "f" else 1e-45,
                             r.uniform(-1e6, 1e6), r.uniform(0, 1), float(r.randrange(0, 100))])
        if t == "z":
            return r.choice([None, math.inf, 0.0, r.uniform(-1e4, 1e4)])
        if t == "b":
            return r.choice([True, False])
        if t == "x":
            return r.randrange(256)
        if t == "c":
            return bytes([r.randrange(256)])
        if t == "g":
            return uuid.UUID(int=r.getrandbits(128)) if self.chance(0.8) else uuid.UUID(int=0)
        raise ValueError(t)

    def atom(self, t=None):
        q = self.q
        t = t or self.r.choice(ATOM_TYPES)
        if t == "s":
            return self.sym()
        v = self.atom_value(t)
        if v is None:
            return q.null(t)
        return q.atom(t, v)

    def length(self):
        r = self.r
        k = r.randrange(100)
        if k < 15:
            return 0
        if k < 60:
            return r.randrange(1, 4)
        if k < 97:
            return r.randrange(4, 40)
        return 10_000

    def vector(self, t=None, n=None):
        q, r = self.q, self.r
        t = t or r.choice(ATOM_TYPES)
        fixed = n is not None                        # the caller needs exactly n items
        n = self.length() if n is None else n
        if t == "s":
            if n > 100:
                return q.syms([f"s{i}" for i in range(n)])
            return q.syms([self.text().split(b"\x00")[0] for _ in range(n)])
        if t == "c":
            if fixed or self.chance(0.5):
                return q.string(bytes(r.randrange(256) for _ in range(n)))
            return q.string(self.text())
        if t in "ef" and n > 100:
            return q.vec(t, [r.uniform(-10, 10) for _ in range(n)])
        if t in INT_TYPES and n > 100:
            return q.vec(t, [r.randrange(-1000, 1000) for _ in range(n)])
        return q.vec(t, [self.atom_value(t) for _ in range(n)])

    def any(self, depth=0):
        """Any K object."""
        q, r = self.q, self.r
        k = r.randrange(100)
        if k < 30:
            return self.atom()
        if k < 55:
            return self.vector()
        if k < 62:
            return self.sym()
        if k < 68:
            return self.string()
        if k < 78 and depth < 3:
            return q.knk(*[self.any(depth + 1) for _ in range(r.randrange(0, 5))])
        if k < 86 and depth < 3:
            return self.dict(depth)
        if k < 90 and depth < 3:
            n = r.randrange(0, 4)
            cols = {f"c{i}": self.vector(n=n) for i in range(r.randrange(1, 3))}
            if self.chance(0.3):
                return q.keyed_table({"k": self.vector("s", n)}, cols)
            return q.table(cols)
        if k < 94:
            return q.identity()
        if k < 97:
            return q.lambda_("f")
        if k < 98:
            return q.error("fuzz")
        return q.knk()

    def dict(self, depth=0, keys_from=None):
        q, r = self.q, self.r
        n = r.randrange(0, 5)
        if self.chance(0.8):
            keys = q.syms([r.choice(keys_from or (KEYS + self.label_names)) for _ in range(n)])
        else:
            keys = self.vector(r.choice("jsf"), n)
        if self.chance(0.6):
            vals = q.knk(*[self.any(depth + 1) for _ in range(n)])
        else:
            vals = self.vector(r.choice("sjfhcb"), n)
        return q.dict(keys, vals)

    # --------------------------------------------------- shaped like the real args --
    def name(self):
        q, r = self.q, self.r
        k = r.randrange(100)
        if k < 60:
            return q.s(r.choice(self.names))
        if k < 75:
            return q.string(r.choice(self.names))
        if k < 85:
            return self.sym()
        return self.any()

    def target(self):
        q, r = self.q, self.r
        k = r.randrange(100)
        if k < 60:
            return self.name()
        if k < 85 and self.handles:
            h = r.choice(self.handles)
            return q.j(h) if self.chance(0.9) else q.i(h & 0x7FFFFFFF)
        if k < 92:
            return q.j(r.choice([0, -1, 1, 2 ** 32, 2 ** 32 + 1, r.getrandbits(63)]))
        return self.any()

    def label_value(self):
        q, r = self.q, self.r
        v = r.choice(self.label_values) if self.chance(0.85) else self.text()
        k = r.randrange(10)
        if k < 5:
            return q.s(v.split(b"\x00")[0] if isinstance(v, bytes) else v)
        if k < 8:
            return q.string(v)
        b = v.encode() if isinstance(v, str) else v
        return q.c(b[:1] or b"x") if len(b) <= 1 else q.string(b)

    def labels(self):
        q, r = self.q, self.r
        k = r.randrange(100)
        n = r.choice([0, 1, 1, 2, 2, 3])
        if k < 15:
            return q.identity()
        if k < 20:
            return q.knk()
        if k < 40:
            return self.label_value()
        if k < 55:
            vals = [r.choice(self.label_values) for _ in range(n)]
            return q.syms(vals)
        if k < 70:
            return q.knk(*[self.label_value() for _ in range(n)])
        if k < 88:
            names = r.sample(["a", "b", "c"], n) if self.chance(0.9) else \
                [r.choice(self.label_names) for _ in range(n)]
            if self.chance(0.5):
                vals = q.syms([r.choice(self.label_values) for _ in range(n)])
            else:
                vals = q.knk(*[self.label_value() for _ in range(n)])
            return q.dict(q.syms(names), vals)
        return self.any()

    def number(self):
        return self.atom(self.r.choice("hijef"))

    def numbers(self):
        q, r = self.q, self.r
        k = r.randrange(100)
        if k < 35:
            return self.number()
        if k < 60:
            t = r.choice("hijef")
            n = self.length()
            if self.chance(0.7) and n <= 100:           # mostly finite, non-null
                vals = [r.choice([0, 1, 2, 5, 7, 100]) if t in "hij" else r.uniform(-5, 50)
                        for _ in range(n)]
                return q.vec(t, vals)
            return self.vector(t, n)
        if k < 70:
            return q.knk(*[self.number() for _ in range(r.randrange(0, 4))])
        if k < 78:
            return q.identity()
        return self.any()

    def params(self):
        q, r = self.q, self.r
        k = r.randrange(100)
        if k < 45:
            return q.identity()
        if k < 60:
            return q.vec("f", sorted(r.uniform(0, 1) for _ in range(r.randrange(0, 5))))
        if k < 70:
            return q.vec("j", sorted(r.sample(range(100), r.randrange(0, 5))))
        return self.numbers()

    def value(self):
        return self.number() if self.chance(0.7) else self.any()

    def definition(self):
        q, r = self.q, self.r
        if self.chance(0.08):
            return self.any()
        mtype = r.choice(MTYPES)
        name = r.choice(self.names)
        if self.chance(0.15):                        # all-symbol values
            keys, vals = ["name", "type"], [name, mtype]
            if self.chance(0.5):
                keys.append("help"); vals.append("some help")
            if self.chance(0.5):
                keys.append("labels"); vals.append(r.choice(["a", "b"]))
            return q.dict(q.syms(keys), q.syms(vals))
        kv = {}
        if self.chance(0.95):
            kv["name"] = q.s(name) if self.chance(0.8) else self.name()
        if self.chance(0.95):
            kv["type"] = q.s(mtype) if self.chance(0.85) else self.any()
        if self.chance(0.4):
            kv["help"] = self.string() if self.chance(0.8) else self.any()
        if self.chance(0.6):
            n = r.choice([0, 1, 1, 2, 3])
            if self.chance(0.85):
                names = r.sample(["a", "b", "c"], n) if self.chance(0.85) else \
                    [r.choice(self.label_names) for _ in range(n)]
                kv["labels"] = q.syms(names) if self.chance(0.7) else \
                    q.knk(*[q.string(x) for x in names])
            else:
                kv["labels"] = self.any()
        if self.chance(0.1):
            kv["unit"] = q.s(r.choice(["seconds", "total", "", "bytes", "1"]))
        if self.chance(0.25):
            kv["buckets"] = self.params() if self.chance(0.6) else self.numbers()
        if self.chance(0.1):
            kv.update(self.native_keys())
        if self.chance(0.2):
            kv["quantiles"] = self.params()
        if self.chance(0.1):
            kv["maxAge"] = r.choice([q.n(r.choice([0, -1, 10 ** 9, 60 * 10 ** 9, 2 ** 62])),
                                     q.f(r.choice([0.001, 1.0, 600.0, -1.0, 1e12])),
                                     q.j(r.choice([1, 60, 0])), self.any()])
        if self.chance(0.1):
            kv["ageBuckets"] = r.choice([q.j(r.choice([1, 5, 1024, 0, 2000])), self.any()])
        if self.chance(0.1):
            kv["limit"] = r.choice([q.j(r.choice([1, 2, 5, 100, 0, -1])), self.any()])
        if self.chance(0.05):
            kv[r.choice(["bogus", "Name", ""])] = self.any()
        items = list(kv.items())
        if self.chance(0.2):
            r.shuffle(items)
        return q.dict(q.syms([k for k, _ in items]), q.knk(*[v for _, v in items]))

    # ------------------------------------------------------ aimed at one family --
    def good_labels(self, names):
        """Label values for a family with these label names, in any of the q forms."""
        q, r = self.q, self.r
        vals = [r.choice(self.label_values[:6]) for _ in names]
        k = r.randrange(100)
        if not names:
            return r.choice([q.identity(), q.knk(), q.syms([])])
        if len(names) == 1 and k < 30:
            return r.choice([q.s(vals[0]), q.string(vals[0])])
        if k < 50:
            return q.syms(vals)
        if k < 70:
            return q.knk(*[q.string(v) if self.chance(0.5) else q.s(v) for v in vals])
        pairs = list(zip(names, vals))
        r.shuffle(pairs)
        dv = q.syms([v for _, v in pairs]) if self.chance(0.5) else \
            q.knk(*[q.string(v) for _, v in pairs])
        return q.dict(q.syms([n for n, _ in pairs]), dv)

    def good_number(self, mtype):
        q, r = self.q, self.r
        t = r.choice("hijef")
        v = r.choice([0, 1, 2, 3, 10, 0.5, 2.25]) if mtype != "gauge" else \
            r.choice([0, 1, -1, 2.5, -7, 100, 0.125])
        if self.chance(0.04):                         # a counter going down
            v = -1
        if t in "hij":
            v = int(v)
        return q.atom(t, v)

    def good_obs(self):
        q, r = self.q, self.r
        k = r.randrange(10)
        if k < 4:
            return self.good_number("histogram")
        n = r.choice([0, 1, 2, 5, 20])
        t = r.choice("hijef")
        vals = [r.choice([0, 1, 2, 3, 7, 100]) for _ in range(n)]
        if k < 9:
            return q.vec(t, vals)
        return q.knk(*[q.atom(t, v) for v in vals])

    def good_params(self, mtype):
        q, r = self.q, self.r
        if self.chance(0.6):
            return q.identity()
        if mtype == "histogram":
            b = r.sample([0.1, 0.5, 1.0, 2.0, 5.0, 10.0], r.randrange(0, 4))
            if self.chance(0.15) and len(b) > 1:         # unsorted, or repeated
                return q.vec("f", sorted(b, reverse=True) if self.chance(0.5) else b[:1] * 2)
            return q.vec("f", sorted(b))
        if mtype == "summary":
            return q.vec("f", sorted(r.sample([0.1, 0.5, 0.9, 0.99, 1.0], r.randrange(0, 4))))
        return q.identity()

    def aimed(self, export):
        """Arguments for one family of the pool, right more often than not."""
        q, r = self.q, self.r
        if export not in STORE_AIMED:
            return self.aimed_other(export)
        fits = {"qprom_inc": ("counter", "gauge"), "qprom_set": ("counter", "gauge"),
                "qprom_dec": ("gauge",), "qprom_obs": ("histogram", "summary"),
                "qprom_inc_ex": ("counter",), "qprom_obs_ex": ("histogram",),
                "qprom_elapsed": ("histogram", "summary", "gauge"),
                "qprom_set_now": ("gauge",), "qprom_mirror": ("counter",),
                "qprom_around_before": ("histogram", "summary", "gauge", "counter"),
                "qprom_around_after": ("histogram", "summary", "gauge", "counter"),
                "qprom_updval": ("counter", "gauge", "histogram", "summary")}.get(export)
        pool = self.names
        if fits and self.chance(0.75):
            pool = [n for n in self.names if self.specs[n][0] in fits]
        name = r.choice(pool)
        mtype, names = self.specs[name]
        if self.chance(0.15):
            mtype = r.choice(MTYPES)
        if self.chance(0.1):
            names = r.choice([[], ["a"], ["a", "b"], ["b"], ["a", "b", "c"]])
        nm = q.s(name) if self.chance(0.8) else q.string(name)
        if export == "qprom_create":
            kv = {"name": nm, "type": q.s(mtype)}
            if self.chance(0.5):
                kv["help"] = q.string(r.choice(["", "help", 'with "quote" and \\ and \n']))
            if names or self.chance(0.3):
                kv["labels"] = q.syms(names) if self.chance(0.7) else q.knk(*[q.string(x) for x in names])
            if mtype == "histogram" and self.chance(0.5):
                kv["buckets"] = self.good_params("histogram")
            if mtype == "histogram" and self.chance(0.3):
                kv.update(self.native_keys())
            if mtype == "summary" and self.chance(0.5):
                kv["quantiles"] = self.good_params("summary")
            if mtype == "summary" and self.chance(0.2):
                kv["maxAge"] = r.choice([q.n(10 ** 9), q.j(60), q.f(0.5)])
                kv["ageBuckets"] = q.j(r.choice([1, 3, 5]))
            if self.chance(0.2):
                kv["limit"] = q.j(r.choice([1, 2, 3, 50]))
            return [q.dict(q.syms(list(kv)), q.knk(*kv.values()))]
        labels = self.good_labels(names)
        if export == "qprom_series":
            start = q.identity() if self.chance(0.5) else \
                (self.good_obs() if mtype in ("histogram", "summary") else self.good_number(mtype))
            return [nm, labels, self.good_params(mtype), start]
        target = nm
        if self.handles and self.chance(0.3):
            target, labels = q.j(r.choice(self.handles)), r.choice([q.identity(), q.knk()])
        if export == "qprom_obs":
            return [target, labels, self.good_obs()]
        if export in ("qprom_inc_ex", "qprom_obs_ex"):
            v = self.good_number("histogram" if export == "qprom_obs_ex" else "counter")
            return [target, labels, v, self.exemplar(good=0.8)]
        if export == "qprom_updval":
            # a series id or an unlabelled metric's name; the operation that fits the type
            op = ("obs" if mtype in ("histogram", "summary") else r.choice(UPDVAL_OPS[:3])) \
                if self.chance(0.85) else self.word(UPDVAL_OPS, good=0.7)
            if not isinstance(op, str):
                return [target, op, self.good_number(mtype)]
            return [target, q.s(op), self.good_obs() if op == "obs" else self.good_number(mtype)]
        if export in ("qprom_inc", "qprom_dec", "qprom_set"):
            return [target, labels, self.good_number(mtype)]
        if export == "qprom_get":
            return [target, labels]
        if export == "qprom_del":
            return [nm, labels if self.chance(0.85) else q.identity()]
        if export == "qprom_elapsed":
            return [target, labels, self.timestamp(good=0.9)]
        if export == "qprom_set_now":
            return [target, labels]
        if export == "qprom_around_before":
            return [self.word(AROUND, good=0.9), target, labels]
        if export == "qprom_around_after":
            state = q.j(r.randrange(0, 10 ** 12)) if self.chance(0.8) else r.choice([q.identity(), self.any()])
            return [self.word(AROUND, good=0.9), target, labels, state, self.boolean(good=0.9), self.boolean(good=0.9)]
        if export == "qprom_mirror":
            v = q.j(r.choice([0, 1, 5, 100, 2 ** 53 + 1, 2 ** 62])) if self.chance(0.6) else \
                self.good_number("counter")
            created = q.identity() if self.chance(0.6) else self.timestamp(good=0.9)
            return [target, labels, v, created]
        raise AssertionError(export)

    def wild(self, export):
        """Arguments shaped like the export's, each drawn from wide ranges."""
        q, r = self.q, self.r
        if export == "qprom_create":
            return [self.definition()]
        if export == "qprom_series":
            return [self.name(), self.labels(), self.params(), self.numbers()]
        if export in ("qprom_inc", "qprom_dec", "qprom_set"):
            return [self.target(), self.labels(), self.value()]
        if export == "qprom_obs":
            return [self.target(), self.labels(), self.numbers()]
        if export in ("qprom_inc_ex", "qprom_obs_ex"):
            return [self.target(), self.labels(), self.value(), self.exemplar(good=0.3)]
        if export == "qprom_updval":
            return [self.target(), self.word(UPDVAL_OPS, good=0.5),
                    self.numbers() if self.chance(0.3) else self.value()]
        if export == "qprom_get":
            return [self.target(), self.labels()]
        if export == "qprom_del":
            return [self.name(), self.labels() if self.chance(0.8) else q.identity()]
        if export == "qprom_render":
            return [r.choice([q.identity(), q.s("text"), q.s("openmetrics"), q.s("protobuf"),
                              q.string("openmetrics"), self.any()])]
        if export == "qprom_limit":
            return [r.choice([q.j(r.choice([3, 10, 100, 10_000, 0, -1])),
                              self.number(), self.any()])]
        if export == "qprom_elapsed":
            return [self.target(), self.labels(), self.timestamp(good=0.3)]
        if export == "qprom_set_now":
            return [self.target(), self.labels()]
        if export == "qprom_around_before":
            return [self.word(AROUND, good=0.5), self.target(), self.labels()]
        if export == "qprom_around_after":
            return [self.word(AROUND, good=0.5), self.target(), self.labels(), self.any(),
                    self.boolean(good=0.5), self.boolean(good=0.5)]
        if export == "qprom_mirror":
            return [self.target(), self.labels(), self.value(),
                    r.choice([q.identity(), self.timestamp(good=0.3), self.any()])]
        if export == "qprom_middleware":
            return [self.mw_config(good=0.3)]
        if export in ("qprom_enter", "qprom_conn"):
            return [self.word(HANDLERS if export == "qprom_enter" else CONNS, good=0.3)]
        if export == "qprom_request_ex":
            return [self.word(HANDLERS, good=0.5), self.timestamp(good=0.4), self.boolean(good=0.5),
                    self.size_arg(good=0.3), self.size_arg(good=0.3), self.user(good=0.3),
                    self.function(good=0.3)]
        if export == "qprom_request":
            return [self.word(HANDLERS, good=0.5), self.timestamp(good=0.4), self.boolean(good=0.5)]
        if export == "qprom_defaults":
            return [self.word(["standard", "kx", ""], good=0.5), self.defaults_params(good=0.3),
                    self.info(good=0.3)]
        if export == "qprom_sample":
            return [self.memory(good=0.3), r.choice([q.identity(), self.number(), self.any()]),
                    self.numbers()]
        if export == "qprom_write":
            return [self.path(good=0.3)]
        if export == "qprom_sd_register":
            return [self.path(good=0.3, directory=True), self.sd_target(good=0.3),
                    self.sd_labels(good=0.3)]
        if export in ("qprom_push", "qprom_push_delete"):
            return [self.push_url(good=0.3), self.push_job(good=0.3), self.push_grouping(good=0.3)]
        if export == "qprom_start":
            return [self.http_config(good=0.3), self.poll_fn(good=0.3)]
        if export == "qprom_http":
            return [self.http_request(good=0.3)]
        return [self.any() for _ in range(EXPORTS[export][0])]   # stop, sd_remove, metrics, meta

    def native_keys(self):
        """Native-histogram keys of .prom.create, valid more often than not."""
        q, r = self.q, self.r
        kv = {}
        if self.chance(0.5):
            kv["nativeSchema"] = q.j(r.choice([-4, 0, 3, 8, 9, -5]))
        if self.chance(0.4):
            kv["nativeFactor"] = q.f(r.choice([1.1, 2.0, 1.0, 0.5, 1.0027]))
        if self.chance(0.3):
            kv["nativeZeroThreshold"] = q.f(r.choice([0.0, 1e-9, -1.0]))
        if self.chance(0.3):
            kv["nativeMaxBuckets"] = q.j(r.choice([1, 4, 160, 0, 40000]))
        if self.chance(0.2):
            kv["nativeMinReset"] = r.choice([q.n(0), q.n(10 ** 9), q.f(-1.0), q.j(60)])
        return kv

    def exemplar(self, good):
        """An exemplar dictionary: label names to strings or symbols."""
        q, r = self.q, self.r
        if not self.chance(good):
            return r.choice([self.any(), q.dict(q.syms(["1bad"]), q.knk(q.string("x"))),
                             q.dict(q.syms(["a"]), q.knk(q.string("x" * 130))), q.knk()])
        names = r.sample(EXEMPLAR_NAMES[:4], r.randrange(1, 4))
        vals = [q.string(r.choice(["abc", "é" * 20, "", "t" * 40])) for _ in names]
        if self.chance(0.3):
            return q.dict(q.syms(names), q.syms([r.choice(["x", "y"]) for _ in names]))
        return q.dict(q.syms(names), q.knk(*vals))

    def args(self, export):
        k = self.r.randrange(100)
        if k < 6:                                    # anything at all
            args = [self.any() for _ in range(EXPORTS[export][0])]
        elif k < 75:
            args = self.aimed(export)
            if self.chance(0.15):                    # one argument replaced by anything
                args[self.r.randrange(len(args))] = self.any()
        else:
            args = self.wild(export)
        return self.contain(export, args)

    # ------------------------------------------- the other exports' arguments --
    # Each takes `good`: the chance of a well-formed value; otherwise a near miss or
    # anything at all.
    def aimed_other(self, export):
        q, r = self.q, self.r
        if export == "qprom_middleware":
            return [self.mw_config(good=0.9)]
        if export == "qprom_enter":
            return [self.word(HANDLERS, good=0.9)]
        if export == "qprom_conn":
            return [self.word(CONNS, good=0.9)]
        if export == "qprom_request_ex":
            return [self.word(HANDLERS, good=0.95), self.timestamp(good=0.95), self.boolean(good=0.95),
                    self.size_arg(good=0.9), self.size_arg(good=0.9, response=True),
                    self.user(good=0.9), self.function(good=0.9)]
        if export == "qprom_request":
            return [self.word(HANDLERS, good=0.95), self.timestamp(good=0.95), self.boolean(good=0.95)]
        if export == "qprom_defaults":
            return [self.word(["standard", "kx", ""], good=0.9), self.defaults_params(good=0.8),
                    self.info(good=0.9)]
        if export == "qprom_sample":
            return [self.memory(good=0.9), q.identity() if self.chance(0.3) else q.j(r.randrange(0, 10**6)),
                    q.vec(r.choice("jih"), [r.randrange(0, 50) for _ in range(2 if self.chance(0.9) else r.randrange(0, 4))])]
        if export == "qprom_write":
            return [self.path(good=0.9)]
        if export == "qprom_sd_register":
            return [self.path(good=0.9, directory=True), self.sd_target(good=0.85),
                    self.sd_labels(good=0.85)]
        if export in ("qprom_push", "qprom_push_delete"):
            return [self.push_url(good=0.85), self.push_job(good=0.9), self.push_grouping(good=0.85)]
        if export == "qprom_start":
            return [self.http_config(good=0.85), self.poll_fn(good=0.9)]
        if export == "qprom_http":
            return [self.http_request(good=0.9)]
        if export == "qprom_peer":
            return [self.word(CONNS, good=0.9), q.i(r.randrange(0, 1000)) if self.chance(0.9) else self.any(),
                    self.user(good=0.8), q.i(r.randrange(-2**31, 2**31)) if self.chance(0.8) else q.identity()]
        if export == "qprom_login":
            return [self.user(good=0.9), self.boolean(good=0.9)]
        return self.wild(export)

    def word(self, words, good):
        """One of `words` as a symbol or string, or (1 - good) a random text or anything."""
        if self.chance(good):
            return self.textk(self.r.choice(words))
        return self.sym() if self.chance(0.6) else self.any()

    def boolean(self, good):
        if self.chance(good):
            return self.q.b(self.chance(0.5))
        return self.r.choice([self.q.j(1), self.q.x(1), self.q.vec("b", [True]), self.any()])

    def now_ns(self):
        return time.time_ns() - Q_EPOCH_NS

    def timestamp(self, good):
        """A .z.p: recent, in the future, extreme, null, infinite; or another type."""
        q, r = self.q, self.r
        if self.chance(good):
            ago = r.choice([0, 1_000, 1_000_000, 250_000_000, 10 ** 10, 86_400 * 10 ** 9])
            return q.p(self.now_ns() - ago)
        k = r.randrange(100)
        if k < 15:
            return q.p(self.now_ns() + r.choice([10 ** 9, 10 ** 15]))       # future
        if k < 30:
            return q.null("p")
        if k < 45:
            return q.inf("p", neg=self.chance(0.5))
        if k < 60:
            return q.p(r.choice([0, 1, -1, -2 ** 63 + 2, 2 ** 63 - 2, -10 ** 18, 10 ** 18]))
        if k < 75:
            return r.choice([q.n(10 ** 9), q.j(self.now_ns()), q.atom("z", 9000.5), q.d(9000),
                             q.vec("p", [self.now_ns()])])
        return self.any()

    def size_arg(self, good, response=False):
        """request_ex's req/resp: a size, the object itself, or (::)."""
        q, r = self.q, self.r
        if not self.chance(good):
            return self.any()
        k = r.randrange(100)
        if k < 20:
            return q.identity()
        if k < 40:
            return r.choice([q.j(r.randrange(0, 10 ** 7)), q.i(r.randrange(0, 1000)), q.h(12),
                             q.null("j"), q.j(-1), q.inf("j")])
        if k < 60 and response:
            code = r.choice([b"200 OK", b"404 Not Found", b"500 Internal Server Error",
                             b"099 Odd", b"2000 Long", b"abc", b""])
            body = b"HTTP/1.1 " + code + b"\r\nContent-Length: 0\r\n\r\n"
            return q.string(body) if self.chance(0.7) else q.bytes_(body)
        if k < 60:
            return self.http_request(good=1.0)
        if k < 80:
            return q.string(self.text())
        return q.bytes_(bytes(r.randrange(256) for _ in range(r.randrange(0, 64))))

    def user(self, good):
        if self.chance(good):
            return self.q.identity() if self.chance(0.2) else self.textk(self.r.choice(USERS))
        return self.sym() if self.chance(0.5) else self.any()

    def function(self, good):
        if self.chance(good):
            return self.q.identity() if self.chance(0.3) else self.q.s(self.r.choice(FUNCTIONS))
        return self.sym() if self.chance(0.5) else self.any()

    def mw_config(self, good):
        """qprom_middleware's dictionary (or (::), or an empty or boolean-vector one)."""
        q, r = self.q, self.r
        if not self.chance(good):
            k = r.randrange(3)
            if k == 0:
                return self.dict(keys_from=MW_FLAGS + ["sizeBuckets", "buckets", "functions", "bogus"])
            return self.any()
        k = r.randrange(100)
        if k < 10:
            return q.identity()
        if k < 15:
            return q.dict(q.syms([]), q.knk())
        keys = r.sample(MW_FLAGS, r.randrange(0, 5))
        if k < 35:                                   # boolean vector values
            extra = [r.choice(["functions", "bogus", "buckets"])] if self.chance(0.1) else []
            keys = keys + extra
            return q.dict(q.syms(keys), q.vec("b", [self.chance(0.5) for _ in keys]))
        kv = {key: q.b(self.chance(0.6)) if self.chance(0.95) else q.j(1) for key in keys}
        if self.chance(0.3):
            kv["functions"] = r.choice([q.syms(r.sample(FUNCTIONS, r.randrange(0, 4))),
                                        q.s(r.choice(FUNCTIONS)), q.knk(q.string(b"f"), q.s("g")),
                                        q.j(1)])
        if self.chance(0.2):
            kv["sizeBuckets"] = r.choice([q.vec("f", [16.0, 1024.0]), q.vec("j", [1, 10, 100]),
                                          q.vec("f", [5.0, 1.0]), q.s("x"), q.f(64.0)])
        if self.chance(0.2):
            kv["buckets"] = r.choice([q.vec("f", [0.01, 0.1, 1.0]), q.vec("f", []),
                                      q.vec("f", [math.inf]), q.knk(q.f(0.5), q.j(1))])
        if self.chance(0.05):
            kv[r.choice(["bogus", "Inflight"])] = q.b(True)
        items = list(kv.items())
        r.shuffle(items)
        return q.dict(q.syms([k for k, _ in items]), q.knk(*[v for _, v in items]))

    def defaults_params(self, good):
        q, r = self.q, self.r
        if not self.chance(good):
            return self.dict(keys_from=["buckets", "quantiles", "maxAge", "bogus"]) \
                if self.chance(0.5) else self.any()
        k = r.randrange(100)
        if k < 50:
            return r.choice([q.knk(), q.identity()])
        kv = {}
        if self.chance(0.5):
            kv["buckets"] = r.choice([q.vec("f", [0.001, 0.01, 0.1, 1.0, 10.0]), q.vec("j", [1, 2]),
                                      q.vec("f", [1.0, 0.5]), q.f(0.5), q.s("x")])
        if self.chance(0.4):
            kv["quantiles"] = r.choice([q.vec("f", [0.5, 0.9, 0.99]), q.vec("f", [1.5]), q.vec("f", [])])
        if self.chance(0.3):
            kv["maxAge"] = r.choice([q.n(60 * 10 ** 9), q.f(600.0), q.j(0), q.s("x"), q.f(1e11)])
        return q.dict(q.syms(list(kv)), q.knk(*kv.values()))

    def info(self, good):
        """kdb_info's dictionary: release version os cores licence_expiry."""
        q, r = self.q, self.r
        if not self.chance(good):
            return self.dict(keys_from=INFO_KEYS + ["bogus"]) if self.chance(0.5) else self.any()
        keys = INFO_KEYS if self.chance(0.7) else r.sample(INFO_KEYS, r.randrange(0, 6))
        vals = [b"2024.05.31", b"4.1", b"l64", b"8", b"2027.01.01"]
        vals = [vals[INFO_KEYS.index(k)] for k in keys]
        k = r.randrange(100)
        if k < 60:
            return q.dict(q.syms(keys), q.knk(*[q.string(v) for v in vals]))
        if k < 80:
            return q.dict(q.syms(keys), q.syms([v.decode() for v in vals]))
        if k < 90:                                   # numbers (Item::Num): a small set
            return q.dict(q.syms(keys), q.vec("f", [r.choice([4.1, 8.0, 1.5]) for _ in keys]))
        return q.dict(q.syms(keys), q.knk(*[r.choice([q.s("x"), q.j(4), q.string(b"a\x00b"),
                                                      q.string(b"\xff"), self.any()]) for _ in keys]))

    def memory(self, good):
        """.Q.w[]: used heap peak wmax mmap mphy syms symw."""
        q, r = self.q, self.r
        if not self.chance(good):
            return self.dict(keys_from=MEM_KEYS) if self.chance(0.5) else self.any()
        keys = MEM_KEYS if self.chance(0.7) else r.sample(MEM_KEYS + ["other"], r.randrange(0, 9))
        k = r.randrange(100)
        if k < 60:
            return q.dict(q.syms(keys), q.vec("j", [r.randrange(0, 2 ** 40) for _ in keys]))
        if k < 80:
            return q.dict(q.syms(keys), q.knk(*[q.j(r.randrange(0, 2 ** 30)) for _ in keys]))
        return q.dict(q.syms(keys), q.knk(*[self.number() if self.chance(0.7) else self.any()
                                            for _ in keys]))

    def path(self, good, directory=False):
        """A file (or, for file_sd, a directory) inside the run's directory."""
        q, r = self.q, self.r
        root = self.root
        if not self.chance(good):
            return self.string() if self.chance(0.4) else self.any()
        ok = self.chance(0.75)                        # a usable path, or a near miss
        if directory:
            p = r.choice([root, root + "/", root + "/sub", "sub", ".", root + "/dir.prom"] if ok else
                          ["", root + "/missing", root + "/afile", root + "/" + "d" * 300])
        else:
            p = r.choice([root + "/out.prom", "out.prom", "sub/x.prom", root + "/sub/y.prom",
                          root + "/é.prom", "./a b.prom"] if ok else
                         [root + "/missing/x.prom", root + "/afile/x.prom", root + "/x.txt",
                          root + "/.prom", root + "/sub/", root + "/dir.prom", "",
                          root + "/" + "n" * 300 + ".prom"])
        if self.chance(0.3):
            p = ":" + p                               # `:/dir/x.prom, q's file symbol
        return q.s(p) if self.chance(0.5) else q.string(p)

    def sd_target(self, good):
        q, r = self.q, self.r
        if not self.chance(good):
            return self.sym() if self.chance(0.5) else self.any()
        t = r.choice(["127.0.0.1:9612", "host:1", "h.example:65535", "[::1]:9090", "é:80"]
                     if self.chance(0.75) else
                     ["h:0", "h:65536", ":80", "h", "a b:1", "h:+80", "::1:80", "h/x:80"])
        return q.s(t) if self.chance(0.5) else q.string(t)

    def sd_labels(self, good):
        q, r = self.q, self.r
        if not self.chance(good):
            return self.dict(keys_from=["env", "__x", "1a", "a-b", "job"]) if self.chance(0.5) else self.any()
        k = r.randrange(100)
        if k < 25:
            return r.choice([q.identity(), q.dict(q.syms([]), q.knk())])
        names = r.sample(["env", "dc", "role"] if self.chance(0.75) else
                         ["env", "dc", "__meta", "1bad", "env", "a-b"], r.randrange(1, 4))
        vals = [r.choice(["prod", "", 'q"\\', "é", "a\nb"]) for _ in names]
        if k < 60:
            return q.dict(q.syms(names), q.syms(vals))
        return q.dict(q.syms(names), q.knk(*[q.string(v) if self.chance(0.5) else q.s(v) for v in vals]))

    def push_url(self, good):
        q, r = self.q, self.r
        if not self.chance(good):
            return self.string() if self.chance(0.4) else self.any()
        hp = f"127.0.0.1:{self.push_port}"
        u = r.choice([f"http://{hp}", hp, f"HTTP://{hp}/", f"http://{hp}/prefix/path", f"http://{hp}//"]
                     if self.chance(0.75) else
                     [f"https://{hp}", f"ftp://{hp}", "", "/", "http://", "http:///x", f"http://{hp}/a b",
                      f"http://{hp}/x?y#z"])
        return q.s(u) if self.chance(0.5) else q.string(u)

    def push_job(self, good):
        q, r = self.q, self.r
        if not self.chance(good):
            return self.sym() if self.chance(0.5) else self.any()
        return self.textk(r.choice(["batch", "a/b", "é x", "job%41", "j" * 300] if self.chance(0.85) else [""]))

    def push_grouping(self, good):
        q, r = self.q, self.r
        if not self.chance(good):
            return self.dict(keys_from=["instance", "path", "a"]) if self.chance(0.5) else self.any()
        k = r.randrange(100)
        if k < 30:
            return r.choice([q.identity(), q.dict(q.syms([]), q.knk())])
        names = r.sample(["instance", "path", "empty", "z"], r.randrange(1, 4))
        vals = [r.choice(["eod", "a/b c", "", "é", "%"]) for _ in names]
        if k < 60:
            return q.dict(q.syms(names), q.syms(vals))
        return q.dict(q.syms(names), q.knk(*[q.string(v) if self.chance(0.5) else q.s(v) for v in vals]))

    def http_config(self, good):
        """qprom_start's configuration. Always a dictionary ending in port 0 and bind
        127.0.0.1 (see contain): random entries before them vary the rest."""
        q, r = self.q, self.r
        kv = []
        if self.chance(good):
            for key in r.sample(HTTP_KEYS, r.randrange(0, 4)):
                ok = self.chance(0.85)                # a valid value, or a near miss
                v = {"path": lambda: q.s(r.choice(["/metrics", "/", "/a/b-c_d.~"] if ok else
                                                  ["metrics", "/a b", "/é", "/" + "p" * 300])),
                     "workers": lambda: q.j(r.choice([1, 2, 4] if ok else [0, 65, -1])),
                     "maxInFlight": lambda: q.j(r.choice([0, 1, 3] if ok else [-1])),
                     "timeout": lambda: r.choice([q.n(10 ** 9), q.f(0.5), q.j(2)] if ok else
                                                 [q.n(0), q.f(-1.0), q.s("x")]),
                     "maxRequestBytes": lambda: q.j(r.choice([8192, 512] if ok else [511, 0])),
                     "pollTimeout": lambda: r.choice([q.n(10 ** 8), q.f(1.0)] if ok else
                                                     [q.f(math.inf), q.null("n")]),
                     "gzip": lambda: q.b(self.chance(0.5)) if ok else q.j(1),
                     "processMetrics": lambda: q.b(self.chance(0.5)) if ok else q.s("x"),
                     "maxConnections": lambda: q.j(r.choice([1, 256, 65536] if ok else [0, 65537, -1])),
                     # no certificate exists in the run's directory: every tls* start fails,
                     # with the message of the first problem met
                     "tlsCertFile": lambda: q.string(b"cert.pem") if ok else q.s(":"),
                     "tlsKeyFile": lambda: q.s(":key.pem") if ok else q.j(1),
                     "tlsClientCAFile": lambda: q.string(b"ca.pem") if ok else q.string(b""),
                     "tlsMinVersion": lambda: q.s(r.choice(["TLS12", "TLS13"] if ok else ["TLS11", ""])),
                     "basicAuthUsers": lambda: q.dict(
                         q.syms([r.choice(["prometheus", "a"]) if ok else r.choice(["", "a:b"])]),
                         q.knk(q.string(BCRYPT_PW if ok else r.choice(["pw", BCRYPT_PW[:-1], "$2x$04$" + BCRYPT_PW[7:]])))),
                     }[key]()
                kv.append((key, v))
            if self.chance(0.05):
                kv.append((r.choice(["bogus", "Port"]), q.j(1)))
        else:
            for _ in range(r.randrange(0, 4)):
                kv.append((r.choice(HTTP_KEYS + ["port", "bind", "bogus"]), self.any()))
        return self._start_dict(kv)

    def _start_dict(self, kv):
        q = self.q
        bind = q.s("127.0.0.1") if self.chance(0.5) else q.string(b"127.0.0.1")
        kv = kv + [("port", q.j(0)), ("bind", bind)]
        d = q.dict(q.syms([k for k, _ in kv]), q.knk(*[v for _, v in kv]))
        self.safe_configs.add(d)
        return d

    def poll_fn(self, good):
        q = self.q
        if self.chance(good):
            return q.identity() if self.chance(0.5) else q.lambda_("fuzz.on_poll")
        return self.any()

    def http_request(self, good):
        """.z.ph's argument: (requestText;headerDictionary)."""
        q, r = self.q, self.r
        if not self.chance(good):
            k = r.randrange(3)
            if k == 0:
                return q.knk(self.any(), self.any())
            if k == 1:
                return q.knk(*[self.any() for _ in range(r.randrange(0, 4))])
            return self.any()
        text = r.choice([b"GET /metrics HTTP/1.1", b"metrics", b"", b"GET / HTTP/1.0", b"\xff"])
        names, vals = [], []
        if self.chance(0.7):
            names.append(r.choice(["Accept", "accept", "ACCEPT"]))
            vals.append(r.choice(["application/openmetrics-text; version=1.0.0", "text/plain",
                                  "*/*", "", "application/openmetrics-text;version=0.0.1"]))
        if self.chance(0.6):
            names.append(r.choice(["Accept-Encoding", "accept-encoding"]))
            vals.append(r.choice(["gzip", "identity", "gzip, deflate", "", "br"]))
        if self.chance(0.3):
            names.append("Host")
            vals.append("localhost:5000")
        k = r.randrange(100)
        if k < 50:
            hdr = q.dict(q.syms(names), q.knk(*[q.string(v) for v in vals]))
        elif k < 80:
            hdr = q.dict(q.syms(names), q.syms(vals))
        elif k < 90:
            hdr = q.dict(q.syms(names), q.knk(*[r.choice([q.j(1), q.string(v), q.s(v)]) for v in vals]))
        else:
            hdr = r.choice([q.identity(), q.knk(), self.any()])
        parts = [q.string(text) if self.chance(0.9) else q.s(text.split(b"\x00")[0]), hdr]
        if self.chance(0.05):
            parts.append(q.j(1))                     # a third item is ignored
        return q.knk(*parts)

    # ---------------------------------------------------------- containment --
    def contain(self, export, args):
        """Replaces an argument that could reach outside the run (a path outside its
        directory, a URL to anywhere but the closed port, a listener config not ending in
        port 0 and 127.0.0.1) by a realistic one. Everything else is left as drawn."""
        if export == "qprom_write" and not self._path_inside(args[0]):
            args[0] = self.path(good=1.0)
        elif export == "qprom_sd_register" and not self._path_inside(args[0]):
            args[0] = self.path(good=1.0, directory=True)
        elif export in ("qprom_push", "qprom_push_delete") and not self._url_closed(args[0]):
            args[0] = self.push_url(good=1.0)
        elif export == "qprom_start" and args[0].t in (99, 101) and args[0] not in self.safe_configs:
            args[0] = self.http_config(good=0.85)
        return args

    @staticmethod
    def _text(k):
        """The bytes a text argument gives the extension (symbol, string, char), or None."""
        t = k.t
        if t == -11:
            return _sym_bytes(k.py())
        if t in (10, -10):
            return k.py()
        return None

    def _path_inside(self, k) -> bool:
        b = self._text(k)
        if b is None:
            return True                               # not text: refused
        try:
            s = b.decode("utf-8")
        except UnicodeDecodeError:
            return True                               # refused (not UTF-8)
        if "\x00" in s:
            return True                               # refused (NUL)
        s = s[1:] if s.startswith(":") else s        # q's `:path (textfile::q_path)
        p = os.path.normpath(os.path.join(self.root, s))   # relative: against the cwd
        return p == self.root or p.startswith(self.root + os.sep)

    def _url_closed(self, k) -> bool:
        """As push.rs's base_url: refused, or http://127.0.0.1:<the closed port>[/...]."""
        b = self._text(k)
        if b is None:
            return True
        try:
            u = b.decode("utf-8")
        except UnicodeDecodeError:
            return True
        if "\x00" in u:
            return True
        i = u.find("://")
        if i >= 0:
            if u[:i].encode().lower() != b"http":
                return True                           # other scheme: refused
            u = u[i + 3:]
        u = u.rstrip("/")
        if not u or u.startswith("/"):
            return True                               # refused
        hp = f"127.0.0.1:{self.push_port}"
        return u == hp or u.startswith(hp + "/")


STORE_AIMED = {"qprom_create", "qprom_series", "qprom_inc", "qprom_dec", "qprom_set",
               "qprom_obs", "qprom_get", "qprom_del", "qprom_elapsed", "qprom_set_now",
               "qprom_mirror", "qprom_around_before", "qprom_around_after", "qprom_updval",
               "qprom_inc_ex", "qprom_obs_ex"}
AROUND = ["time", "countErrors", "trackInprogress"]
# .prom.updval's operations, as q/prom.q names : + - , (and a wrong one, rarely)
UPDVAL_OPS = ["set", "add", "sub", "obs"]


def _tree(p, out, depth=0):
    """Refcounts of every object inside an argument (general lists, dicts, tables)."""
    if not p or depth > 6:
        return
    out.append((p, ctypes.c_int32.from_address(p + 4).value))
    t = ctypes.c_int8.from_address(p + 2).value
    if t in (0, 99):
        n = ctypes.c_int64.from_address(p + 8).value
        if n <= 64:
            for i in range(n):
                _tree(ctypes.c_void_p.from_address(p + 16 + 8 * i).value, out, depth + 1)
    elif t == 98:
        _tree(ctypes.c_void_p.from_address(p + 8).value, out, depth + 1)


def _trees(args):
    out = []
    for a in args:
        _tree(a.ptr, out)
    return out


def _describe(k, depth=0) -> str:
    """A short text of an argument, for the trace and failure messages."""
    try:
        t = k.t
        if t == -11 or t == 10:
            v = k.py()
            v = v if isinstance(v, (str, bytes)) else str(v)
            return f"{t}:{v[:40]!r}{'...' if len(v) > 40 else ''}"
        if t < 0 or t == 101:
            return f"{t}:{k.py()!r}"
        if t in (0, 99, 98):
            return f"{t}[n={k.n if t != 98 else '?'}]"
        return f"{t}[n={k.n}]"
    except Exception as e:  # noqa: BLE001
        return f"?({e})"


def _defined_exports(path) -> set:
    """The qprom_* functions an ELF64 shared object defines (its .dynsym)."""
    data = Path(path).read_bytes()
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    secs = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    out = set()
    for _n, typ, _f, _a, off, size, link, _i, _al, entsize in secs:
        if typ != 11:                                 # SHT_DYNSYM
            continue
        stroff = secs[link][4]
        for j in range(size // entsize):
            st_name, _info, _other, shndx, _v, _s = struct.unpack_from("<IBBHQQ", data, off + j * entsize)
            name = data[stroff + st_name:data.index(b"\0", stroff + st_name)].decode()
            if shndx and name.startswith("qprom_"):
                out.add(name)
    return out


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def _malloc_in_use() -> int:
    """Bytes in use in malloc's arenas (mallinfo2's uordblks). Allocations above malloc's
    mmap threshold get mappings of their own and are left out: q's heap is one (libe
    takes its pool from malloc, 16 MiB at a time plus 1 MiB of its own); they show in RSS."""
    return _libc.mallinfo2().uordblks


def _k_heap(q) -> int:
    """Bytes q's allocator (libe's m4: used, heap, peak) holds from the OS."""
    from qhost import K
    with K(q, q.shim.m4(0)) as m:
        return m.py()[1]


def _k_pool_rss(q) -> int:
    """Resident bytes of the mapping holding q's first pool (found by a small K's
    address). Its size is in _k_heap from the start, but its pages become resident only
    as big K objects first touch them: +10 MiB in one cycle of make fuzz, then flat."""
    k = q.j(1)
    with open("/proc/self/smaps") as f:
        inside = False
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
            if m:
                inside = int(m[1], 16) <= k.ptr < int(m[2], 16)
            elif inside and line.startswith("Rss:"):
                return int(line.split()[1]) << 10
    return 0


def _rss_by_mapping() -> dict:
    """RSS (KiB) per mapped file / [heap] / [stack] / anon, the largest few."""
    out = collections.Counter()
    with open("/proc/self/smaps") as f:
        name = None
        for line in f:
            head = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                name = os.path.basename(head[5]) if len(head) > 5 else "anon"
            elif head[0] == "Rss:":
                out[name] += int(head[1])
    return dict(out.most_common(4))


HEAP_MAX = 64 << 20     # glibc's HEAP_MAX_SIZE on 64-bit (2 x DEFAULT_MMAP_THRESHOLD_MAX)


def _malloc_arenas_rss() -> int:
    """Resident bytes of malloc's arenas: the main one ([heap]) and each thread arena's
    heap. glibc reserves a thread heap as HEAP_MAX bytes aligned to HEAP_MAX and makes
    the used front read-write: an anonymous rw mapping at an aligned address, followed by
    the PROT_NONE rest up to the next HEAP_MAX boundary (or HEAP_MAX bytes all rw)."""
    maps = []                                   # (start, end, perms, name, rss)
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
            if m:
                maps.append([int(m[1], 16), int(m[2], 16), head[1], head[5] if len(head) > 5 else "", 0])
            elif head[0] == "Rss:":
                maps[-1][4] = int(head[1]) << 10
    total = 0
    for i, (start, end, perms, name, rss) in enumerate(maps):
        if name == "[heap]":
            total += rss
        elif name == "" and perms.startswith("rw") and start % HEAP_MAX == 0:
            nxt = maps[i + 1] if i + 1 < len(maps) else None
            if end - start == HEAP_MAX or (nxt and nxt[0] == end and nxt[2].startswith("---")
                                           and nxt[3] == "" and nxt[1] == start + HEAP_MAX):
                total += rss
    return total


def _smaps() -> dict:
    """{(start address, name): (size KiB, Rss KiB)} of every mapping."""
    out = {}
    with open("/proc/self/smaps") as f:
        key = None
        for line in f:
            head = line.split()
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
            if m:
                key = (head[0], head[5] if len(head) > 5 else "anon")
                size = (int(m[2], 16) - int(m[1], 16)) >> 10
            elif head[0] == "Rss:":
                out[key] = (size, int(head[1]))
    return out


def _smaps_delta(a: dict, b: dict, n=8) -> str:
    """The n mappings whose RSS changed most from snapshot a to b (QPROM_FUZZ_DIAG)."""
    d = []
    for k in set(a) | set(b):
        ra = a.get(k, (0, 0))[1]
        rb = b.get(k, (0, 0))[1]
        if ra != rb:
            d.append((rb - ra, k, a.get(k), b.get(k)))
    d.sort(key=lambda x: -abs(x[0]))
    return f"total {sum(x[0] for x in d):+} KiB: " + "; ".join(f"{x[1][1]}@{x[1][0]} {x[0]:+} ({x[2]}->{x[3]})" for x in d[:n])


def _rest(rss, kheap, arenas) -> int:
    """RSS growth from the first cycle to the last that RSS_BOUND_RUN judges (see there)."""
    return (rss[-1] - rss[0]) - (kheap[-1] - kheap[0]) - (arenas[-1] - arenas[0])


def _plan() -> list:
    """[(calls, replay?)] per cycle: CYCLES - REPLAYS cycles of fresh random calls, then
    REPLAYS cycles that each replay the same seeded calls (REPLAY_CALLS, or fewer in a
    short run). Sums to CALLS."""
    length = min(REPLAY_CALLS, CALLS // CYCLES)
    fresh = CALLS - REPLAYS * length
    k = CYCLES - REPLAYS
    return [(fresh * (c + 1) // k - fresh * c // k, False) for c in range(k)] + [(length, True)] * REPLAYS


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_every_export_is_fuzzed(qprom):
    assert _defined_exports(qprom.path) == set(EXPORTS)
    assert set(WEIGHTS) == set(EXPORTS)


def test_sd_register_same_file_by_another_name(q, qprom, tmp_path, monkeypatch):
    """Registering the same target again, with the directory spelled `.` first and as
    an absolute path second: the file must still be there (and sd_remove must find it).
    Found by the fuzzer: sd_register compared the two spellings and removed "the old
    file", i.e. the one it had just written."""
    root = os.path.realpath(tmp_path)
    monkeypatch.chdir(root)
    ext = qprom
    try:
        p1 = ext.call("qprom_sd_register", q.string(b"."), q.s("127.0.0.1:9612"), None)
        assert os.path.isfile(p1)
        p2 = ext.call("qprom_sd_register", q.string(root.encode()), q.s("127.0.0.1:9612"), None)
        assert p2 == f"{root}/qprom-127.0.0.1-9612.json".encode()
        assert os.path.isfile(p2), os.listdir(root)
    finally:
        removed = ext.call("qprom_sd_remove", None)
    assert removed is True


class Run:
    """Counts, and the checks that span calls (the listener's poll function, sd1)."""

    def __init__(self, q, ext, gen):
        self.q, self.ext, self.gen = q, ext, gen
        self.stats = collections.Counter()
        self.per_export = collections.defaultdict(collections.Counter)
        self.errors = collections.Counter()
        self.slowest = collections.Counter()          # export -> longest call (s)
        self.sd1_base = q.sd1_count()
        self.listener = None                          # port of the running listener
        self.released = None
        self.sd_file = None                           # the file_sd file registered last

    def after_sd_register(self, path):
        """The file is written, inside the run (whatever the spelling of its directory,
        see test_sd_register_same_file_by_another_name)."""
        p = os.path.realpath(path)
        assert p.startswith(self.gen.root + os.sep), ("file_sd file outside the run", path)
        assert os.path.isfile(p), ("qprom_sd_register: the file it returned is missing", path)
        self.sd_file = path

    def after_start(self, port, args):
        """A listener runs on 127.0.0.1:port; a poll function was kept (r1) by it."""
        assert 0 < port < 65536
        self.listener = port
        fn = args[1]
        if 100 <= fn.t <= 112 and fn.t != 101:
            self.gen.poll_hold = (fn, fn.r - 1)
            assert self.q.sd1_count() == self.sd1_base + 1

    def after_stop(self):
        """Stopped: the poll function's reference released, its fd off q's loop, the port
        closed (connection refused)."""
        if self.gen.poll_hold is not None:
            fn, r = self.gen.poll_hold
            assert fn.r == r, ("qprom_stop: poll function refcount", fn.r, r)
            self.released = fn                        # freed after the call's memory check
            self.gen.poll_hold = None
        assert self.q.sd1_count() == self.sd1_base
        if self.listener is not None:
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", self.listener), timeout=2).close()
            self.listener = None

    def call(self, i, export, args, trace):
        q, ext = self.q, self.ext
        desc = None
        if trace:
            desc = f"{i} {export} " + " ".join(_describe(a) for a in args)
            trace.write(desc + "\n")
            trace.flush()
        nested = _trees(args)
        # qprom_sd_remove gives 1b when the file registered last was there to remove
        sd_expect = self.sd_file is not None and os.path.isfile(self.sd_file)
        base = q.mem()
        t0 = time.perf_counter()
        ok = False
        try:
            # qprom_start keeps a reference to its poll function: checked below instead
            res = ext.call_k(export, *args, check_refs=export != "qprom_start")
        except QError as e:
            self.stats["error"] += 1
            self.errors[e.msg] += 1
            self.per_export[export]["error"] += 1
            self.per_export[export][e.msg] += 1
            assert e.msg != INTERNAL, (i, export, desc or [_describe(a) for a in args])
            assert e.msg in MESSAGES or (export == "qprom_start" and e.msg in START_MESSAGES), \
                (i, export, e.msg)
        else:
            ok = True
            self.stats["ok"] += 1
            self.per_export[export]["ok"] += 1
            want = EXPORTS[export][1]
            got = None if res is None else res.t
            assert got == want or (isinstance(want, tuple) and got in want), \
                (i, export, got, [_describe(a) for a in args])
            if res is not None:
                v = res.py()
                if export == "qprom_series":
                    self.gen.handles.append(v)
                    if len(self.gen.handles) > 200:
                        self.gen.handles = self.gen.handles[-100:]
                elif export == "qprom_middleware":
                    assert list(v) == ["inflight", "sizes", "any"] and \
                        all(isinstance(x, bool) for x in v.values()), v
                elif export == "qprom_sd_register":
                    self.after_sd_register(v.decode("utf-8", "surrogateescape"))
                elif export == "qprom_sd_remove":
                    assert v == sd_expect, ("qprom_sd_remove", v, self.sd_file)
                    self.sd_file = None
                elif export == "qprom_start":
                    self.after_start(v, args)
                res.free()
            if export == "qprom_stop":
                self.after_stop()
        self.slowest[export] = max(self.slowest[export], time.perf_counter() - t0)
        self.stats["calls"] += 1
        assert q.mem() == base, (i, export, "K memory changed by the call", [_describe(a) for a in args])
        after = _trees(args)
        if ok and export == "qprom_start" and self.gen.poll_hold is not None:
            fn = self.gen.poll_hold[0].ptr           # exactly one reference more, kept
            nested = [(p, r + 1 if p == fn else r) for p, r in nested]
        assert after == nested, (i, export, "nested refcounts changed")
        self.released = None
        if LEAK_BYTES:                                # self-check of the RSS bound
            ctypes.memset(_libc.malloc(LEAK_BYTES), 1, LEAK_BYTES)
        if LEAK_MAPPED:                               # self-check of the whole-run bound
            _leak_mapped(LEAK_MAPPED)


_leaked_maps, _leak_pending = [], 0


def _leak_mapped(n: int):
    """Keep n more bytes in anonymous 64 KiB mappings of their own, touched, never
    unmapped (the self-check of RSS_BOUND_RUN: neither malloc nor q would see them)."""
    global _leak_pending
    _leak_pending += n
    while _leak_pending >= 1 << 16:
        m = mmap.mmap(-1, 1 << 16)
        m.write(b"\1" * (1 << 16))
        _leaked_maps.append(m)
        _leak_pending -= 1 << 16


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(f, ctypes.c_size_t) for f in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]


_libc = ctypes.CDLL(None)
_libc.malloc.restype = ctypes.c_void_p
_libc.malloc.argtypes = [ctypes.c_size_t]
_libc.mallinfo2.restype = _Mallinfo2


def _reset(q, ext, run, keep, default_limit):
    """End of a cycle: listener stopped, file_sd file removed, middleware off, the default
    series limit back, and every family that was not there before the run deleted.
    Returns how many families were deleted."""
    ext.call("qprom_stop", q.identity())
    run.after_stop()
    run.released = None
    ext.call("qprom_sd_remove", q.identity())
    run.sd_file = None
    ext.call("qprom_middleware", q.identity())
    ext.call("qprom_limit", q.j(default_limit))
    fams = ext.call("qprom_meta", q.identity())["metric"]
    gone = [f for f in fams if f not in keep]
    for f in gone:
        ext.call("qprom_del", q.s(f), q.identity())
    assert set(ext.call("qprom_meta", q.identity())["metric"]) == keep
    return len(gone)


def test_fuzz_every_export(q, qprom, tmp_path, monkeypatch, capsys):
    ext = qprom
    root = os.path.realpath(tmp_path)
    monkeypatch.chdir(root)                           # relative paths land here
    for d in ("sub", "dir.prom"):
        os.mkdir(os.path.join(root, d))
    Path(root, "afile").write_bytes(b"")
    # the pushgateway: a port held by a socket that is bound but never listens
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    rng = random.Random(SEED)
    gen = Gen(q, rng, root, closed.getsockname()[1])
    ext.call("qprom_stop", q.identity())            # nothing of an earlier test running
    ext.call("qprom_sd_remove", q.identity())
    threads0 = _threads()
    run = Run(q, ext, gen)
    names = list(EXPORTS)
    weights = [WEIGHTS[n] for n in names]
    trace = open(TRACE, "w") if TRACE else None

    # the default series limit, to put back (the fuzzer sets it at random)
    probe = f"{gen.prefix}_limit_probe"
    ext.call("qprom_create", q.dict(q.syms(["name", "type"]), q.syms([probe, "gauge"])))
    m = ext.call("qprom_meta", None)
    default_limit = m["limit"][m["metric"].index(probe)]
    ext.call("qprom_del", probe, None)
    # qprom_http registers the process_* families once per process and keeps them: do it
    # before taking the set of families to keep, so that the cycles never delete them
    ext.call("qprom_http", q.knk(q.string(b"GET /metrics HTTP/1.1"), q.dict(q.syms([]), q.knk())))
    keep = set(ext.call("qprom_meta", None)["metric"])

    t0 = time.monotonic()
    plan = _plan()
    rss, deleted, kheap, in_use, arenas, maps = [], [], [], [], [], []
    # K objects kept by reference cycles of earlier tests must not be freed inside the
    # measured blocks: collect them now, and keep the cyclic collector off meanwhile
    # (the fuzzer makes no cycles; plain reference counting frees everything it makes)
    gc.collect()
    gc.disable()
    failed = True
    i = 0
    try:
        with q.no_k_leak():
            for n, replay in plan:
                if replay:                            # the same calls again, from the same state
                    gen.r = random.Random(SEED * 1_000_003 + 1)
                    gen.handles = []
                for _ in range(n):
                    export = gen.r.choices(names, weights)[0]
                    run.call(i, export, gen.args(export), trace)
                    i += 1
                deleted.append(_reset(q, ext, run, keep, default_limit))
                _libc.malloc_trim(0)                  # free pages back: RSS ~ memory in use
                rss.append(_rss())
                kheap.append(_k_heap(q) + _k_pool_rss(q))
                in_use.append(_malloc_in_use())
                arenas.append(_malloc_arenas_rss())
                if os.environ.get("QPROM_FUZZ_DIAG"):
                    maps.append(_smaps())
                    print(f"cycle {len(rss)} mapping delta vs previous: {_smaps_delta(maps[-2] if len(maps) > 1 else maps[-1], maps[-1])}")
                    print(f"cycle {len(rss)} mapping delta vs cycle 1: {_smaps_delta(maps[0], maps[-1])}")
                    print(f"cycle {len(rss)}: {n} calls{' (replay)' if replay else ''}, "
                          f"RSS {rss[-1] >> 10} KiB, malloc in use {in_use[-1] >> 10} KiB, "
                          f"malloc's own mappings {_libc.mallinfo2().hblkhd >> 10} KiB, "
                          f"q's heap {kheap[-1] >> 10} KiB, RSS by mapping (KiB) {_rss_by_mapping()}")
        failed = False
    finally:
        gc.enable()
        if trace:
            trace.close()
        elapsed = time.monotonic() - t0
        # leave nothing behind: no listener, no file_sd file, middleware off, the limit,
        # no family of the run (after a failure: as far as it goes, the failure shown)
        try:
            _reset(q, ext, run, keep, default_limit)
        except Exception:
            if not failed:
                raise
        finally:
            closed.close()
        stats, per_export = run.stats, run.per_export
        first = len(plan) - REPLAYS                   # index of the replays' warm-up cycle
        with capsys.disabled():
            print(f"\nfuzz: seed {SEED}, {stats['calls']} calls"
                  f"{' (under valgrind)' if UNDER_VALGRIND else ''} in {elapsed:.1f}s: "
                  f"{stats['ok']} ok, {stats['error']} errors; {len(run.errors)} distinct messages")
            print(f"  cycles (calls): {' '.join(str(n) + ('r' if r else '') for n, r in plan)}"
                  f" (r: replay); families deleted after each: {' '.join(map(str, deleted))}")
            for n in names:
                c = per_export[n]
                print(f"  {n:18} ok {c['ok']:7}  error {c['error']:7}  slowest {run.slowest[n] * 1e3:7.1f} ms")
            for msg, c in run.errors.most_common():
                print(f"  {c:7}  {msg}")
            if rss:
                print("  RSS after each cycle (MiB): " + " ".join(f"{x / 2**20:.2f}" for x in rss))
            if UNDER_VALGRIND:
                print("  RSS checks skipped under valgrind (memcheck's leak check judges instead)")
            elif len(rss) == len(plan):
                span = sum(n for n, _ in plan[first + 1:])
                print(f"  RSS replays: warm-up (after cycle {first + 1}) {rss[first] / 2**20:.2f} MiB,"
                      f" end {rss[-1] / 2**20:.2f} MiB, growth {(rss[-1] - rss[first]) / 2**10:+.0f} KiB"
                      f" over {span} calls (bound {RSS_BOUND >> 10} KiB: a leak of"
                      f" {RSS_BOUND / span:.1f} B/call or more fails)")
                span = sum(n for n, _ in plan[1:])
                print(f"  malloc in use: after cycle 1 {in_use[0] / 2**20:.2f} MiB, end {in_use[-1] / 2**20:.2f} MiB,"
                      f" growth {(in_use[-1] - in_use[0]) / 2**10:+.0f} KiB over {span} calls"
                      f" (bound {MALLOC_BOUND >> 10} KiB: {MALLOC_BOUND / span:.1f} B/call or more fails)")
                print(f"  RSS whole run: after cycle 1 {rss[0] / 2**20:.2f} MiB, end {rss[-1] / 2**20:.2f} MiB,"
                      f" growth {(rss[-1] - rss[0]) / 2**10:+.0f} KiB, of which q's heap"
                      f" {(kheap[-1] - kheap[0]) / 2**10:+.0f} KiB (held + first pool resident: {kheap[0] >> 20} -> {kheap[-1] >> 20} MiB),"
                      f" malloc's arenas resident {(arenas[-1] - arenas[0]) / 2**10:+.0f} KiB ({arenas[0] >> 20} -> {arenas[-1] >> 20} MiB);"
                      f" the rest {_rest(rss, kheap, arenas) / 2**10:+.0f} KiB"
                      f" (bound {RSS_BOUND_RUN >> 10} KiB: a leak of {RSS_BOUND_RUN / span:.1f} B/call or more fails)")

    assert stats["calls"] == CALLS
    # no listener thread left behind (bounded wait: a joined thread leaves /proc shortly)
    end = time.monotonic() + 5
    while _threads() > threads0 and time.monotonic() < end:
        time.sleep(0.01)
    assert _threads() <= threads0, (threads0, _threads())
    if not UNDER_VALGRIND:
        first = len(plan) - REPLAYS
        over = []                                     # every check that fails, not the first only
        if rss[-1] - rss[first] > RSS_BOUND:
            over.append(f"RSS grew by {(rss[-1] - rss[first]) >> 10} KiB over the replays of one cycle")
        if in_use[-1] - in_use[0] > MALLOC_BOUND:
            over.append(f"malloc's bytes in use grew by {(in_use[-1] - in_use[0]) >> 10} KiB from the first cycle to the last")
        if _rest(rss, kheap, arenas) > RSS_BOUND_RUN:
            over.append(f"RSS grew by {(rss[-1] - rss[0]) >> 10} KiB from the first cycle to the last, "
                        f"q's heap by {(kheap[-1] - kheap[0]) >> 10} KiB, malloc's arenas by "
                        f"{(arenas[-1] - arenas[0]) >> 10} KiB: the rest {_rest(rss, kheap, arenas) >> 10} KiB")
        assert not over, "; ".join(over)
    # the fuzzer must reach the store, not just the type checks
    assert stats["ok"] > CALLS // 10
    if CALLS >= 5000:
        assert DEEP <= set(run.errors), DEEP - set(run.errors)
        never = {n for n in EXPORTS if per_export[n]["ok"] == 0} - NEVER_OK
        assert not never, f"never succeeded: {sorted(never)}"
        for n in NEVER_OK & {"qprom_push", "qprom_push_delete"}:   # as far as the network
            assert per_export[n]["prom: push failed: connection refused"] > 0, n
