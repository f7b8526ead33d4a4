"""The protobuf exposition of the real .so, scraped over HTTP as Prometheus 2.42 asks for
it with --enable-feature=native-histograms, and through .z.ph's export (q's own port);
bodies decoded with message classes built from the dev-dependency prometheus-client's
metrics.proto (metrics_pb.py).

Checked: content type and gzip; every value against what the test stored; every series
and value of the test's families against the text 0.0.4 scrape (the Python client's
parser); native histograms' spans and deltas; exemplars (protobuf yes, text 0.0.4 no).
"""
import gzip
import math
import urllib.request

import pytest
from metrics_pb import decode_delimited, metric_family_class
from prometheus_client.parser import text_string_to_metric_families

# Prometheus 2.42, scrape/scrape.go: scrapeAcceptHeaderWithProtobuf (protobuf first, no q).
ACCEPT_242 = ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,"
              "application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,"
              "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
ACCEPT_TEXT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
CTYPE = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
PREFIX = "pbt_"
COUNTER, GAUGE, SUMMARY, HISTOGRAM = 0, 1, 2, 4


def d(q, **kv):
    return q.dict(q.syms(list(kv)), q.knk(*kv.values()))


@pytest.fixture(scope="module")
def fams(q, qprom):
    """The test's families, created once in the process-wide registry."""
    qprom.call("qprom_create", d(q, name=q.s(PREFIX + "req_total"), type=q.s("counter"),
                                 help=q.string("Requests \"served\".\n"), labels=q.syms(["h", "code"])))
    qprom.call("qprom_inc", q.s(PREFIX + "req_total"), ["a\"b\\c\nd", "200"], 3)
    qprom.call("qprom_inc", q.s(PREFIX + "req_total"), ["é", "500"], 0.5)
    qprom.call("qprom_create", d(q, name=q.s(PREFIX + "temp_celsius"), type=q.s("gauge"),
                                 help=q.string("T."), unit=q.string("celsius")))
    qprom.call("qprom_set", q.s(PREFIX + "temp_celsius"), None, -12.25)
    qprom.call("qprom_create", d(q, name=q.s(PREFIX + "lat_seconds"), type=q.s("histogram"),
                                 help=q.string("L."), labels=q.syms(["h"]), buckets=q.vec("f", [0.1, 1.0])))
    for v in (0.05, 0.5, 0.5, 3.0):
        qprom.call("qprom_obs", q.s(PREFIX + "lat_seconds"), "pg", v)
    qprom.call("qprom_create", d(q, name=q.s(PREFIX + "size_bytes"), type=q.s("summary"), help=q.string("S."),
                                 quantiles=q.vec("f", [0.5, 1.0])))
    for v in (10.0, 20.0, 30.0):
        qprom.call("qprom_obs", q.s(PREFIX + "size_bytes"), None, v)
    qprom.call("qprom_create", d(q, name=q.s(PREFIX + "build"), type=q.s("info"), help=q.string("B."),
                                 labels=q.syms(["version"])))
    qprom.call("qprom_series", PREFIX + "build", "1.0", None, None)
    return qprom


@pytest.fixture(scope="module")
def port(q, fams):
    cfg = d(q, port=q.j(0), bind=q.s("127.0.0.1"))
    p = fams.call("qprom_start", cfg, q.identity(), check_refs=False)
    yield p
    fams.call("qprom_stop", q.identity())


def get(port, accept, encoding="gzip"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                 headers={"Accept": accept, "Accept-Encoding": encoding})
    with urllib.request.urlopen(req, timeout=5) as r:
        body = r.read()
        if r.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return r.headers, body


def mine(body):
    return {f.name: f for f in decode_delimited(body) if f.name.startswith(PREFIX)}


def labels(m):
    return {p.name: p.value for p in m.label}


def test_listener_serves_protobuf_to_prometheus(port):
    headers, body = get(port, ACCEPT_242)
    assert headers["Content-Type"] == CTYPE
    assert headers["Content-Encoding"] == "gzip"
    assert "Accept" in headers["Vary"]
    check_values(mine(body))
    # Without gzip, the same messages.
    h2, plain = get(port, ACCEPT_242, encoding="identity")
    assert h2.get("Content-Encoding") is None and h2["Content-Type"] == CTYPE
    assert set(mine(plain)) == set(mine(body))


