"""Message classes for Prometheus' protobuf exposition, built at test time with the
`protobuf` package's descriptor API: no protoc, no generated code, and no copy of the
schema in the repository (we learn from other projects' code, we do not commit it).

The schema is the `metrics.proto` that the dev-dependency prometheus-client (Cargo.toml)
ships in src/encoding/proto/: the io.prometheus.client messages, in proto3 syntax. Cargo
downloads the crate (`cargo test`, run by `make test` before any suite that decodes
protobuf; `cargo metadata` below fetches it too), and `cargo metadata` says where.

Prometheus itself reads prometheus/client_model's proto2 version of the same messages:
same numbers and types, `optional` presence, and the timestamps 3/4/15 named
`created_timestamp`. The reader turns the proto3 file into that: a proto2 descriptor with
every singular field LABEL_OPTIONAL (so HasField tells "sent" from "absent", as the tests
expect), and start_timestamp renamed (see RENAMES). It reads only what metrics.proto uses
(top-level messages and enums, scalar/enum/message fields, `repeated`) and refuses
anything else it meets rather than guess.

    MetricFamily = metric_family_class()
    for fam in decode_delimited(body, MetricFamily): ...
"""
import json
import os
import re
import subprocess
from functools import lru_cache
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

ROOT = Path(__file__).resolve().parents[2]
CRATE = "prometheus-client"
CRATE_PROTO = Path("src/encoding/proto/metrics.proto")
FETCH = ("`cargo fetch` in the repository root downloads it (so does `make test`'s "
         "`cargo test --no-default-features --release`, which runs before the suites that decode protobuf)")

F = descriptor_pb2.FieldDescriptorProto
SCALARS = {
    "double": F.TYPE_DOUBLE, "float": F.TYPE_FLOAT, "int64": F.TYPE_INT64, "uint64": F.TYPE_UINT64,
    "int32": F.TYPE_INT32, "uint32": F.TYPE_UINT32, "sint32": F.TYPE_SINT32, "sint64": F.TYPE_SINT64,
    "bool": F.TYPE_BOOL, "string": F.TYPE_STRING, "bytes": F.TYPE_BYTES,
}
# Fields by (message, number) whose name differs between prometheus-client's proto3 copy
# and client_model's metrics.proto, the one Prometheus reads and the tests, check.py and
# src/expo/proto.rs follow. Only the name differs (the wire carries numbers), so the rename
# changes no decoding; it is by number so that nothing else can be renamed by mistake, and
# a file where the number holds another field is refused.
RENAMES = {
    ("Counter", 3): ("start_timestamp", "created_timestamp"),
    ("Summary", 4): ("start_timestamp", "created_timestamp"),
    ("Histogram", 15): ("start_timestamp", "created_timestamp"),
}


class SchemaNotFound(RuntimeError):
    pass


@lru_cache(maxsize=None)
def proto_path() -> Path:
    """prometheus-client's metrics.proto: the package cargo resolved for this repository
    (Cargo.lock pins the version), so a registry holding other versions cannot mislead."""
    cmd = [os.environ.get("CARGO", "cargo"), "metadata", "--format-version", "1", "--no-default-features"]
    try:
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SchemaNotFound(f"{' '.join(cmd)}: {e} (cargo locates {CRATE}'s metrics.proto, "
                             "the protobuf tests' schema: put it on PATH or set CARGO)") from None
    if r.returncode != 0:
        raise SchemaNotFound(f"{' '.join(cmd)} failed (exit {r.returncode}): {r.stderr.strip()[-2000:]}\n"
                             f"(it locates {CRATE}'s metrics.proto; {FETCH})")
    found = [p for p in json.loads(r.stdout)["packages"] if p["name"] == CRATE]
    if len(found) != 1:
        raise SchemaNotFound(f"cargo metadata lists {len(found)} packages named {CRATE}, expected 1 "
                             "(the dev-dependency in Cargo.toml)")
    path = Path(found[0]["manifest_path"]).parent / CRATE_PROTO
    if not path.is_file():
        raise SchemaNotFound(f"{path} not found: the schema the protobuf tests decode with is "
                             f"{CRATE} {found[0]['version']}'s {CRATE_PROTO}; {FETCH}")
    return path


