"""The RichHF-18K release schema (spec richhf18k.md section 3) on top of the TFRecord codec.

One :class:`RichHFRecord` = one tf.train.Example with the eight release features. Heatmaps
are lossless PNG (JPEG noise would turn "pixel > 0" into stray fixations).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from modeling.data.tfrecord import (
    Feature,
    TFRecordCorruptError,
    TFRecordWriter,
    iter_examples,
)

#: Release score feature -> model score task.
SCORE_FEATURES: dict[str, str] = {
    "artifact_score": "plausibility",
    "misalignment_score": "alignment",
    "aesthetics_score": "aesthetics",
    "overall_score": "overall",
}
#: Release heatmap feature -> model heatmap task.
HEATMAP_FEATURES: dict[str, str] = {
    "artifact_map": "implausibility",
    "misalignment_map": "misalignment",
}
RELEASE_FEATURES: tuple[str, ...] = (
    "filename",
    *SCORE_FEATURES,
    *HEATMAP_FEATURES,
    "prompt_misalignment_label",
)
#: Size of the release heatmaps.
RELEASE_MAP_SIZE = 512


def encode_heatmap_png(heatmap: np.ndarray) -> bytes:
    """Grayscale PNG of a heatmap: float in [0,1] (scaled to 0..255) or uint8 as is."""
    array = np.asarray(heatmap)
    if array.dtype != np.uint8:
        array = (np.clip(array.astype(np.float64), 0.0, 1.0) * 255.0).round().astype(np.uint8)
    if array.ndim != 2:
        raise ValueError(f"heatmap must be 2-D, got shape {array.shape}")
    buffer = io.BytesIO()
    Image.fromarray(array, mode="L").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def decode_heatmap_png(data: bytes) -> np.ndarray:
    """uint8 H x W array from encoded image bytes (any PIL format; colour is converted)."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("L"), dtype=np.uint8)


@dataclass
class RichHFRecord:
    """One release example. Scores are normalised [0,1]; maps are PNG bytes (decode lazily:
    a decoded 512x512 pair is 0.5 MB, the PNGs a few KB)."""

    filename: str
    artifact_score: float
    misalignment_score: float
    aesthetics_score: float
    overall_score: float
    artifact_map_png: bytes
    misalignment_map_png: bytes
    prompt_misalignment_label: str

    @property
    def image_id(self) -> str:
        """Base name without extension (the Pick-a-Pic image uid)."""
        return Path(self.filename).stem

    def scores(self) -> dict[str, float]:
        """Scores keyed by model task name."""
        return {task: float(getattr(self, feature)) for feature, task in SCORE_FEATURES.items()}

    def heatmap(self, task: str) -> np.ndarray:
        """Decoded heatmap of ``task`` as float32 in [0,1]."""
        data = self.artifact_map_png if task == "implausibility" else self.misalignment_map_png
        return decode_heatmap_png(data).astype(np.float32) / 255.0

    def to_features(self) -> dict[str, Feature]:
        """The eight release features."""
        return {
            "filename": Feature("bytes", (self.filename.encode(),)),
            "aesthetics_score": Feature("float", (float(self.aesthetics_score),)),
            "artifact_score": Feature("float", (float(self.artifact_score),)),
            "misalignment_score": Feature("float", (float(self.misalignment_score),)),
            "overall_score": Feature("float", (float(self.overall_score),)),
            "artifact_map": Feature("bytes", (self.artifact_map_png,)),
            "misalignment_map": Feature("bytes", (self.misalignment_map_png,)),
            "prompt_misalignment_label": Feature("bytes", (self.prompt_misalignment_label.encode(),)),
        }

    @classmethod
    def from_features(cls, features: dict[str, Feature]) -> RichHFRecord:
        """Parse the release features; ``ValueError`` names the missing/mistyped feature."""
        missing = [key for key in RELEASE_FEATURES if key not in features]
        if missing:
            raise ValueError(f"missing feature(s) {', '.join(missing)}")

        def one(key: str, kind: str) -> bytes | float:
            feature = features[key]
            if feature.kind != kind or len(feature.values) != 1:
                raise ValueError(f"feature {key} must be one {kind} value")
            return feature.values[0]

        return cls(
            filename=one("filename", "bytes").decode(),  # type: ignore[union-attr]
            artifact_score=float(one("artifact_score", "float")),
            misalignment_score=float(one("misalignment_score", "float")),
            aesthetics_score=float(one("aesthetics_score", "float")),
            overall_score=float(one("overall_score", "float")),
            artifact_map_png=one("artifact_map", "bytes"),  # type: ignore[arg-type]
            misalignment_map_png=one("misalignment_map", "bytes"),  # type: ignore[arg-type]
            prompt_misalignment_label=one("prompt_misalignment_label", "bytes").decode(),  # type: ignore[union-attr]
        )


def write_release_tfrecord(path: str | os.PathLike[str], records: Iterable[RichHFRecord]) -> int:
    """Write records as a release TFRecord file; returns the count."""
    with TFRecordWriter(path) as writer:
        for record in records:
            writer.write_example(record.to_features())
        return writer.count


def read_release_tfrecord(path: str | os.PathLike[str]) -> Iterator[RichHFRecord]:
    """Stream records; bad framing or a record missing features raises
    :class:`TFRecordCorruptError` with the file and record index."""
    for index, features in enumerate(iter_examples(path)):
        try:
            yield RichHFRecord.from_features(features)
        except (ValueError, UnicodeDecodeError) as exc:
            raise TFRecordCorruptError(path, index, None, f"not a release record: {exc}") from exc
