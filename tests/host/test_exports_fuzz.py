"""A seeded random fuzzer over every qprom_* export.

Each call gets random K objects: every atom and vector type, nulls and infinities of each,
general and nested lists, dictionaries, tables, keyed tables, (::), lambdas, empty and
long (10k) lists, long (100k) and non-UTF-8 symbols and strings; and, more often than
not, arguments shaped like the export's real ones (names from a small pool of valid
metric names, label values, numbers) so that calls reach the store, not only the type
checks. Every call must either succeed with the result type the export documents, or
fail with a `prom: ` message from src/error.rs (never `prom: internal error`, which is a
caught panic). Per call: argument refcounts unchanged (also nested ones), K memory of
this thread back where it was once the result is freed, no host violation.

    QPROM_FUZZ_CALLS=200000 QPROM_FUZZ_SEED=7 target/venv/bin/python -m pytest tests/host/test_exports_fuzz.py
    (default 20000 calls; 2000 under valgrind, i.e. in run.sh --valgrind / make test)
    QPROM_FUZZ_TRACE=/tmp/fuzz.log ...   # each call written (and flushed) before it runs

The counts (calls, ok, errors per message, per export) are printed at the end.
"""
from __future__ import annotations

import collections
import ctypes
import gc
import math
import os
import random
import re
import time
import uuid
from pathlib import Path

from qhost import QError

# 20000 by default; under valgrind (run.sh --valgrind, what `make test` runs: ~60x
# slower) 2000, unless QPROM_FUZZ_CALLS says otherwise.
UNDER_VALGRIND = "vgpreload" in os.environ.get("LD_PRELOAD", "")
CALLS = int(os.environ.get("QPROM_FUZZ_CALLS") or (2000 if UNDER_VALGRIND else 20000))
SEED = int(os.environ.get("QPROM_FUZZ_SEED", "20240611"))
TRACE = os.environ.get("QPROM_FUZZ_TRACE")

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = set(re.findall(r'c"(prom: [^"]*)"', (ROOT / "src/error.rs").read_text()))
INTERNAL = "prom: internal error"

# export -> (argument count, q type of a successful result; None = (::))
EXPORTS = {
    "qprom_create": (1, -11), "qprom_series": (4, -7), "qprom_inc": (3, None),
    "qprom_dec": (3, None), "qprom_set": (3, None), "qprom_obs": (3, None),
    "qprom_get": (2, -9), "qprom_del": (2, None), "qprom_render": (1, 10),
    "qprom_metrics": (1, 98), "qprom_meta": (1, 98), "qprom_limit": (1, None),
}
# how often each is called: the scrapes and limit take one argument and are costly
WEIGHTS = {"qprom_create": 10, "qprom_series": 10, "qprom_inc": 12, "qprom_dec": 6,
           "qprom_set": 8, "qprom_obs": 12, "qprom_get": 8, "qprom_del": 6,
           "qprom_render": 2, "qprom_metrics": 1, "qprom_meta": 1, "qprom_limit": 2}

ATOM_TYPES = "bgxhijefcspmdznuvt"
INT_TYPES = {"h": 16, "i": 32, "j": 64, "p": 64, "m": 32, "d": 32, "n": 64, "u": 32, "v": 32, "t": 32}
MTYPES = ["counter", "gauge", "histogram", "summary", "info"]
KEYS = ["name", "type", "help", "labels", "unit", "buckets", "quantiles", "maxAge",
        "ageBuckets", "limit"]


