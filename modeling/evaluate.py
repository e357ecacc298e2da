"""Evaluation with the paper's metrics, and the trivial baselines to compare against.

CLI::

    python -m modeling.evaluate --checkpoint runs/tiny/best --data EXPORT --split test \
        [--baselines] [--kld-eps mit|richhf|FLOAT] [--json report.json]

The printed tables say, under each heatmap table, how many images each average left out
because the metric is undefined for them, and why (e.g. "CC 224 (constant prediction)");
the JSON has the same counts in ``heatmaps.<task>.left_out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from modeling.data.dataset import RichHFDataset, Sample, load_split, make_collate
from modeling.inference import Prediction, predict_batch
from modeling.metrics import (
    MIT_EPS,
    RICHHF_EPS,
    EvaluationReport,
    evaluate_heatmaps,
    evaluate_keywords,
    evaluate_scores,
    format_report,
)
from modeling.model import RAHFModel
from modeling.processing import RAHFProcessor
from modeling.protocol import MAP_KINDS, SCORE_NAMES


def predict_samples(
    model: RAHFModel,
    processor: RAHFProcessor,
    samples: Sequence[Sample],
    *,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    num_workers: int = 0,
    progress: bool = True,
    generate: bool = True,
) -> list[Prediction]:
    """Predictions for dataset samples, in order (images preprocessed by the DataLoader)."""
    loader = DataLoader(
        RichHFDataset(samples, processor),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=make_collate(processor),
    )
    out: list[Prediction] = []
    for batch in tqdm(loader, desc="evaluate", disable=not progress, leave=False):
        out += predict_batch(
            model, processor, batch["pixel_values"], batch["prompts"], device=device, generate=generate
        )
    return out


def evaluate_predictions(
    predictions: Sequence[Prediction],
    samples: Sequence[Sample],
    *,
    kld_eps: float = MIT_EPS,
    seed: int = 0,
    tasks: Sequence[str] = ("scores", "heatmaps", "keywords"),
) -> EvaluationReport:
    """Compare predictions with the samples' labels (ground-truth maps resized to the
    predictions' size, as the reimplementation evaluates at the head's resolution)."""
    if len(predictions) != len(samples):
        raise ValueError(f"{len(predictions)} predictions for {len(samples)} samples")
    report = EvaluationReport()
    if "scores" in tasks:
        truth = np.stack([s.scores() for s in samples]) if samples else np.zeros((0, 4))
        for i, task in enumerate(SCORE_NAMES):
            report.scores[task] = evaluate_scores([p.scores[task] for p in predictions], truth[:, i])
    if "heatmaps" in tasks:
        size = predictions[0].heatmaps[MAP_KINDS[0]].shape[0] if predictions else 0
        truths = [s.heatmaps(size) for s in samples]
        for i, task in enumerate(MAP_KINDS):
            report.heatmaps[task] = evaluate_heatmaps(
                [p.heatmaps[task] for p in predictions], [t[i] for t in truths], kld_eps=kld_eps, seed=seed
            )
    if "keywords" in tasks:
        report.keywords = evaluate_keywords([p.tagged_prompt for p in predictions], [s.target() for s in samples])
    return report


def centre_prior(size: int, sigma_fraction: float = 0.25) -> np.ndarray:
    """Isotropic Gaussian centred on the image, peak 1 (the saliency literature's baseline)."""
    coords = (np.arange(size) - (size - 1) / 2) / (sigma_fraction * size)
    return np.exp(-0.5 * (coords[None, :] ** 2 + coords[:, None] ** 2)).astype(np.float32)


def baseline_reports(
    train: Sequence[Sample],
    samples: Sequence[Sample],
    *,
    size: int,
    kld_eps: float = MIT_EPS,
    seed: int = 0,
) -> dict[str, EvaluationReport]:
    """The trivial baselines, each evaluated only on the tasks it answers.

    - "mean score": the training-set mean of each score (PLCC/SRCC undefined: constant).
    - "all-zero map": predicts no region (the best constant for MSE on sparse maps); SIM 0
      (MIT similarity.m keeps a zero map at zero), CC and NSS undefined for every image.
    - "centre prior": a centred Gaussian, amplitude fitted by least squares on train.
    - "no word misaligned": the prompt unchanged.
    """
    means = np.stack([s.scores() for s in train]).mean(axis=0)
    zero = np.zeros((size, size), np.float32)
    prior = centre_prior(size)
    gains = []
    for i, _task in enumerate(MAP_KINDS):
        maps = np.stack([s.heatmaps(size)[i] for s in train[:500]])
        gains.append(float((maps * prior).sum() / (len(maps) * (prior * prior).sum())))

    def preds(heat: list[np.ndarray] | None, keep_prompt: bool) -> list[Prediction]:
        return [
            Prediction.from_parts(
                {task: float(means[i]) for i, task in enumerate(SCORE_NAMES)},
                {task: (heat[i] if heat else zero) for i, task in enumerate(MAP_KINDS)},
                s.prompt if keep_prompt else "",
            )
            for s in samples
        ]

    return {
        "mean score": evaluate_predictions(preds(None, True), samples, tasks=("scores",)),
        "all-zero map": evaluate_predictions(
            preds(None, True), samples, kld_eps=kld_eps, seed=seed, tasks=("heatmaps",)
        ),
        "centre prior": evaluate_predictions(
            preds([prior * g for g in gains], True), samples, kld_eps=kld_eps, seed=seed, tasks=("heatmaps",)
        ),
        "no word misaligned": evaluate_predictions(preds(None, True), samples, tasks=("keywords",)),
    }


def _parse_eps(value: str) -> float:
    return {"mit": MIT_EPS, "richhf": RICHHF_EPS}.get(value.lower()) or float(value)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    from modeling.checkpoint import load_checkpoint

    parser = argparse.ArgumentParser(description="Evaluate a RAHF checkpoint with the paper's metrics.")
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint directory")
    parser.add_argument("--data", required=True, type=Path, help="export folder (see docs/modeling.md)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N samples only")
    parser.add_argument("--baselines", action="store_true", help="add the trivial baselines (uses train)")
    parser.add_argument(
        "--kld-eps",
        type=_parse_eps,
        default=MIT_EPS,
        help="mit (MATLAB eps = 2^-52 = 2.220446e-16), richhf (1e-8) or a number",
    )
    parser.add_argument("--seed", type=int, default=0, help="AUC-Judd tie-breaking noise seed")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", type=Path, default=None, help="also write the report as JSON")
    args = parser.parse_args(argv)
    try:
        model, processor = load_checkpoint(args.checkpoint, device=args.device)
        samples = load_split(args.data, args.split)[: args.limit]
        if not samples:
            raise ValueError(f"{args.data}: split {args.split} is empty")
        predictions = predict_samples(model, processor, samples, batch_size=args.batch_size, device=args.device)
        reports = {"model": evaluate_predictions(predictions, samples, kld_eps=args.kld_eps, seed=args.seed)}
        if args.baselines:
            reports |= baseline_reports(
                load_split(args.data, "train", check_images=False),
                samples,
                size=model.config.heatmap_size,
                kld_eps=args.kld_eps,
                seed=args.seed,
            )
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.checkpoint} on {args.data} / {args.split} ({len(samples)} samples)")
    print(format_report(reports))
    if args.json:
        args.json.write_text(json.dumps({k: v.to_dict() for k, v in reports.items()}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
