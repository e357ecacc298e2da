"""A learnable synthetic stand-in for RichHF-18K, with a known truth.

Real RichHF-18K images (Pick-a-Pic) cannot be fetched here, so this generator draws coloured
shapes on textured backgrounds, names them in a prompt, injects artifacts (swirl distortions,
smears, broken shapes, noise blotches: the implausibility truth) and mismatches (wrong colour,
wrong shape, missing or extra object: the misalignment truth), and simulates three raters
(points as disks of radius H/20, Likert scores with noise, keyword clicks with majority vote),
aggregated exactly as docs/protocol.md section 2 describes, through the web app's own
rasteriser (modeling.heatmaps). Output is the release format, so the dataset reader and the
web app's import read it like a real export.

CLI: ``python -m modeling.data.synthetic OUT --train 2000 --dev 200 --test 300``
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from skimage.transform import swirl
from tqdm import tqdm

from modeling.data.release import RichHFRecord, write_release_tfrecord
from modeling.heatmaps import RasterGeometry, encode_heatmap_png, rater_masks
from modeling.protocol import RADIUS_FRACTION, RELEASE_MAP_SIZE, SCORE_MAX, SCORE_MIN, normalise_score
from modeling.text import misaligned_indices_to_labels, split_prompt_words

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 40),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 20),
    "purple": (140, 40, 170),
    "orange": (250, 140, 10),
}
SHAPES = ("circle", "square", "triangle")
TEXTURES = ("plain", "striped", "dotted", "checkered")
#: How pleasant each background is (drives the aesthetics truth).
TEXTURE_AESTHETICS = {"plain": 0.85, "striped": 0.65, "dotted": 0.5, "checkered": 0.3}
N_RATERS = 3


@dataclass
class _Object:
    colour: str
    shape: str
    cx: float
    cy: float
    r: float


@dataclass
class SyntheticTruth:
    """What was really drawn: regions (cx, cy, radius in image pixels), words, qualities."""

    prompt: str
    artifact_regions: list[tuple[float, float, float]] = field(default_factory=list)
    misalignment_regions: list[tuple[float, float, float]] = field(default_factory=list)
    misaligned_words: list[int] = field(default_factory=list)
    quality: dict[str, float] = field(default_factory=dict)


def _texture(rng: np.random.Generator, size: int, kind: str) -> np.ndarray:
    base = rng.uniform(150, 235, 3)
    alt = np.clip(base + rng.uniform(-70, -35, 3), 0, 255)
    yy, xx = np.mgrid[0:size, 0:size]
    if kind == "plain":
        mask = np.zeros((size, size), bool)
    elif kind == "striped":
        period = int(rng.integers(8, 14))
        mask = ((xx + yy * rng.choice([0, 1])) // (period // 2)) % 2 == 0
    elif kind == "dotted":
        period = int(rng.integers(10, 16))
        mask = ((xx % period - period / 2) ** 2 + (yy % period - period / 2) ** 2) < (period / 4) ** 2
    else:
        period = int(rng.integers(10, 18))
        mask = ((xx // period) + (yy // period)) % 2 == 0
    image = np.where(mask[..., None], alt, base)
    image = image + rng.normal(0, 4, image.shape)  # film grain so "plain" is not flat
    return np.clip(image, 0, 255).astype(np.float64)


def _draw(image: np.ndarray, obj: _Object) -> np.ndarray:
    pil = Image.fromarray(image.astype(np.uint8))
    draw = ImageDraw.Draw(pil)
    colour = COLOURS[obj.colour]
    x0, y0, x1, y1 = obj.cx - obj.r, obj.cy - obj.r, obj.cx + obj.r, obj.cy + obj.r
    if obj.shape == "circle":
        draw.ellipse((x0, y0, x1, y1), fill=colour, outline=(20, 20, 20), width=2)
    elif obj.shape == "square":
        s = obj.r * 0.85
        draw.rectangle((obj.cx - s, obj.cy - s, obj.cx + s, obj.cy + s), fill=colour, outline=(20, 20, 20), width=2)
    else:
        draw.polygon(
            [(obj.cx, y0), (x1, obj.cy + obj.r * 0.8), (x0, obj.cy + obj.r * 0.8)],
            fill=colour,
            outline=(20, 20, 20),
            width=2,
        )
    return np.asarray(pil, dtype=np.float64)


def _place(rng: np.random.Generator, size: int, objects: list[_Object], r: float) -> tuple[float, float]:
    for _ in range(50):
        cx, cy = rng.uniform(r + 2, size - r - 2, 2)
        if all(math.hypot(cx - o.cx, cy - o.cy) > r + o.r + 4 for o in objects):
            return float(cx), float(cy)
    return float(cx), float(cy)


def _artifact(rng: np.random.Generator, image: np.ndarray, cx: float, cy: float, kind: str, size: int) -> np.ndarray:
    r = size * 0.11
    x0, x1 = int(max(cx - r, 0)), int(min(cx + r, size))
    y0, y1 = int(max(cy - r, 0)), int(min(cy + r, size))
    patch = image[y0:y1, x0:x1].copy()
    if kind == "swirl":
        patch = swirl(patch / 255.0, strength=float(rng.uniform(6, 10)), radius=r) * 255.0
    elif kind == "smear":
        k = 11
        padded = np.pad(patch, ((0, 0), (k, k), (0, 0)), mode="edge")
        cumulative = np.cumsum(padded, axis=1)
        patch = (cumulative[:, 2 * k :] - cumulative[:, : -2 * k]) / (2 * k)
        patch = patch[:, : x1 - x0]
        patch = np.clip(patch * 1.15 + 10, 0, 255)
    elif kind == "broken":
        # A jagged bite: a zig-zag band replaced by inverted colours.
        h, w = patch.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w]
        band = np.abs((yy - h / 2) + 4 * np.sin(xx / 2.0)) < h / 6
        patch[band] = 255 - patch[band]
    else:  # blotch
        noise = rng.integers(0, 256, patch.shape)
        mask = rng.random(patch.shape[:2]) < 0.6
        patch[mask] = noise[mask]
    out = image.copy()
    out[y0:y1, x0:x1] = patch
    return out


def _rater_points(
    rng: np.random.Generator, regions: list[tuple[float, float, float]], image_size: int, detect: float
) -> list[tuple[float, float]]:
    """One rater's clicks, normalised to [0, 1]: 1-3 jittered points inside each region the
    rater notices (probability ``detect``), and the occasional stray click."""
    points: list[tuple[float, float]] = []
    for cx, cy, r in regions:
        if rng.random() > detect:
            continue
        for _ in range(int(rng.integers(1, 4))):
            angle, dist = rng.uniform(0, 2 * math.pi), rng.uniform(0, r * 0.6)
            points.append((cx + dist * math.cos(angle), cy + dist * math.sin(angle)))
    if rng.random() < 0.04:
        stray_x, stray_y = rng.uniform(0, image_size, 2)
        points.append((float(stray_x), float(stray_y)))
    return [(x / image_size, y / image_size) for x, y in points]


def _raters_map(
    rng: np.random.Generator, regions: list[tuple[float, float, float]], image_size: int, detect: float
) -> np.ndarray:
    """The mean of N_RATERS raters' binary maps at the release's size, float64 in [0, 1]:
    rasterised by modeling.heatmaps, the rule the web app's aggregation uses."""
    points = [_rater_points(rng, regions, image_size, detect) for _ in range(N_RATERS)]
    geometry = RasterGeometry(image_size, image_size, RELEASE_MAP_SIZE, RELEASE_MAP_SIZE, RADIUS_FRACTION)
    return rater_masks(points, geometry).mean(axis=0)


