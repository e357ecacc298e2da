"""Gold items: reference answers, and the services that make and remove them (issue 13).

A gold item is an ordinary Item with is_gold set and a GoldReference. It never counts toward
k, never completes (so it never reaches aggregation, exports or dataset statistics), and
nothing a rater is sent says which items are gold.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Avg, Exists, OuterRef
from django.utils import timezone

from modeling.heatmaps import heatmap_from_png
from modeling.protocol import MAP_KINDS, POINT_FIELDS, SCORE_NAMES, normalise_score
from modeling.quality import GoldAnswer, ImageShape, Reference, answer_quality, reference_map_from_points
from richhf_site import roles
from richhf_site.errors import ApplicationError, Conflict

from .models import (
    Annotation,
    Assignment,
    AssignmentState,
    Campaign,
    GoldAnswerKind,
    GoldAnswerScore,
    GoldReference,
    GoldSource,
    Item,
    Qualification,
    RaterStatus,
)

#: GoldReference's file field of each map kind.
MAP_FIELDS: dict[str, str] = {"implausibility": "implausible_map", "misalignment": "misaligned_map"}


def _check_scores(scores: Mapping[str, float]) -> dict[str, float]:
    missing = [name for name in SCORE_NAMES if name not in scores]
    if missing:
        raise ApplicationError(f"the reference needs all four scores; missing {', '.join(missing)}", field="scores")
    out = {name: float(scores[name]) for name in SCORE_NAMES}
    bad = [name for name, value in out.items() if not 0.0 <= value <= 1.0]
    if bad:
        raise ApplicationError(f"{bad[0]} must be normalised to 0..1, not {out[bad[0]]}", field="scores")
    return out


def _check_words(item: Item, words: Sequence[int]) -> list[int]:
    out = sorted(set(int(i) for i in words))
    if out and not (0 <= out[0] and out[-1] < len(item.words)):
        raise ApplicationError(
            f"word indices must fall inside the prompt's {len(item.words)} words", field="misaligned_words"
        )
    return out


def gold_from_import(
    *, item: Item, maps: Mapping[str, bytes], scores: Mapping[str, float], misaligned_words: Sequence[int]
) -> tuple[GoldReference, bool]:
    """Makes an imported release record's item gold: its maps (PNG), normalised scores and
    misaligned words become the reference. Returns (reference, created); an item that is
    already gold is left as it is.

    Refuses an item that completed (its aggregate or imported ground truth is published, and
    gold items never reach either). The map files are written first and removed again if the
    rows cannot be written, so a failure leaves nothing behind. Call it outside any wider
    transaction.
    """
    existing = GoldReference.objects.filter(item=item).first()
    if existing is not None:
        return existing, False
    if item.completed_at is not None:
        raise Conflict(
            "This item is already labelled (it has published ground truth), so it cannot become gold.",
            extra={"code": "labelled"},
        )
    if Assignment.objects.filter(item=item).exists():
        raise Conflict(
            "This image is already being annotated here as real work, so it cannot become gold.",
            extra={"code": "in_progress"},
        )
    if set(maps) != set(MAP_KINDS):
        raise ApplicationError(f"the reference needs the maps {', '.join(MAP_KINDS)}", field="maps")
    reference = GoldReference(
        item=item,
        source=GoldSource.IMPORT,
        scores=_check_scores(scores),
        misaligned_words=_check_words(item, misaligned_words),
    )
    saved = []
    try:
        for kind, field_name in MAP_FIELDS.items():
            field_file = getattr(reference, field_name)
            field_file.save(f"{item.campaign_id}/{item.content_hash}-{kind}.png", ContentFile(maps[kind]), save=False)
            saved.append(field_file)
        with transaction.atomic():
            # The item's row lock: a concurrent lease or submit sees it gold or not, never both.
            locked = Item.objects.select_for_update().get(pk=item.pk)
            if locked.completed_at is not None:
                raise Conflict("This item completed meanwhile; it cannot become gold.", extra={"code": "labelled"})
            reference.save(force_insert=True)
            Item.objects.filter(pk=item.pk).update(is_gold=True)
    except BaseException:
        for field_file in saved:
            field_file.delete(save=False)
        raise
    item.is_gold = True
    return reference, True


# --------------------------------------------------------------------------- expert references


@transaction.atomic
def gold_from_annotation(*, annotation_id: int, by) -> GoldReference:
    """Makes an expert's answer the reference of its item, which becomes gold.

    The answer must be a lead's or an admin's (an expert's), not excluded, and its item neither
    gold already nor complete (a completed item's aggregate is published; gold items never
    reach aggregates). Other raters' open leases on the item stay: their answers are then
    scored as honeypots. Holds the item's row lock.
    """
    annotation = Annotation.objects.select_related("rater").filter(pk=annotation_id).first()
    if annotation is None:
        raise ApplicationError("No such annotation.", status_code=404)
    if not roles.is_lead_or_admin(annotation.rater):
        raise ApplicationError(
            "Only an expert's answer (a lead's or an admin's) can become a reference.", field="annotation"
        )
    if annotation.excluded_at is not None:
        raise Conflict("This answer is excluded; it cannot become a reference.", extra={"code": "excluded"})
    item = Item.objects.select_for_update().get(pk=annotation.item_id)
    if item.is_gold:
        raise Conflict("This item is already gold.", extra={"code": "gold"})
    if item.completed_at is not None:
        raise Conflict(
            "This item is complete and its aggregate published; only an item still in progress can become gold.",
            extra={"code": "complete"},
        )
    reference = GoldReference.objects.create(
        item=item,
        source=GoldSource.EXPERT,
        implausible_points=annotation.implausible_points,
        misaligned_points=annotation.misaligned_points,
        misaligned_words=sorted(annotation.misaligned_words),
        scores={name: normalise_score(value) for name, value in annotation.scores().items()},
        source_annotation=annotation,
        created_by=by,
    )
    Item.objects.filter(pk=item.pk).update(is_gold=True)
    return reference


@transaction.atomic
def gold_remove(*, item_id: int, now=None) -> Item:
    """Makes a gold item an ordinary item again: its reference goes (gold answers' scores stay,
    they are history), and it joins the queue. Answers it already has count toward its k from
    now on, so it is recounted and may complete at once. Holds the item's row lock."""
    # services imports this module for the submit path; the recount is services' own rule.
    from .services import item_recount_submitted

    item = Item.objects.select_for_update().select_related("campaign").filter(pk=item_id).first()
    reference = GoldReference.objects.filter(item_id=item_id).first() if item else None
    if item is None or reference is None:
        raise ApplicationError("No such gold item.", status_code=404)
    files = [f for f in (reference.implausible_map, reference.misaligned_map) if f]
    reference.delete()
    Item.objects.filter(pk=item.pk).update(is_gold=False)
    item.is_gold = False
    names = [(f.storage, str(f.name)) for f in files]

    def delete_files() -> None:
        for storage, name in names:
            storage.delete(name)

    # After commit: a rollback must not leave a reference whose maps are gone.
    transaction.on_commit(delete_files)
    item_recount_submitted(item=item, now=now or timezone.now())
    return item


# --------------------------------------------------------------------------- leases


def _unanswered_gold(*, campaign: Campaign, rater):
    """The campaign's gold items this rater holds no assignment on (never leased to them)."""
    return Item.objects.filter(campaign=campaign, is_gold=True).exclude(
        Exists(Assignment.objects.filter(item=OuterRef("pk"), rater=rater))
    )


def gold_lease(*, rater, campaign: Campaign, now, rng: random.Random) -> Assignment | None:
    """Leases a gold item the rater has never been given, chosen at random; None if none is left.

    The caller holds the rater's lock, so the (item, rater) pair is free. Gold items have no k:
    any number of raters may hold one at once, so no slot is counted.
    """
    ids = list(_unanswered_gold(campaign=campaign, rater=rater).values_list("pk", flat=True))
    if not ids:
        return None
    item = Item.objects.get(pk=rng.choice(sorted(ids)))
    item.campaign = campaign
    return Assignment.objects.create(
        item=item,
        rater=rater,
        state=AssignmentState.LEASED,
        leased_at=now,
        expires_at=now + timedelta(minutes=campaign.lease_minutes),
    )


def qualification_answered(*, campaign: Campaign, rater, attempt: int) -> int:
    return GoldAnswerScore.objects.filter(
        campaign=campaign, rater=rater, kind=GoldAnswerKind.QUALIFICATION, attempt=attempt
    ).count()


# --------------------------------------------------------------------------- scoring


def _read_map(field_file) -> np.ndarray:
    with field_file.open("rb") as handle:
        return heatmap_from_png(handle.read())


def gold_reference_for_scoring(*, reference: GoldReference, item: Item, campaign: Campaign) -> Reference:
    """The stored reference as modeling.quality wants it: a map per kind in [0, 1]. Imported
    references carry their maps; an expert's points are rasterised on the campaign's grid."""
    shape = ImageShape(item.width, item.height, campaign.radius_fraction)
    maps: dict[str, np.ndarray] = {}
    for kind in MAP_KINDS:
        field_file = getattr(reference, MAP_FIELDS[kind])
        points = getattr(reference, POINT_FIELDS[kind])
        if field_file:
            maps[kind] = _read_map(field_file)
        else:
            grid = (campaign.heatmap_height, campaign.heatmap_width)
            maps[kind] = reference_map_from_points(points or [], shape, grid)
    return Reference(maps=maps, misaligned_words=reference.misaligned_words, scores=reference.scores)


def _decide_qualification(*, status: RaterStatus, campaign: Campaign) -> None:
    mean = GoldAnswerScore.objects.filter(
        campaign=campaign,
        rater_id=status.rater_id,
        kind=GoldAnswerKind.QUALIFICATION,
        attempt=status.qualification_attempt,
    ).aggregate(m=Avg("quality"))["m"]
    passed = mean is not None and mean >= campaign.qualification_threshold
    status.qualification = Qualification.PASSED if passed else Qualification.FAILED
    status.save(update_fields=["qualification", "updated_at"])


def gold_answer_record(*, annotation: Annotation, item: Item, campaign: Campaign, rater, now) -> GoldAnswerScore:
    """Scores an answer on a gold item and records it; during qualification, decides the
    rater's qualification after their N-th answer (or when no gold item is left for them).

    Called by annotation_submit inside its transaction; takes the rater's status row lock, so
    two answers of one rater never decide twice.
    """
    status, _ = RaterStatus.objects.select_for_update().get_or_create(campaign=campaign, rater=rater)
    qualifying = campaign.qualification_required and status.qualification == Qualification.PENDING
    reference = gold_reference_for_scoring(reference=GoldReference.objects.get(item=item), item=item, campaign=campaign)
    answer = GoldAnswer(
        points={kind: getattr(annotation, POINT_FIELDS[kind]) for kind in MAP_KINDS},
        misaligned_words=annotation.misaligned_words,
        scores=annotation.scores(),
    )
    quality = answer_quality(
        answer=answer, reference=reference, shape=ImageShape(item.width, item.height, campaign.radius_fraction)
    )
    score = GoldAnswerScore.objects.create(
        annotation=annotation,
        campaign=campaign,
        item=item,
        rater=rater,
        kind=GoldAnswerKind.QUALIFICATION if qualifying else GoldAnswerKind.HONEYPOT,
        attempt=status.qualification_attempt,
        quality=quality.quality,
        components=quality.components(),
        answer={
            "implausible_points": annotation.implausible_points,
            "misaligned_points": annotation.misaligned_points,
            "misaligned_words": annotation.misaligned_words,
            "scores": annotation.scores(),
        },
        created_at=now,
    )
    if qualifying:
        answered = qualification_answered(campaign=campaign, rater=rater, attempt=status.qualification_attempt)
        if answered >= campaign.qualification_items or not _unanswered_gold(campaign=campaign, rater=rater).exists():
            _decide_qualification(status=status, campaign=campaign)
    return score


# --------------------------------------------------------------------------- requalification


@dataclass(frozen=True)
class Requalification:
    status: RaterStatus
    reused_items: int


@transaction.atomic
def rater_requalify(*, campaign_id: int, rater_id: int) -> Requalification:
    """Lets a rater take the campaign's qualification again (an admin's decision).

    Their qualification goes back to pending with attempt + 1; they get gold items they have
    never been given. When fewer than N are left, the shortfall is made up from the gold items
    they were given longest ago: that old assignment and answer are deleted, so the item can
    be leased to them again. The answer's score, with a copy of the answer, stays in
    GoldAnswerScore under its old attempt. Holds the rater's status row lock.
    """
    campaign = Campaign.objects.filter(pk=campaign_id, raters__pk=rater_id).first()
    if campaign is None:
        raise ApplicationError("No such rater in this campaign.", status_code=404)
    status = RaterStatus.objects.select_for_update().filter(campaign=campaign, rater_id=rater_id).first()
    if status is None or status.qualification == Qualification.PENDING:
        raise Conflict(
            "This rater has not finished their qualification yet; there is nothing to retry.",
            extra={"code": "pending"},
        )
    status.qualification = Qualification.PENDING
    status.qualification_attempt += 1
    status.save(update_fields=["qualification", "qualification_attempt", "updated_at"])
    left = _unanswered_gold(campaign=campaign, rater=status.rater).count()
    shortfall = max(0, campaign.qualification_items - left)
    reused = 0
    if shortfall:
        now = timezone.now()
        # Never a live lease: the rater may be answering it right now.
        old = list(
            Assignment.objects.filter(rater_id=rater_id, item__campaign=campaign, item__is_gold=True)
            .exclude(state=AssignmentState.LEASED, expires_at__gt=now)
            .order_by("leased_at", "id")
            .values_list("pk", flat=True)[:shortfall]
        )
        Annotation.objects.filter(assignment_id__in=old).delete()
        Assignment.objects.filter(pk__in=old).delete()
        reused = len(old)
    return Requalification(status=status, reused_items=reused)
