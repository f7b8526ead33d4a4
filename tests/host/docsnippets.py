"""The q a user would paste from the docs: extraction, static checks, and the tests/q files
that run it.

Every ```q block of README.md and docs/*.md is read as a q console session: `q)` lines
are what the user types, other lines what q prints. ```txt blocks hold signatures
(`.prom.f[a;b]`) and are checked for names and arities only.

Checked here (tests/host/test_docs_snippets.py), without q:
- every `.prom.*` name exists in q/prom.q (or is a hook it installs), and a call
  `.prom.f[a;b]` passes as many arguments as f takes (q/prom.q's lambdas' parameter
  lists; for a binding `.prom.LIB 2:(`fn;n)`, n; an alias takes its target's); a hook
  assigned as `.prom.h:{[..]..}` (projections counted) has the hook's arity;
- every backtick symbol holds only name characters (and `/` `:` in a file symbol
  `` `:... ``): `` `:/a/node-exporter/x `` is the symbol `` `:/a/node `` minus `exporter`;
- no console expression spans two lines (the console evaluates each line as entered:
  docs/basics/syntax.md, "Multiline expressions"), and none holds `...`, which is not q;
- no `q)` line sits outside a ```q block (it would escape these checks).

Run where q exists: `python3 tests/host/docsnippets.py --write` writes one
tests/q/test_docs_<doc>.q per document with q blocks; each runs that document's `q)`
lines in order, in a fresh q, as a user following the page would. The host test checks
the files are current.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROM_Q = ROOT / "q" / "prom.q"


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclass
class Block:
    path: Path
    lang: str
    line: int  # 1-based line number of the first line inside the fence
    lines: list[str] = field(default_factory=list)

    def where(self, i: int) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line + i}"


def blocks(path: Path) -> list[Block]:
    """Fenced code blocks (fences may be indented, as inside a list item)."""
    out: list[Block] = []
    cur: Block | None = None
    indent = 0
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        s = raw.lstrip()
        if cur is None:
            m = re.match(r"```(\w*)", s)
            if m:
                indent = len(raw) - len(s)
                cur = Block(path, m.group(1), n + 1)
            continue
        if s.startswith("```"):
            out.append(cur)
            cur = None
            continue
        cur.lines.append(raw[indent:] if raw[:indent].strip() == "" else raw)
    return out


def stray_console_lines(path: Path) -> list[str]:
    """`q)` lines outside any fenced block."""
    bad, fenced = [], False
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        s = raw.lstrip()
        if s.startswith("```"):
            fenced = not fenced
        elif not fenced and s.startswith("q)"):
            bad.append(f"{path.relative_to(ROOT)}:{n}: q) line outside a ```q block")
    return bad


# ---- q lexing, as far as the checks need it ----------------------------------------

def code_of(line: str) -> str:
    """The line without its comment, each string replaced by `""` (kept as a token).
    A comment is `/` at the start of the line or after whitespace (outside strings)."""
    out, i, n = [], 0, len(line)
    if line.lstrip().startswith("/"):
        return ""
    while i < n:
        c = line[i]
        if c == '"':
            j = i + 1
            while j < n and line[j] != '"':
                j += 2 if line[j] == "\\" else 1
            out.append('""')
            i = j + 1
            continue
        if c == "/" and i > 0 and line[i - 1] in " \t":
            break
        out.append(c)
        i += 1
    return "".join(out).rstrip()


def strip_comment(line: str) -> str:
    """The line without its trailing comment, strings kept as they are."""
    i, n = 0, len(line)
    if line.lstrip().startswith("/"):
        return ""
    while i < n:
        c = line[i]
        if c == '"':
            i += 1
            while i < n and line[i] != '"':
                i += 2 if line[i] == "\\" else 1
        elif c == "/" and i > 0 and line[i - 1] in " \t":
            return line[:i].rstrip()
        i += 1
    return line.rstrip()


OPEN, CLOSE = "([{", ")]}"


def balance(code: str) -> int:
    """Open brackets left at the end of `code` (negative: a stray closer)."""
    depth = 0
    for c in code:
        if c in OPEN:
            depth += 1
        elif c in CLOSE:
            depth -= 1
            if depth < 0:
                return depth
    return depth


def bracket_args(code: str, at: int) -> tuple[int, int] | None:
    """For `code[at] == "["`: (number of `;`-separated arguments, index past `]`).
    `f[]` counts as 0."""
    depth, parts, empty = 0, 1, True
    for j in range(at, len(code)):
        c = code[j]
        if c in OPEN:
            depth += 1
        elif c in CLOSE:
            depth -= 1
            if depth == 0:
                return (0 if empty else parts), j + 1
        elif depth == 1:
            if c == ";":
                parts += 1
            if not c.isspace():
                empty = False
    return None


# Characters that end a backtick symbol in the sense the author meant: whitespace,
# brackets, separators, and the operators a symbol is commonly followed by. Anything
# else inside the run is reported (a `-` is the usual case).
SYM_END = set(" \t;()[]{}!$#,\"'=<>~@?^&|%*+`")
SYM_PLAIN = re.compile(r"[A-Za-z0-9_.]*")
SYM_FILE = re.compile(r":[A-Za-z0-9_./:]*")


def bad_symbols(code: str) -> list[str]:
    bad = []
    for m in re.finditer(r"`", code):
        j = m.end()
        while j < len(code) and code[j] not in SYM_END:
            j += 1
        s = code[m.end():j]
        if not (SYM_PLAIN.fullmatch(s) or SYM_FILE.fullmatch(s)):
            bad.append("`" + s)
    return bad


# ---- what q/prom.q defines ---------------------------------------------------------

def _statements(text: str) -> list[str]:
    """q script statements: a line that starts with whitespace continues the previous."""
    stmts: list[str] = []
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and stmts:
            stmts[-1] += "\n" + line
        elif line.strip() and not line.startswith("/"):
            stmts.append(line)
    return stmts


@dataclass
class Api:
    arity: dict[str, int | None]  # defined names; None: a value, or arity not known
    hooks: dict[str, int]  # hooks prom.q installs a default for
    settable: set[str]  # names prom.q reads but the user defines (`.prom.LIBPATH)

    def known(self, name: str) -> bool:
        if name in self.arity or name in self.hooks or name in self.settable:
            return True
        # a namespace: .prom, .prom.i
        return any(k.startswith(name + ".") for k in self.arity)

    def placeholder(self, name: str) -> bool:
        """`.prom.before_X`, `.prom.error_*` (read as `.prom.error_`), `.prom.on_`."""
        stem = name[:-1] if name.endswith("_X") else name
        return stem.endswith("_") and any(h.startswith(stem) for h in self.hooks)

    def takes(self, name: str) -> int | None:
        return self.hooks.get(name, self.arity.get(name))


def prom_api(text: str | None = None) -> Api:
    text = PROM_Q.read_text() if text is None else text
    arity: dict[str, int | None] = {}
    hooks: dict[str, int] = {}
    for s in _statements(text):
        m = re.match(r"(\.prom\.[\w.]+):(.*)", s, re.S)
        if m:
            name, rhs = m.group(1), m.group(2).strip()
            if b := re.match(r"\.prom\.LIB 2:\(`\w+;(\d+)\)", rhs):
                arity[name] = int(b.group(1))
            elif lam := re.match(r"\{\[([^\]]*)\]", rhs):
                arity[name] = len([p for p in lam.group(1).split(";") if p.strip()])
            elif a := re.fullmatch(r"(\.prom\.[\w.]+);?(\s*/.*)?", rhs, re.S):
                arity[name] = arity.get(a.group(1))
            else:
                arity[name] = None
        # hook defaults: .prom.i.def[`name;{[..]..}] and, for several handlers,
        # {.prom.i.def[`$"pre_",string x;{[h;..]..}x]..}each`a`b
        for d in re.finditer(r"\.prom\.i\.def\[`(\w+);\{\[([^\]]*)\]", s):
            hooks[".prom." + d.group(1)] = len(d.group(2).split(";"))
        each = re.search(r"\}each((?:`\w+)+)", s)
        for d in re.finditer(r'\.prom\.i\.def\[`\$"(\w+_)",string x;\{\[([^\]]*)\]', s):
            if each:
                for h in each.group(1).split("`")[1:]:
                    hooks[".prom." + d.group(1) + h] = len(d.group(2).split(";")) - 1
    settable = set(re.findall(r"`(\.prom\.[\w.]+)", text)) - set(arity)
    return Api(arity, hooks, settable)


NAME = re.compile(r"\.prom\.[A-Za-z_][\w.]*")


def _name_at(code: str, m: re.Match) -> str:
    return m.group(0).rstrip(".")


def check_names(api: Api, code: str, where: str) -> list[str]:
    """Names exist; calls with brackets pass the right number of arguments; a hook
    assigned a lambda gets one of the hook's arity."""
    bad = []
    for m in NAME.finditer(code):
        name = _name_at(code, m)
        if code[m.start() - 1: m.start()] == "`":
            continue  # a symbol naming it, e.g. `.prom.LIBPATH in get
        if not api.known(name) and not api.placeholder(name):
            bad.append(f"{where}: {name} is not defined by q/prom.q")
            continue
        end = m.start() + len(name)
        want = api.takes(name)
        if code[end: end + 1] == "[" and want is not None:
            got = bracket_args(code, end)
            # fewer arguments: a projection, accepted as the function of a trap or
            # apply (@[f[a];x;h], .[f[a];args;h])
            proj = got and got[0] < want and code[max(0, m.start() - 2): m.start()] in ("@[", ".[")
            if got and not (got[0] == want or (got[0] == 0 and want == 1) or proj):
                bad.append(f"{where}: {name} takes {want} argument(s), given {got[0]}")
        if code[end: end + 2] == ":{" and name in api.hooks:
            lam = re.match(r"\{\[([^\]]*)\]", code[end + 1:])
            close = bracket_args(code.replace("{", "[").replace("}", "]"), end + 1)
            if lam and close:
                n = len(lam.group(1).split(";"))
                proj = bracket_args(code, close[1]) if code[close[1]: close[1] + 1] == "[" else None
                n -= proj[0] if proj else 0
                if n != api.hooks[name]:
                    bad.append(f"{where}: hook {name} is called with {api.hooks[name]} argument(s); "
                               f"this one takes {n}")
    return bad


