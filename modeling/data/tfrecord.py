"""TFRecord files and tf.train.Example messages without TensorFlow.

Why hand-written: the release format (spec richhf18k.md section 3) must be readable and
writable by the web app's export/import and by the training code, and TensorFlow is far too
heavy a dependency for that. The protobuf wire format of ``tf.train.Example`` is tiny, so it
is encoded here directly; the tests check it against the independent ``tfrecord`` package.

Framing per record (little-endian)::

    uint64 length | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Self

__all__ = [
    "Feature",
    "TFRecordCorruptError",
    "TFRecordWriter",
    "crc32c",
    "decode_example",
    "encode_example",
    "iter_examples",
    "iter_records",
    "masked_crc32c",
    "write_examples",
]

try:  # The C implementation is ~100x faster; the fallback keeps the module importable.
    from crc32c import crc32c as _crc32c_impl
except ImportError:  # pragma: no cover - exercised only without the pinned package
    _crc32c_impl = None

_CRC_TABLE: list[int] = []


def _build_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``."""
    if _crc32c_impl is not None:
        return _crc32c_impl(data)
    global _CRC_TABLE
    if not _CRC_TABLE:
        _CRC_TABLE = _build_table()
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC: rotate right by 15 and add a constant, modulo 2**32."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


class TFRecordCorruptError(ValueError):
    """A record that cannot be trusted: bad CRC or truncated file.

    Carries the file, the 0-based record index and the byte offset where the record starts, so
    an import can tell the user exactly which record of which file is broken.
    """

    def __init__(self, path: str | os.PathLike[str] | None, index: int, offset: int | None, reason: str):
        self.path = str(path) if path is not None else "<stream>"
        self.index = index
        self.offset = offset
        self.reason = reason
        where = f"record {index}" + (f" (byte offset {offset})" if offset is not None else "")
        super().__init__(f"{self.path}: {where}: {reason}")


# --------------------------------------------------------------------------- framing


def iter_records(source: str | os.PathLike[str] | BinaryIO, *, verify_crc: bool = True) -> Iterator[bytes]:
    """Yield the raw payload of each record, streaming (one record in memory at a time).

    Raises :class:`TFRecordCorruptError` at the first bad record; records before it have
    already been yielded, which lets an import report partial progress honestly.
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as handle:
            yield from _iter_records(handle, source, verify_crc)
    else:
        yield from _iter_records(source, getattr(source, "name", None), verify_crc)


@dataclass(frozen=True)
class ScannedRecord:
    """One framed record as found on disk: its payload, or why it cannot be trusted.

    ``fatal`` problems (bad length CRC, truncation) end the file, since the framing after
    them is lost; a bad *data* CRC spoils one record only, and the next one can still be read.
    """

    index: int
    offset: int
    payload: bytes | None
    problem: str | None = None
    fatal: bool = False


def scan_records(handle: BinaryIO, *, verify_crc: bool = True) -> Iterator[ScannedRecord]:
    """Every record of a TFRecord stream, bad ones included, for callers that report problems
    and go on (an import) rather than stop at the first (:func:`iter_records`)."""
    index = 0
    offset = 0
    while True:
        header = handle.read(12)
        if not header:
            return
        if len(header) < 12:
            yield ScannedRecord(index, offset, None, f"truncated header ({len(header)} of 12 bytes)", fatal=True)
            return
        length_bytes = header[:8]
        (length,) = struct.unpack("<Q", length_bytes)
        (length_crc,) = struct.unpack("<I", header[8:])
        if verify_crc and masked_crc32c(length_bytes) != length_crc:
            yield ScannedRecord(index, offset, None, "length CRC mismatch", fatal=True)
            return
        data = handle.read(length)
        if len(data) < length:
            yield ScannedRecord(index, offset, None, f"truncated data ({len(data)} of {length} bytes)", fatal=True)
            return
        footer = handle.read(4)
        if len(footer) < 4:
            yield ScannedRecord(index, offset, None, "truncated data CRC", fatal=True)
            return
        if verify_crc and masked_crc32c(data) != struct.unpack("<I", footer)[0]:
            yield ScannedRecord(index, offset, None, "data CRC mismatch")
        else:
            yield ScannedRecord(index, offset, data)
        index += 1
        offset += 16 + length


def _iter_records(handle: BinaryIO, path: str | os.PathLike[str] | None, verify_crc: bool) -> Iterator[bytes]:
    for record in scan_records(handle, verify_crc=verify_crc):
        if record.problem is not None:
            raise TFRecordCorruptError(path, record.index, record.offset, record.problem)
        yield record.payload  # type: ignore[misc]


def frame_record(data: bytes) -> bytes:
    """One record's bytes as they appear in a TFRecord file."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


