#!/usr/bin/env python3
"""Validate qprom exposition output against expected content.

Usage:  target/venv/bin/python tests/expo/check.py PATH...

Each PATH is a directory (every case in it, recursively) or one case file.
A case is an exposition plus the expected content next to it:

  NAME.txt + NAME.txt.json   Prometheus text format 0.0.4
  NAME.om  + NAME.om.json    OpenMetrics 1.0.0 text
  NAME.pb                    Prometheus' delimited protobuf, checked against NAME.txt.json
                             (samples as text 0.0.4 names them, families) and the
                             exemplars of NAME.om.json; decoded with message classes built
                             from the dev-dependency prometheus-client's metrics.proto
                             (tests/host/metrics_pb.py; cargo must have fetched the crate)

Expected JSON:
  {"samples":  [{"name": "x_total", "labels": {"a": "v"}, "value": 1.5}, ...],
   "families": [{"name": "x", "type": "counter", "help": "...", "unit": "..."}]}
  exemplar (optional, OpenMetrics): {"labels": {...}, "value": x, "timestamp": t}; a
  sample without one must have none (t within 1e-6: written to the microsecond).
  value: a JSON number, or "+Inf", "-Inf", "NaN", or "any" (only presence is
  checked), or {"near": x, "rel": r} (within r*|x| of x: estimates such as
  summary quantiles).  A JSON integer (no fraction, no exponent) is compared
  exactly with the integer written in the exposition, not as float64, so that
  counters above 2^53 are checked to the last digit.  labels defaults to {}.  In families only "name" is required;
  "type", "help" and "unit" are checked when present ("unit" only for .om).

Names in the JSON are *literal*: exactly what is written in the exposition.
  .txt: family name = the name on the TYPE/HELP line; sample names as written.
        (prometheus_client's 0.0.4 parser renames counters -- family "x_total"
        becomes "x", and samples of a counter family "x" become "x_total";
        this script undoes that, so write what the text contains.)
        Type "untyped" (the parser reports it as "unknown"; both are accepted).
  .om:  family name = the name on the TYPE line (counter "x", its samples
        "x_total"/"x_created"; info "x", its sample "x_info").

Checks, per case (all problems are printed, then the case fails):
  .txt  1. `promtool check metrics` (stdin) -- see PROMTOOL POLICY below.
        2. prometheus_client.parser.text_string_to_metric_families must not raise.
  .om   2. prometheus_client.openmetrics.parser.text_string_to_metric_families
           must not raise (it also enforces `# EOF`, no blank lines, histogram
           +Inf/_count consistency, canonical "+Inf", info value 1, units...).
  both  3. The file is valid UTF-8 and ends with "\\n".
        4. Every sample line of the text yields exactly one parsed sample (the
           OpenMetrics parser silently drops repeated series, so duplicates are
           detected by counting lines).
        5. No family name is produced twice by the parser (catches interleaved
           families in 0.0.4, which both parsers otherwise accept).
        6. Samples: the set of (name, labels) parsed equals the set expected,
           each exactly once; values equal as float64 (NaN == NaN, "any"
           matches anything, "near" within its error, integers exactly as
           written; timestamps are ignored); exemplars as the parser reads them
           equal the expected ones (none where none is expected); in text 0.0.4
           nothing may follow a sample's value.
        7. Families: each expected family is present once, with equal type,
           help (and unit).  Help is compared after passing the expected help
           through the same parser (escaped the canonical way), because both
           parsers lose leading whitespace of HELP and the 0.0.4 parser also
           loses trailing whitespace -- the formats/parsers cannot carry it.

PROMTOOL POLICY (promtool 2.42, `promtool check metrics`, text 0.0.4 only):
  promtool first parses the input with the Go expfmt text parser, then lints
  it with client_golang's promlint.  Outcomes:
    exit 0  no problems, no output.
    exit 1  parse error: stderr "error while linting: text format parsing
            error in line N: ..." (unescaped quote, invalid escape such as \\"
            or \\t in HELP, second HELP/TYPE for a name, missing final newline,
            invalid UTF-8, unknown type "unknown", ...).  -> case FAILS.
    exit 3  parsed fine but lint problems: one "METRIC PROBLEM" line each on
            stderr.  We split them:
      naming-convention lint -> printed as a note, case still passes.  These
        judge the names the user chose, which an exporter must reproduce
        verbatim; they say nothing about our output's correctness:
          counter metrics should have "_total" suffix
          non-counter metrics should not have "_total" suffix
          metric names should be written in 'snake_case' not 'camelCase'
          label names should be written in 'snake_case' not 'camelCase'
          use base unit "..." instead of "..."
          metric names should not contain abbreviated units
          metric name should not include type '...'
          metric names should not contain ':'
      "no help text" -> fails unless the expected JSON lists that family with
        an empty (or whitespace-only) help; otherwise we lost a HELP line.
      anything else -> FAILS.  That is the reserved-name group ("non-histogram
        metrics should not have "_bucket" suffix", "... "_count"/"_sum"
        suffix", "... "le" label", "non-summary ... "quantile" label"), which
        for an exporter usually means a histogram/summary was split or typed
        wrongly, plus any message this script does not know.
  promtool is looked up as $PROMTOOL, else `promtool` on PATH.

Output: one PASS/FAIL line per case with details indented below a failure;
the last line is "N passed, N failed".  Exit status 0 iff all cases passed and
at least one case was found, else 1.
"""

