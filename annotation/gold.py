"""Gold items: reference answers, and the services that make and remove them (issue 13).

A gold item is an ordinary Item with is_gold set and a GoldReference. It never counts toward
k, never completes (so it never reaches aggregation, exports or dataset statistics), and
nothing a rater is sent says which items are gold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.core.files.base import ContentFile
from django.db import transaction

from modeling.protocol import MAP_KINDS, SCORE_NAMES
from richhf_site.errors import ApplicationError, Conflict

from .models import GoldReference, GoldSource, Item

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