def check_values(f):
    assert list(f) == sorted(f), "families sorted by name"
    assert set(f) == {PREFIX + n for n in ("build_info", "lat_seconds", "req_total", "size_bytes", "temp_celsius")}

    c = f[PREFIX + "req_total"]
    assert (c.type, c.help) == (COUNTER, "Requests \"served\".\n")
    got = {(labels(m)["h"], labels(m)["code"]): m.counter.value for m in c.metric}
    assert got == {("a\"b\\c\nd", "200"): 3.0, ("é", "500"): 0.5}
    assert all(m.counter.HasField("created_timestamp") and m.counter.created_timestamp.seconds > 1.6e9
               for m in c.metric)

    g = f[PREFIX + "temp_celsius"]
    assert (g.type, g.unit, len(g.metric), g.metric[0].gauge.value) == (GAUGE, "celsius", 1, -12.25)
    assert not g.metric[0].HasField("counter") and list(g.metric[0].label) == []

    info = f[PREFIX + "build_info"]
    assert (info.type, labels(info.metric[0]), info.metric[0].gauge.value) == (GAUGE, {"version": "1.0"}, 1.0)

    h = f[PREFIX + "lat_seconds"]
    assert h.type == HISTOGRAM and labels(h.metric[0]) == {"h": "pg"}
    hm = h.metric[0].histogram
    assert (hm.sample_count, hm.sample_sum) == (4, 4.05)
    assert [(b.upper_bound, b.cumulative_count) for b in hm.bucket] == [(0.1, 1), (1.0, 3), (math.inf, 4)]
    assert not hm.HasField("schema") and len(hm.positive_span) == 0, "classic: no native fields"

    s = f[PREFIX + "size_bytes"].metric[0].summary
    assert (s.sample_count, s.sample_sum) == (3, 60.0)
    assert [q.quantile for q in s.quantile] == [0.5, 1.0]
    assert abs(s.quantile[1].value - 30.0) <= 30.0 * 0.01


def samples_of(fams_pb):
    """Protobuf families -> {(sample name, sorted labels): value}, as text 0.0.4 names them."""
    out = {}
    for f in fams_pb:
        for m in f.metric:
            ls = labels(m)

            def put(name, v, **extra):
                out[(name, tuple(sorted({**ls, **extra}.items())))] = v
            if f.type == COUNTER:
                put(f.name, m.counter.value)
            elif f.type == GAUGE:
                put(f.name, m.gauge.value)
            elif f.type == SUMMARY:
                for qq in m.summary.quantile:
                    put(f.name, qq.value, quantile=repr(qq.quantile))
                put(f.name + "_count", float(m.summary.sample_count))
                put(f.name + "_sum", m.summary.sample_sum)
            elif f.type == HISTOGRAM:
                for b in m.histogram.bucket:
                    put(f.name + "_bucket", float(b.cumulative_count),
                        le="+Inf" if math.isinf(b.upper_bound) else repr(b.upper_bound))
                put(f.name + "_count", float(m.histogram.sample_count))
                put(f.name + "_sum", m.histogram.sample_sum)
    return out


def samples_of_text(text):
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            ls = dict(s.labels)
            for k in ("le", "quantile"):
                if k in ls and ls[k] != "+Inf":
                    ls[k] = repr(float(ls[k]))
            out[(s.name, tuple(sorted(ls.items())))] = s.value
    return out


def test_same_series_and_values_as_text(port):
    _, pb = get(port, ACCEPT_242)
    _, text = get(port, "text/plain;version=0.0.4")
    assert not text.startswith(b"\n") and b"# TYPE" in text
    a = {k: v for k, v in samples_of(decode_delimited(pb)).items() if k[0].startswith(PREFIX)}
    b = {k: v for k, v in samples_of_text(text.decode()).items() if k[0].startswith(PREFIX)}
    assert a and a.keys() == b.keys()
    for k in a:
        assert a[k] == b[k] or (k[0].endswith("size_bytes") and abs(a[k] - b[k]) <= 0.01 * abs(b[k])), k
    # Every family of the whole registry (process and listener metrics too) is in both,
    # under the same name; their values move between two scrapes.
    names_pb = {f.name for f in decode_delimited(pb)}
    # (text 0.0.4 also lists families without series, by HELP and TYPE alone; protobuf
    # leaves them out)
    names_txt = {f.name + ("_total" if f.type == "counter" and (f.name + "_total").encode() in text else "")
                 for f in text_string_to_metric_families(text.decode()) if f.samples}
    assert names_pb == names_txt


