"""TFRecord framing and tf.train.Example codec: checked against bytes frozen from the earlier
hand-written encoder, against the independent `tfrecord` package (its own protobuf classes) in
both directions, and on corrupt input."""

import io
import math
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from crc32c import crc32c
from tfrecord.example_pb2 import Example as ReferenceExample
from tfrecord.reader import tfrecord_loader
from tfrecord.writer import TFRecordWriter as RefWriter

from modeling.data.tfrecord import (
    MAX_RECORD_BYTES,
    Feature,
    FeatureInput,
    TFRecordCorruptError,
    TFRecordWriter,
    decode_example,
    encode_example,
    frame_record,
    iter_examples,
    iter_records,
    masked_crc32c,
    scan_records,
)

ROOT = Path(__file__).resolve().parents[2]
#: Written by the hand-written encoder (and framing) that protobuf's generated code replaced,
#: from golden_cases() below; the export must not change by a byte.
GOLDEN = Path(__file__).parent / "data" / "tfrecord_golden.tfrecord"


def golden_cases() -> list[dict[str, FeatureInput]]:
    """Inputs whose encodings were frozen from the hand-written encoder this module replaced."""
    release = {
        "filename": Feature("bytes", (b"00001234.png",)),
        "aesthetics_score": Feature("float", (0.75,)),
        "artifact_score": Feature("float", (0.3333333333333333,)),
        "misalignment_score": Feature("float", (1.0,)),
        "overall_score": Feature("float", (0.0,)),
        "artifact_map": Feature("bytes", (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3,)),
        "misalignment_map": Feature("bytes", (b"\x89PNG\r\n\x1a\n" + bytes(20000),)),
        "prompt_misalignment_label": Feature("bytes", (b"0 1 0 0 1",)),
    }
    return [
        release,
        {
            **release,
            "filename": Feature("bytes", ("caf\u00e9 \u65e5\u672c.png".encode(),)),
            "prompt_misalignment_label": Feature("bytes", (b"",)),
        },
        {},
        {"empty_bytes": Feature("bytes", ()), "empty_float": Feature("float", ()), "empty_int": Feature("int64", ())},
        {"ints": [0, 1, -1, 127, 128, 300, -300, 2**31, -(2**31), 2**63 - 1, -(2**63)], "one": 7, "neg": -42},
        {
            "floats": [0.1, -0.0, 1e-45, 1e-38, 3.4028234663852886e38, -3.4e38, 1e30, float("inf"), float("-inf")],
            "int_and_float": [1, 2.5],
            "scalar": 2.0,
        },
        {"bytes": [b"", b"x", b"\x00\xff", bytes(200)], "str": "na\u00efve \u2603", "strs": ["a", "", "\u00e4"]},
        {"b": 1, "a": 2, "B": 3, "aa": 4, "\u00e4": 5, "Z": 6, "": 7, "\u2603 key": b"v"},
        {"long_ints": list(range(-500, 500, 3)), "long_floats": [i / 7 for i in range(300)]},
    ]


def _float32(value: float) -> float:
    return float(struct.unpack("<f", struct.pack("<f", value))[0])


def _expected(case: dict[str, FeatureInput]) -> dict[str, Feature]:
    """What decoding must give back: every value typed, floats rounded to float32."""
    out = {}
    for key, value in case.items():
        if isinstance(value, Feature):
            feature = value
        elif isinstance(value, (bytes, str, int, float)):
            feature = _typed([value])
        else:
            feature = _typed(list(value))
        if feature.kind == "float":
            feature = Feature("float", tuple(_float32(v) for v in feature.values))
        out[key] = feature
    return out


def _typed(values: list) -> Feature:
    if all(isinstance(v, (bytes, str)) for v in values):
        return Feature("bytes", tuple(v.encode() if isinstance(v, str) else v for v in values))
    if all(isinstance(v, int) for v in values):
        return Feature("int64", tuple(values))
    return Feature("float", tuple(float(v) for v in values))


