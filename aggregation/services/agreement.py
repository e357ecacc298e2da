"""Per-item agreement figures (docs/protocol.md section 2, "Agreement"). Plain numpy, no Django.

- maxdiff: max - min of the raters' normalised scores, per score (0 = perfect agreement,
  0.25 = one Likert point apart).
- heatmaps: mean over rater pairs of the IoU and of the Pearson correlation (CC) of their
  binary maps. Two empty maps agree perfectly (IoU 1). CC is undefined when a map is constant
  (empty or full); such pairs are left out, and the figure is None when no pair is left.
- keywords: the fraction of prompt words on which all raters voted alike.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from modeling.protocol import normalise_score


def score_maxdiff(raw_scores: Sequence[int]) -> float:
    if not raw_scores:
        raise ValueError("no scores")
    return normalise_score(max(raw_scores)) - normalise_score(min(raw_scores))


@dataclass(frozen=True)
class MapAgreement:
    iou: float | None
    cc: float | None


def pair_iou_cc(area_a: int, area_b: int, intersection: int, n_pixels: int) -> tuple[float, float | None]:
    """IoU and Pearson CC of two binary maps, from their pixel counts alone."""
    union = area_a + area_b - intersection
    iou = intersection / union if union else 1.0
    var = area_a * (n_pixels - area_a) * area_b * (n_pixels - area_b)
    cc = (intersection * n_pixels - area_a * area_b) / math.sqrt(var) if var else None
    return iou, cc


def map_agreement(masks: np.ndarray, areas: Sequence[int] | None = None) -> MapAgreement:
    """Mean pairwise IoU and CC of the raters' binary maps (k, h, w). None for fewer than 2.

    `areas` (each map's pixel count) may come from the caller, who counts them anyway.
    """
    k = masks.shape[0]
    if k < 2:
        return MapAgreement(None, None)
    n_pixels = int(masks[0].size)
    if areas is None:
        areas = [int(np.count_nonzero(m)) for m in masks]
    ious: list[float] = []
    ccs: list[float] = []
    for a, b in itertools.combinations(range(k), 2):
        inter = int(np.count_nonzero(masks[a] & masks[b])) if areas[a] and areas[b] else 0
        iou, cc = pair_iou_cc(areas[a], areas[b], inter, n_pixels)
        ious.append(iou)
        if cc is not None:
            ccs.append(cc)
    return MapAgreement(iou=sum(ious) / len(ious), cc=sum(ccs) / len(ccs) if ccs else None)


def map_agreement_from_overlaps(overlaps: np.ndarray, n_pixels: int) -> MapAgreement:
    """map_agreement from the raters' pixel counts alone: ``overlaps[a, b]`` pixels both raters
    cover, each rater's area on the diagonal (modeling.heatmaps.MapVotes). The same pairs in
    the same order, so the same floats as map_agreement on the masks."""
    k = overlaps.shape[0]
    if k < 2:
        return MapAgreement(None, None)
    areas = [int(overlaps[a, a]) for a in range(k)]
    ious: list[float] = []
    ccs: list[float] = []
    for a, b in itertools.combinations(range(k), 2):
        iou, cc = pair_iou_cc(areas[a], areas[b], int(overlaps[a, b]), n_pixels)
        ious.append(iou)
        if cc is not None:
            ccs.append(cc)
    return MapAgreement(iou=sum(ious) / len(ious), cc=sum(ccs) / len(ccs) if ccs else None)


def keyword_unanimity(votes: Sequence[int], n_raters: int) -> float:
    """Fraction of words that every rater marked or no rater marked."""
    if not votes:
        return 1.0
    return sum(1 for v in votes if v in (0, n_raters)) / len(votes)