def console_lines(b: Block) -> list[tuple[int, str]]:
    """(index, text after `q)`) of a q block's input lines."""
    return [(i, ln[2:]) for i, ln in enumerate(b.lines) if ln.startswith("q)")]


def check_block(api: Api, b: Block) -> list[str]:
    bad = []
    if b.lang == "txt":
        for i, ln in enumerate(b.lines):
            bad += check_names(api, code_of(ln), b.where(i))
        return bad
    cons = console_lines(b)
    if not cons:
        return [f"{b.where(0)}: a q block without q) lines (use ```txt for signatures)"]
    inputs = {i for i, _ in cons}
    for i, text in cons:
        where = b.where(i)
        if text.startswith("\\"):
            continue  # a system command
        code = code_of(text)
        d = balance(code)
        nxt = b.lines[i + 1] if i + 1 < len(b.lines) else ""
        if d != 0 or (i + 1 not in inputs and nxt[:1] in (" ", "\t") and nxt.strip()):
            bad.append(f"{where}: this expression spans two lines: the console evaluates "
                       f"each line as entered (build a part on its own line first)")
        if "..." in code or "…" in code:
            bad.append(f"{where}: `...` is not q: make the block complete")
        for s in bad_symbols(code):
            bad.append(f"{where}: {s} is not one symbol (a symbol holds [A-Za-z0-9_.], and "
                       f"/ : only after `:): use a string or hsym`$\"…\"")
        bad += check_names(api, code, where)
    return bad


