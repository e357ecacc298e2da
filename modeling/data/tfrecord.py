"""TFRecord files and tf.train.Example messages without TensorFlow.

The release format (docs/protocol.md section 3) must be readable and writable by the web
app's export/import and by the training code, and TensorFlow is far too heavy a dependency
for that. The Example message goes through protobuf's generated code
(modeling/data/proto/tf_example.proto, same field numbers as TensorFlow's schema); the TFRecord
framing around it is simple enough to do here, with its CRC checks. The tests check both
against the independent ``tfrecord`` package and against bytes frozen from the earlier
hand-written encoder.

Framing per record (little-endian)::

    uint64 length | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)

Readers refuse a length above :data:`MAX_RECORD_BYTES` (256 MiB) as corrupt framing, so a
header with an absurd length and a valid CRC is reported, not allocated.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Self, cast

from crc32c import crc32c
from google.protobuf.message import DecodeError

from modeling.data.proto import tf_example_pb2

__all__ = [
    "Feature",
    "FeatureInput",
    "MAX_RECORD_BYTES",
    "ScannedRecord",
    "TFRecordCorruptError",
    "TFRecordWriter",
    "decode_example",
    "encode_example",
    "frame_record",
    "iter_examples",
    "iter_records",
    "masked_crc32c",
    "scan_records",
]


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


#: Largest record a reader accepts. A release record holds two heatmap PNGs of a few hundred
#: kilobytes at most, so a length past this is corrupt (or hostile) framing that happens to
#: pass its CRC; reading it would try to allocate up to 2**64 bytes (MemoryError).
MAX_RECORD_BYTES = 256 * 1024 * 1024


def _bytes_left(handle: BinaryIO) -> int | None:
    """Bytes between the position and the end of a seekable stream; None for a pipe."""
    try:
        if not handle.seekable():
            return None
        here = handle.tell()
        end = handle.seek(0, os.SEEK_END)
        handle.seek(here)
    except (OSError, ValueError):
        return None
    return end - here


def scan_records(
    handle: BinaryIO, *, verify_crc: bool = True, max_record_bytes: int = MAX_RECORD_BYTES
) -> Iterator[ScannedRecord]:
    """Every record of a TFRecord stream, bad ones included, for callers that report problems
    and go on (an import) rather than stop at the first (:func:`iter_records`).

    A record longer than ``max_record_bytes``, or longer than what is left of a seekable file,
    is a fatal problem found from its header alone: nothing is allocated for it."""
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
        if length > max_record_bytes:
            yield ScannedRecord(
                index, offset, None, f"record length {length} exceeds the {max_record_bytes}-byte limit", fatal=True
            )
            return
        # Past a megabyte, see whether the file holds that much before allocating for it.
        left = _bytes_left(handle) if length > 1 << 20 else None
        if left is not None and left < length:
            yield ScannedRecord(index, offset, None, f"truncated data ({left} of {length} bytes)", fatal=True)
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
        if record.payload is None:
            raise TFRecordCorruptError(path, record.index, record.offset, record.problem or "unreadable record")
        yield record.payload


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


# --------------------------------------------------------------------------- tf.train.Example

Kind = Literal["bytes", "float", "int64"]


@dataclass(frozen=True)
class Feature:
    """A typed feature value; needed to write an empty list, whose type cannot be inferred."""

    kind: Kind
    values: tuple[bytes, ...] | tuple[float, ...] | tuple[int, ...]


FeatureInput = Feature | bytes | str | float | int | Sequence[bytes] | Sequence[str] | Sequence[float] | Sequence[int]

#: Largest finite float32. protobuf turns a larger finite double into infinity without a word;
#: such a value is a bug upstream, so it raises OverflowError instead, as the encoder always has.
_FLOAT32_MAX = 3.4028234663852886e38


def _to_feature(name: str, value: FeatureInput) -> Feature:
    if isinstance(value, Feature):
        return value
    items: list[object] = [value] if isinstance(value, (bytes, bytearray, str, float, int)) else list(value)
    if not items:
        raise ValueError(f"feature {name!r}: empty list, use Feature(kind, ()) to give its type")
    blobs = [v.encode() if isinstance(v, str) else bytes(v) for v in items if isinstance(v, (bytes, bytearray, str))]
    if len(blobs) == len(items):
        return Feature("bytes", tuple(blobs))
    ints = [v for v in items if isinstance(v, int) and not isinstance(v, bool)]
    if len(ints) == len(items):
        return Feature("int64", tuple(ints))
    floats = [float(v) for v in items if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(floats) == len(items):
        return Feature("float", tuple(floats))
    raise TypeError(f"feature {name!r}: cannot infer bytes/float/int64 from {items[:3]!r}")


def _check_float32(values: Sequence[float]) -> None:
    # The fast test passes for every ordinary value; inf and nan are allowed and fall through
    # to struct, which raises only for finite values that round past the float32 range.
    if not all(-_FLOAT32_MAX <= v <= _FLOAT32_MAX for v in values):
        for v in values:
            struct.pack("<f", v)


def encode_example(features: Mapping[str, FeatureInput]) -> bytes:
    """Serialize a ``tf.train.Example``.

    Values: bytes/str (bytes_list), float (float_list, stored as float32), int (int64_list,
    which must fit in 64 bits), a list of one of those, or a :class:`Feature`. Keys are written
    sorted, like TensorFlow's deterministic serialization, so the same features give the same
    bytes.
    """
    example = tf_example_pb2.Example()
    entries = example.features.feature
    for key in sorted(features):
        feature = _to_feature(key, features[key])
        entry = entries.add()
        entry.key = key  # faster than add(key=key), which goes through keyword parsing
        slot = entry.value
        # The kind says which tuple type the values are; protobuf itself raises TypeError on a
        # value of another type. An empty list is marked present, so it keeps its kind on the wire.
        if feature.kind == "bytes":
            slot.bytes_list.value.extend(cast("tuple[bytes, ...]", feature.values))
            if not feature.values:
                slot.bytes_list.SetInParent()
        elif feature.kind == "float":
            floats = cast("tuple[float, ...]", feature.values)
            _check_float32(floats)
            slot.float_list.value.extend(floats)
            if not floats:
                slot.float_list.SetInParent()
        elif feature.kind == "int64":
            slot.int64_list.value.extend(cast("tuple[int, ...]", feature.values))
            if not feature.values:
                slot.int64_list.SetInParent()
        else:
            raise ValueError(f"unknown feature kind {feature.kind!r}")
    if not features:  # an Example without features still carries its empty features message
        example.features.SetInParent()
    return example.SerializeToString()


def decode_example(data: bytes) -> dict[str, Feature]:
    """Parse a serialized ``tf.train.Example`` into ``{key: Feature}``, in the file's order.

    Raises ``ValueError`` for bytes that are not a well-formed Example.
    """
    example = tf_example_pb2.Example()
    try:
        example.ParseFromString(data)
    except DecodeError as exc:
        raise ValueError(str(exc)) from exc
    out: dict[str, Feature] = {}
    for entry in example.features.feature:
        if not entry.HasField("key"):
            raise ValueError("feature map entry without a key")
        feature = entry.value
        kind = feature.WhichOneof("kind")
        # A key seen twice keeps its last value, as a protobuf map does.
        if kind == "bytes_list":
            out[entry.key] = Feature("bytes", tuple(feature.bytes_list.value))
        elif kind == "float_list":
            out[entry.key] = Feature("float", tuple(feature.float_list.value))
        elif kind == "int64_list":
            out[entry.key] = Feature("int64", tuple(feature.int64_list.value))
        else:
            raise ValueError(f"feature {entry.key!r} has no bytes_list, float_list or int64_list")
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
