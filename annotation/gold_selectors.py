"""Reads of gold items for raters and leads: the feedback after a qualification answer and
who may see a reference map (issue 13). The writes are in annotation/gold.py."""

from __future__ import annotations

from typing import Any

from django.db.models import Avg, Exists, OuterRef
from django.urls import reverse

from modeling.protocol import MAP_KINDS, SCORE_NAMES
from richhf_site import roles

from .gold import MAP_FIELDS
from .models import Annotation, GoldAnswerKind, GoldAnswerScore, GoldReference, Qualification, RaterStatus


def _likert(value: float) -> float:
    """A normalised reference score back on the 1-5 scale the rater used."""
    return round(1 + 4 * float(value), 2)


def gold_feedback(*, annotation: Annotation) -> dict[str, Any] | None:
    """What a rater sees after a qualification answer; None for any other answer.

    Never for a honeypot: feedback there would tell the rater which items are gold. Reads only
    for gold items, so a real answer costs no query here.
    """
    item = annotation.item
    if not item.is_gold:
        return None
    score = (
        GoldAnswerScore.objects.select_related("campaign")
        .filter(annotation=annotation, kind=GoldAnswerKind.QUALIFICATION)
        .first()
    )
    if score is None:
        return None
    reference = GoldReference.objects.filter(item=item).first()
    if reference is None:  # the item stopped being gold since; nothing to compare with
        return None
    campaign = score.campaign
    status = RaterStatus.objects.filter(campaign=campaign, rater_id=annotation.rater_id).first()
    attempt_scores = GoldAnswerScore.objects.filter(
        campaign=campaign, rater_id=annotation.rater_id, kind=GoldAnswerKind.QUALIFICATION, attempt=score.attempt
    )
    answered = attempt_scores.count()
    mean = attempt_scores.aggregate(m=Avg("quality"))["m"]
    map_urls = {
        kind: (reverse("api:gold-map", args=[item.pk, kind]) if getattr(reference, MAP_FIELDS[kind]) else None)
        for kind in MAP_KINDS
    }
    return {
        "quality": round(score.quality, 3),
        "components": score.components,
        "reference": {
            "implausible_points": reference.implausible_points,
            "misaligned_points": reference.misaligned_points,
            "implausibility_map_url": map_urls["implausibility"],
            "misalignment_map_url": map_urls["misalignment"],
            "misaligned_words": reference.misaligned_words,
            "scores": {name: _likert(reference.scores[name]) for name in SCORE_NAMES},
        },
        "yours": {"misaligned_words": annotation.misaligned_words, "scores": annotation.scores()},
        "qualification": {
            "status": status.qualification if status else Qualification.PENDING,
            "attempt": score.attempt,
            "answered": answered,
            "required": campaign.qualification_items,
            "mean_quality": round(mean, 3) if mean is not None else None,
            "threshold": campaign.qualification_threshold,
        },
    }


def gold_map_for_user(*, user, item_id: int, kind: str) -> GoldReference | None:
    """The reference whose map `user` may see: leads and admins any; a rater only an item they
    answered during qualification (a honeypot's map would tell them it was gold)."""
    if kind not in MAP_KINDS:
        return None
    qs = GoldReference.objects.filter(item_id=item_id)
    if not roles.is_lead_or_admin(user):
        qs = qs.filter(
            Exists(
                GoldAnswerScore.objects.filter(
                    item_id=OuterRef("item_id"), rater=user, kind=GoldAnswerKind.QUALIFICATION
                )
            )
        )
    reference = qs.first()
    if reference is None or not getattr(reference, MAP_FIELDS[kind]):
        return None
    return reference