def check_prose_names(api: Api, path: Path) -> list[str]:
    """`.prom.*` names in the text outside code blocks (migration.md names KX's API too,
    so it is left out)."""
    if path.name == "migration.md":
        return []
    bad, fenced = [], False
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        if raw.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        for m in NAME.finditer(raw):
            name = _name_at(raw, m)
            if not api.known(name) and not api.placeholder(name):
                bad.append(f"{path.relative_to(ROOT)}:{n}: {name} is not defined by q/prom.q")
    return bad


def check_all() -> list[str]:
    api = prom_api()
    bad: list[str] = []
    for p in doc_files():
        bad += stray_console_lines(p)
        bad += check_prose_names(api, p)
        for b in blocks(p):
            if b.lang in ("q", "txt"):
                bad += check_block(api, b)
    return bad


# ---- the q tests: the blocks, run ---------------------------------------------------

# Lines that need what a test machine may not have: (document, text in the line) -> the
# errors tolerated there (success is accepted too: the machine may have it).
TOLERATED = {
    ("README.md", "`:tls.pem;`:tls.key"): ["prom: tls certificate file unreadable or without a PEM certificate"],
    ("reference.md", "`:/etc/kdb/tls.pem"): ["prom: tls certificate file unreadable or without a PEM certificate"],
    ("operations.md", "`:/etc/kdb/tls.pem"): ["prom: tls certificate file unreadable or without a PEM certificate"],
    ("reference.md", "`:/etc/prometheus/kdb.d"): ["prom: directory does not exist", "prom: directory is not writable"],
    ("reference.md", '"http://pushgw:9091"'): ["prom: push failed: host not found",
                                               "prom: push failed: connection refused",
                                               "prom: push failed: timed out (10 s)"],
    # a listener port the machine may already use
    ("README.md", "9612"): ["prom: port in use"],
    ("reference.md", "9612"): ["prom: port in use"],
    ("reference.md", "9613"): ["prom: port in use"],
    ("operations.md", "9612"): ["prom: port in use"],
}

