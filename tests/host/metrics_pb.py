"""Message classes for Prometheus' protobuf exposition, built at test time from
tests/proto/metrics.proto (prometheus/client_model's, verbatim) with the `protobuf`
package's descriptor API: no protoc, no generated code in the repository.

metrics.proto is plain proto2 (top-level messages, one enum, `optional`/`repeated`
fields of scalar, enum or message type, `[packed]`-free), so a small reader suffices; it
refuses anything else it meets rather than guess.

    MetricFamily = metric_family_class()
    for fam in decode_delimited(body, MetricFamily): ...
"""
import re
from functools import lru_cache
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2

PROTO = Path(__file__).resolve().parents[1] / "proto" / "metrics.proto"

F = descriptor_pb2.FieldDescriptorProto
SCALARS = {
    "double": F.TYPE_DOUBLE, "float": F.TYPE_FLOAT, "int64": F.TYPE_INT64, "uint64": F.TYPE_UINT64,
    "int32": F.TYPE_INT32, "uint32": F.TYPE_UINT32, "sint32": F.TYPE_SINT32, "sint64": F.TYPE_SINT64,
    "bool": F.TYPE_BOOL, "string": F.TYPE_STRING, "bytes": F.TYPE_BYTES,
}
LABELS = {"optional": F.LABEL_OPTIONAL, "repeated": F.LABEL_REPEATED}


def file_descriptor(text: str) -> descriptor_pb2.FileDescriptorProto:
    text = re.sub(r"//[^\n]*", "", text)
    fd = descriptor_pb2.FileDescriptorProto(name="io/prometheus/client/metrics.proto")
    m = re.search(r'\bsyntax\s*=\s*"(\w+)"\s*;', text)
    if not m or m.group(1) != "proto2":
        raise ValueError("metrics.proto: expected syntax proto2")
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
            f = re.fullmatch(r"(optional|repeated)\s+([\w.]+)\s+(\w+)\s*=\s*(\d+)", stmt)
            if not f:
                raise ValueError(f"metrics.proto: message {name}: cannot read {stmt!r}")
            label, typ, fname, num = f.groups()
            field = msg.field.add(name=fname, number=int(num), label=LABELS[label])
            if typ in SCALARS:
                field.type = SCALARS[typ]
            elif typ in enums:
                field.type, field.type_name = F.TYPE_ENUM, f".{fd.package}.{typ}"
            else:
                full = typ if "." in typ else f"{fd.package}.{typ}"
                field.type, field.type_name = F.TYPE_MESSAGE, f".{full}"
    if not fd.message_type:
        raise ValueError("metrics.proto: no messages read")
    return fd


@lru_cache(maxsize=None)
def classes():
    """{message name: class} for every message of metrics.proto."""
    pool = descriptor_pool.DescriptorPool()
    ts = descriptor_pb2.FileDescriptorProto()
    timestamp_pb2.DESCRIPTOR.CopyToProto(ts)
    pool.Add(ts)
    fd = file_descriptor(PROTO.read_text(encoding="utf-8"))
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
