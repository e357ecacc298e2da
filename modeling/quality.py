"""Scoring one rater's answer against a gold item's reference answer (issue 13). Plain numpy,
no Django: the web app adapts its rows to these dataclasses (annotation/gold.py).

The definitions (docs/quality-scoring.md explains the choices):

- Map agreement, per map kind. The answer's points are rasterised exactly as the protocol does
  (modeling/heatmaps.py: disks of radius radius_fraction x H, union per rater) onto the
  reference map's grid. The agreement is the soft IoU (fuzzy Jaccard)
  sum(min(A, R)) / sum(max(A, R)) of the binary answer A with the reference R in [0, 1],
  divided by the best soft IoU any binary map can reach against R, and capped at 1. The
  division makes a reference averaged over three raters (values 0, 1/3, 2/3, 1) as attainable
  as a binary expert map: the best single answer scores 1 against both. Both empty: 1 (they
  agree the image has nothing to mark). Exactly one empty: 0.
- Keywords: precision, recall and F1 of the answer's misaligned word indices against the
  reference's. An empty answer has precision 1 (it claims nothing wrong), an empty reference
  recall 1 (nothing to miss); so both empty gives P = R = F1 = 1, and one empty gives F1 = 0.
- Scores: the mean absolute error between the answer's four 1-5 scores normalised to [0, 1]
  ((s - 1) / 4) and the reference's normalised scores. Its agreement is 1 - MAE / 0.5,
  floored at 0: an answer two Likert points off on average scores 0.
- Quality = 0.2 x implausibility map + 0.2 x misalignment map + 0.2 x keyword F1 + 0.4 x
  score agreement, in [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .heatmaps import Points, RasterGeometry, rater_masks
from .protocol import MAP_KINDS, SCORE_NAMES, normalise_score

#: The weight of each component in the combined quality (they sum to 1).
WEIGHTS: dict[str, float] = {
    "implausibility": 0.2,
    "misalignment": 0.2,
    "keywords": 0.2,
    "scores": 0.4,
}
#: The normalised score MAE at which score agreement reaches 0 (two Likert points).
SCORE_MAE_ZERO = 0.5


@dataclass(frozen=True)
class ImageShape:
    """The original image's size and the campaign's disk radius (a fraction of its height)."""

    width: int
    height: int
    radius_fraction: float


@dataclass(frozen=True)
class GoldAnswer:
    """A rater's answer: points normalised to [0, 1] per map kind, word indices, 1-5 scores."""

    points: Mapping[str, Points]
    misaligned_words: Sequence[int]
    scores: Mapping[str, int]


@dataclass(frozen=True)
class Reference:
    """A gold item's reference: one map in [0, 1] per kind (any grid spanning the whole image),
    misaligned word indices, and scores normalised to [0, 1]."""

    maps: Mapping[str, np.ndarray]
    misaligned_words: Sequence[int]
    scores: Mapping[str, float]


@dataclass(frozen=True)
class KeywordAgreement:
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class AnswerQuality:
    quality: float
    maps: dict[str, float]
    keywords: KeywordAgreement
    score_mae: float
    score_agreement: float

    def components(self) -> dict:
        """Every figure behind the quality, as plain JSON."""
        return {
            "maps": dict(self.maps),
            "keywords": asdict(self.keywords),
            "score_mae": self.score_mae,
            "score_agreement": self.score_agreement,
        }


def soft_iou(answer: np.ndarray, reference: np.ndarray) -> float | None:
    """sum(min) / sum(max) of two maps in [0, 1]; None when both are all zero."""
    a = np.asarray(answer, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    union = float(np.maximum(a, r).sum())
    if union == 0.0:
        return None
    return float(np.minimum(a, r).sum()) / union


def best_soft_iou(reference: np.ndarray) -> float | None:
    """The highest soft IoU any binary map reaches against ``reference``; None if it is empty.

    The best binary map marks the k highest pixels for some k (swapping a marked pixel for a
    higher unmarked one never lowers the ratio), so one sort and a cumulative sum try every k:
    IoU_k = S_k / (k + total - S_k), S_k the sum of the k highest values.
    """
    r = np.sort(np.asarray(reference, dtype=np.float64).ravel())[::-1]
    total = float(r.sum())
    if total == 0.0:
        return None
    top = np.cumsum(r)
    k = np.arange(1, r.size + 1, dtype=np.float64)
    return float(np.max(top / (k + total - top)))


def map_agreement(answer_mask: np.ndarray, reference: np.ndarray) -> float:
    """The answer's binary map against the reference map, 0..1 (see the module docstring)."""
    if answer_mask.shape != reference.shape:
        raise ValueError(f"the answer's map {answer_mask.shape} and the reference's {reference.shape} differ")
    best = best_soft_iou(reference)
    has_answer = bool(np.any(answer_mask))
    if best is None:
        return 0.0 if has_answer else 1.0
    if not has_answer:
        return 0.0
    iou = soft_iou(answer_mask.astype(np.float64), reference)
    return min(1.0, (iou or 0.0) / best)


def rasterise_answer(points: Points, shape: ImageShape, grid: tuple[int, int]) -> np.ndarray:
    """The answer's points as one rater's binary map on a grid of (rows, columns)."""
    geometry = RasterGeometry(
        image_width=shape.width,
        image_height=shape.height,
        out_width=grid[1],
        out_height=grid[0],
        radius_fraction=shape.radius_fraction,
    )
    return rater_masks([points], geometry)[0]


def keyword_agreement(answer: Sequence[int], reference: Sequence[int]) -> KeywordAgreement:
    a, r = set(answer), set(reference)
    hits = len(a & r)
    precision = hits / len(a) if a else 1.0
    recall = hits / len(r) if r else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return KeywordAgreement(precision=precision, recall=recall, f1=f1)


def score_mae(answer: Mapping[str, int], reference: Mapping[str, float]) -> float:
    """Mean |normalised answer score - reference score| over the four scores."""
    return float(np.mean([abs(normalise_score(answer[name]) - float(reference[name])) for name in SCORE_NAMES]))


def answer_quality(*, answer: GoldAnswer, reference: Reference, shape: ImageShape) -> AnswerQuality:
    """One answer's quality against a reference: the components and their weighted sum."""
    maps = {
        kind: map_agreement(
            rasterise_answer(answer.points.get(kind, []), shape, reference.maps[kind].shape), reference.maps[kind]
        )
        for kind in MAP_KINDS
    }
    keywords = keyword_agreement(answer.misaligned_words, reference.misaligned_words)
    mae = score_mae(answer.scores, reference.scores)
    scores = max(0.0, 1.0 - mae / SCORE_MAE_ZERO)
    quality = (
        sum(WEIGHTS[kind] * maps[kind] for kind in MAP_KINDS)
        + WEIGHTS["keywords"] * keywords.f1
        + WEIGHTS["scores"] * scores
    )
    return AnswerQuality(
        quality=min(1.0, max(0.0, quality)), maps=maps, keywords=keywords, score_mae=mae, score_agreement=scores
    )


def reference_map_from_points(points: Points, shape: ImageShape, grid: tuple[int, int]) -> np.ndarray:
    """An expert's points as a reference map in {0, 1} (float) on a grid of (rows, columns)."""
    return rasterise_answer(points, shape, grid).astype(np.float64)