# Lines not run, with the reason (written into the generated file).
SKIPPED = {
    ("reference.md", ".prom.LIBPATH:`:/opt/qprom/lib/libqprom"):
        "an install path this machine lacks (prom.q loaded after it would fail to bind)",
}


def q_string(s: str) -> str:
    """A q string (a char list: "x" alone would be a char atom, so one char is (),"x")."""
    lit = '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "()," + lit if len(s) == 1 else lit


def q_strings(xs: list[str]) -> str:
    if not xs:
        return "()"
    if len(xs) == 1:
        return "enlist " + q_string(xs[0])
    return "(" + ";".join(q_string(x) for x in xs) + ")"


def session(path: Path) -> list[tuple[str, str, list[str]]]:
    """(where, input, shown output lines) for every q) line of the document's q blocks
    (comment lines among the output dropped)."""
    out = []
    for b in blocks(path):
        if b.lang != "q":
            continue
        cons = console_lines(b)
        for k, (i, text) in enumerate(cons):
            end = cons[k + 1][0] if k + 1 < len(cons) else len(b.lines)
            shown = [ln for ln in b.lines[i + 1:end] if not ln.lstrip().startswith("/")]
            out.append((b.where(i), text, shown))
    return out


def q_test_name(path: Path) -> str:
    return "test_docs_" + path.stem.lower().replace("-", "_") + ".q"


HEAD = """/ GENERATED from DOC by tests/host/docsnippets.py: do not edit; after changing the
/ document run `target/venv/bin/python tests/host/docsnippets.py --write` (the host test
/ test_docs_snippets.py fails while this file is stale).
/ Every q) line of the document's ```q blocks, in order, in one fresh q, as a user
/ pasting them would type them (trailing comments dropped), after \\l prom.q. A line
/ passes when it evaluates without error (and, where the document shows q's one-line
/ answer, q's answer prints the same), or signals an error tolerated for it (something
/ this machine may lack: a file, a host, a free port). System commands (\\l, \\t) run
/ with system, as the console runs them (docs/ref/system.md).
\\l prom.q
.t.n:0;.t.fail:0;
/ q's console display of a value, without the final newline
.t.disp:{[r]s:.Q.s r;(-1+count s)#s}
.t.eval:{[code]$["\\\\"=first code;system 1_code;value code]}
/ line[loc;code;tolerated errors;the one-line answer shown, or ""]
.t.line:{[loc;code;errs;want]
  r:@[{(1b;.t.eval x)};code;{(0b;x)}];
  ok:$[r 0;$[0<count want;want~.t.disp r 1;1b];any errs~\\:r 1];
  .t.n+:1;
  if[not ok;.t.fail+:1;-2 loc,": ",code," -> ",$[r 0;.t.disp r 1;"'",r 1],$[0<count want;" (the document shows ",want,")";""]];}
"""


def q_test(path: Path) -> str | None:
    """The tests/q file for one document, or None when it has no q) lines."""
    lines = session(path)
    if not lines:
        return None
    name = "tests/q/" + q_test_name(path)
    doc = path.relative_to(ROOT)
    rows = []
    for where, text, shown in lines:
        code = strip_comment(text)
        if not code:
            continue
        skip = [r for (d, t), r in SKIPPED.items() if d == path.name and t in code]
        if skip:
            rows.append(f"/ not run: {where}: {code}: {skip[0]}")
            continue
        errs = [e for (d, t), es in TOLERATED.items() if d == path.name and t in code for e in es]
        errs = list(dict.fromkeys(errs))
        want = shown[0] if len(shown) == 1 and not code.endswith(";") else ""
        rows.append(f".t.line[{q_string(where)};{q_string(code)};{q_strings(errs)};{q_string(want)}];")
    tail = f"""-1 "{name}: ",string[.t.n-.t.fail]," passed, ",string[.t.fail]," failed";
exit $[0<.t.fail;1;0]
"""
    return HEAD.replace("DOC", str(doc)) + "\n".join(rows) + "\n" + tail


def q_tests() -> dict[str, str]:
    out = {}
    for p in doc_files():
        t = q_test(p)
        if t is not None:
            out[q_test_name(p)] = t
    return out


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        qdir = ROOT / "tests" / "q"
        for old in qdir.glob("test_docs_*.q"):
            old.unlink()
        for name, text in q_tests().items():
            (qdir / name).write_text(text)
            print("wrote tests/q/" + name)
    else:
        problems = check_all()
        print("\n".join(problems) or "docs: every q snippet passes the static checks")
        sys.exit(1 if problems else 0)
