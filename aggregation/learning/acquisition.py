"""Acquisition values: how much an unlabelled item is worth annotating next.

Plain library code (no Django): a loaded RAHFPredictor and images/prompts in, floats out, so
the benchmark (bench/active_learning.py) and the retraining service use the same function.
Higher value = lease earlier.

Strategies
- ``uncertainty``: MC-dropout variance. The dropout layers are switched on at inference and
  the model is run ``mc_passes`` times; the value is the mean variance of the four scores
  plus the mean per-pixel variance of the two heatmaps. The tiny/base configs train with
  dropout 0, so dropout modules with p below ``mc_dropout`` are raised to it for the passes
  only (and restored after): the variance then measures how much the prediction depends on
  individual features, the usual MC-dropout approximation.
- ``low_plausibility``: 1 - predicted plausibility (look at likely-broken images first).
- ``head_disagreement``: disagreement between heads that should agree: the implausibility
  heatmap's peak vs 1 - plausibility, the misalignment heatmap's peak vs 1 - alignment, and
  the overall score vs the mean of the other three.
- ``random``: a seeded uniform draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from modeling.inference import Prediction, RAHFPredictor
from modeling.protocol import MAP_KINDS, SCORE_NAMES

STRATEGIES = ("uncertainty", "low_plausibility", "head_disagreement", "random")


@dataclass
class Acquired:
    """One item's prediction (from the deterministic pass) and its acquisition value."""

    prediction: Prediction
    value: float


@torch.no_grad()
def _mc_variance(
    predictor: RAHFPredictor, images: Sequence, prompts: Sequence[str], *, passes: int, p: float, seed: int
) -> np.ndarray:
    model, processor = predictor.model, predictor.processor
    dropouts = [m for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    saved = [m.p for m in dropouts]
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    try:
        for m in dropouts:
            m.p = max(m.p, p)
            m.train()
        pixel_values = processor.images(images).to(predictor.device)
        input_ids, mask = processor.prompts(prompts)
        scores, heats = [], []
        for _ in range(passes):
            out = model(pixel_values, input_ids.to(predictor.device), mask.to(predictor.device))
            scores.append(torch.stack([out.scores[t] for t in SCORE_NAMES], dim=1).float().cpu().numpy())
            heats.append(torch.stack([out.heatmaps[t] for t in MAP_KINDS], dim=1).float().cpu().numpy())
    finally:
        for m, value in zip(dropouts, saved, strict=True):
            m.p = value
        model.eval()
        torch.set_rng_state(state)
    score_var = np.stack(scores).var(axis=0).mean(axis=1)  # (B,)
    heat_var = np.stack(heats).var(axis=0).mean(axis=(1, 2, 3))  # (B,)
    return score_var + heat_var


def head_disagreement(prediction: Prediction) -> float:
    """Mean absolute disagreement between heads that measure related things (see module doc)."""
    s, h = prediction.scores, prediction.heatmaps
    parts = [
        abs(float(np.max(h["implausibility"])) - (1.0 - s["plausibility"])),
        abs(float(np.max(h["misalignment"])) - (1.0 - s["alignment"])),
        abs(s["overall"] - float(np.mean([s["plausibility"], s["alignment"], s["aesthetics"]]))),
    ]
    return float(np.mean(parts))


def acquire(
    predictor: RAHFPredictor,
    images: Sequence,
    prompts: Sequence[str],
    *,
    strategy: str,
    batch_size: int = 16,
    mc_passes: int = 8,
    mc_dropout: float = 0.1,
    seed: int = 0,
    generate: bool = True,
) -> list[Acquired]:
    """Predictions plus acquisition values, in input order."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")
    predictions = predictor.predict(images, prompts, batch_size=batch_size, generate=generate)
    if strategy == "uncertainty":
        values = (
            np.concatenate(
                [
                    _mc_variance(
                        predictor,
                        images[i : i + batch_size],
                        prompts[i : i + batch_size],
                        passes=mc_passes,
                        p=mc_dropout,
                        seed=seed + i,
                    )
                    for i in range(0, len(prompts), batch_size)
                ]
            )
            if prompts
            else np.zeros(0)
        )
    elif strategy == "low_plausibility":
        values = np.array([1.0 - p.scores["plausibility"] for p in predictions])
    elif strategy == "head_disagreement":
        values = np.array([head_disagreement(p) for p in predictions])
    else:
        values = np.random.default_rng(seed).random(len(predictions))
    return [Acquired(p, float(v)) for p, v in zip(predictions, values, strict=True)]


def queue_order(values: Sequence[float], *, random_share: float, seed: int) -> list[tuple[int, bool]]:
    """Indices in the order they should be leased: highest value first, except that each
    position is, with probability ``random_share``, taken by a random remaining item instead
    (exploration, so the model also sees items it is confident about). Seeded: the same
    inputs give the same order. Returns (index, picked_at_random) pairs."""
    if not 0.0 <= random_share <= 1.0:
        raise ValueError("random_share must be in [0, 1]")
    rng = np.random.default_rng(seed)
    remaining = sorted(range(len(values)), key=lambda i: (-values[i], i))
    order: list[tuple[int, bool]] = []
    while remaining:
        explore = bool(rng.random() < random_share)
        pick = int(rng.integers(len(remaining))) if explore else 0
        order.append((remaining.pop(pick), explore))
    return order
