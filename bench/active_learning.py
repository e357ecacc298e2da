"""Active vs random ordering: the model's dev metric after the same annotation budget.

    .venv/bin/python bench/active_learning.py --seeds 0 1 2 --out build/bench/active_learning

Synthetic items with a known truth (modeling.data.synthetic: shapes, injected artifacts and
mismatches, three simulated raters with noise per item), split into an unlabelled pool and a
dev set. Every strategy starts from the same random seed set; each round it trains the tiny
RAHF model from scratch on what has been "annotated" so far (same steps for every strategy),
evaluates on dev (mean PLCC over the four scores + mean heatmap CC; the training CLI's
model-selection metric without the keyword F1, whose greedy decoding is too slow here), then asks the strategy for the next batch of items. Labels
of a picked item are the simulated raters' aggregated labels, exactly what annotation would
have produced. Prints one curve per strategy (mean and spread over seeds), writes
curves.json and curves.png under --out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregation.learning.acquisition import acquire, queue_order  # noqa: E402
from modeling.data.dataset import load_split, write_parquet  # noqa: E402
from modeling.data.synthetic import generate_release  # noqa: E402
from modeling.evaluate import evaluate_predictions, predict_samples  # noqa: E402
from modeling.inference import RAHFPredictor  # noqa: E402
from modeling.train import TrainConfig, train  # noqa: E402


def train_on(samples, dev, work: Path, *, steps: int, batch: int, seed: int) -> tuple[float, Path]:
    """Train from scratch for ``steps`` steps on ``samples``; returns (dev combined, checkpoint)."""
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    images = data / "images"
    if not images.exists():
        os.symlink(Path(samples[0].image_path).parent, images)
    # Repeat the labelled set to exactly one epoch of `steps` batches: training evaluates at
    # epoch ends, so one long epoch means one evaluation instead of one per tiny epoch.
    repeated = [samples[i % len(samples)] for i in range(steps * batch)]
    write_parquet(data / "train.parquet", repeated)
    write_parquet(data / "dev.parquet", dev[:1])  # the CLI needs a dev split; scored below
    out = work / "run"
    config = TrainConfig(
        data=data,
        out=out,
        config_name="tiny",
        max_steps=steps,
        batch_size=batch,
        epochs=1,
        seed=seed,
        progress=False,
        lr=1e-3,
        min_lr=1e-4,
        device="cpu",
    )
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        train(config)
    predictor = RAHFPredictor.from_checkpoint(out / "last", device="cpu")
    # Scores and heatmaps only: greedy decoding of every dev prompt costs more than the
    # training itself on 2 shared cores, so the bench's metric is mean PLCC + mean heatmap CC.
    predictions = predict_samples(
        predictor.model, predictor.processor, dev, batch_size=32, progress=False, generate=False
    )
    return evaluate_predictions(predictions, dev, tasks=("scores", "heatmaps")).combined(), out / "last"


def run_strategy(
    strategy: str,
    pool,
    dev,
    *,
    seed: int,
    initial: int,
    batch_items: int,
    rounds: int,
    steps: int,
    batch: int,
    random_share: float,
    workdir: Path,
) -> list[tuple[int, float]]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pool))
    labelled = [int(i) for i in order[:initial]]
    curve = []
    for r in range(rounds + 1):
        work = Path(tempfile.mkdtemp(dir=workdir, prefix=f"{strategy}-s{seed}-r{r}-"))
        metric, checkpoint = train_on([pool[i] for i in labelled], dev, work, steps=steps, batch=batch, seed=seed)
        curve.append((len(labelled), metric))
        print(
            f"  {strategy:18s} seed {seed} round {r}: {len(labelled):4d} labelled -> dev combined {metric:.4f}",
            flush=True,
        )
        if r == rounds:
            break
        rest = [i for i in range(len(pool)) if i not in set(labelled)]
        if strategy == "random":
            picks = [rest[int(j)] for j in rng.permutation(len(rest))[:batch_items]]
        else:
            predictor = RAHFPredictor.from_checkpoint(checkpoint, device="cpu")
            acquired = acquire(
                predictor,
                [pool[i].open_image() for i in rest],
                [pool[i].prompt for i in rest],
                strategy=strategy,
                generate=False,
                seed=seed * 100 + r,
            )
            ranked = queue_order([a.value for a in acquired], random_share=random_share, seed=seed * 100 + r)
            picks = [rest[j] for j, _ in ranked[:batch_items]]
        labelled += picks
    return curve


def plot(curves: dict[str, list[list[tuple[int, float]]]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        _plot_pillow(curves, path)
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for strategy, runs in curves.items():
        x = [n for n, _ in runs[0]]
        ys = np.array([[m for _, m in run] for run in runs])
        ax.plot(x, ys.mean(0), marker="o", label=strategy)
        ax.fill_between(x, ys.min(0), ys.max(0), alpha=0.2)
    ax.set_xlabel("annotated items")
    ax.set_ylabel("dev combined metric")
    ax.set_title(f"active vs random ordering ({len(next(iter(curves.values())))} seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _plot_pillow(curves, path: Path) -> None:
    from PIL import Image, ImageDraw

    w, h, m = 640, 400, 50
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    means = {
        s: ([n for n, _ in runs[0]], np.array([[v for _, v in run] for run in runs]).mean(0))
        for s, runs in curves.items()
    }
    xs = [x for xx, _ in means.values() for x in xx]
    ys = [y for _, yy in means.values() for y in yy]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys) + 1e-9
    colours = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"]
    draw.rectangle([m, m, w - m, h - m], outline="black")
    for k, (strategy, (xx, yy)) in enumerate(means.items()):
        pts = [
            (m + (x - x0) / max(x1 - x0, 1) * (w - 2 * m), h - m - (y - y0) / (y1 - y0) * (h - 2 * m))
            for x, y in zip(xx, yy, strict=True)
        ]
        draw.line(pts, fill=colours[k % 4], width=2)
        draw.text((m + 5, m + 5 + 14 * k), strategy, fill=colours[k % 4])
    draw.text((m, h - m + 10), f"annotated items {x0}..{x1}; dev combined {y0:.3f}..{y1:.3f}", fill="black")
    img.save(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--pool", type=int, default=96, help="unlabelled training pool size")
    p.add_argument("--dev", type=int, default=32)
    p.add_argument("--initial", type=int, default=12, help="random seed set, same for every strategy")
    p.add_argument("--per-round", type=int, default=12, help="items annotated per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=20, help="training steps per round (from scratch)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--random-share", type=float, default=0.0)
    p.add_argument("--strategies", nargs="+", default=["random", "uncertainty"])
    p.add_argument("--out", type=Path, default=ROOT / "build" / "bench" / "active_learning")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core box)")
    p.add_argument(
        "--combine",
        type=Path,
        nargs="+",
        default=None,
        help="merge the curves.json of earlier runs (e.g. one process per seed) into --out",
    )
    args = p.parse_args(argv)
    if args.combine:
        return combine(args.combine, args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    curves: dict[str, list] = {s: [] for s in args.strategies}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            data = Path(tmp) / f"synthetic-{seed}"
            generate_release(
                data, splits={"train": args.pool, "dev": args.dev}, seed=1000 + seed, image_size=64, progress=False
            )
            pool, dev = load_split(data, "train"), load_split(data, "dev")
            for strategy in args.strategies:
                curves[strategy].append(
                    run_strategy(
                        strategy,
                        pool,
                        dev,
                        seed=seed,
                        initial=args.initial,
                        batch_items=args.per_round,
                        rounds=args.rounds,
                        steps=args.steps,
                        batch=args.batch_size,
                        random_share=args.random_share,
                        workdir=Path(tmp),
                    )
                )
    report(
        curves,
        args.out,
        seeds=args.seeds,
        seconds=time.perf_counter() - started,
        meta={k: str(v) for k, v in vars(args).items()},
    )
    return 0


def report(curves: dict[str, list], out: Path, *, seeds, seconds: float, meta: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    print(f"\nmean dev metric over seeds {seeds} ({seconds:.0f} s):")
    budgets = [n for n, _ in next(iter(curves.values()))[0]]
    print("  strategy           " + " ".join(f"{n:>13d}" for n in budgets))
    summary = {}
    for strategy, runs in curves.items():
        ys = np.array([[m for _, m in run] for run in runs])
        summary[strategy] = {
            "budgets": budgets,
            "mean": ys.mean(0).tolist(),
            "std": ys.std(0).tolist(),
            "per_seed": ys.tolist(),
        }
        print(
            f"  {strategy:18s} " + " ".join(f"{mu:7.4f}±{sd:.3f}" for mu, sd in zip(ys.mean(0), ys.std(0), strict=True))
        )
    (out / "curves.json").write_text(
        json.dumps({"args": meta, "seeds": list(seeds), "seconds": seconds, "curves": summary, "raw": curves}, indent=2)
    )
    plot(curves, out / "curves.png")
    print(f"wrote {out / 'curves.json'} and {out / 'curves.png'}")


def combine(paths: list[Path], out: Path) -> int:
    curves: dict[str, list] = {}
    seeds: list[int] = []
    seconds = 0.0
    for path in paths:
        data = json.loads((path / "curves.json" if path.is_dir() else path).read_text())
        seeds += data["seeds"]
        seconds = max(seconds, data["seconds"])
        for strategy, runs in data["raw"].items():
            curves.setdefault(strategy, []).extend(runs)
    report(curves, out, seeds=seeds, seconds=seconds, meta={"combined_from": [str(p) for p in paths]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
