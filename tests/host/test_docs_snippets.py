"""The q in README.md and docs/*.md, checked without q (tests/host/docsnippets.py says
what and why), and the tests/q files that run it where q exists kept current."""
import docsnippets as ds


def test_every_q_snippet_passes_the_static_checks():
    problems = ds.check_all()
    assert not problems, "\n" + "\n".join(problems)


def test_the_checks_catch_what_they_are_for():
    api = ds.prom_api()
    b = ds.Block(ds.ROOT / "README.md", "q", 1, [
        "q).prom.init`port`basicAuthUsers!(9612;",          # spans two lines
        "   enlist[`u]!enlist\"h\")",
        "q).z.ts:{.prom.write`:/var/lib/node-exporter/x.prom}",  # - ends the symbol
        "q).prom.incr[`x_total;()]",                         # 2 arguments for 3
        "q).prom.nosuch[]",                                  # not defined
        "q).prom.on_poll:{[f;a;b] f a}[.prom.on_poll]",      # a hook of arity 2
        "q)t0:.z.p; ... ;",                                  # ... is not q
        "q)@[.prom.incr[`x_total;()];-1;{x}]",               # a projection in a trap: fine
        "q).prom.on_poll:{[f;msg] f msg}[.prom.on_poll]",    # chained hook: fine
    ])
    got = ds.check_block(api, b)
    for line, what in [(1, "spans two lines"), (3, "is not one symbol"), (4, "takes 3"),
                       (5, "not defined"), (6, "hook .prom.on_poll"), (7, "is not q")]:
        assert any(p.startswith(f"README.md:{line}: ") and what in p for p in got), (line, got)
    assert not any(p.startswith(("README.md:8:", "README.md:9:")) for p in got), got


def test_prom_q_is_read_right():
    api = ds.prom_api()
    assert api.takes(".prom.init") == 1 and api.takes(".prom.stop") == 0
    assert api.takes(".prom.incr") == 3 and api.takes(".prom.inc") == 2  # alias, lambda
    assert api.takes(".prom.write") == 1  # alias of a 2: binding
    assert api.takes(".prom.after_pg") == 3 and api.takes(".prom.on_po") == 1
    assert ".prom.LIBPATH" in api.settable


def test_the_q_files_that_run_the_snippets_are_current():
    want = ds.q_tests()
    have = {p.name: p.read_text() for p in (ds.ROOT / "tests/q").glob("test_docs_*.q")}
    assert sorted(have) == sorted(want), "run: target/venv/bin/python tests/host/docsnippets.py --write"
    for name, text in want.items():
        assert have[name] == text, f"tests/q/{name} is stale: run tests/host/docsnippets.py --write"


def _code_messages():
    """Every `prom: ...` message the library or the q scripts can signal."""
    import re
    msgs = set()
    for p in (ds.ROOT / "src").rglob("*.rs"):
        for m in re.finditer(r'c"(prom: (?:[^"\\]|\\.)*)"', p.read_text()):
            msgs.add(m.group(1).replace('\\"', '"'))
    for p in (ds.ROOT / "q").glob("*.q"):
        for m in re.finditer(r"'\"(prom: [^\"]*)\"(,)?", p.read_text()):
            # a message completed at run time ("…-prom.",string key) is documented with <key>
            msgs.add(m.group(1) + ("<key>" if m.group(2) else ""))
    return msgs


def _error_table():
    """The messages in the first column of reference.md's error table."""
    import re
    text = (ds.ROOT / "docs/reference.md").read_text()
    section = text[text.index("## Error messages"):]
    section = section[:section.index("\n---")]
    rows = []
    for line in section.splitlines():
        if line.startswith("| `") or line.startswith("| ``"):
            cell = line.split(" | ")[0][2:]
            rows += [m.group(1) or m.group(2) for m in re.finditer(r"``(.+?)``|`([^`]+)`", cell)]
    return rows, section


def test_the_error_table_lists_every_message_the_code_signals():
    rows, _ = _error_table()
    table = set(rows)
    missing = []
    for msg in sorted(_code_messages()):
        if msg not in table:
            missing.append(msg)
    assert not missing, "docs/reference.md's error table lacks:\n" + "\n".join(missing)


def test_every_message_in_the_error_table_exists():
    rows, _ = _error_table()
    code = _code_messages()
    stale = [r for r in rows if r.startswith("prom: ") and r not in code]
    assert not stale, "in docs/reference.md's error table but signalled nowhere:\n" + "\n".join(stale)
