"""One item's aggregate from its raw annotations: pure computation, no Django, no I/O.

The Django side (aggregates.py) adapts rows to AggregateInputs and stores the result.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from modeling import heatmaps
from modeling.heatmaps import HeatmapSummary, MapVotes, RasterGeometry, encode_png, rasterise_votes
from modeling.protocol import MAP_KINDS, POINT_FIELDS, SCORE_NAMES, normalise_score
from modeling.text import misaligned_indices_to_labels, tagged_target

from .agreement import MapAgreement, keyword_unanimity, map_agreement_from_overlaps, score_maxdiff


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


def _map(votes: MapVotes, n_points: int) -> MapAggregate:
    n = votes.n_raters
    values = votes.values
    n_pixels = values.size
    # The raters' areas are the diagonal of their overlaps; their sum is the sum of the votes.
    total_votes = int(np.trace(votes.overlaps))
    summary = HeatmapSummary(
        max=votes.max_votes / n if votes.covered else 0.0,
        mean=total_votes / (n * n_pixels),
        coverage=votes.covered / n_pixels,
        n_points=n_points,
    )
    return MapAggregate(
        values=values,
        png=encode_png(values),
        summary=summary,
        agreement=map_agreement_from_overlaps(votes.overlaps, n_pixels),
    )


# Items whose maps one rasterise_votes call takes. The numpy path: enough to spread numpy's
# per-call cost, few enough that its arrays stay in the CPU cache (bench/aggregate.py: 4 per
# call beat 1 and 25 on this machine). The compiled kernel has no per-call cost to spread and
# runs fastest on one item (bench/aggregate.py: 1 per call about 1.2-2x 4 per call).
_RASTER_ITEMS_NUMPY = 4
_RASTER_ITEMS_COMPILED = 1


def _raster_items() -> int:
    return _RASTER_ITEMS_COMPILED if heatmaps._compiled_kernel() is not None else _RASTER_ITEMS_NUMPY


def rasteriser_warm() -> None:
    """Loads the compiled rasteriser into this process (from numba's on-disk cache, or by
    compiling it): a parent that forks workers calls this first, so every worker inherits it
    instead of loading it again (0.7-0.9 s each, docs/performance-aggregation.md)."""
    rasterise_votes([([[[0.5, 0.5]]], RasterGeometry(2, 2, 2, 2, 0.5))])


def compute_aggregate(inputs: AggregateInputs) -> ComputedAggregate:
    return compute_aggregates([inputs])[0]


def compute_aggregates(batch: Sequence[AggregateInputs]) -> list[ComputedAggregate]:
    """The aggregates of several items; the same results as one compute_aggregate per item."""
    return list(iter_aggregates(batch))


def iter_aggregates(batch: Sequence[AggregateInputs]) -> Iterator[ComputedAggregate]:
    """The aggregates of several items, one at a time: every map of the batch is rasterised in
    one vectorised pass (modeling.heatmaps.rasterise_votes, which pays numpy's per-call cost
    once per batch), then each item's maps are painted, encoded and summarised as it is
    yielded, so only one item's maps are in memory at a time."""
    ordered = [sorted(inputs.answers, key=lambda a: a.annotation_id) for inputs in batch]
    for answers in ordered:
        if not answers:
            raise ValueError("an aggregate needs at least one annotation")
    jobs = [
        ([getattr(a, POINT_FIELDS[kind]) for a in answers], inputs.geometry)
        for inputs, answers in zip(batch, ordered, strict=True)
        for kind in MAP_KINDS
    ]
    per_item = len(MAP_KINDS)
    per_call = _raster_items()
    for start in range(0, len(batch), per_call):
        votes = rasterise_votes(jobs[start * per_item : (start + per_call) * per_item])
        for i in range(start, min(start + per_call, len(batch))):
            maps = {}
            for j, kind in enumerate(MAP_KINDS):
                n = i * per_item + j
                maps[kind] = _map(votes[n - start * per_item], sum(len(points) for points in jobs[n][0]))
            yield _aggregate(batch[i], ordered[i], maps)


def _aggregate(inputs: AggregateInputs, answers: list[RaterAnswer], maps: dict[str, MapAggregate]) -> ComputedAggregate:
    n = len(answers)
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