def test_encoder_gives_the_frozen_bytes_and_decodes_them_back() -> None:
    records = list(iter_records(GOLDEN))
    cases = golden_cases()
    assert len(records) == len(cases)
    for case, record in zip(cases, records, strict=True):
        assert encode_example(case) == record
        assert decode_example(record) == _expected(case)
    # Framing too: the same records framed again give the same file.
    assert b"".join(frame_record(r) for r in records) == GOLDEN.read_bytes()


def test_frozen_bytes_read_the_same_with_the_reference_schema() -> None:
    """The `tfrecord` package's copy of TensorFlow's Example schema (with its
    `map<string, Feature>`) parses our bytes into the same values."""
    for case, record in zip(golden_cases(), iter_records(GOLDEN), strict=True):
        reference = ReferenceExample()
        reference.ParseFromString(record)
        decoded = {}
        for key, feature in reference.features.feature.items():
            kind = feature.WhichOneof("kind")
            decoded[key] = Feature(kind.removesuffix("_list"), tuple(getattr(feature, kind).value))
        assert decoded == _expected(case)


def test_encode_decode_round_trip_and_empty_lists() -> None:
    data = encode_example(
        {
            "b": [b"x", b"", b"yz"],
            "s": "text",
            "f": [0.5],
            "i": 3,
            "e": Feature("float", ()),
        }
    )
    back = decode_example(data)
    assert back["b"] == Feature("bytes", (b"x", b"", b"yz"))
    assert back["s"] == Feature("bytes", (b"text",))
    assert back["f"] == Feature("float", (0.5,))
    assert back["i"] == Feature("int64", (3,))
    assert back["e"] == Feature("float", ())
    assert list(back) == ["b", "e", "f", "i", "s"]
    # Deterministic: keys sorted, same bytes whatever the dict order.
    assert encode_example({"a": 1, "b": 2}) == encode_example({"b": 2, "a": 1})
    with pytest.raises(ValueError, match="empty list"):
        encode_example({"x": []})
    with pytest.raises(TypeError, match="cannot infer"):
        encode_example({"x": [True]})


def test_values_outside_the_wire_types_raise() -> None:
    # protobuf alone would write a finite 1e40 as float32 infinity; a score like that is a bug.
    with pytest.raises(OverflowError):
        encode_example({"score": 1e40})
    assert decode_example(encode_example({"x": [math.inf, 3.4028235e38]}))["x"].values == (
        math.inf,
        3.4028234663852886e38,
    )
    assert math.isnan(decode_example(encode_example({"x": math.nan}))["x"].values[0])
    with pytest.raises(ValueError, match="out of range"):
        encode_example({"id": 2**63})


def test_malformed_example_raises_value_error() -> None:
    with pytest.raises(ValueError):
        decode_example(b"\x0a\xff\xff")  # field 1, length far past the end
    # A map entry whose Feature has none of the three lists.
    no_kind = b"\x0a\x07\x0a\x05\x0a\x01k\x12\x00"
    with pytest.raises(ValueError, match="'k' has no bytes_list"):
        decode_example(no_kind)
    no_key = b"\x0a\x06\x0a\x04\x12\x02\x0a\x00"
    with pytest.raises(ValueError, match="entry without a key"):
        decode_example(no_key)
    # An empty key is a key; one written twice keeps its last value, as in a protobuf map.
    twice = encode_example({"": 1})[2:] + encode_example({"": b"x"})[2:]
    assert decode_example(b"\x0a" + bytes([len(twice)]) + twice) == {"": Feature("bytes", (b"x",))}


def test_generated_code_is_current_and_loads_without_warnings(tmp_path: Path) -> None:
    """The committed *_pb2 modules are what the pinned protoc makes of the .proto, and the
    pinned protobuf runtime loads them without a gencode/runtime version warning."""
    subprocess.run(
        [sys.executable, "-W", "error", "-c", "import modeling.data.proto.tf_example_pb2"],
        cwd=ROOT,
        check=True,
    )
    protoc = pytest.importorskip("grpc_tools.protoc")
    proto = "modeling/data/proto/tf_example.proto"
    # protoc names the file by its path under -I, which the generated module records.
    args = ["protoc", f"-I{ROOT}", f"--python_out={tmp_path}", f"--pyi_out={tmp_path}", str(ROOT / proto)]
    assert protoc.main(args) == 0
    for suffix in ("_pb2.py", "_pb2.pyi"):
        name = proto.replace(".proto", suffix)
        assert (tmp_path / name).read_text() == (ROOT / name).read_text(), f"{name} is stale: regenerate it"