class TFRecordWriter:
    """Streaming writer: ``with TFRecordWriter(path) as w: w.write_example({...})``.

    Writes to ``path + ".tmp"`` and renames on a clean close, so a crashed export never leaves
    a truncated file under the final name.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self._handle: BinaryIO | None = open(self._tmp, "wb")  # noqa: SIM115
        self.count = 0

    def write(self, data: bytes) -> None:
        """Append one raw record."""
        if self._handle is None:
            raise ValueError(f"{self.path}: writer is closed")
        self._handle.write(frame_record(data))
        self.count += 1

    def write_example(self, features: Mapping[str, FeatureInput]) -> None:
        """Append one tf.train.Example built from ``features`` (see :func:`encode_example`)."""
        self.write(encode_example(features))

    def close(self) -> None:
        """Flush and move the file to its final name."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
            os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Drop the partial file (used when the writing code fails)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


# --------------------------------------------------------------------------- protobuf

Kind = Literal["bytes", "float", "int64"]


@dataclass(frozen=True)
class Feature:
    """A typed feature value; needed to write an empty list, whose type cannot be inferred."""

    kind: Kind
    values: tuple[bytes, ...] | tuple[float, ...] | tuple[int, ...]


FeatureInput = Feature | bytes | str | float | int | Sequence[bytes] | Sequence[str] | Sequence[float] | Sequence[int]


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # int64 negatives are 10-byte two's complement varints
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _len_field(field: int, payload: bytes) -> bytes:
    return _varint((field << 3) | 2) + _varint(len(payload)) + payload


def _to_feature(name: str, value: FeatureInput) -> Feature:
    if isinstance(value, Feature):
        return value
    if isinstance(value, (bytes, bytearray, str, float, int)):
        value = [value]  # type: ignore[list-item]
    items = list(value)  # type: ignore[arg-type]
    if not items:
        raise ValueError(f"feature {name!r}: empty list, use Feature(kind, ()) to give its type")
    if all(isinstance(v, (bytes, bytearray, str)) for v in items):
        return Feature(
            "bytes",
            tuple(v.encode() if isinstance(v, str) else bytes(v) for v in items),
        )
    if all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        return Feature("int64", tuple(int(v) for v in items))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in items):
        return Feature("float", tuple(float(v) for v in items))
    raise TypeError(f"feature {name!r}: cannot infer bytes/float/int64 from {items[:3]!r}")


def _encode_feature(feature: Feature) -> bytes:
    if feature.kind == "bytes":
        inner = b"".join(_len_field(1, v) for v in feature.values)  # type: ignore[arg-type]
        return _len_field(1, inner)
    if feature.kind == "float":
        packed = struct.pack(f"<{len(feature.values)}f", *feature.values)
        return _len_field(2, _len_field(1, packed) if feature.values else b"")
    if feature.kind == "int64":
        packed = b"".join(_varint(int(v)) for v in feature.values)
        return _len_field(3, _len_field(1, packed) if feature.values else b"")
    raise ValueError(f"unknown feature kind {feature.kind!r}")