def test_text_and_openmetrics_unchanged_for_their_clients(port):
    h, body = get(port, ACCEPT_TEXT)
    assert h["Content-Type"].startswith("application/openmetrics-text") and body.endswith(b"# EOF\n")
    h, body = get(port, "*/*")
    assert h["Content-Type"].startswith("text/plain; version=0.0.4")
    # Protobuf without its parameters is not what we produce: text.
    h, _ = get(port, "application/vnd.google.protobuf")
    assert h["Content-Type"].startswith("text/plain; version=0.0.4")


def test_q_port_serves_protobuf(q, fams):
    req = q.knk(b"metrics", q.dict(q.syms(["Accept", "Accept-Encoding"]), q.knk(ACCEPT_242.encode(), b"gzip")))
    resp = fams.call("qprom_http", req)
    head, body = resp.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"Content-Type: {CTYPE}\r\n".encode() in head + b"\r\n"
    assert b"Content-Encoding: gzip" in head
    check_values(mine(gzip.decompress(body)))
    plain = fams.call("qprom_http", q.knk(b"metrics", q.dict(q.syms(["accept"]), q.knk(ACCEPT_242.encode()))))
    head, body = plain.split(b"\r\n\r\n", 1)
    assert b"Content-Encoding" not in head
    check_values(mine(body))


def exemplar_labels(e):
    return {p.name: p.value for p in e.label}


def test_exemplars_in_protobuf_not_in_text(q, fams, port):
    fams.call("qprom_create", d(q, name=q.s(PREFIX + "ex_total"), type=q.s("counter"), help=q.string("E.")))
    fams.call("qprom_inc_ex", q.s(PREFIX + "ex_total"), None, 2,
              q.dict(q.syms(["trace_id", "user"]), q.knk(b"abc", q.s("alice"))))
    fams.call("qprom_create", d(q, name=q.s(PREFIX + "exh_seconds"), type=q.s("histogram"), help=q.string("E."),
                                buckets=q.vec("f", [1.0])))
    fams.call("qprom_obs_ex", q.s(PREFIX + "exh_seconds"), None, 0.25, q.dict(q.syms(["user"]), q.knk(b"bob")))
    fams.call("qprom_obs_ex", q.s(PREFIX + "exh_seconds"), None, 7.0, q.dict(q.syms(["user"]), q.knk(b"carol")))
    _, pb = get(port, ACCEPT_242)
    f = mine(pb)
    e = f[PREFIX + "ex_total"].metric[0].counter.exemplar
    assert (exemplar_labels(e), e.value) == ({"trace_id": "abc", "user": "alice"}, 2.0)
    assert e.timestamp.seconds > 1.6e9
    b = f[PREFIX + "exh_seconds"].metric[0].histogram.bucket
    assert [(x.upper_bound, exemplar_labels(x.exemplar), x.exemplar.value) for x in b] == \
        [(1.0, {"user": "bob"}, 0.25), (math.inf, {"user": "carol"}, 7.0)]
    _, text = get(port, "text/plain;version=0.0.4")
    lines = [x for x in text.decode().split("\n") if x.startswith((PREFIX + "ex_total", PREFIX + "exh_seconds"))]
    assert len(lines) == 5 and not any(" # " in x or "alice" in x or "carol" in x for x in lines), lines
    _, om = get(port, "application/openmetrics-text;version=1.0.0")
    assert b'pbt_ex_total 2 # {trace_id="abc",user="alice"} 2 ' in om


def expand(spans, deltas):
    """Absolute (index, count) of non-empty buckets, as the spec reads spans and deltas."""
    out, idx, count, it = [], 0, 0, iter(deltas)
    for s in spans:
        idx += s.offset
        for _ in range(s.length):
            count += next(it)
            assert count >= 0
            if count:
                out.append((idx, count))
            idx += 1
    assert next(it, None) is None
    return out