import json
import math
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_om,
)
from prometheus_client.parser import text_string_to_metric_families as parse_txt

NAMING_LINT = [
    re.compile(r'^counter metrics should have "_total" suffix$'),
    re.compile(r'^non-counter metrics should not have "_total" suffix$'),
    re.compile(r"^metric names should be written in 'snake_case' not 'camelCase'$"),
    re.compile(r"^label names should be written in 'snake_case' not 'camelCase'$"),
    re.compile(r'^use base unit ".*" instead of ".*"$'),
    re.compile(r"^metric names should not contain abbreviated units$"),
    re.compile(r"^metric name should not include type '.*'$"),
    re.compile(r"^metric names should not contain ':'$"),
]
FORMATS = {".txt": "text 0.0.4", ".om": "OpenMetrics", ".pb": "protobuf"}
PB_TYPES = {0: "counter", 1: "gauge", 2: "summary", 3: "untyped", 4: "histogram", 5: "gaugehistogram"}


class CaseError(Exception):
    """The case's JSON is malformed (a problem of the test, not of qprom)."""


def fmt_labels(labels):
    return "{" + ",".join(f"{k}={json.dumps(v, ensure_ascii=False)}"
                          for k, v in sorted(labels.items())) + "}"


class Near:
    """An estimate: within rel * |x| of x."""

    def __init__(self, x, rel):
        self.x, self.rel = x, rel

    def __repr__(self):
        return f"{self.x!r} within {self.rel:g} relative"


def fmt_value(v):
    if isinstance(v, (str, Near, int)):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "+Inf" if v > 0 else "-Inf"
        return repr(v)
    return repr(v)


def expected_value(v, where):
    if isinstance(v, bool):
        raise CaseError(f"{where}: value must be a number or string, got {v!r}")
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return v
    if isinstance(v, dict) and set(v) == {"near", "rel"} and \
            all(isinstance(v[k], (int, float)) and not isinstance(v[k], bool) for k in v):
        return Near(float(v["near"]), float(v["rel"]))
    if v == "any":
        return "any"
    if v in ("+Inf", "-Inf", "NaN"):
        return float(v)
    raise CaseError(f"{where}: bad value {v!r} (number, '+Inf', '-Inf', 'NaN', 'any' "
                    "or {'near': x, 'rel': r})")


def values_equal(want, got, raw):
    """raw: the value as written on the sample's line."""
    if isinstance(want, str) and want == "any":
        return True
    if isinstance(want, int):
        return re.fullmatch(r"[+-]?[0-9]+", raw) is not None and int(raw) == want
    got = float(got)
    if isinstance(want, Near):
        return math.isfinite(got) and abs(got - want.x) <= want.rel * abs(want.x)
    if math.isnan(want):
        return math.isnan(got)
    return want == got