def encode_example(features: Mapping[str, FeatureInput]) -> bytes:
    """Serialize a ``tf.train.Example``.

    Values: bytes/str (bytes_list), float (float_list, stored as float32), int (int64_list),
    a list of one of those, or a :class:`Feature`. Keys are written sorted, like TensorFlow's
    deterministic serialization, so the same features give the same bytes.
    """
    entries = b""
    for key in sorted(features):
        feature = _to_feature(key, features[key])
        entry = _len_field(1, key.encode()) + _len_field(2, _encode_feature(feature))
        entries += _len_field(1, entry)
    return _len_field(1, entries)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """Yield (field number, wire type, value) over a message; skips nothing silently."""
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
            yield field, wire, value
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("truncated length-delimited field")
            yield field, wire, buf[pos : pos + length]
            pos += length
        elif wire == 5:
            if pos + 4 > len(buf):
                raise ValueError("truncated fixed32 field")
            yield field, wire, buf[pos : pos + 4]
            pos += 4
        elif wire == 1:
            if pos + 8 > len(buf):
                raise ValueError("truncated fixed64 field")
            yield field, wire, buf[pos : pos + 8]
            pos += 8
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _decode_feature(buf: bytes) -> Feature:
    kind: Kind | None = None
    values: list = []
    for field, wire, payload in _fields(buf):
        if field == 1 and wire == 2:
            kind = "bytes"
            values = [bytes(v) for f, w, v in _fields(payload) if f == 1 and w == 2]  # type: ignore[arg-type]
        elif field == 2 and wire == 2:
            kind = "float"
            values = []
            for f, w, v in _fields(payload):  # type: ignore[arg-type]
                if f != 1:
                    continue
                if w == 2:  # packed
                    values.extend(struct.unpack(f"<{len(v) // 4}f", v))  # type: ignore[arg-type]
                elif w == 5:
                    values.append(struct.unpack("<f", v)[0])  # type: ignore[arg-type]
        elif field == 3 and wire == 2:
            kind = "int64"
            values = []
            for f, w, v in _fields(payload):  # type: ignore[arg-type]
                if f != 1:
                    continue
                if w == 2:  # packed
                    pos = 0
                    while pos < len(v):  # type: ignore[arg-type]
                        raw, pos = _read_varint(v, pos)  # type: ignore[arg-type]
                        values.append(_signed64(raw))
                elif w == 0:
                    values.append(_signed64(v))  # type: ignore[arg-type]
    if kind is None:
        raise ValueError("feature has no bytes_list, float_list or int64_list")
    return Feature(kind, tuple(values))


def decode_example(data: bytes) -> dict[str, Feature]:
    """Parse a serialized ``tf.train.Example`` into ``{key: Feature}``.

    Raises ``ValueError`` for bytes that are not a well-formed Example.
    """
    out: dict[str, Feature] = {}
    for field, wire, features in _fields(data):
        if field != 1 or wire != 2:
            continue
        for f, w, entry in _fields(features):  # type: ignore[arg-type]
            if f != 1 or w != 2:
                continue
            key: str | None = None
            feature = Feature("bytes", ())
            for ef, ew, ev in _fields(entry):  # type: ignore[arg-type]
                if ef == 1 and ew == 2:
                    key = bytes(ev).decode()  # type: ignore[arg-type]
                elif ef == 2 and ew == 2:
                    feature = _decode_feature(ev)  # type: ignore[arg-type]
            if key is None:
                raise ValueError("feature map entry without a key")
            out[key] = feature
    return out


def iter_examples(path: str | os.PathLike[str], *, verify_crc: bool = True) -> Iterator[dict[str, Feature]]:
    """Stream the Examples of a TFRecord file; corrupt framing or protobuf raises
    :class:`TFRecordCorruptError` naming the file and record index."""
    offset = 0
    for index, data in enumerate(iter_records(path, verify_crc=verify_crc)):
        try:
            yield decode_example(data)
        except ValueError as exc:
            raise TFRecordCorruptError(path, index, offset, f"bad tf.train.Example: {exc}") from exc
        offset += 16 + len(data)


def write_examples(
    path: str | os.PathLike[str],
    examples: Iterator[Mapping[str, FeatureInput]] | Sequence[Mapping[str, FeatureInput]],
) -> int:
    """Write all ``examples`` to ``path``; returns the number written."""
    with TFRecordWriter(path) as writer:
        for example in examples:
            writer.write_example(example)
        return writer.count
