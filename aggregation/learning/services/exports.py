"""The two downstream uses of the active version's predictions (paper section 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from annotation.models import Campaign
from modeling.heatmaps import heatmap_from_png

from ..selectors import predictions_of_active_version


def inpainting_masks_export(
    *, campaign: Campaign, out_dir: Path, item_ids: list[int] | None = None, threshold: float = 0.3, dilation: int = 8
) -> list[Path]:
    """One PNG mask per item (white = inpaint) at the image's size, from the active
    version's predicted implausibility heatmap."""
    from modeling.uses import inpainting_mask

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for row in predictions_of_active_version(campaign=campaign, item_ids=item_ids):
        with row.implausibility_map.open("rb") as handle:
            heat = heatmap_from_png(handle.read())
        mask = inpainting_mask(
            heat, threshold=threshold, dilation=dilation, output_size=(row.item.width, row.item.height)
        )
        path = out_dir / f"item{row.item_id}-mask.png"
        Image.fromarray((mask * 255).astype(np.uint8), mode="L").save(path)
        written.append(path)
    return written


def finetune_selection_export(
    *, campaign: Campaign, thresholds: dict[str, float], best_per_prompt: int | None = 1
) -> list[dict[str, Any]]:
    """The paper's data selection over the active version's predicted scores."""
    from modeling.uses import Candidate, select_finetuning_data

    rows = predictions_of_active_version(campaign=campaign)
    candidates = [Candidate(str(r.item_id), r.item.prompt, r.scores) for r in rows]
    chosen = select_finetuning_data(candidates, thresholds=thresholds, best_per_prompt=best_per_prompt)
    return [{"item_id": int(c.image_id), "prompt": c.prompt, "scores": c.scores} for c in chosen]
