"""Uses of the predictions (paper, section 5): inpainting masks and fine-tuning selection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage


def inpainting_mask(
    heatmap: np.ndarray,
    *,
    threshold: float = 0.3,
    dilation: int = 8,
    output_size: tuple[int, int] | None = None,
    min_area: int = 0,
) -> np.ndarray:
    """Boolean mask of the region to inpaint, from a predicted implausibility heatmap.

    ``heatmap > threshold`` marks the artifact; dilating by ``dilation`` pixels (a disk, in
    output pixels) gives the inpainting model context around it, as the paper does before
    inpainting. ``output_size`` (width, height) resizes the heatmap to the image first;
    connected components smaller than ``min_area`` pixels are dropped (isolated speckles).
    """
    heat = np.asarray(heatmap, dtype=np.float32)
    if heat.ndim != 2:
        raise ValueError(f"heatmap must be 2-D, got {heat.shape}")
    if output_size is not None and heat.shape[::-1] != tuple(output_size):
        heat = np.asarray(Image.fromarray(heat, mode="F").resize(output_size, Image.Resampling.BILINEAR))
    mask = heat > threshold
    if min_area > 0 and mask.any():
        labels, n = ndimage.label(mask)
        sizes = ndimage.sum(mask, labels, range(1, n + 1))
        mask = np.isin(labels, 1 + np.flatnonzero(sizes >= min_area))
    if dilation > 0 and mask.any():
        yy, xx = np.mgrid[-dilation : dilation + 1, -dilation : dilation + 1]
        mask = ndimage.binary_dilation(mask, structure=(xx**2 + yy**2) <= dilation**2)
    return mask


@dataclass
class Candidate:
    """One generated image with its prompt and predicted scores (task -> [0,1])."""

    image_id: str
    prompt: str
    scores: dict[str, float]


def select_finetuning_data(
    candidates: Sequence[Candidate],
    *,
    thresholds: dict[str, float],
    best_per_prompt: int | None = 1,
    rank_by: str = "overall",
) -> list[Candidate]:
    """Keep images whose predicted scores all pass ``thresholds`` (score >= threshold), then
    at most ``best_per_prompt`` per prompt ranked by ``rank_by`` (None keeps all passing).

    This is the paper's data selection for fine-tuning the generator: only images the model
    predicts to be plausible/aligned/aesthetic enough, and per prompt the best of them so
    one easy prompt cannot dominate the set. Ties keep the input order (stable sort).
    """
    for candidate in candidates:
        missing = set(thresholds) - set(candidate.scores)
        if missing or rank_by not in candidate.scores:
            raise ValueError(f"{candidate.image_id}: no predicted score for {sorted(missing or {rank_by})}")
    passing = [c for c in candidates if all(c.scores[k] >= v for k, v in thresholds.items())]
    if best_per_prompt is None:
        return passing
    by_prompt: dict[str, list[Candidate]] = {}
    for candidate in passing:
        by_prompt.setdefault(candidate.prompt, []).append(candidate)
    selected: list[Candidate] = []
    for group in by_prompt.values():
        selected += sorted(group, key=lambda c: -c.scores[rank_by])[:best_per_prompt]
    return selected
