"""Quality control's extra export columns (Parquet and raw JSONL only; TFRecord is untouched).

Parquet, per item (null for imported records and items without counting answers):
- qc_weighted_<score>_mean: the reliability-weighted mean of bias-corrected Likert scores
  (reliability.weighted_item_scores), on the protocol's 1..5 scale;
- qc_weighted_word_votes: per prompt word, the reliability-weighted share of raters who marked it;
- qc_excluded_answers: how many answers of the item quality control excluded.
Raw JSONL, per answer: excluded (bool), excluded_reason, rater_reliability (latest run, or null).

Weights and biases come from the latest finished recompute run; without one every rater
weighs the same and no bias is corrected, so the weighted means equal the plain means.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pyarrow as pa

from annotation.models import Annotation, Campaign
from modeling.protocol import SCORE_NAMES

from .. import selectors
from ..models import RaterSnapshot
from .reliability import weighted_item_scores, weighted_word_votes

PARQUET_FIELDS = [
    *[pa.field(f"qc_weighted_{s}_mean", pa.float64()) for s in SCORE_NAMES],
    pa.field("qc_weighted_word_votes", pa.list_(pa.float64())),
    pa.field("qc_excluded_answers", pa.int32()),
]


def _weights(campaign: Campaign) -> tuple[dict[int, float], dict[int, float]]:
    run = selectors.latest_done_run(campaign=campaign)
    reliability: dict[int, float] = {}
    bias: dict[int, float] = {}
    if run is not None:
        for rater_id, rel, b in RaterSnapshot.objects.filter(run=run).values_list(
            "rater_id", "reliability", "score_bias"
        ):
            if rel is not None:
                reliability[rater_id] = rel
            if b is not None:
                bias[rater_id] = b
    return reliability, bias


def parquet_columns(campaign: Campaign) -> Callable[[int], dict]:
    answers = selectors.campaign_answers(campaign=campaign)
    reliability, bias = _weights(campaign)
    scores = weighted_item_scores(answers, reliability=reliability, bias=bias)
    votes = weighted_word_votes(answers, reliability=reliability)
    excluded = Counter(a.item_id for a in answers if a.excluded)

    def lookup(item_id: int) -> dict:
        item_scores = scores.get(item_id)
        return {
            **{f"qc_weighted_{s}_mean": item_scores[s] if item_scores else None for s in SCORE_NAMES},
            "qc_weighted_word_votes": votes.get(item_id),
            "qc_excluded_answers": excluded.get(item_id, 0),
        }

    return lookup


def jsonl_columns(campaign: Campaign) -> Callable[[dict], dict]:
    from aggregation.exports.records import rater_pseudonym

    reliability, _ = _weights(campaign)
    by_key = {}
    for item_id, rater_id, excluded_at, reason in Annotation.objects.filter(item__campaign=campaign).values_list(
        "item_id", "rater_id", "excluded_at", "excluded_reason"
    ):
        by_key[(item_id, rater_pseudonym(rater_id))] = {
            "excluded": excluded_at is not None,
            "excluded_reason": reason,
            "rater_reliability": reliability.get(rater_id),
        }

    def lookup(row: dict) -> dict:
        return by_key.get(
            (row["item_id"], row["rater"]), {"excluded": False, "excluded_reason": "", "rater_reliability": None}
        )

    return lookup