class Gen:
    def __init__(self, q, rng: random.Random):
        self.q, self.r = q, rng
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
            n = r.randrange(1, 20)
            return (self.prefix + "_" + "".join(r.choice("abc_:0")
                                                 for _ in range(n))).encode()
        if k < 76:                                   # arbitrary printable
            return bytes(r.randrange(32, 127) for _ in range(r.randrange(0, 12)))
        if k < 82:                                   # unicode
            return "".join(chr(r.choice([0xe9, 0x20ac, 0x1f600, 0x4e2d, 0x3b1]))
                           for _ in range(r.randrange(1, 5))).encode()
        if k < 92:                                   # not UTF-8
            return bytes(r.randrange(128, 256) for _ in range(r.randrange(1, 6))) + \
                r.choice([b"", b"x", b"\xc3"])
        if k < 97:                                   # NUL inside (strings only keep it)
            return b"a\x00b" if self.chance(0.5) else b"\x00"
        # long: 100k, valid name or garbage
        if self.chance(0.5):
            return (self.prefix + "_long_" + "a" * 100_000).encode()
        return bytes(r.randrange(1, 256) for _ in range(100_000))

    def sym(self):
        t = self.text().split(b"\x00")[0]           # a q symbol ends at its first NUL
        return self.q.s(t)

    def string(self):
        t = self.text()
        return self.q.c(t[:1]) if len(t) == 1 and self.chance(0.3) else self.q.string(t)

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
        if t in "ef" and isinstance(v, float) and math.isnan(v):
            return q.atom(t, v)
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

    def dict(self, depth=0):
        q, r = self.q, self.r
        n = r.randrange(0, 5)
        if self.chance(0.8):
            keys = q.syms([r.choice(KEYS + self.label_names) for _ in range(n)])
        else:
            keys = self.vector(r.choice("jsf"), n)
        if self.chance(0.6):
            vals = q.knk(*[self.any(depth + 1) for _ in range(n)])
        else:
            vals = self.vector(r.choice("sjfhc"), n)
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
            return q.vec("f", sorted(r.sample([0.1, 0.5, 1.0, 2.0, 5.0, 10.0], r.randrange(0, 4))))
        if mtype == "summary":
            return q.vec("f", sorted(r.sample([0.1, 0.5, 0.9, 0.99, 1.0], r.randrange(0, 4))))
        return q.identity()

    def aimed(self, export):
        """Arguments for one family of the pool, right more often than not."""
        q, r = self.q, self.r
        fits = {"qprom_inc": ("counter", "gauge"), "qprom_set": ("counter", "gauge"),
                "qprom_dec": ("gauge",), "qprom_obs": ("histogram", "summary")}.get(export)
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
        if export in ("qprom_inc", "qprom_dec", "qprom_set"):
            return [target, labels, self.good_number(mtype)]
        if export == "qprom_get":
            return [target, labels]
        if export == "qprom_del":
            return [nm, labels if self.chance(0.85) else q.identity()]
        return self.wild(export)

    def wild(self, export):
        """Arguments shaped like the export's, each drawn from wide ranges."""
        r = self.r
        if export == "qprom_create":
            return [self.definition()]
        if export == "qprom_series":
            return [self.name(), self.labels(), self.params(), self.numbers()]
        if export in ("qprom_inc", "qprom_dec", "qprom_set"):
            return [self.target(), self.labels(), self.value()]
        if export == "qprom_obs":
            return [self.target(), self.labels(), self.numbers()]
        if export == "qprom_get":
            return [self.target(), self.labels()]
        if export == "qprom_del":
            return [self.name(), self.labels() if self.chance(0.8) else self.q.identity()]
        if export == "qprom_render":
            return [r.choice([self.q.identity(), self.q.s("text"), self.q.s("openmetrics"),
                              self.q.string("openmetrics"), self.any()])]
        if export == "qprom_limit":
            return [r.choice([self.q.j(r.choice([3, 10, 100, 10_000, 0, -1])),
                              self.number(), self.any()])]
        return [self.any()]

    def args(self, export):
        k = self.r.randrange(100)
        if k < 6:                                    # anything at all
            return [self.any() for _ in range(EXPORTS[export][0])]
        if k < 75:
            args = self.aimed(export)
            if self.chance(0.15):                    # one argument replaced by anything
                args[self.r.randrange(len(args))] = self.any()
            return args
        return self.wild(export)


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