def test_crc32c_known_vectors() -> None:
    # RFC 3720 B.4 / the standard check value of CRC-32C.
    assert crc32c(b"123456789") == 0xE3069283
    # Masking is a rotate plus a constant, modulo 2**32.
    assert masked_crc32c(b"123456789") == (((0xE3069283 >> 15) | (0xE3069283 << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _release_like(i: int) -> dict:
    return {
        "filename": f"img_{i}.png".encode(),
        "aesthetics_score": 0.25 * (i % 5),
        "artifact_score": 0.5,
        "misalignment_score": 1.0,
        "overall_score": 0.75,
        "artifact_map": bytes(range(i % 7, 200)),
        "misalignment_map": b"\x89PNG" + bytes(3000 + i),
        "prompt_misalignment_label": b"1 0 1",
        "ints": [i, -i, 2**40],
    }


def _write(path: Path, examples: list[dict]) -> bytes:
    with TFRecordWriter(path) as writer:
        for example in examples:
            writer.write_example(example)
    assert writer.count == len(examples)
    return path.read_bytes()


def test_our_writer_read_by_reference_package(tmp_path: Path) -> None:
    path = tmp_path / "ours.tfrecord"
    examples = [_release_like(i) for i in range(5)]
    _write(path, examples)
    got = list(tfrecord_loader(str(path), None))
    assert len(got) == 5
    for ref, ex in zip(got, examples, strict=True):
        assert bytes(ref["filename"]) == ex["filename"]
        assert bytes(ref["artifact_map"]) == ex["artifact_map"]
        assert bytes(ref["misalignment_map"]) == ex["misalignment_map"]
        np.testing.assert_allclose(ref["aesthetics_score"], [ex["aesthetics_score"]])
        assert list(ref["ints"]) == ex["ints"]


def test_reference_writer_read_by_ours(tmp_path: Path) -> None:
    path = tmp_path / "ref.tfrecord"
    writer = RefWriter(str(path))
    for i in range(3):
        writer.write(
            {
                "filename": (f"f{i}".encode(), "byte"),
                "overall_score": (0.1 * i, "float"),
                "vals": ([1.5, -2.0, 3.25], "float"),
                "ids": ([i, -7, 123456789012], "int"),
            }
        )
    writer.close()
    got = list(iter_examples(path))
    assert [g["filename"].values for g in got] == [(b"f0",), (b"f1",), (b"f2",)]
    assert got[2]["overall_score"].kind == "float"
    assert got[2]["overall_score"].values[0] == pytest.approx(0.2)
    assert got[1]["vals"].values == (1.5, -2.0, 3.25)
    assert got[1]["ids"] == Feature("int64", (1, -7, 123456789012))


def test_bad_data_crc_names_file_and_record(tmp_path: Path) -> None:
    path = tmp_path / "bad.tfrecord"
    raw = bytearray(_write(path, [{"k": i} for i in range(3)]))
    record_len = len(raw) // 3
    raw[record_len + 14] ^= 0xFF  # a payload byte of record 1
    path.write_bytes(bytes(raw))
    seen = []
    with pytest.raises(TFRecordCorruptError) as info:
        for ex in iter_examples(path):
            seen.append(ex)  # noqa: PERF402 - keep records read before the error
    assert len(seen) == 1
    err = info.value
    assert err.index == 1 and err.offset == record_len and "data CRC" in err.reason
    assert str(path) in str(err)
    # Without verification the flipped byte is read (the protobuf may still parse).
    assert len(list(iter_records(path, verify_crc=False))) == 3


def test_bad_length_crc(tmp_path: Path) -> None:
    path = tmp_path / "len.tfrecord"
    raw = bytearray(_write(path, [{"k": 0}]))
    raw[9] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(TFRecordCorruptError, match="record 0 .*length CRC"):
        list(iter_records(path))


@pytest.mark.parametrize("cut", [5, 14, 3])
def test_truncated_file(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "trunc.tfrecord"
    raw = _write(path, [{"k": i} for i in range(2)])
    path.write_bytes(raw[: len(raw) - cut])
    with pytest.raises(TFRecordCorruptError, match="record 1 .*truncated"):
        list(iter_records(path))


def test_truncated_header_and_stream_source() -> None:
    raw = b"".join([struct.pack("<Q", 3)[:5]])
    with pytest.raises(TFRecordCorruptError, match="<stream>: record 0.*truncated header"):
        list(iter_records(io.BytesIO(raw)))


def test_garbage_payload_with_valid_crc(tmp_path: Path) -> None:
    path = tmp_path / "garbage.tfrecord"
    with TFRecordWriter(path) as writer:
        writer.write(encode_example({"a": 1}))
        writer.write(b"\x0a\xff\xff")  # field 1, length far past the end
    with pytest.raises(TFRecordCorruptError, match="record 1 .*bad tf.train.Example"):
        list(iter_examples(path))


def test_writer_aborts_on_exception(tmp_path: Path) -> None:
    path = tmp_path / "aborted.tfrecord"
    with pytest.raises(RuntimeError), TFRecordWriter(path) as writer:
        writer.write(b"x")
        raise RuntimeError("boom")
    assert not path.exists()
    assert not list(tmp_path.iterdir())


def _header(length: int) -> bytes:
    """A record header claiming ``length`` bytes whose length CRC is valid."""
    prefix = struct.pack("<Q", length)
    return prefix + struct.pack("<I", masked_crc32c(prefix))


class _Pipe(io.RawIOBase):
    """A non-seekable stream, as stdin or a socket would be."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        chunk = self._data.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


@pytest.mark.parametrize("length", [2**64 - 1, 2**63, 2**40, MAX_RECORD_BYTES + 1])
def test_huge_length_with_valid_crc_is_a_named_problem_not_an_allocation(tmp_path: Path, length: int) -> None:
    path = tmp_path / "huge.tfrecord"
    good = frame_record(encode_example({"k": 1}))
    path.write_bytes(good + _header(length) + b"\0" * 32)
    with path.open("rb") as handle:
        scanned = list(scan_records(handle))
    assert [r.payload is not None for r in scanned] == [True, False]
    bad = scanned[1]
    assert bad.index == 1 and bad.offset == len(good) and bad.fatal
    assert bad.problem == f"record length {length} exceeds the {MAX_RECORD_BYTES}-byte limit"
    with pytest.raises(TFRecordCorruptError, match=r"record 1 \(byte offset \d+\): record length"):
        list(iter_records(path))


def test_length_past_the_end_of_the_file_is_truncation_found_from_the_header(tmp_path: Path) -> None:
    """Under the cap, a length longer than the rest of a file is reported before reading."""
    path = tmp_path / "short.tfrecord"
    path.write_bytes(_header(200 * 1024 * 1024) + b"\0" * 100)
    with path.open("rb") as handle:
        (bad,) = scan_records(handle)
    assert bad.fatal and bad.problem == f"truncated data (100 of {200 * 1024 * 1024} bytes)"


def test_non_seekable_stream_is_capped_too() -> None:
    stream = io.BufferedReader(_Pipe(_header(2**62) + b"\0" * 8))
    (bad,) = scan_records(stream)
    assert bad.fatal and bad.problem is not None and bad.problem.startswith("record length")
    # A caller can lower the cap, e.g. for records it knows are small.
    small = io.BufferedReader(_Pipe(frame_record(b"x" * 100)))
    (refused,) = scan_records(small, max_record_bytes=64)
    assert refused.problem == "record length 100 exceeds the 64-byte limit"