def native_index(v, schema):
    """Bucket k of schema s holds (2^((k-1) 2^-s), 2^(k 2^-s)]: k = ceil(log2|v| 2^s), with
    the bounds computed as powers of two (exact at powers of two, as Prometheus' are)."""
    k = math.ceil(math.log2(abs(v)) * 2.0 ** schema)
    bound = lambda k: 2.0 ** (k * 2.0 ** -schema)  # noqa: E731
    while bound(k - 1) >= abs(v):
        k -= 1
    while bound(k) < abs(v):
        k += 1
    return k


def test_native_histogram_spans_and_deltas(q, fams, port):
    name = PREFIX + "nat_seconds"
    fams.call("qprom_create", d(q, name=q.s(name), type=q.s("histogram"), help=q.string("N."),
                                nativeSchema=q.j(2), nativeZeroThreshold=q.f(0.001)))
    obs = [0.0, 0.0005, -0.0002, 0.004, 0.0045, 0.5, 2.0, 2.0, 3600.0, -1.5, -7.0, 1e-3]
    for v in obs:
        fams.call("qprom_obs", q.s(name), None, v)
    _, pb = get(port, ACCEPT_242)
    h = mine(pb)[name].metric[0].histogram
    assert (h.schema, h.zero_threshold, h.sample_count) == (2, 0.001, len(obs))
    assert h.sample_sum == pytest.approx(sum(obs))
    small = [v for v in obs if abs(v) <= 0.001]
    assert h.zero_count == len(small)
    want_pos, want_neg = {}, {}
    for v in obs:
        if abs(v) > 0.001:
            side = want_pos if v > 0 else want_neg
            k = native_index(v, 2)
            side[k] = side.get(k, 0) + 1
    assert expand(h.positive_span, h.positive_delta) == sorted(want_pos.items())
    assert expand(h.negative_span, h.negative_delta) == sorted(want_neg.items())
    assert all(s.offset > 2 for s in list(h.positive_span)[1:]), "gaps of <= 2 buckets stay inside a span"
    assert [b.upper_bound for b in h.bucket] == [math.inf] and h.bucket[0].cumulative_count == len(obs)


def test_metrics_proto_reader_reads_the_field_numbers():
    # A positive control for metrics_pb.py: what it built from prometheus-client's proto3 file
    # has the numbers, types and presence of client_model's metrics.proto, which Prometheus reads.
    mf = metric_family_class()
    f = {x.name: x.number for x in mf.DESCRIPTOR.fields}
    assert f == {"name": 1, "help": 2, "type": 3, "metric": 4, "unit": 5}
    metric = mf.DESCRIPTOR.fields_by_name["metric"].message_type
    h = {x.name: x.number for x in metric.fields_by_name["histogram"].message_type.fields}
    assert (h["schema"], h["positive_span"], h["positive_delta"], h["exemplars"]) == (5, 12, 13, 16)
    # start_timestamp in prometheus-client's file, created_timestamp as client_model names it.
    created = {m: metric.fields_by_name[m].message_type.fields_by_name["created_timestamp"]
               for m in ("counter", "summary", "histogram")}
    assert {m: x.number for m, x in created.items()} == {"counter": 3, "summary": 4, "histogram": 15}
    assert {x.message_type.full_name for x in created.values()} == {"google.protobuf.Timestamp"}
    # proto2 presence: a gauge sent as 0 is told apart from one not sent.
    Metric = mf.DESCRIPTOR.fields_by_name["metric"].message_type._concrete_class
    assert not Metric.FromString(b"").HasField("gauge")
    g = Metric.FromString(b"\x12\x09\x09" + bytes(8)).gauge      # gauge { value: 0.0 }
    assert g.HasField("value") and g.value == 0.0
    # positive_delta (13) is sint64 and read unpacked (as qprom sends it) or packed: zigzag 2, 3.
    Histogram = metric.fields_by_name["histogram"].message_type._concrete_class
    assert list(Histogram.FromString(b"\x68\x02\x68\x03").positive_delta) == [1, -2]
    assert list(Histogram.FromString(b"\x6a\x02\x02\x03").positive_delta) == [1, -2]
