"""qhost: drive a kdb+ extension (.so) without q, through KX's libe.so and libqshim.so.

Load order (see README.md): libqshim.so RTLD_GLOBAL first (it pulls in libe.so as its
DT_NEEDED dependency, so the global scope gets [libqshim, libe] in that order), then the
extension RTLD_NOW|RTLD_LOCAL: its undefined q API references bind to the shim's q-only
entry points (krr, k, dot, sd1, ...) and to libe.so for the rest (ktn, ks, r0, ...).

    q = Host.get()                      # the process-wide host (main thread = q's)
    ext = q.load("target/host/libfake_ext.so")
    assert ext.call("fake_inc", q.j(41)) == 42
    with pytest.raises(QError, match="^prom: bad$"):
        ext.call("fake_inc", q.f(1.0))

K values: every constructor returns a `K` that owns one reference and r0's it when the
wrapper is garbage-collected (or on .free()); containers built from K wrappers take
their own references (r1), so Python ownership stays ordinary. Do not let a K made on
one thread be dropped on another (libe frees into the calling thread's pool).
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import math
import os
import struct
import threading
import traceback
import uuid
from ctypes import (POINTER, c_char_p, c_double, c_int, c_int8, c_int32, c_int64,
                    c_longlong, c_uint8, c_void_p)
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET = ROOT / os.environ.get("TARGET_DIR", "target")   # an absolute TARGET_DIR wins
DEFAULT_SHIM = TARGET / "host/libqshim.so"
DEFAULT_EXT = TARGET / "l64/libqprom.so"

# --------------------------------------------------------------------------- types --

KB, UU, KG, KH, KI, KJ, KE, KF, KC, KS = 1, 2, 4, 5, 6, 7, 8, 9, 10, 11
KP, KM, KD, KZ, KN, KU, KV, KT = 12, 13, 14, 15, 16, 17, 18, 19
XT, XD, ERR = 98, 99, -128

# q type letters (as in `$` casts / .Q.t) to type codes
LETTERS = {"b": KB, "g": UU, "x": KG, "h": KH, "i": KI, "j": KJ, "e": KE, "f": KF,
           "c": KC, "s": KS, "p": KP, "m": KM, "d": KD, "z": KZ, "n": KN, "u": KU,
           "v": KV, "t": KT}
# struct format of one item, per type (guid and symbol handled apart)
FMT = {KB: "B", KG: "B", KH: "h", KI: "i", KJ: "q", KE: "f", KF: "d", KC: "c",
       KP: "q", KM: "i", KD: "i", KZ: "d", KN: "q", KU: "i", KV: "i", KT: "i"}
WIDTH = {t: struct.calcsize(f) for t, f in FMT.items()} | {UU: 16, KS: 8}

# nulls and infinities, as k.h defines them (nh wh ni wi nj wj nf) and q prints them
NH, WH = -0x8000, 0x7FFF
NI, WI = -0x80000000, 0x7FFFFFFF
NJ, WJ = -0x8000000000000000, 0x7FFFFFFFFFFFFFFF
NF = struct.unpack("<d", bytes.fromhex("000000000000f8ff"))[0]   # q's 0n: 0xfff8000000000000
NE = struct.unpack("<f", bytes.fromhex("0000c0ff"))[0]           # 0Ne: 0xffc00000
_INT_NULL = {KH: NH, KI: NI, KJ: NJ, KP: NJ, KM: NI, KD: NI, KN: NJ, KU: NI, KV: NI, KT: NI}
_INT_INF = {KH: WH, KI: WI, KJ: WJ, KP: WJ, KM: WI, KD: WI, KN: WJ, KU: WI, KV: WI, KT: WI}


def typecode(t) -> int:
    """'j' / 7 / -7 -> 7."""
    if isinstance(t, str):
        return LETTERS[t]
    return abs(int(t))


def null_of(t):
    """The null of type t as a Python value (what `K.py()` gives back for it)."""
    t = typecode(t)
    if t in _INT_NULL:
        return _INT_NULL[t]
    if t in (KF, KZ):
        return NF
    if t == KE:
        return NE
    if t == KS:
        return ""
    if t == KC:
        return b" "
    if t == UU:
        return uuid.UUID(int=0)
    if t in (KB, KG):
        return 0
    raise ValueError(f"no null for type {t}")


def inf_of(t, neg=False):
    t = typecode(t)
    if t in _INT_INF:
        return -_INT_INF[t] if neg else _INT_INF[t]
    if t in (KE, KF, KZ):
        return -math.inf if neg else math.inf
    raise ValueError(f"no infinity for type {t}")


def _sym_str(b: bytes) -> str:
    # symbols are bytes in q; decode losslessly (non-UTF-8 bytes survive a round trip)
    return b.decode("utf-8", "surrogateescape")


def _sym_bytes(s) -> bytes:
    if isinstance(s, bytes):
        return s
    return s.encode("utf-8", "surrogateescape")


# ----------------------------------------------------------------- errors, markers --

class QError(Exception):
    """A q error signalled by an export (krr / orr / a returned -128 object)."""

    def __init__(self, msg):
        self.msg = msg if isinstance(msg, str) else _sym_str(msg or b"")
        super().__init__(self.msg)


class HostViolation(AssertionError):
    """The extension broke the embedding contract (see qshim.c: violation())."""


class ErrorValue(str):
    """A -128 error object met while decoding (py() of an error object)."""


class Table(dict):
    """A q table, decoded as {column: [values]}."""

    def rows(self):
        cols = list(self)
        return [dict(zip(cols, vals)) for vals in zip(*self.values())]


class KeyedTable:
    def __init__(self, keys: Table, values: Table):
        self.keys, self.values = keys, values

    def __eq__(self, other):
        return isinstance(other, KeyedTable) and (self.keys, self.values) == (other.keys, other.values)

    def __repr__(self):
        return f"KeyedTable({self.keys!r}, {self.values!r})"


class Function:
    """A q function value (types 100..112): opaque here."""

    def __init__(self, t):
        self.t = t

    def __repr__(self):
        return f"Function(type {self.t})"


IDENTITY = None  # (::) decodes to None


# ------------------------------------------------------------------------ K wrapper --

class K:
    """One owned reference to a K object (r0 on free()/garbage collection)."""

    __slots__ = ("ptr", "host", "__weakref__")

    def __init__(self, host: "Host", ptr: int, owned: bool = True):
        if not ptr:
            raise ValueError("null K")
        self.host = host
        self.ptr = ptr if owned else host._r1(ptr)

    # header fields ([cclient "The K object structure"]: m a t u r, then the union)
    @property
    def t(self) -> int:
        return c_int8.from_address(self.ptr + 2).value

    @property
    def r(self) -> int:
        """The reference count (0 = one owner)."""
        return c_int32.from_address(self.ptr + 4).value

    @property
    def a(self) -> int:
        return c_int8.from_address(self.ptr + 1).value

    @property
    def n(self) -> int:
        return c_int64.from_address(self.ptr + 8).value

    def py(self):
        return self.host.py(self)

    def b9(self, mode=3) -> bytes:
        return self.host.b9(self, mode)

    def free(self):
        if self.ptr:
            p, self.ptr = self.ptr, 0
            self.host._r0(p)

    def __del__(self):
        try:
            if self.ptr:
                self.free()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.free()

    def __repr__(self):
        return f"K(t={self.t}, r={self.r}, 0x{self.ptr:x})"


class _U(ctypes.Structure):
    _fields_ = [("g", c_uint8 * 16)]


_HOOK = ctypes.CFUNCTYPE(c_void_p, c_void_p, c_char_p, c_void_p)


# ------------------------------------------------------------------------ extension --

class Extension:
    """A loaded extension: call its exports as q calls 2: functions."""

    def __init__(self, host: "Host", path):
        self.host = host
        self.path = Path(path).resolve()
        # RTLD_NOW: a q API symbol neither the shim nor libe defines fails here, by name
        self.lib = ctypes.CDLL(str(self.path), mode=os.RTLD_NOW | os.RTLD_LOCAL)
        self._fns = {}

    def fn(self, name) -> int:
        if name not in self._fns:
            self._fns[name] = ctypes.cast(getattr(self.lib, name), c_void_p).value
        return self._fns[name]

    def call_k(self, name, *args, check_refs=True) -> K | None:
        """Call `name` with K args; return the result as an owned K (None for (K)0
        without error). Raises QError for an error (krr, or a -128 object returned).

        Each argument is held by one extra reference for the call, as q holds its
        arguments (e.g. by a variable), and its count must be the same after the call
        (arguments are borrowed). Python values are converted with Host.k()."""
        q = self.host
        ks = [a if isinstance(a, K) else q.k(a) for a in args]
        if len(ks) > 8:
            raise ValueError("q functions take at most 8 arguments")
        for a in ks:
            q._r1(a.ptr)
        before = [a.r for a in ks]
        argv = (c_void_p * max(1, len(ks)))(*[a.ptr for a in ks])
        err = c_char_p()
        r = q.shim.qshim_call(self.fn(name), len(ks), argv, ctypes.byref(err))
        after = [a.r for a in ks]
        for a in ks:
            q._r0(a.ptr)
        if r:  # references the result itself holds to an argument (e.g. `return r1(x)`)
            held = _refs_held(r, [a.ptr for a in ks])
            before = [b + h for b, h in zip(before, held)]
        if q.violations() or (check_refs and before != after):
            if r:
                q._r0(r)
            q.raise_violations(f"calling {name}")
            raise HostViolation(f"{name}: argument refcounts changed {before} -> {after}"
                                " (arguments are borrowed: r1 what is kept, never r0 an argument)")
        if r:
            res = K(q, r)
            if res.t == ERR:
                msg = c_char_p.from_address(r + 8).value
                res.free()
                raise QError(msg or b"")
            return res
        if err.value is not None:
            raise QError(err.value)
        return None

    def call(self, name, *args, check_refs=True):
        """call_k, decoded to Python (the result is r0'd, as q would once done with it)."""
        res = self.call_k(name, *args, check_refs=check_refs)
        if res is None:
            return None
        try:
            return res.py()
        finally:
            res.free()

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kw: self.call(name, *args, **kw)


# ----------------------------------------------------------------------------- host --

class Host:
    _instance = None
    _lock = threading.Lock()

    @classmethod
    def get(cls, shim=None) -> "Host":
        with cls._lock:
            if cls._instance is None:
                cls._instance = cls(shim or os.environ.get("QHOST_SHIM", DEFAULT_SHIM))
            return cls._instance

    def __init__(self, shim_path):
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("the host must be created on the main thread (q's main thread)")
        shim_path = Path(shim_path)
        if not shim_path.exists():
            raise FileNotFoundError(f"{shim_path}: run tests/host/build.sh")
        # 1. the shim, globally: its DT_NEEDED libe.so comes with it, after it
        self.shim = ctypes.CDLL(str(shim_path), mode=os.RTLD_NOW | os.RTLD_GLOBAL)
        self.shim_path = shim_path.resolve()
        self._bind()
        self.shim.qshim_init()
        self.libe_path = Path(self._dladdr_fname(ctypes.cast(self.shim.ktn, c_void_p).value))
        self.extensions = {}
        self._hooks = {}
        self.hook_errors = []

    # ------------------------------------------------------------------ plumbing --
    def _bind(self):
        s = self.shim
        sig = {
            # libe.so (looked up through the shim's handle: shim first, then libe)
            "ktn": (c_void_p, [c_int, c_longlong]), "ka": (c_void_p, [c_int]),
            "kb": (c_void_p, [c_int]), "kg": (c_void_p, [c_int]), "kh": (c_void_p, [c_int]),
            "ki": (c_void_p, [c_int]), "kj": (c_void_p, [c_longlong]),
            "ke": (c_void_p, [c_double]), "kf": (c_void_p, [c_double]),
            "kc": (c_void_p, [c_int]), "ks": (c_void_p, [c_char_p]),
            "kp": (c_void_p, [c_char_p]), "kpn": (c_void_p, [c_char_p, c_longlong]),
            "ku": (c_void_p, [_U]), "ktj": (c_void_p, [c_int, c_longlong]),
            "kd": (c_void_p, [c_int]), "kt": (c_void_p, [c_int]), "kz": (c_void_p, [c_double]),
            "xD": (c_void_p, [c_void_p, c_void_p]), "xT": (c_void_p, [c_void_p]),
            "ktd": (c_void_p, [c_void_p]),
            "r0": (None, [c_void_p]), "r1": (c_void_p, [c_void_p]),
            "b9": (c_void_p, [c_int, c_void_p]), "d9": (c_void_p, [c_void_p]),
            "okx": (c_int, [c_void_p]), "m4": (c_void_p, [c_int]), "m9": (None, []),
            "ss": (c_void_p, [c_char_p]), "setm": (c_int, [c_int]),
            # the shim (q-only entry points and host control)
            "ee": (c_void_p, [c_void_p]), "krr": (c_void_p, [c_char_p]),
            "dot": (c_void_p, [c_void_p, c_void_p]),
            "qshim_init": (c_int, []), "qshim_is_main_thread": (c_int, []),
            "qshim_set_krr_mode": (c_int, [c_int]),
            "qshim_define": (c_int, [c_char_p, _HOOK, c_void_p]),
            "qshim_undefine_all": (None, []),
            "qshim_error": (c_void_p, [c_char_p]), "qshim_lambda": (c_void_p, [c_char_p]),
            "qshim_call": (c_void_p, [c_void_p, c_int, POINTER(c_void_p), POINTER(c_char_p)]),
            "qshim_poll": (c_int, [c_int]), "qshim_sd1_count": (c_int, []),
            "qshim_sd1_fds": (c_int, [POINTER(c_int), c_int]),
            "qshim_sd1_calls": (c_longlong, []), "qshim_sd0_calls": (c_longlong, []),
            "qshim_callbacks_run": (c_longlong, []), "qshim_callback_errors": (c_longlong, []),
            "qshim_callback_last_error": (c_char_p, []),
            "qshim_take_error": (c_char_p, []), "qshim_peek_error": (c_char_p, []),
            "qshim_krr_calls": (c_longlong, []),
            "qshim_violation_count": (c_int, []), "qshim_violation": (c_char_p, [c_int]),
            "qshim_clear_violations": (None, []),
        }
        for name, (res, args) in sig.items():
            f = getattr(s, name)
            f.restype, f.argtypes = res, args
        self._r0 = s.r0
        self._r1 = s.r1

    @staticmethod
    def _dladdr_fname(addr) -> str:
        class DlInfo(ctypes.Structure):
            _fields_ = [("dli_fname", c_char_p), ("dli_fbase", c_void_p),
                        ("dli_sname", c_char_p), ("dli_saddr", c_void_p)]
        libdl = ctypes.CDLL(None)
        info = DlInfo()
        if not libdl.dladdr(c_void_p(addr), ctypes.byref(info)):
            return "?"
        return os.path.realpath(info.dli_fname.decode())

    # ---------------------------------------------------------------- extensions --
    def load(self, path=None) -> Extension:
        """Load an extension (default: $QPROM_SO, else target/l64/libqprom.so)."""
        path = Path(path or os.environ.get("QPROM_SO", DEFAULT_EXT)).resolve()
        if path not in self.extensions:
            if not path.exists():
                raise FileNotFoundError(str(path))
            self.extensions[path] = Extension(self, path)
        return self.extensions[path]

    def bindings(self, ext: Extension, names=None) -> dict:
        """{symbol: file that defines what the extension's reference to it is bound to},
        read from the extension's GOT (relocations GLOB_DAT/JUMP_SLOT/64) after loading."""
        from elfimports import imports  # tests/host/elfimports.py
        base = _link_map_base(ext.lib._handle)
        out = {}
        for sym, off, _defined in imports(ext.path):
            if names is not None and sym not in names:
                continue
            addr = c_void_p.from_address(base + off).value
            out[sym] = self._dladdr_fname(addr) if addr else None
        return out

    # ------------------------------------------------------------- constructors --
    def _own(self, ptr) -> K:
        if not ptr:
            e = self.shim.qshim_take_error()
            raise QError(e or b"null K")
        return K(self, ptr)

    def atom(self, t, v) -> K:
        """An atom of type t ('j', 7 or -7) from a Python value."""
        t = typecode(t)
        s = self.shim
        if t == KS:
            return self._own(s.ks(_sym_bytes(v)))
        if t == UU:
            u = v if isinstance(v, uuid.UUID) else uuid.UUID(bytes=bytes(v))
            return self._own(s.ku(_U((c_uint8 * 16)(*u.bytes))))
        if t == KC:
            b = v.encode("latin-1") if isinstance(v, str) else bytes(v)
            return self._own(s.kc(b[0]))
        x = self._own(s.ka(-t))
        raw = self._pack(t, [v])
        ctypes.memmove(x.ptr + 8, raw, len(raw))
        return x

    def b(self, v): return self.atom(KB, bool(v))
    def g(self, v): return self.atom(UU, v)
    def x(self, v): return self.atom(KG, v)
    def h(self, v): return self.atom(KH, v)
    def i(self, v): return self.atom(KI, v)
    def j(self, v): return self.atom(KJ, v)
    def e(self, v): return self.atom(KE, v)
    def f(self, v): return self.atom(KF, v)
    def c(self, v): return self.atom(KC, v)
    def s(self, v): return self.atom(KS, v)
    def p(self, v): return self.atom(KP, v)   # nanoseconds since 2000.01.01
    def n(self, v): return self.atom(KN, v)   # nanoseconds
    def d(self, v): return self.atom(KD, v)   # days since 2000.01.01
    def t(self, v): return self.atom(KT, v)   # milliseconds

    def null(self, t) -> K:
        return self.atom(t, null_of(t))

    def inf(self, t, neg=False) -> K:
        return self.atom(t, inf_of(t, neg))

    def identity(self) -> K:
        """(::), the generic null."""
        x = self._own(self.shim.ka(101))
        c_uint8.from_address(x.ptr + 8).value = 0
        return x

    def _pack(self, t, values) -> bytes:
        if t == KB:
            return bytes(1 if v else 0 for v in values)
        if t == KC:
            return b"".join(v.encode("latin-1") if isinstance(v, str) else bytes(v) for v in values)
        if t == UU:
            return b"".join((v if isinstance(v, uuid.UUID) else uuid.UUID(bytes=bytes(v))).bytes
                            for v in values)
        vals = [null_of(t) if v is None else v for v in values]
        return struct.pack(f"<{len(vals)}{FMT[t]}", *vals)

    def vec(self, t, values) -> K:
        """A simple list of type t ('j', 7); None items become the type's null."""
        t = typecode(t)
        values = list(values)
        x = self._own(self.shim.ktn(t, len(values)))
        if t == KS:
            ptrs = (c_void_p * len(values))(*[self.shim.ss(_sym_bytes("" if v is None else v))
                                             for v in values])
            ctypes.memmove(x.ptr + 16, ptrs, 8 * len(values))
        elif values:
            raw = self._pack(t, values)
            ctypes.memmove(x.ptr + 16, raw, len(raw))
        return x

    def syms(self, values) -> K:
        return self.vec(KS, values)

    def string(self, v) -> K:
        """A char vector (q string) from str (UTF-8) or bytes (any bytes, NULs too)."""
        b = v.encode("utf-8", "surrogateescape") if isinstance(v, str) else bytes(v)
        x = self._own(self.shim.ktn(KC, len(b)))
        ctypes.memmove(x.ptr + 16, b, len(b))
        return x

    def bytes_(self, v) -> K:
        """A byte vector (type 4)."""
        return self.vec(KG, bytes(v))

    def knk(self, *items) -> K:
        """A general list (type 0) of items (K wrappers, r1'd; or Python values)."""
        x = self._own(self.shim.ktn(0, len(items)))
        for idx, it in enumerate(items):
            kk = it if isinstance(it, K) else self.k(it)
            c_void_p.from_address(x.ptr + 16 + 8 * idx).value = self._r1(kk.ptr)
        return x

    def dict(self, keys, values) -> K:
        """keys!values (K wrappers or Python values)."""
        kk = keys if isinstance(keys, K) else self.k(keys)
        vv = values if isinstance(values, K) else self.k(values)
        return self._own(self.shim.xD(self._r1(kk.ptr), self._r1(vv.ptr)))

    def table(self, columns: dict) -> K:
        """flip columns: {name: K vector or list}."""
        cols = [v if isinstance(v, K) else self.k(v) for v in columns.values()]
        d = self.dict(self.syms(list(columns)), self.knk(*cols))
        return self._own(self.shim.xT(self._r1(d.ptr)))

    def keyed_table(self, keys: dict, values: dict) -> K:
        return self.dict(self.table(keys), self.table(values))

    def error(self, msg) -> K:
        """A -128 error object (message interned, so it outlives everything)."""
        return self._own(self.shim.qshim_error(_sym_bytes(msg)))

    def lambda_(self, name) -> K:
        """A q function value that dot() applies as the function defined as `name`."""
        return self._own(self.shim.qshim_lambda(_sym_bytes(name)))

    def k(self, v) -> K:
        """Python value -> K, as the q parser would type the literal: None (::),
        bool 1b, int 7 (long), float 7.0, str `sym, bytes "chars", uuid guid,
        list of one atom kind -> simple list (else general), dict -> dictionary."""
        if isinstance(v, K):
            return K(self, v.ptr, owned=False)
        if v is None:
            return self.identity()
        if isinstance(v, bool):
            return self.b(v)
        if isinstance(v, int):
            return self.j(v)
        if isinstance(v, float):
            return self.f(v)
        if isinstance(v, str):
            return self.s(v)
        if isinstance(v, (bytes, bytearray)):
            return self.string(bytes(v))
        if isinstance(v, uuid.UUID):
            return self.g(v)
        if isinstance(v, dict):
            keys = list(v)
            return self.dict(self.k(keys), self.knk(*v.values()))
        if isinstance(v, (list, tuple)):
            kinds = {type(x) for x in v}
            if v and len(kinds) == 1:
                kind = kinds.pop()
                code = {bool: KB, int: KJ, float: KF, str: KS, uuid.UUID: UU}.get(kind)
                if code:
                    return self.vec(code, v)
            return self.knk(*v)
        raise TypeError(f"no q form for {type(v).__name__}")

    # ------------------------------------------------------------------ reading --
    def py(self, x):
        """K -> Python: atoms as int/float/bool/str (symbol)/bytes (char)/UUID, nulls as
        their raw values (NJ, NF, ...), simple lists as lists (char -> bytes, byte ->
        bytes), general lists as lists, dict -> dict (unhashable keys: list of pairs),
        table -> Table, keyed table -> KeyedTable, (::) -> None, error -> ErrorValue."""
        p = x.ptr if isinstance(x, K) else x
        t = c_int8.from_address(p + 2).value
        if t == ERR:
            s = c_char_p.from_address(p + 8).value
            return ErrorValue(_sym_str(s or b""))
        if t < 0:
            t = -t
            if t == KS:
                return _sym_str(c_char_p.from_address(p + 8).value or b"")
            if t == UU:
                return uuid.UUID(bytes=ctypes.string_at(p + 16, 16))
            if t == KC:
                return ctypes.string_at(p + 8, 1)
            if t in FMT:
                v = struct.unpack("<" + FMT[t], ctypes.string_at(p + 8, WIDTH[t]))[0]
                return bool(v) if t == KB else v
            if 20 <= t <= 76:  # enumerated symbol: its index
                return c_int64.from_address(p + 8).value
            raise ValueError(f"atom type {-t}")
        if t == 101 and c_uint8.from_address(p + 8).value == 0:
            return None
        n = c_int64.from_address(p + 8).value
        base = p + 16
        if t == 0:
            return [self.py(c_void_p.from_address(base + 8 * i).value) for i in range(n)]
        if t == KC or t == KG:
            return ctypes.string_at(base, n)
        if t == KS:
            return [_sym_str(s or b"") for s in (c_char_p * n).from_address(base)]
        if t == UU:
            raw = ctypes.string_at(base, 16 * n)
            return [uuid.UUID(bytes=raw[16 * i:16 * i + 16]) for i in range(n)]
        if t in FMT:
            vals = struct.unpack(f"<{n}{FMT[t]}", ctypes.string_at(base, n * WIDTH[t]))
            return [bool(v) for v in vals] if t == KB else list(vals)
        if 20 <= t <= 76:
            return list((c_int64 * n).from_address(base))
        if t == XT:
            d = c_void_p.from_address(p + 8).value
            kp_, vp = (c_void_p.from_address(d + 16 + 8 * i).value for i in range(2))
            return Table(zip(self.py(kp_), self.py(vp)))
        if t == XD:
            kp_, vp = (c_void_p.from_address(p + 16 + 8 * i).value for i in range(2))
            keys, vals = self.py(kp_), self.py(vp)
            if isinstance(keys, Table) and isinstance(vals, Table):
                return KeyedTable(keys, vals)
            if isinstance(vals, Table):
                vals = vals.rows()
            if isinstance(vals, (bytes, bytearray)):
                vals = [bytes([c]) for c in vals]
            try:
                return dict(zip(keys, vals))
            except TypeError:
                return list(zip(keys, vals))
        if 100 <= t <= 112:
            return Function(t)
        raise ValueError(f"type {t}")

    def qtype(self, x: K) -> int:
        return x.t

    # ------------------------------------------------------------ serialization --
    def b9(self, x: K, mode: int = 3) -> bytes:
        """x serialized by libe's b9 ([capiref b9]); mode 3 gives q's -8! bytes (libe
        never compresses; mode -1 stores symbols as pointers)."""
        r = self.shim.b9(mode, x.ptr)
        if not r:
            raise QError(self.shim.qshim_take_error() or b"b9")
        try:
            if c_int8.from_address(r + 2).value == ERR:
                raise QError(c_char_p.from_address(r + 8).value or b"b9")
            return ctypes.string_at(r + 16, c_int64.from_address(r + 8).value)
        finally:
            self._r0(r)

    def d9(self, data: bytes) -> K:
        v = self.bytes_(data)
        r = self.shim.d9(v.ptr)
        if not r:
            raise QError(self.shim.qshim_take_error() or b"d9")
        return K(self, r)

    # ------------------------------------------------- q functions for k(0)/dot --
    def define(self, name, fn, raw=False):
        """Make `name` a q function for the extension's k(0,"name",...) and dot(`name;..)
        (and dot(q.lambda_("name");..)). fn gets the decoded arguments (K wrappers if
        raw) and returns a Python value or K; raising QError signals a q error.
        fn=None removes it."""
        key = _sym_bytes(name)
        if fn is None:
            self.shim.qshim_define(key, _HOOK(), None)
            self._hooks.pop(key, None)
            return

        def hook(_ctx, _name, args):
            try:
                n = c_int64.from_address(args + 8).value
                ptrs = [c_void_p.from_address(args + 16 + 8 * i).value for i in range(n)]
                argv = [K(self, a, owned=False) for a in ptrs] if raw else [self.py(a) for a in ptrs]
                res = fn(*argv)
                kres = res if isinstance(res, K) else self.k(res)
                return self._r1(kres.ptr)
            except QError as e:
                return self.shim.qshim_error(_sym_bytes(e.msg))
            except BaseException as e:  # noqa: BLE001 - reported by check_clean()
                self.hook_errors.append(f"{name}: {traceback.format_exc()}")
                return self.shim.qshim_error(f"host: python {type(e).__name__}".encode())

        cb = _HOOK(hook)
        self._hooks[key] = cb
        self.shim.qshim_define(key, cb, None)

    def undefine_all(self):
        self.shim.qshim_undefine_all()
        self._hooks.clear()

    # ---------------------------------------------------------------- event loop --
    def poll(self, timeout_ms: int = 0) -> int:
        """One turn of q's main loop: run the sd1 callbacks whose fds are readable."""
        n = self.shim.qshim_poll(int(timeout_ms))
        if n < 0:
            raise RuntimeError("poll() must run on the main thread")
        self.raise_violations("in the event loop")
        return n

    def poll_until(self, pred, timeout=5.0, step_ms=10) -> bool:
        import time
        end = time.monotonic() + timeout
        while True:
            if pred():
                return True
            if time.monotonic() > end:
                return False
            self.poll(step_ms)

    def sd1_fds(self) -> list[int]:
        n = self.shim.qshim_sd1_count()
        buf = (c_int * max(1, n))()
        self.shim.qshim_sd1_fds(buf, n)
        return list(buf[:n])

    def sd1_count(self) -> int:
        return self.shim.qshim_sd1_count()

    def callback_errors(self) -> tuple[int, str | None]:
        e = self.shim.qshim_callback_last_error()
        return self.shim.qshim_callback_errors(), (_sym_str(e) if e else None)

    # ------------------------------------------------------------ checks, modes --
    def violations(self) -> list[str]:
        n = self.shim.qshim_violation_count()
        return [self.shim.qshim_violation(i).decode(errors="replace") for i in range(min(n, 64))]

    def clear_violations(self):
        self.shim.qshim_clear_violations()

    def raise_violations(self, where=""):
        v = self.violations()
        if v:
            self.clear_violations()
            raise HostViolation(f"{where}: " + "; ".join(v))

    def check_clean(self):
        """Fail on violations, Python hook errors, or a pending error indicator."""
        self.raise_violations("after test")
        if self.hook_errors:
            errs, self.hook_errors = self.hook_errors, []
            raise HostViolation("q function hooks raised:\n" + "\n".join(errs))
        pending = self.shim.qshim_take_error()
        if pending:
            raise HostViolation(f"error indicator left set: {pending!r}")

    @contextlib.contextmanager
    def krr_mode(self, mode):
        """'null' (documented q: krr records the message, returns 0) or 'object'
        (krr also returns a -128 object)."""
        old = self.shim.qshim_set_krr_mode({"null": 0, "object": 1}[mode])
        try:
            yield
        finally:
            self.shim.qshim_set_krr_mode(old)

    def mem(self) -> int:
        """Bytes of K memory in use by the calling thread (libe's m4(0)[0])."""
        r = self.shim.m4(0)
        try:
            return c_int64.from_address(r + 16).value
        finally:
            self._r0(r)

    @contextlib.contextmanager
    def no_k_leak(self):
        """Asserts the block leaves this thread's K memory where it found it."""
        before = self.mem()
        yield
        after = self.mem()
        if after != before:
            raise HostViolation(f"K memory grew by {after - before} bytes")

    def in_threads(self, n, fn, *args):
        """Run fn(i, *args) on n threads at once (like q's secondary threads); each
        thread calls m9() as it ends; re-raises the first exception."""
        errors = []
        barrier = threading.Barrier(n)

        def run(i):
            try:
                barrier.wait()
                fn(i, *args)
            except BaseException as e:  # noqa: BLE001
                errors.append(e)
            finally:
                self.shim.m9()

        ts = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if errors:
            raise errors[0]


def _refs_held(p, targets) -> list[int]:
    """How many references the object tree at p holds to each of targets (p itself
    counts): walks general lists (and lambdas), dictionaries and tables."""
    counts = [0] * len(targets)
    stack = [p]
    while stack:
        x = stack.pop()
        if not x:
            continue
        for i, tp in enumerate(targets):
            if x == tp:
                counts[i] += 1
        t = c_int8.from_address(x + 2).value
        if t in (0, XD, 100, 104, 105):
            n = c_int64.from_address(x + 8).value
            stack.extend(c_void_p.from_address(x + 16 + 8 * i).value for i in range(n))
        elif t == XT:
            stack.append(c_void_p.from_address(x + 8).value)
    return counts


def _link_map_base(handle) -> int:
    """l_addr (load bias) of a dlopen handle, via dlinfo(RTLD_DI_LINKMAP)."""
    libc = ctypes.CDLL(None)
    lm = c_void_p()
    if libc.dlinfo(c_void_p(handle), 2, ctypes.byref(lm)) != 0:
        raise OSError("dlinfo failed")
    return c_void_p.from_address(lm.value).value or 0