def test_fuzz_every_export(q, qprom, capsys):
    ext = qprom
    rng = random.Random(SEED)
    gen = Gen(q, rng)
    names = list(EXPORTS)
    weights = [WEIGHTS[n] for n in names]
    stats = collections.Counter()
    per_export = collections.defaultdict(collections.Counter)
    errors = collections.Counter()
    trace = open(TRACE, "w") if TRACE else None

    # the default series limit, to put back (the fuzzer sets it at random)
    probe = f"{gen.prefix}_limit_probe"
    ext.call("qprom_create", q.dict(q.syms(["name", "type"]), q.syms([probe, "gauge"])))
    m = ext.call("qprom_meta", None)
    default_limit = m["limit"][m["metric"].index(probe)]
    ext.call("qprom_del", probe, None)

    t0 = time.monotonic()
    # K objects kept by reference cycles of earlier tests must not be freed inside the
    # measured blocks: collect them now, and keep the cyclic collector off meanwhile
    # (the fuzzer makes no cycles; plain reference counting frees everything it makes)
    gc.collect()
    gc.disable()
    try:
        with q.no_k_leak():
            for i in range(CALLS):
                export = rng.choices(names, weights)[0]
                args = gen.args(export)
                desc = None
                if trace:
                    desc = f"{i} {export} " + " ".join(_describe(a) for a in args)
                    trace.write(desc + "\n")
                    trace.flush()
                nested = _trees(args)
                base = q.mem()
                try:
                    res = ext.call_k(export, *args)          # top-level refcounts checked
                except QError as e:
                    stats["error"] += 1
                    errors[e.msg] += 1
                    per_export[export]["error"] += 1
                    assert e.msg.startswith("prom: "), (i, export, e.msg)
                    assert e.msg in MESSAGES, (i, export, e.msg)
                    assert e.msg != INTERNAL, (i, export, desc or [_describe(a) for a in args])
                else:
                    stats["ok"] += 1
                    per_export[export]["ok"] += 1
                    want = EXPORTS[export][1]
                    got = None if res is None else res.t
                    assert got == want, (i, export, got, [_describe(a) for a in args])
                    if res is not None:
                        if export == "qprom_series":
                            gen.handles.append(res.py())
                            if len(gen.handles) > 200:
                                gen.handles = gen.handles[-100:]
                        elif export in ("qprom_get", "qprom_create"):
                            res.py()
                        res.free()
                stats["calls"] += 1
                assert q.mem() == base, (i, export, "K memory changed by the call",
                                         [_describe(a) for a in args])
                after = _trees(args)
                assert after == nested, (i, export, "nested refcounts changed")
                del args, nested, after
    finally:
        gc.enable()
        if trace:
            trace.close()
        elapsed = time.monotonic() - t0
        ext.call("qprom_limit", q.j(default_limit))
        # leave no fuzz families behind
        fams = ext.call("qprom_meta", None)["metric"]
        for f in fams:
            if f.startswith(gen.prefix):
                ext.call("qprom_del", q.s(f), None)
        with capsys.disabled():
            print(f"\nfuzz: seed {SEED}, {stats['calls']} calls"
                  f"{' (under valgrind)' if UNDER_VALGRIND else ''} in {elapsed:.1f}s: "
                  f"{stats['ok']} ok, {stats['error']} errors")
            for n in names:
                c = per_export[n]
                print(f"  {n:14} ok {c['ok']:6}  error {c['error']:6}")
            for msg, c in errors.most_common():
                print(f"  {c:6}  {msg}")

    assert stats["calls"] == CALLS
    # the fuzzer must reach the store, not just the type checks
    assert stats["ok"] > CALLS // 10
    deep = {"prom: unknown series", "prom: label count mismatch", "prom: too many series",
            "prom: counter increment must be >= 0", "prom: operation not supported by this metric type",
            "prom: metric exists with another type", "prom: buckets must be finite, sorted and unique"}
    if CALLS >= 5000:
        assert deep <= set(errors), deep - set(errors)