def file_descriptor(text: str) -> descriptor_pb2.FileDescriptorProto:
    text = re.sub(r"/\*.*?\*/", "", re.sub(r"//[^\n]*", "", text), flags=re.S)
    fd = descriptor_pb2.FileDescriptorProto(name="io/prometheus/client/metrics.proto")
    m = re.search(r'\bsyntax\s*=\s*"(\w+)"\s*;', text)
    syntax = m.group(1) if m else "proto2"
    if syntax not in ("proto2", "proto3"):
        raise ValueError(f"metrics.proto: unknown syntax {syntax!r}")
    # Always a proto2 descriptor: in proto3 a singular scalar has no presence (HasField
    # refuses it, a 0 reads as absent), while Prometheus' client_model is proto2 and the
    # tests check what was sent, a 0 included. The wire format is the same.
    fd.syntax = "proto2"
    fd.package = re.search(r"\bpackage\s+([\w.]+)\s*;", text).group(1)
    fd.dependency.extend(re.findall(r'\bimport\s+"([^"]+)"\s*;', text))
    enums = set()
    for name, body in re.findall(r"\benum\s+(\w+)\s*\{([^}]*)\}", text):
        enums.add(name)
        e = fd.enum_type.add(name=name)
        for vname, num in re.findall(r"(\w+)\s*=\s*(-?\d+)\s*;", body):
            e.value.add(name=vname, number=int(num))
    for name, body in re.findall(r"\bmessage\s+(\w+)\s*\{([^}]*)\}", text):
        msg = fd.message_type.add(name=name)
        for stmt in filter(None, (s.strip() for s in body.split(";"))):
            # proto2 needs a label; proto3 has none for singular fields (`optional` there only
            # adds presence, which every singular field gets here anyway).
            label = r"(optional|repeated)\s+" if syntax == "proto2" else r"(?:(optional|repeated)\s+)?"
            f = re.fullmatch(label + r"([\w.]+)\s+(\w+)\s*=\s*(\d+)", stmt)
            if not f:
                raise ValueError(f"metrics.proto: message {name}: cannot read {stmt!r}")
            label, typ, fname, num = f.groups()
            repeated = label == "repeated"
            field = msg.field.add(name=fname, number=int(num),
                                  label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL)
            if typ in SCALARS:
                field.type = SCALARS[typ]
                # proto3 packs repeated numbers by default; say so, as the file means it. Only
                # serialising looks at this: a parser takes either encoding whatever the
                # descriptor says (qprom sends them unpacked, as client_model's proto2 does).
                if repeated and syntax == "proto3" and typ not in ("string", "bytes"):
                    field.options.packed = True
            elif typ in enums:
                field.type, field.type_name = F.TYPE_ENUM, f".{fd.package}.{typ}"
            else:
                full = typ if "." in typ else f"{fd.package}.{typ}"
                field.type, field.type_name = F.TYPE_MESSAGE, f".{full}"
    if not fd.message_type:
        raise ValueError("metrics.proto: no messages read")
    messages = {m.name: m for m in fd.message_type}
    for (mname, num), (old, new) in RENAMES.items():
        field = next((x for x in messages[mname].field if x.number == num), None) if mname in messages else None
        if field is None or field.name not in (old, new):
            raise ValueError(f"metrics.proto: expected {mname}.{old} (or {new}) = {num}, "
                             f"found {field.name if field else 'no such field'}")
        field.name = new
    return fd


@lru_cache(maxsize=None)
def classes():
    """{message name: class} for every message of metrics.proto."""
    pool = descriptor_pool.DescriptorPool()
    ts = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(ts)
    pool.Add(ts)
    fd = file_descriptor(proto_path().read_text(encoding="utf-8"))
    pool.Add(fd)
    return {m.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{fd.package}.{m.name}"))
            for m in fd.message_type}


def metric_family_class():
    return classes()["MetricFamily"]


def decode_delimited(body: bytes, cls=None):
    """The messages of a varint-length-delimited stream (what `encoding=delimited` means)."""
    cls = cls or metric_family_class()
    out, i = [], 0
    while i < len(body):
        n, shift = 0, 0
        while True:
            if i >= len(body):
                raise ValueError("truncated length prefix")
            b = body[i]
            i += 1
            n |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                break
            if shift > 63:
                raise ValueError("length prefix too long")
        if i + n > len(body):
            raise ValueError(f"message of {n} bytes at {i} runs past the end ({len(body)})")
        m = cls()
        m.ParseFromString(body[i:i + n])
        out.append(m)
        i += n
    return out
