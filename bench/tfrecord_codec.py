"""tf.train.Example encode/decode speed: protobuf's generated message (modeling/data/tfrecord.py)
against the hand-written wire code it replaced, kept below only as this bench's baseline.

Release-shaped examples (the eight features, two heatmap PNGs of a few KB each), plus a
list-heavy example. Both codecs run on the same inputs in the same process, interleaved;
every repeat times a batch, and the medians and their ratio are printed. The bench also checks
that both give the same bytes.

    .venv/bin/python bench/tfrecord_codec.py [--examples 2000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import struct
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from modeling.data.tfrecord import Feature, FeatureInput, decode_example, encode_example  # noqa: E402

# --------------------------------------------------------------------------- baseline
# The hand-written encoder and decoder as they were before protobuf's generated code replaced
# them (input checks trimmed: the bench feeds them typed Features only).


def _varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64
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


def _encode_feature(feature: Feature) -> bytes:
    if feature.kind == "bytes":
        return _len_field(1, b"".join(_len_field(1, v) for v in cast("tuple[bytes, ...]", feature.values)))
    if feature.kind == "float":
        packed = struct.pack(f"<{len(feature.values)}f", *feature.values)
        return _len_field(2, _len_field(1, packed) if feature.values else b"")
    packed = b"".join(_varint(int(v)) for v in feature.values)
    return _len_field(3, _len_field(1, packed) if feature.values else b"")


def baseline_encode(features: Mapping[str, Feature]) -> bytes:
    entries = b""
    for key in sorted(features):
        entry = _len_field(1, key.encode()) + _len_field(2, _encode_feature(features[key]))
        entries += _len_field(1, entry)
    return _len_field(1, entries)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
            yield field, wire, value
        elif wire == 2:
            length, pos = _read_varint(buf, pos)
            yield field, wire, buf[pos : pos + length]
            pos += length
        elif wire == 5:
            yield field, wire, buf[pos : pos + 4]
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire}")


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _decode_feature(buf: bytes) -> Feature:
    for field, _, payload in _fields(buf):
        assert isinstance(payload, bytes)
        if field == 1:
            return Feature("bytes", tuple(bytes(v) for f, _, v in _fields(payload) if f == 1))
        (_, _, packed) = next(_fields(payload), (1, 2, b""))
        assert isinstance(packed, bytes)
        if field == 2:
            return Feature("float", struct.unpack(f"<{len(packed) // 4}f", packed))
        values = []
        pos = 0
        while pos < len(packed):
            raw, pos = _read_varint(packed, pos)
            values.append(_signed64(raw))
        return Feature("int64", tuple(values))
    raise ValueError("feature has no list")


def baseline_decode(data: bytes) -> dict[str, Feature]:
    out: dict[str, Feature] = {}
    for _, _, features in _fields(data):
        assert isinstance(features, bytes)
        for _, _, entry in _fields(features):
            assert isinstance(entry, bytes)
            key, feature = "", Feature("bytes", ())
            for ef, _, ev in _fields(entry):
                assert isinstance(ev, bytes)
                if ef == 1:
                    key = ev.decode()
                else:
                    feature = _decode_feature(ev)
            out[key] = feature
    return out


# --------------------------------------------------------------------------- bench


def release_like(i: int) -> dict[str, Feature]:
    """The release's eight features; the heatmap PNGs are stand-in bytes of their usual size."""
    return {
        "filename": Feature("bytes", (f"{i:08d}.png".encode(),)),
        "aesthetics_score": Feature("float", (0.25 * (i % 5),)),
        "artifact_score": Feature("float", (0.5,)),
        "misalignment_score": Feature("float", (1.0 / 3.0,)),
        "overall_score": Feature("float", (0.75,)),
        "artifact_map": Feature("bytes", (b"\x89PNG" + bytes((i + k) % 251 for k in range(1500 + i % 700)),)),
        "misalignment_map": Feature("bytes", (b"\x89PNG" + bytes(900 + i % 300),)),
        "prompt_misalignment_label": Feature("bytes", (" ".join("01"[(i >> k) & 1] for k in range(12)).encode(),)),
    }


def list_heavy(i: int) -> dict[str, Feature]:
    return {
        "ids": Feature("int64", tuple(range(i - 100, i + 100))),
        "values": Feature("float", tuple(k / 7 for k in range(200))),
        "words": Feature("bytes", tuple(f"word{k}".encode() for k in range(50))),
    }


def time_batch(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def compare(name: str, examples: list[dict[str, Feature]], repeats: int) -> None:
    inputs: list[Mapping[str, FeatureInput]] = list(examples)
    encoded = [baseline_encode(e) for e in examples]
    if [encode_example(e) for e in inputs] != encoded:
        raise SystemExit(f"{name}: the two encoders disagree")
    if [decode_example(d) for d in encoded] != [baseline_decode(d) for d in encoded]:
        raise SystemExit(f"{name}: the two decoders disagree")
    times: dict[str, list[float]] = {}
    for _ in range(repeats):
        times.setdefault("encode hand-written", []).append(time_batch(lambda: [baseline_encode(e) for e in examples]))
        times.setdefault("encode protobuf", []).append(time_batch(lambda: [encode_example(e) for e in inputs]))
        times.setdefault("decode hand-written", []).append(time_batch(lambda: [baseline_decode(d) for d in encoded]))
        times.setdefault("decode protobuf", []).append(time_batch(lambda: [decode_example(d) for d in encoded]))
    n = len(examples)
    size = statistics.mean(len(d) for d in encoded)
    print(f"\n{name}: {n} examples of {size:,.0f} bytes on average, {repeats} repeats (medians)")
    print(f"{'codec':<20} | {'us/example':>10} | {'examples/s':>10}")
    medians = {label: statistics.median(values) for label, values in times.items()}
    for label, seconds in medians.items():
        print(f"{label:<20} | {seconds / n * 1e6:>10.1f} | {n / seconds:>10,.0f}")
    for op in ("encode", "decode"):
        ratio = medians[f"{op} hand-written"] / medians[f"{op} protobuf"]
        print(f"{op}: protobuf is {ratio:.1f}x the hand-written speed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    compare("release records", [release_like(i) for i in range(args.examples)], args.repeats)
    compare("list-heavy records", [list_heavy(i) for i in range(args.examples // 4)], args.repeats)


if __name__ == "__main__":
    main()
