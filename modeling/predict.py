"""Prediction CLI and the uses of predictions.

    python -m modeling.predict run --checkpoint CK --images FOLDER --prompts prompts.jsonl --out OUT
    python -m modeling.predict run --checkpoint CK --images list.jsonl --out OUT
    python -m modeling.predict mask --heatmap OUT/heatmaps/x_implausibility.png --out mask.png
    python -m modeling.predict select --predictions OUT/predictions.jsonl --min plausibility=0.6 \
        --best-per-prompt 1 --out selected.jsonl

``run`` writes ``OUT/predictions.jsonl`` (one JSON object per image: scores, tagged prompt,
misaligned words, heatmap files) and ``OUT/heatmaps/<stem>_<task>.png`` (8-bit grayscale).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from modeling.data.tables import read_table_rows
from modeling.heatmaps import encode_heatmap_png, heatmap_from_png
from modeling.uses import Candidate, inpainting_mask, select_finetuning_data

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


def _read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a .jsonl or .csv file; errors name the file and line."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    rows = []
    for row in read_table_rows(path, suffixes=(".jsonl", ".csv")):
        if row.error:
            raise ValueError(f"{row.where}: {row.error}")
        rows.append(row.fields)
    return rows


def collect_inputs(images: Path, prompts: Path | None, prompt: str | None) -> list[tuple[Path, str]]:
    """(image path, prompt) pairs from a folder (+ prompts file or one prompt for all) or a
    list file whose rows have ``image`` and ``prompt`` (relative paths are relative to it)."""
    pairs: list[tuple[Path, str]] = []
    if images.is_dir():
        if prompts is not None:
            for row in _read_rows(prompts):
                name = row.get("filename") or row.get("image")
                text = row.get("caption") or row.get("prompt")
                if not name or text is None:
                    raise ValueError(f"{prompts}: each row needs filename and caption")
                pairs.append((images / name, text))
        elif prompt is not None:
            files = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            pairs = [(p, prompt) for p in files]
        else:
            raise ValueError("a folder of images needs --prompts FILE or --prompt TEXT")
    else:
        for row in _read_rows(images):
            if "image" not in row or "prompt" not in row:
                raise ValueError(f"{images}: each row needs image and prompt")
            path = Path(row["image"])
            pairs.append((path if path.is_absolute() else images.parent / path, row["prompt"]))
    for path, _ in pairs:
        if not path.exists():
            raise FileNotFoundError(f"{path}: image not found")
    if not pairs:
        raise ValueError(f"{images}: no images to predict")
    return pairs


def run(args: argparse.Namespace) -> int:
    """The ``run`` subcommand."""
    from modeling.inference import RAHFPredictor

    pairs = collect_inputs(args.images, args.prompts, args.prompt)
    predictor = RAHFPredictor.from_checkpoint(args.checkpoint, device=args.device)
    out: Path = args.out
    (out / "heatmaps").mkdir(parents=True, exist_ok=True)
    predictions = predictor.predict(
        [p for p, _ in pairs], [t for _, t in pairs], batch_size=args.batch_size, progress=True
    )
    with open(out / "predictions.jsonl", "w", encoding="utf-8") as handle:
        for index, ((path, text), pred) in enumerate(zip(pairs, predictions, strict=True)):
            files = {}
            for task, heat in pred.heatmaps.items():
                name = f"{index:06d}_{path.stem}_{task}.png"
                (out / "heatmaps" / name).write_bytes(encode_heatmap_png(heat))
                files[task] = f"heatmaps/{name}"
            row = {
                "image": str(path),
                "prompt": text,
                "scores": pred.scores,
                "tagged_prompt": pred.tagged_prompt,
                "misaligned_words": pred.misaligned_words,
                "misaligned_indices": pred.misaligned_indices,
                "heatmaps": files,
            }
            handle.write(json.dumps(row) + "\n")
    print(f"{len(predictions)} predictions written to {out / 'predictions.jsonl'}")
    return 0


def mask(args: argparse.Namespace) -> int:
    """The ``mask`` subcommand: heatmap PNG -> binary inpainting mask PNG (255 = inpaint)."""
    if not args.heatmap.exists():
        raise FileNotFoundError(f"{args.heatmap}: no such file")
    try:
        heat = heatmap_from_png(args.heatmap.read_bytes())
    except OSError as exc:
        raise ValueError(f"{args.heatmap}: not an image: {exc}") from exc
    size = None
    if args.size:
        width, height = (int(v) for v in args.size.lower().split("x"))
        size = (width, height)
    result = inpainting_mask(
        heat, threshold=args.threshold, dilation=args.dilation, output_size=size, min_area=args.min_area
    )
    Image.fromarray((result * 255).astype(np.uint8), mode="L").save(args.out)
    print(f"{args.out}: {int(result.sum())} of {result.size} pixels masked")
    return 0


def _threshold(text: str) -> tuple[str, float]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"{text!r}: expected TASK=VALUE, e.g. plausibility=0.6")
    key, value = text.split("=", 1)
    return key.strip(), float(value)


def select(args: argparse.Namespace) -> int:
    """The ``select`` subcommand: predictions.jsonl -> selected rows (same JSON)."""
    rows = _read_rows(args.predictions)
    candidates = []
    for index, row in enumerate(rows):
        if "scores" not in row or "prompt" not in row:
            raise ValueError(f"{args.predictions}: row {index + 1} needs prompt and scores")
        candidates.append(Candidate(str(index), row["prompt"], row["scores"]))
    chosen = select_finetuning_data(
        candidates,
        thresholds=dict(args.min or []),
        best_per_prompt=None if args.best_per_prompt == 0 else args.best_per_prompt,
        rank_by=args.rank_by,
    )
    with open(args.out, "w", encoding="utf-8") as handle:
        for candidate in chosen:
            handle.write(json.dumps(rows[int(candidate.image_id)]) + "\n")
    print(f"{len(chosen)} of {len(rows)} images selected -> {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Arguments of the three subcommands."""
    parser = argparse.ArgumentParser(description="RAHF predictions and their uses.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="predict scores, heatmaps and the tagged prompt")
    p.add_argument("--checkpoint", required=True, type=Path)
    p.add_argument("--images", required=True, type=Path, help="a folder, or a .jsonl/.csv list with image,prompt")
    p.add_argument("--prompts", type=Path, default=None, help="filename,caption rows (.jsonl or .csv) for a folder")
    p.add_argument("--prompt", default=None, help="one prompt for every image of the folder")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.set_defaults(func=run)
    m = sub.add_parser("mask", help="inpainting mask from a predicted implausibility heatmap")
    m.add_argument("--heatmap", required=True, type=Path)
    m.add_argument("--out", required=True, type=Path)
    m.add_argument("--threshold", type=float, default=0.3)
    m.add_argument("--dilation", type=int, default=8, help="pixels, at the output size")
    m.add_argument("--size", default=None, help="output WIDTHxHEIGHT (the image's size)")
    m.add_argument("--min-area", type=int, default=0, help="drop components smaller than this")
    m.set_defaults(func=mask)
    s = sub.add_parser("select", help="fine-tuning data selection from predictions.jsonl")
    s.add_argument("--predictions", required=True, type=Path)
    s.add_argument("--out", required=True, type=Path)
    s.add_argument("--min", type=_threshold, action="append", help="TASK=VALUE, repeatable")
    s.add_argument("--best-per-prompt", type=int, default=1, help="0 keeps every passing image")
    s.add_argument("--rank-by", default="overall")
    s.set_defaults(func=select)
    return parser


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