def _likert(rng: np.random.Generator, quality: float) -> float:
    """Mean of three raters' 1..5 ratings of a [0,1] quality, normalised to [0,1]."""
    ratings = np.clip(np.round(1 + 4 * quality + rng.normal(0, 0.45, N_RATERS)), SCORE_MIN, SCORE_MAX)
    return normalise_score(float(ratings.mean()))


def generate_example(
    rng: np.random.Generator, image_size: int = 128
) -> tuple[np.ndarray, SyntheticTruth, dict[str, object]]:
    """One synthetic image (uint8 HxWx3), its truth, and the aggregated rater labels."""
    texture = str(rng.choice(TEXTURES))
    image = _texture(rng, image_size, texture)
    n_objects = int(rng.integers(1, 3))
    named: list[_Object] = []
    for _ in range(n_objects):
        r = float(rng.uniform(0.11, 0.17) * image_size)
        cx, cy = _place(rng, image_size, named, r)
        named.append(_Object(str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES)), cx, cy, r))
    # Prompt words, built word by word so misaligned indices are exact.
    words: list[str] = []
    colour_index: list[int] = []
    shape_index: list[int] = []
    for i, obj in enumerate(named):
        if i:
            words.append("and")
        words.append("a")
        colour_index.append(len(words))
        words.append(obj.colour)
        shape_index.append(len(words))
        words.append(obj.shape)
    words += ["on", "a", texture, "background"]
    prompt = " ".join(words)
    truth = SyntheticTruth(prompt)

    drawn = [_Object(o.colour, o.shape, o.cx, o.cy, o.r) for o in named]
    alignment = 1.0
    if rng.random() < 0.5:
        kind = str(rng.choice(["colour", "shape", "missing", "extra"]))
        i = int(rng.integers(len(named)))
        if kind == "colour":
            drawn[i].colour = str(rng.choice([c for c in COLOURS if c != named[i].colour]))
            truth.misaligned_words.append(colour_index[i])
            truth.misalignment_regions.append((drawn[i].cx, drawn[i].cy, drawn[i].r))
            alignment = 0.45
        elif kind == "shape":
            drawn[i].shape = str(rng.choice([s for s in SHAPES if s != named[i].shape]))
            truth.misaligned_words.append(shape_index[i])
            truth.misalignment_regions.append((drawn[i].cx, drawn[i].cy, drawn[i].r))
            alignment = 0.5
        elif kind == "missing":
            drawn.pop(i)
            truth.misaligned_words += [colour_index[i], shape_index[i]]
            alignment = 0.3
        else:
            r = float(rng.uniform(0.09, 0.13) * image_size)
            cx, cy = _place(rng, image_size, named, r)
            drawn.append(_Object(str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES)), cx, cy, r))
            truth.misalignment_regions.append((cx, cy, r))
            alignment = 0.65
    for obj in drawn:
        image = _draw(image, obj)

    n_artifacts = 0
    if rng.random() < 0.55:
        n_artifacts = int(rng.integers(1, 3))
        for _ in range(n_artifacts):
            if drawn and rng.random() < 0.7:
                obj = drawn[int(rng.integers(len(drawn)))]
                cx, cy = obj.cx + rng.normal(0, obj.r * 0.3), obj.cy + rng.normal(0, obj.r * 0.3)
            else:
                cx, cy = rng.uniform(0.15 * image_size, 0.85 * image_size, 2)
            kind = str(rng.choice(["swirl", "smear", "broken", "blotch"]))
            image = _artifact(rng, image, float(cx), float(cy), kind, image_size)
            truth.artifact_regions.append((float(cx), float(cy), 0.11 * image_size))

    plausibility = max(0.0, 1.0 - 0.35 * n_artifacts)
    size_bonus = 0.1 if any(o.r > 0.15 * image_size for o in drawn) else 0.0
    aesthetics = float(np.clip(TEXTURE_AESTHETICS[texture] + size_bonus - 0.12 * n_artifacts, 0, 1))
    overall = 0.4 * plausibility + 0.3 * alignment + 0.3 * aesthetics
    truth.quality = {
        "plausibility": plausibility,
        "alignment": alignment,
        "aesthetics": aesthetics,
        "overall": overall,
    }

    artifact_map = _raters_map(rng, truth.artifact_regions, image_size, 0.9)
    misalignment_map = _raters_map(rng, truth.misalignment_regions, image_size, 0.85)
    assert split_prompt_words(prompt) == words
    votes = np.zeros(len(words), int)
    bad = set(truth.misaligned_words)
    for _ in range(N_RATERS):
        for j in range(len(words)):
            votes[j] += rng.random() < (0.88 if j in bad else 0.02)
    majority = [j for j in range(len(words)) if votes[j] * 2 > N_RATERS]
    labels = {
        "artifact_score": _likert(rng, plausibility),
        "misalignment_score": _likert(rng, alignment),
        "aesthetics_score": _likert(rng, aesthetics),
        "overall_score": _likert(rng, overall),
        "artifact_map": artifact_map,
        "misalignment_map": misalignment_map,
        "prompt_misalignment_label": misaligned_indices_to_labels(len(words), majority),
    }
    return np.clip(image, 0, 255).astype(np.uint8), truth, labels


