#!/usr/bin/env python3
"""Judge valgrind memcheck XML output of a host test run: fail only on what is ours.

Python is noisy under memcheck (its own uninitialised-value reports, interpreter
allocations still held at exit). An error counts only when, in one of its stacks (the
main one or an auxiliary one: "allocated at", "freed at"), the innermost frame outside
libc / ld.so / valgrind's preload / the unwinder is in one of OUR objects, or in libe.so
called from ours. Objects are matched by file basename: by default libqprom.so,
libfake_ext.so and libqshim.so (--ours adds more, e.g. --ours libfoo.so; --ours-only
replaces the list).

Counted kinds: invalid read/write/free/jump, mismatched free, overlapping copies,
uninitialised values and conditions, bad syscall params, fishy values, and definite
leaks. Possible/indirect leaks and "still reachable" are not.

What memcheck cannot see: K objects live in libe.so's own pools (big malloc'd blocks),
so an overread inside a K vector or a leaked K object is invisible here; the harness
covers those by refcount checks and m4 accounting (Host.no_k_leak).

    valgrind_check.py [--ours NAME]... [--expect KIND:FUNCTION]... FILE.xml...

--expect (self-test): succeed only if every KIND:FUNCTION pair was flagged (with FUNCTION
in the flagged error's stacks); exit status is then 0 iff all were found.
"""
import argparse
import collections
import glob
import os
import sys
import xml.etree.ElementTree as ET

DEFAULT_OURS = ["libqprom.so", "libfake_ext.so", "libqshim.so"]
KINDS = {
    "InvalidRead", "InvalidWrite", "InvalidFree", "MismatchedFree", "InvalidJump",
    "InvalidMemPool", "Overlap", "UninitCondition", "UninitValue", "SyscallParam",
    "ClientCheck", "FishyValue", "Leak_DefinitelyLost",
}


def frames(stack):
    for f in stack.iter("frame"):
        yield {
            "obj": f.findtext("obj") or "",
            "fn": f.findtext("fn") or "???",
            "file": f.findtext("file"),
            "line": f.findtext("line"),
        }


SYSTEM = ("libc.so", "libc-", "ld-linux", "vgpreload_", "libgcc_s", "libstdc++")


def culprit(stack, ours):
    """Is this stack's innermost non-system frame ours (or libe.so called from ours)?
    System frames (libc's memcpy/strlen, malloc in valgrind's preload, the unwinder) are
    skipped, so a leak whose block came from malloc called by our code counts, while
    Python's own errors (innermost frame in the interpreter, libffi, ...) do not, even
    when our code is further down the stack (a q function hook called from k(0,...))."""
    names = [os.path.basename(fr["obj"]) for fr in stack]
    for name in names:
        if name.startswith(SYSTEM) or not name:
            continue
        if name in ours:
            return True
        return name == "libe.so" and any(n in ours for n in names)
    return False


def describe(fr):
    where = f" ({fr['file']}:{fr['line']})" if fr["file"] else ""
    return f"{fr['fn']}{where} [{os.path.basename(fr['obj'])}]"


def check(paths, ours, expect=()):
    flagged = []
    runs = 0
    for path in paths:
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError:
            text = open(path, errors="replace").read()
            if "<error>" in text or "<status>" in text:
                flagged.append(("ValgrindXmlBroken", path, [], 1))
            continue  # else: a forked child's preamble, cut short by exec
        if root.find("status") is None:  # likewise
            continue
        runs += 1
        states = [s.findtext("state") for s in root.iter("status")]
        if "FINISHED" not in states:
            flagged.append(("ValgrindNotFinished", path, [], 1))
        for err in root.iter("error"):
            kind = err.findtext("kind")
            if kind not in KINDS:
                continue
            stacks = [list(frames(s)) for s in err.iter("stack")]
            if not any(culprit(st, ours) for st in stacks):
                continue
            what = err.findtext("what") or err.findtext("xwhat/text") or ""
            count = int(err.findtext("xwhat/leakedblocks") or 1) if kind.startswith("Leak") else 1
            flagged.append((kind, what, stacks, count))
    if not runs:
        print("valgrind_check: no finished valgrind run found in", paths, file=sys.stderr)
        return 2

    for kind, what, stacks, _ in flagged:
        print(f"== {kind}: {what}")
        for i, st in enumerate(stacks):
            ours_idx = [j for j, fr in enumerate(st) if os.path.basename(fr["obj"]) in ours]
            show = st[: max(ours_idx) + 2] if ours_idx else st[:4]
            print(("   at " if i == 0 else "   aux ") + ("\n      ".join(describe(fr) for fr in show[:12])))
    summary = collections.Counter(k for k, *_ in flagged)
    print(f"valgrind_check: {runs} run(s), {len(flagged)} error(s) in our objects "
          f"({', '.join(ours)})" + (f": {dict(summary)}" if flagged else ""))

    if expect:
        missing = []
        for pair in expect:
            kind, fn = pair.split(":", 1)
            if not any(k == kind and any(fr["fn"] == fn for st in stacks for fr in st)
                       for k, _, stacks, _ in flagged):
                missing.append(pair)
        if missing:
            print("valgrind_check: self-test FAILED, not flagged:", ", ".join(missing))
            return 1
        print("valgrind_check: self-test ok, flagged:", ", ".join(expect))
        return 0
    return 1 if flagged else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("xml", nargs="+", help="valgrind --xml=yes output files (globs ok)")
    ap.add_argument("--ours", action="append", default=[], help="another object basename that is ours")
    ap.add_argument("--ours-only", action="append", default=None, help="replace the default list")
    ap.add_argument("--expect", action="append", default=[], help="KIND:FUNCTION that must be flagged")
    a = ap.parse_args()
    paths = sorted({p for g in a.xml for p in (glob.glob(g) or [g])})
    ours = (a.ours_only or DEFAULT_OURS) + a.ours
    qprom = os.environ.get("QPROM_SO")
    if qprom and not a.ours_only:
        ours.append(os.path.basename(qprom))
    sys.exit(check(paths, set(ours), a.expect))


if __name__ == "__main__":
    main()
