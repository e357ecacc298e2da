"""One item's aggregate from its raw annotations: pure computation, no Django, no I/O.

The Django side (aggregates.py) adapts rows to AggregateInputs and stores the result.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from modeling.heatmaps import HeatmapSummary, RasterGeometry, counts_to_uint8, encode_png, rater_masks, vote_counts
from modeling.protocol import MAP_KINDS, POINT_FIELDS, SCORE_NAMES, normalise_score
from modeling.text import misaligned_indices_to_labels, tagged_target

from .agreement import MapAgreement, keyword_unanimity, map_agreement, score_maxdiff


@dataclass(frozen=True)
class RaterAnswer:
    annotation_id: int
    implausible_points: Sequence[Sequence[float]]
    misaligned_points: Sequence[Sequence[float]]
    misaligned_words: Sequence[int]
    scores: dict[str, int]


@dataclass(frozen=True)
class AggregateInputs:
    geometry: RasterGeometry
    words: Sequence[str]
    answers: Sequence[RaterAnswer]

    def digest(self) -> str:
        """Changes whenever anything the aggregate is computed from changes."""
        payload = {
            "geometry": [
                self.geometry.image_width,
                self.geometry.image_height,
                self.geometry.out_width,
                self.geometry.out_height,
                repr(self.geometry.radius_fraction),
            ],
            "words": list(self.words),
            "answers": [
                [
                    a.annotation_id,
                    a.implausible_points,
                    a.misaligned_points,
                    sorted(a.misaligned_words),
                    [a.scores[name] for name in SCORE_NAMES],
                ]
                for a in sorted(self.answers, key=lambda a: a.annotation_id)
            ],
        }
        return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class ScoreAggregate:
    mean: float
    normalised: float
    maxdiff: float


@dataclass(frozen=True)
class MapAggregate:
    values: np.ndarray  # uint8 (out_h, out_w): round(mean of binary maps * 255)
    png: bytes
    summary: HeatmapSummary
    agreement: MapAgreement


@dataclass(frozen=True)
class ComputedAggregate:
    n_annotations: int
    annotation_ids: list[int]
    scores: dict[str, ScoreAggregate]
    word_votes: list[int]
    misaligned_words: list[int]
    label: str
    target: str
    keyword_unanimity: float
    maps: dict[str, MapAggregate]


def _map(points_per_rater: Sequence[Sequence[Sequence[float]]], geometry: RasterGeometry) -> MapAggregate:
    n = len(points_per_rater)
    masks = rater_masks(points_per_rater, geometry)
    counts = vote_counts(masks)
    values = counts_to_uint8(counts, n)
    n_pixels = counts.size
    covered = int(np.count_nonzero(counts))
    # sum(counts) = sum of the raters' areas: no extra pass over the map.
    areas = [int(np.count_nonzero(m)) for m in masks]
    total_votes = sum(areas)
    summary = HeatmapSummary(
        max=float(counts.max()) / n if covered else 0.0,
        mean=total_votes / (n * n_pixels),
        coverage=covered / n_pixels,
        n_points=sum(len(p) for p in points_per_rater),
    )
    return MapAggregate(values=values, png=encode_png(values), summary=summary, agreement=map_agreement(masks, areas))


def compute_aggregate(inputs: AggregateInputs) -> ComputedAggregate:
    answers = sorted(inputs.answers, key=lambda a: a.annotation_id)
    n = len(answers)
    if n == 0:
        raise ValueError("an aggregate needs at least one annotation")
    scores = {}
    for name in SCORE_NAMES:
        raw = [a.scores[name] for a in answers]
        mean = sum(raw) / n
        scores[name] = ScoreAggregate(mean=mean, normalised=normalise_score(mean), maxdiff=score_maxdiff(raw))
    n_words = len(inputs.words)
    votes = [0] * n_words
    for a in answers:
        for index in set(a.misaligned_words):
            if not 0 <= index < n_words:
                raise ValueError(f"annotation {a.annotation_id}: word index {index} outside {n_words} words")
            votes[index] += 1
    # Strict majority of the raters (docs/protocol.md section 2): 2 of 3, 3 of 4.
    misaligned = [i for i, v in enumerate(votes) if 2 * v > n]
    maps = {kind: _map([getattr(a, POINT_FIELDS[kind]) for a in answers], inputs.geometry) for kind in MAP_KINDS}
    return ComputedAggregate(
        n_annotations=n,
        annotation_ids=[a.annotation_id for a in answers],
        scores=scores,
        word_votes=votes,
        misaligned_words=misaligned,
        label=misaligned_indices_to_labels(n_words, misaligned),
        target=tagged_target(list(inputs.words), misaligned),
        keyword_unanimity=keyword_unanimity(votes, n),
        maps=maps,
    )