def generate_release(
    out_dir: str | Path,
    *,
    splits: dict[str, int],
    seed: int = 0,
    image_size: int = 128,
    progress: bool = True,
) -> dict[str, int]:
    """Write ``{split}.tfrecord``, ``images/`` and ``prompts.jsonl`` (plus ``truth.jsonl``,
    the generator's hidden truth, for debugging) under ``out_dir``. Deterministic per seed."""
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    with (
        open(out / "prompts.jsonl", "w", encoding="utf-8") as prompts,
        open(out / "truth.jsonl", "w", encoding="utf-8") as truths,
    ):
        for split, n in splits.items():
            records = []
            for i in tqdm(range(n), desc=f"synthetic {split}", disable=not progress):
                image, truth, labels = generate_example(rng, image_size)
                filename = f"synthetic_{split}_{i:06d}.png"
                Image.fromarray(image).save(out / "images" / filename)
                prompts.write(json.dumps({"filename": filename, "caption": truth.prompt}) + "\n")
                truths.write(json.dumps({"filename": filename, **truth.__dict__}) + "\n")
                records.append(
                    RichHFRecord(
                        filename=filename,
                        artifact_score=labels["artifact_score"],  # type: ignore[arg-type]
                        misalignment_score=labels["misalignment_score"],  # type: ignore[arg-type]
                        aesthetics_score=labels["aesthetics_score"],  # type: ignore[arg-type]
                        overall_score=labels["overall_score"],  # type: ignore[arg-type]
                        artifact_map_png=encode_heatmap_png(labels["artifact_map"]),  # type: ignore[arg-type]
                        misalignment_map_png=encode_heatmap_png(labels["misalignment_map"]),  # type: ignore[arg-type]
                        prompt_misalignment_label=str(labels["prompt_misalignment_label"]),
                    )
                )
            counts[split] = write_release_tfrecord(out / f"{split}.tfrecord", records)
    return counts


def main(argv: list[str] | None = None) -> None:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="output folder (created)")
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--dev", type=int, default=200)
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=128)
    args = parser.parse_args(argv)
    counts = generate_release(
        args.out,
        splits={"train": args.train, "dev": args.dev, "test": args.test},
        seed=args.seed,
        image_size=args.image_size,
    )
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