def load_expected(path):
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CaseError(f"{path.name}: cannot read JSON: {e}")
    if not isinstance(data, dict) or not isinstance(data.get("samples"), list):
        raise CaseError(f"{path.name}: top level must be an object with a 'samples' list")
    samples, exemplars = {}, {}
    for i, s in enumerate(data["samples"]):
        where = f"{path.name}: samples[{i}]"
        if not isinstance(s, dict) or not isinstance(s.get("name"), str) or "value" not in s:
            raise CaseError(f"{where}: needs 'name' (string) and 'value'")
        labels = s.get("labels", {})
        if not isinstance(labels, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
            raise CaseError(f"{where}: 'labels' must map strings to strings")
        key = (s["name"], tuple(sorted(labels.items())))
        if key in samples:
            raise CaseError(f"{where}: duplicate expected sample {s['name']}{fmt_labels(labels)}")
        samples[key] = expected_value(s["value"], where)
        ex = s.get("exemplar")
        if ex is not None:
            if not (isinstance(ex, dict) and isinstance(ex.get("labels"), dict)
                    and all(isinstance(ex.get(k), (int, float)) for k in ("value", "timestamp"))):
                raise CaseError(f"{where}: 'exemplar' needs 'labels', 'value' and 'timestamp'")
            exemplars[key] = ex
    families = data.get("families", [])
    if not isinstance(families, list):
        raise CaseError(f"{path.name}: 'families' must be a list")
    for i, f in enumerate(families):
        if not isinstance(f, dict) or not isinstance(f.get("name"), str):
            raise CaseError(f"{path.name}: families[{i}] needs a 'name' string")
        for k in ("type", "help", "unit"):
            if k in f and not isinstance(f[k], str):
                raise CaseError(f"{path.name}: families[{i}].{k} must be a string")
    return samples, families, exemplars


# ------------------------------------------------------------------ promtool

def run_promtool(path):
    """-> (exit status or None, output); run concurrently for all .txt cases."""
    exe = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not exe:
        return None, "promtool not found (set $PROMTOOL or run scripts/deps.sh)"
    try:
        p = subprocess.run([exe, "check", "metrics"], input=path.read_bytes(),
                           capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"promtool: could not run: {e}"
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace").strip()


def judge_promtool(result, expected_families, problems, notes):
    rc, out = result
    if rc is None:
        problems.append(out)
        return
    if rc == 0:
        return
    if rc != 3:
        problems.append(f"promtool parse error (exit {rc}): {out}")
        return
    empty_help = {f["name"] for f in expected_families
                  if "help" in f and f["help"].strip() == ""}
    for line in out.splitlines():
        metric, _, text = line.partition(" ")
        if any(r.match(text) for r in NAMING_LINT):
            notes.append(f"promtool naming lint (ignored): {line}")
        elif text == "no help text" and metric in empty_help:
            notes.append(f"promtool lint (expected, help is empty): {line}")
        else:
            problems.append(f"promtool lint: {line}")


# ------------------------------------------------------------------ parsing

def escape_help(h, fmt):
    h = h.replace("\\", "\\\\").replace("\n", "\\n")
    return h.replace('"', '\\"') if fmt == ".om" else h


def help_through_parser(h, fmt):
    """What the parser returns for help `h` written with canonical escaping."""
    try:
        if fmt == ".txt":
            text = f"# HELP h {escape_help(h, fmt)}\n# TYPE h gauge\nh 1\n"
            return list(parse_txt(text))[0].documentation
        text = f"# TYPE h gauge\n# HELP h {escape_help(h, fmt)}\nh 1\n# EOF\n"
        return list(parse_om(text))[0].documentation
    except Exception:
        return h


def txt_counter_type_names(text):
    names = set()
    for line in text.split("\n"):
        parts = line.split()
        if len(parts) >= 4 and parts[0] == "#" and parts[1] == "TYPE" and parts[3] == "counter":
            names.add(parts[2])
    return names


def value_field(line):
    """(the value as written, what follows it) of a sample line: past the name and the
    label set (quoted values with backslash escapes may hold spaces, braces and '#')."""
    i = 0
    while i < len(line) and line[i] not in "{ ":
        i += 1
    if i < len(line) and line[i] == "{":
        quoted = False
        while i < len(line):
            c = line[i]
            if quoted and c == "\\":
                i += 2
                continue
            if c == '"':
                quoted = not quoted
            elif c == "}" and not quoted:
                break
            i += 1
        i += 1
    rest = line[i:].lstrip(" ")
    value, _, after = rest.partition(" ")
    return value, after


def parse(text, fmt):
    """-> list of (literal family name, type, help, unit, [(name, labels, value, exemplar)])"""
    if fmt == ".om":
        return [(f.name, f.type, f.documentation, f.unit,
                 [(s.name, dict(s.labels), s.value, s.exemplar) for s in f.samples])
                for f in parse_om(text)]
    counters = txt_counter_type_names(text)
    out = []
    for f in parse_txt(text):
        name, samples = f.name, [(s.name, dict(s.labels), s.value, None) for s in f.samples]
        typ = "untyped" if f.type == "unknown" else f.type
        if f.type == "counter":
            # Undo the parser's renaming (see module docstring).
            if name + "_total" in counters:
                name = name + "_total"
            else:
                samples = [(n[:-len("_total")] if n == name + "_total" else n, l, v, e)
                           for n, l, v, e in samples]
        out.append((name, typ, f.documentation, f.unit, samples))
    return out


# ------------------------------------------------------------------ a case

def check_case(expo, fmt, promtool_result=None):
    problems, notes = [], []
    exp_path = expo.with_name(expo.name + ".json")
    if not exp_path.exists():
        return [f"missing expected file {exp_path.name}"], notes
    want_samples, want_families, want_exemplars = load_expected(exp_path)  # may raise CaseError

    raw = expo.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return [f"not valid UTF-8: {e}"], notes
    if text and not text.endswith("\n"):
        problems.append('does not end with "\\n"')

    if fmt == ".txt":
        judge_promtool(promtool_result.result(), want_families, problems, notes)

    try:
        families = parse(text, fmt)
    except Exception as e:  # the parsers raise ValueError, sometimes others
        problems.append(f"{FORMATS[fmt]} parser rejected it: {type(e).__name__}: {e}")
        return problems, notes

    # Sample lines vs parsed samples.
    lines = [line for line in text.split("\n") if line.strip() and not line.lstrip().startswith("#")]
    n_lines = len(lines)
    n_parsed = sum(len(f[4]) for f in families)
    if n_lines != n_parsed:
        problems.append(f"{n_lines} sample lines but the parser returned {n_parsed} samples "
                        "(repeated series are dropped by the OpenMetrics parser)")
    # The value as written, per parsed sample: both parsers return samples in line order.
    fields = [value_field(line) for line in lines]
    raws = [v for v, _ in fields] if n_lines == n_parsed else [None] * n_parsed
    if fmt == ".txt":
        for line, (_, after) in zip(lines, fields):
            if after:
                problems.append(f"text 0.0.4 line has {after!r} after its value: {line!r}")

    # Families.
    by_name = {}
    for f in families:
        by_name.setdefault(f[0], []).append(f)
    for name, fs in by_name.items():
        if len(fs) > 1:
            problems.append(f"family {name} appears {len(fs)} times (interleaved or repeated)")
    for wf in want_families:
        fs = by_name.get(wf["name"])
        if not fs:
            problems.append(f"family {wf['name']}: missing (parsed families: "
                            f"{', '.join(sorted(by_name)) or 'none'})")
            continue
        _, typ, doc, unit, _ = fs[0]
        if "type" in wf:
            want_t = "untyped" if fmt == ".txt" and wf["type"] == "unknown" else wf["type"]
            if want_t != typ:
                problems.append(f"family {wf['name']}: type expected {wf['type']!r}, got {typ!r}")
        if "help" in wf:
            want_h = help_through_parser(wf["help"], fmt)
            if want_h != doc:
                extra = "" if want_h == wf["help"] else f" (as the parser returns it: {want_h!r})"
                problems.append(f"family {wf['name']}: help expected {wf['help']!r}{extra}, "
                                f"got {doc!r}")
        if "unit" in wf and fmt == ".om" and wf["unit"] != unit:
            problems.append(f"family {wf['name']}: unit expected {wf['unit']!r}, got {unit!r}")

    # Samples.
    got = {}
    raw_of = iter(raws)
    for fam in families:
        for name, labels, value, ex in fam[4]:
            raw = next(raw_of)
            key = (name, tuple(sorted(labels.items())))
            want_ex = want_exemplars.get(key)
            where = f"sample {name}{fmt_labels(labels)}"
            if want_ex is None and ex is not None:
                problems.append(f"{where}: unexpected exemplar {ex}")
            elif want_ex is not None and ex is None:
                problems.append(f"{where}: exemplar expected {want_ex}, got none")
            elif want_ex is not None and not (
                    dict(ex.labels) == want_ex["labels"] and float(ex.value) == float(want_ex["value"])
                    and ex.timestamp is not None
                    and abs(float(ex.timestamp) - float(want_ex["timestamp"])) <= 1e-6):
                problems.append(f"{where}: exemplar expected {want_ex}, got {ex}")
            try:
                as_written = float(raw) if raw is not None else None
            except ValueError:
                as_written = None
            if raw is not None and (as_written is None or not values_equal(as_written, value, raw)):
                problems.append(f"sample {name}{fmt_labels(labels)}: the parser's value {fmt_value(value)} "
                                f"is not the line's {raw} (samples out of line order?)")
                raw = None
            got.setdefault((name, tuple(sorted(labels.items()))), []).append((fam[0], value, raw))
    for key, want in want_samples.items():
        label = key[0] + fmt_labels(dict(key[1]))
        if key not in got:
            near = [k[0] + fmt_labels(dict(k[1])) for k in got if k[0] == key[0]]
            hint = f"; parsed {key[0]} series: {', '.join(near)}" if near else ""
            problems.append(f"sample {label}: missing{hint}")
            continue
        hits = got[key]
        if len(hits) > 1:
            problems.append(f"sample {label}: present {len(hits)} times")
        if isinstance(want, int) and hits[0][2] is None:
            problems.append(f"sample {label}: value expected exactly {want}, but the line it came "
                            "from is not known")
        elif not values_equal(want, hits[0][1], hits[0][2] or ""):
            problems.append(f"sample {label}: value expected {fmt_value(want)}, "
                            f"got {hits[0][2] if isinstance(want, int) else fmt_value(hits[0][1])}")
    for key, hits in got.items():
        if key not in want_samples:
            label = key[0] + fmt_labels(dict(key[1]))
            problems.append(f"sample {label}: unexpected (family {hits[0][0]}, "
                            f"value {fmt_value(hits[0][1])})")
    return problems, notes


def pb_label(v):
    """`le`/`quantile` as the text encoder writes them: integers without a fraction."""
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return str(int(v)) if v == int(v) else repr(v)


def pb_samples(families):
    """Decoded MetricFamily messages -> {(sample name, labels): (value, exemplar)}, named as
    text 0.0.4 names them; exemplars as (labels, value, timestamp)."""
    out = {}

    def ex(m, field):
        if not m.HasField(field):
            return None
        e = getattr(m, field)
        ts = e.timestamp.seconds + e.timestamp.nanos / 1e9 if e.HasField("timestamp") else None
        return ({p.name: p.value for p in e.label}, e.value, ts)

    for f in families:
        for m in f.metric:
            ls = {p.name: p.value for p in m.label}

            def put(name, v, e=None, **extra):
                key = (name, tuple(sorted({**ls, **extra}.items())))
                out.setdefault(key, []).append((v, e))
            if f.type == 0:
                put(f.name, m.counter.value, ex(m.counter, "exemplar"))
            elif f.type == 1:
                put(f.name, m.gauge.value)
            elif f.type == 2:
                for q in m.summary.quantile:
                    put(f.name, q.value, quantile=pb_label(q.quantile))
                put(f.name + "_count", m.summary.sample_count)
                put(f.name + "_sum", m.summary.sample_sum)
            elif f.type == 4:
                for b in m.histogram.bucket:
                    put(f.name + "_bucket", b.cumulative_count, ex(b, "exemplar"), le=pb_label(b.upper_bound))
                put(f.name + "_count", m.histogram.sample_count)
                put(f.name + "_sum", m.histogram.sample_sum)
            else:
                put(f.name, None)
    return out


def check_pb_case(expo):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))
    from metrics_pb import decode_delimited
    problems = []
    txt_json = expo.with_name(expo.stem + ".txt.json")
    if not txt_json.exists():
        return [f"missing expected file {txt_json.name}"], []
    want_samples, want_families, _ = load_expected(txt_json)
    om_json = expo.with_name(expo.stem + ".om.json")
    want_ex = load_expected(om_json)[2] if om_json.exists() else {}
    try:
        fams = decode_delimited(expo.read_bytes())
    except Exception as e:  # DecodeError, ValueError
        return [f"protobuf decoding failed: {type(e).__name__}: {e}"], []
    names = [f.name for f in fams]
    if names != sorted(names) or len(set(names)) != len(names):
        problems.append(f"families not sorted, or repeated: {names}")
    by_name = {f.name: f for f in fams}
    for wf in want_families:
        f = by_name.pop(wf["name"], None)
        if f is None:
            problems.append(f"family {wf['name']}: missing (got {', '.join(names) or 'none'})")
            continue
        if "type" in wf and PB_TYPES.get(f.type) != wf["type"]:
            problems.append(f"family {wf['name']}: type expected {wf['type']!r}, got {PB_TYPES.get(f.type)!r}")
        if "help" in wf and f.help != wf["help"]:
            problems.append(f"family {wf['name']}: help expected {wf['help']!r}, got {f.help!r}")
    for extra in by_name:
        problems.append(f"family {extra}: unexpected")
    got = pb_samples(fams)
    for key, want in want_samples.items():
        label = key[0] + fmt_labels(dict(key[1]))
        hits = got.get(key)
        if not hits:
            problems.append(f"sample {label}: missing")
            continue
        if len(hits) > 1:
            problems.append(f"sample {label}: present {len(hits)} times")
        value, e = hits[0]
        # A double carries integers exactly up to 2^53 only: compare as the f64 it is.
        w = float(want) if isinstance(want, int) else want
        if value is None or not values_equal(w, float(value), ""):
            problems.append(f"sample {label}: value expected {fmt_value(want)}, got {fmt_value(value)}")
        we = want_ex.get(key)
        if we is None and e is not None:
            problems.append(f"sample {label}: unexpected exemplar {e}")
        elif we is not None and (e is None or not (
                e[0] == we["labels"] and e[1] == float(we["value"]) and e[2] is not None
                and abs(e[2] - float(we["timestamp"])) <= 1e-6)):
            problems.append(f"sample {label}: exemplar expected {we}, got {e}")
    for key in got:
        if key not in want_samples:
            problems.append(f"sample {key[0]}{fmt_labels(dict(key[1]))}: unexpected")
    return problems, []


