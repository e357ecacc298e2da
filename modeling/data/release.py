"""The RichHF-18K release schema (docs/protocol.md section 3) on top of the TFRecord codec.

One :class:`RichHFRecord` = one tf.train.Example with the eight release features. The names
of the features and their mapping to ours live in modeling.protocol; heatmaps are lossless
PNG through modeling.heatmaps.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modeling.data.tfrecord import (
    Feature,
    TFRecordCorruptError,
    TFRecordWriter,
    iter_examples,
)
from modeling.heatmaps import heatmap_from_png
from modeling.protocol import (
    MAP_KINDS,
    RELEASE_FEATURES,
    RELEASE_MAP_FEATURES,
    RELEASE_MAP_NAMES,
    RELEASE_SCORE_FEATURES,
    RELEASE_SCORE_NAMES,
    SCORE_NAMES,
)

#: Release features that hold UTF-8 text (the others are floats or PNG bytes).
_TEXT_FEATURES = ("filename", "prompt_misalignment_label")


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

    @classmethod
    def from_protocol(
        cls,
        *,
        filename: str,
        scores: Mapping[str, float],
        map_pngs: Mapping[str, bytes],
        prompt_misalignment_label: str,
    ) -> RichHFRecord:
        """A record from our names: ``scores`` by score name (normalised [0,1]), ``map_pngs``
        by map kind; modeling.protocol maps them to the release's features."""
        fields: dict[str, Any] = {RELEASE_SCORE_NAMES[name]: scores[name] for name in SCORE_NAMES}
        fields.update({f"{RELEASE_MAP_NAMES[kind]}_png": map_pngs[kind] for kind in MAP_KINDS})
        return cls(filename=filename, prompt_misalignment_label=prompt_misalignment_label, **fields)

    def scores(self) -> dict[str, float]:
        """Scores keyed by our score name, in SCORE_NAMES order."""
        return {name: float(getattr(self, RELEASE_SCORE_NAMES[name])) for name in SCORE_NAMES}

    def map_png(self, kind: str) -> bytes:
        """The PNG of map ``kind`` (an entry of MAP_KINDS)."""
        png: bytes = getattr(self, f"{RELEASE_MAP_NAMES[kind]}_png")
        return png

    def heatmap(self, task: str) -> np.ndarray:
        """Decoded heatmap of map kind ``task`` as float32 in [0,1]."""
        return heatmap_from_png(self.map_png(task))

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

        values: dict[str, Any] = {}
        for key in RELEASE_FEATURES:  # in order: the first bad feature is the one reported
            value = one(key, "float" if key in RELEASE_SCORE_FEATURES else "bytes")
            values[key] = value.decode() if key in _TEXT_FEATURES and isinstance(value, bytes) else value
        return cls.from_release_values(values)

    def release_values(self) -> dict[str, Any]:
        """The eight release features as plain values (str, float, PNG bytes), in
        RELEASE_FEATURES order: the columns of a Parquet export."""
        return {
            "filename": self.filename,
            **{feature: float(getattr(self, feature)) for feature in RELEASE_SCORE_FEATURES},
            **{feature: getattr(self, f"{feature}_png") for feature in RELEASE_MAP_FEATURES},
            "prompt_misalignment_label": self.prompt_misalignment_label,
        }

    @classmethod
    def from_release_values(cls, values: Mapping[str, Any]) -> RichHFRecord:
        """The inverse of :meth:`release_values`; ``KeyError`` names a missing feature."""
        fields: dict[str, Any] = {
            "filename": values["filename"],
            **{feature: float(values[feature]) for feature in RELEASE_SCORE_FEATURES},
            **{f"{feature}_png": values[feature] for feature in RELEASE_MAP_FEATURES},
            "prompt_misalignment_label": values["prompt_misalignment_label"],
        }
        return cls(
            **fields,
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
