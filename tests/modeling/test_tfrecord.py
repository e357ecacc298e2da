"""TFRecord framing and tf.train.Example codec, checked against the independent `tfrecord`
package (its own protobuf classes) in both directions, plus corrupt-input handling."""

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from tfrecord.reader import tfrecord_loader
from tfrecord.writer import TFRecordWriter as RefWriter

from modeling.data.tfrecord import (
    Feature,
    TFRecordCorruptError,
    TFRecordWriter,
    crc32c,
    decode_example,
    encode_example,
    iter_examples,
    iter_records,
    masked_crc32c,
    write_examples,
)


def test_crc32c_known_vectors() -> None:
    # RFC 3720 B.4 / the standard check value of CRC-32C.
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    # Masking is a rotate plus a constant, modulo 2**32.
    crc = crc32c(b"abc")
    assert masked_crc32c(b"abc") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_pure_python_crc_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    import modeling.data.tfrecord as mod

    data = bytes(range(256)) * 3
    fast = crc32c(data)
    monkeypatch.setattr(mod, "_crc32c_impl", None)
    assert mod.crc32c(data) == fast


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


def test_our_writer_read_by_reference_package(tmp_path: Path) -> None:
    path = tmp_path / "ours.tfrecord"
    examples = [_release_like(i) for i in range(5)]
    assert write_examples(path, examples) == 5
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
    # Deterministic: keys sorted, same bytes whatever the dict order.
    assert encode_example({"a": 1, "b": 2}) == encode_example({"b": 2, "a": 1})
    with pytest.raises(ValueError, match="empty list"):
        encode_example({"x": []})


def _write(path: Path, n: int) -> bytes:
    write_examples(path, [{"k": i} for i in range(n)])
    return path.read_bytes()


def test_bad_data_crc_names_file_and_record(tmp_path: Path) -> None:
    path = tmp_path / "bad.tfrecord"
    raw = bytearray(_write(path, 3))
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
    raw = bytearray(_write(path, 1))
    raw[9] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(TFRecordCorruptError, match="record 0 .*length CRC"):
        list(iter_records(path))


@pytest.mark.parametrize("cut", [5, 14, 3])
def test_truncated_file(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "trunc.tfrecord"
    raw = _write(path, 2)
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
