"""The active version's predictions for the items that still need raters, and the queue
order they give the untouched train items."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from django.core.files.base import ContentFile
from PIL import Image

from annotation.models import Item, Split
from annotation.services import item_priorities_set
from modeling.heatmaps import encode_heatmap_png

from ..models import ItemPrediction, ModelVersion
from ..selectors import items_needing_raters, version_checkpoint_local
from .versions import version_fields_record

if TYPE_CHECKING:  # acquisition imports torch: loaded only when predictions are computed
    from ..acquisition import Acquired


def predictions_recompute(*, version_id: int, batch_size: int = 16) -> int:
    """Predicts every item that still needs raters with the (active) version, upserts one
    ItemPrediction per item, and rewrites the priority of the untouched train items from
    the queue order: priority = 1 - rank / n (in (0, 1]), highest leased first. Dev and test
    items keep their priority (leads decide how fast held-out labels come in). Items already
    in progress are leased first by the assignment engine whatever their priority, so the
    k-raters rules are untouched. Recomputed from scratch and seeded by the version id: a
    second run writes the same values."""
    from modeling.inference import RAHFPredictor

    from ..acquisition import acquire, queue_order

    version = ModelVersion.objects.select_related("campaign").get(pk=version_id)
    if not version.is_active:
        return 0
    strategy = version.config.get("strategy", "uncertainty")
    random_share = float(version.config.get("random_share", 0.0))
    items = list(items_needing_raters(campaign=version.campaign))
    version_fields_record(version=version, stage=f"predicting {len(items)} items")
    predictor = RAHFPredictor.from_checkpoint(version_checkpoint_local(version=version), device="cpu")
    acquired = []
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        images = []
        for item in chunk:
            with item.image.open("rb") as handle:
                images.append(Image.open(io.BytesIO(handle.read())).convert("RGB"))
        acquired += acquire(
            predictor,
            images,
            [i.prompt for i in chunk],
            strategy=strategy,
            batch_size=batch_size,
            seed=version.pk * 1000 + start,
        )
    train_positions = [i for i, item in enumerate(items) if item.split == Split.TRAIN]
    order = queue_order([acquired[i].value for i in train_positions], random_share=random_share, seed=version.pk)
    rank: dict[int, tuple[int, bool]] = {train_positions[j]: (r, explored) for r, (j, explored) in enumerate(order)}
    n_train = max(len(train_positions), 1)
    priorities: dict[int, float] = {}
    for position, (item, result) in enumerate(zip(items, acquired, strict=True)):
        r, explored = rank.get(position, (0, False))
        _prediction_upsert(version=version, item=item, result=result, strategy=strategy, rank=r, explored=explored)
        if position in rank:
            priorities[item.pk] = 1.0 - r / n_train
    item_priorities_set(priorities=priorities)
    # Predictions of items that got their k answers since are no longer needed.
    ItemPrediction.objects.filter(item__campaign=version.campaign, item__completed_at__isnull=False).delete()
    return len(items)


def _prediction_upsert(
    *, version: ModelVersion, item: Item, result: Acquired, strategy: str, rank: int, explored: bool
) -> None:
    """One item's row, its two map files replaced (the old files are deleted first)."""
    prediction = result.prediction
    row = ItemPrediction.objects.filter(item=item).first() or ItemPrediction(item=item)
    for field in ("implausibility_map", "misalignment_map"):
        old = getattr(row, field)
        if old:
            old.delete(save=False)
    row.version = version
    row.scores = prediction.scores
    row.misaligned_indices = prediction.misaligned_indices
    row.tagged_prompt = prediction.tagged_prompt
    row.strategy = strategy
    row.acquisition = result.value
    row.queue_rank = rank
    row.explored = explored
    for field, task in (("implausibility_map", "implausibility"), ("misalignment_map", "misalignment")):
        getattr(row, field).save(
            f"item{item.pk}-v{version.pk}-{task}.png",
            ContentFile(encode_heatmap_png(prediction.heatmaps[task])),
            save=False,
        )
    row.save()
