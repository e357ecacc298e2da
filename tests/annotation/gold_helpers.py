"""Helpers for the gold-item tests: expert references made through the real services."""

from __future__ import annotations

from annotation.gold import gold_from_annotation
from tests.conftest import submitted_annotation

# The expert's answer every gold item here carries: one red point, word 1, these scores.
EXPERT_POINT = [0.5, 0.5]
EXPERT_WORDS = (1,)
EXPERT_SCORES = (2, 4, 3, 3)


def make_gold(make_item, campaign, expert, prompt: str = "a yellow cat on a red sofa"):
    """An item made gold from the expert's answer; returns the item."""
    item = make_item(campaign, prompt=prompt)
    answer = submitted_annotation(item, expert, scores=EXPERT_SCORES, words=EXPERT_WORDS, implausible=[EXPERT_POINT])
    gold_from_annotation(annotation_id=answer.pk, by=expert)
    item.refresh_from_db()
    return item


def faithful_submission() -> dict:
    """A rater's answer identical to the expert's (quality 1)."""
    return {
        "implausible_points": [EXPERT_POINT],
        "misaligned_points": [],
        "misaligned_words": list(EXPERT_WORDS),
        "scores": dict(zip(("plausibility", "alignment", "aesthetics", "overall"), EXPERT_SCORES, strict=True)),
        "time_spent_ms": 9000,
    }


def careless_submission() -> dict:
    """Far from the expert's answer on every component (quality 0)."""
    return {
        "implausible_points": [],
        "misaligned_points": [[0.1, 0.9]],
        "misaligned_words": [2, 3],
        "scores": {"plausibility": 5, "alignment": 1, "aesthetics": 5, "overall": 1},
        "time_spent_ms": 900,
    }