def find_cases(paths):
    cases, errors = [], []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(q for q in p.rglob("*") if q.is_file())
            cases += [q for q in files if q.suffix in FORMATS]
            # expected files without an exposition
            for q in files:
                if q.suffix == ".json" and Path(q.stem).suffix in FORMATS \
                        and not q.with_name(q.stem).exists():
                    errors.append((q, [f"expected file without exposition {q.stem}"]))
        elif p.is_file() and p.suffix in FORMATS:
            cases.append(p)
        else:
            errors.append((p, ["not a directory or a .txt/.om/.pb case file"]))
    return cases, errors


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__)
        return 0 if len(argv) >= 2 else 1
    cases, errors = find_cases(argv[1:])
    passed = failed = 0
    for path, problems in errors:
        failed += 1
        print(f"FAIL {path}")
        for pr in problems:
            print(f"    {pr}")
    pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2)
    promtool = {c: pool.submit(run_promtool, c) for c in cases if c.suffix == ".txt"}
    for expo in cases:
        try:
            if expo.suffix == ".pb":
                problems, notes = check_pb_case(expo)
            else:
                problems, notes = check_case(expo, expo.suffix, promtool.get(expo))
        except CaseError as e:
            problems, notes = [f"bad expected JSON: {e}"], []
        if problems:
            failed += 1
            print(f"FAIL {expo}")
        else:
            passed += 1
            print(f"PASS {expo}")
        for pr in problems:
            print(f"    {pr}")
        for n in notes:
            print(f"    note: {n}")
    if not cases and not errors:
        print("no cases found in " + " ".join(argv[1:]))
        failed += 1
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
