"""Per-rater reliability from co-rater agreement: pure computation, no Django, no I/O.

The definitions (docs/quality.md, "Reliability without gold"):
- keyword competence: MACE (crowd-kit) over the per-word binary votes, one task per
  (item, word); a rater's competence is MACE's posterior probability that they answer
  knowingly rather than at random (spamming_[:, 1]). MACE is built for exactly this: telling
  spammers from careful raters without an answer key;
- score bias and consistency: for every answer on an item with at least one co-rater, each
  of the four Likert scores against the mean of the co-raters' (leave-one-out) scores. Bias =
  mean difference in Likert points; consistency = Pearson r of the rater's scores with those
  means over all their answers and score names;
- map agreement: the rater's binary map (modeling.heatmaps' disks, rasterised small) against
  the leave-one-out consensus (the co-raters' mean map), as a soft IoU
  sum(min) / sum(max); both empty counts as full agreement;
- reliability: the mean of the components available (consistency clipped at 0);
- speed: an answer is fast below speed_factor x the campaign's median time.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no stubs in the venv

from modeling.heatmaps import RasterGeometry, rater_masks
from modeling.protocol import MAP_KINDS, SCORE_NAMES

# Small maps are enough to compare two raters' regions, and keep a 10,000-answer campaign's
# recompute in seconds.
AGREEMENT_MAP_SIZE = 32


@dataclass(frozen=True)
class Answer:
    annotation_id: int
    item_id: int
    rater_id: int
    scores: Sequence[int]  # in SCORE_NAMES order
    misaligned_words: Sequence[int]
    n_words: int
    points: dict[str, Sequence[Sequence[float]]]  # map kind -> normalised points
    image_width: int
    image_height: int
    radius_fraction: float
    time_spent_ms: int
    excluded: bool = False


@dataclass
class RaterFigures:
    rater_id: int
    n_answers: int = 0
    n_excluded: int = 0
    n_overlap: int = 0  # answers on items with at least one counting co-rater
    keyword_competence: float | None = None
    score_bias: float | None = None
    score_consistency: float | None = None
    map_agreement: float | None = None
    reliability: float | None = None
    median_time_ms: float | None = None
    fast_share: float | None = None
    fast_answer_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class CampaignFigures:
    raters: dict[int, RaterFigures]
    median_time_ms: float | None


def _keyword_competence(answers: Sequence[Answer], overlap_items: set[int]) -> dict[int, float]:
    from crowdkit.aggregation import MACE

    rows_task: list[int] = []
    rows_worker: list[int] = []
    rows_label: list[int] = []
    task_ids: dict[tuple[int, int], int] = {}
    for a in answers:
        if a.item_id not in overlap_items:
            continue
        marked = set(a.misaligned_words)
        for w in range(a.n_words):
            task = task_ids.setdefault((a.item_id, w), len(task_ids))
            rows_task.append(task)
            rows_worker.append(a.rater_id)
            rows_label.append(1 if w in marked else 0)
    if not rows_task or len(set(rows_label)) < 2:
        return {}
    df = pd.DataFrame({"task": rows_task, "worker": rows_worker, "label": rows_label})
    mace = MACE(n_restarts=1, n_iter=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mace.fit(df)
    # MACE indexes workers in order of first appearance (pandas.factorize), as here.
    _, names = pd.factorize(df["worker"])
    return {int(name): float(mace.spamming_[i, 1]) for i, name in enumerate(names)}


def _soft_iou(mask: np.ndarray, consensus: np.ndarray) -> float:
    high = np.maximum(mask, consensus).sum()
    if high == 0:
        return 1.0
    return float(np.minimum(mask, consensus).sum() / high)


def _pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    if len(x) < 5:
        return None
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xa.std() == 0 or ya.std() == 0:
        return 0.0
    return float(np.corrcoef(xa, ya)[0, 1])


def campaign_figures(answers: Sequence[Answer], *, speed_factor: float = 0.3) -> CampaignFigures:
    """Every rater's figures from every answer of the campaign (excluded ones included: a rater
    is judged on all their work, but only counting answers form the co-raters' consensus)."""
    by_item: dict[int, list[Answer]] = defaultdict(list)
    for a in answers:
        by_item[a.item_id].append(a)
    raters: dict[int, RaterFigures] = {}
    for a in answers:
        fig = raters.setdefault(a.rater_id, RaterFigures(rater_id=a.rater_id))
        fig.n_answers += 1
        fig.n_excluded += int(a.excluded)

    times = [a.time_spent_ms for a in answers if not a.excluded and a.time_spent_ms > 0]
    median = float(np.median(times)) if times else None
    by_rater_times: dict[int, list[Answer]] = defaultdict(list)
    for a in answers:
        by_rater_times[a.rater_id].append(a)
    for rater_id, own in by_rater_times.items():
        fig = raters[rater_id]
        fig.median_time_ms = float(np.median([a.time_spent_ms for a in own]))
        if median:
            fast = [a.annotation_id for a in own if a.time_spent_ms < speed_factor * median]
            fig.fast_answer_ids = fast
            fig.fast_share = len(fast) / len(own)

    score_pairs: dict[int, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    map_scores: dict[int, list[float]] = defaultdict(list)
    overlap_items: set[int] = set()
    for item_id, group in by_item.items():
        if len(group) < 2:
            continue
        overlap_items.add(item_id)
        first = group[0]
        geometry = RasterGeometry(
            image_width=first.image_width,
            image_height=first.image_height,
            out_width=AGREEMENT_MAP_SIZE,
            out_height=AGREEMENT_MAP_SIZE,
            radius_fraction=first.radius_fraction,
        )
        masks = {kind: rater_masks([a.points[kind] for a in group], geometry).astype(np.float32) for kind in MAP_KINDS}
        counting = np.array([not a.excluded for a in group])
        for i, a in enumerate(group):
            others = counting.copy()
            others[i] = False
            if not others.any():
                continue
            raters[a.rater_id].n_overlap += 1
            xs, ys = score_pairs[a.rater_id]
            for s in range(len(SCORE_NAMES)):
                xs.append(float(a.scores[s]))
                ys.append(float(np.mean([g.scores[s] for g, keep in zip(group, others, strict=True) if keep])))
            for kind in MAP_KINDS:
                consensus = masks[kind][others].mean(axis=0)
                map_scores[a.rater_id].append(_soft_iou(masks[kind][i], consensus))

    competence = _keyword_competence(answers, overlap_items)
    for rater_id, fig in raters.items():
        if fig.n_overlap == 0:
            continue
        xs, ys = score_pairs[rater_id]
        fig.score_bias = float(np.mean(np.subtract(xs, ys)))
        fig.score_consistency = _pearson(xs, ys)
        fig.map_agreement = float(np.mean(map_scores[rater_id])) if map_scores[rater_id] else None
        fig.keyword_competence = competence.get(rater_id)
        parts = [
            v
            for v in (
                fig.keyword_competence,
                None if fig.score_consistency is None else max(0.0, fig.score_consistency),
                fig.map_agreement,
            )
            if v is not None
        ]
        fig.reliability = float(np.mean(parts)) if parts else None
    return CampaignFigures(raters=raters, median_time_ms=median)


def weighted_item_scores(
    answers: Sequence[Answer], *, reliability: dict[int, float], bias: dict[int, float]
) -> dict[int, dict[str, float]]:
    """Per item, the reliability-weighted mean of the bias-corrected Likert scores (clipped to
    1..5): the optional variant exported beside the protocol's plain mean."""
    by_item: dict[int, list[Answer]] = defaultdict(list)
    for a in answers:
        if not a.excluded:
            by_item[a.item_id].append(a)
    out: dict[int, dict[str, float]] = {}
    for item_id, group in by_item.items():
        weights = np.array([max(1e-3, reliability.get(a.rater_id, 0.5)) for a in group])
        result = {}
        for s, name in enumerate(SCORE_NAMES):
            values = np.array([a.scores[s] - bias.get(a.rater_id, 0.0) for a in group])
            result[name] = float(np.clip((weights * values).sum() / weights.sum(), 1.0, 5.0))
        out[item_id] = result
    return out


def weighted_word_votes(answers: Sequence[Answer], *, reliability: dict[int, float]) -> dict[int, list[float]]:
    """Per item, each word's reliability-weighted share of raters who marked it (0..1)."""
    by_item: dict[int, list[Answer]] = defaultdict(list)
    for a in answers:
        if not a.excluded:
            by_item[a.item_id].append(a)
    out: dict[int, list[float]] = {}
    for item_id, group in by_item.items():
        weights = [max(1e-3, reliability.get(a.rater_id, 0.5)) for a in group]
        total = sum(weights)
        votes = [0.0] * group[0].n_words
        for a, w in zip(group, weights, strict=True):
            for index in set(a.misaligned_words):
                if 0 <= index < len(votes):
                    votes[index] += w
        out[item_id] = [v / total for v in votes]
    return out
