"""Aggregation throughput: our rasteriser, PNG encoder and bulk upsert beside straightforward
baselines, in the same run, plus the whole campaign through `manage.py aggregate`.

    .venv/bin/python bench/aggregate.py                       # 18,000 items (RichHF-18K size)
    .venv/bin/python bench/aggregate.py --items 600           # CI-size
    DATABASE_URL=postgres://... .venv/bin/python bench/aggregate.py   # + database stages

Synthetic items: 3 raters, each with 0..15 implausibility and 0..15 misalignment points
(uniform), image sizes drawn from Pick-a-Pic's common sizes, default campaign settings
(radius H/20, 512x512 maps). Each stage is timed in batches; the figures are the median
items/s over batches (the machine is shared, so medians and ratios, not single runs).
Baselines run on the first --baseline-items items only (they are slow); their rate is
compared with ours on the same kind of items.

Ours rasterises with modeling.heatmaps.rasterise_votes (the numba kernel when numba is
installed), 4 items (8 maps) per call as the pipeline does (aggregation/services/compute.py),
and also 1 item per call; the numpy run rasteriser (the fallback) and the previous
per-rater-mask rasteriser are timed beside it. Baselines: rasterising with PIL ImageDraw.ellipse per point (one image per rater, then
numpy mean); PNG with Pillow's encoder at its default settings; database writes with one
update_or_create per item.
"""

from __future__ import annotations

import argparse
import io
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault(
    "DJANGO_SECRET_KEY", "bench-only-" + secrets.token_urlsafe(50)
)  # off DEBUG a real key is required
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "richhf_site.settings")

import django  # noqa: E402

django.setup()

from PIL import Image, ImageDraw  # noqa: E402

from modeling.heatmaps import (  # noqa: E402
    RasterGeometry,
    counts_to_uint8,
    encode_png,
    rasterise_votes,
    rasterise_votes_numpy,
    rater_masks,
    vote_counts,
)
from modeling.protocol import MAP_KINDS, RADIUS_FRACTION  # noqa: E402

SIZES = [(512, 512), (768, 768), (512, 768), (768, 512), (640, 640), (1024, 1024)]
OUT = 512


def synthetic_items(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    items = []
    for _ in range(n):
        w, h = SIZES[int(rng.integers(len(SIZES)))]
        items.append(
            {
                "size": (w, h),
                "implausible": [rng.random((int(rng.integers(0, 16)), 2)).tolist() for _ in range(3)],
                "misaligned": [rng.random((int(rng.integers(0, 16)), 2)).tolist() for _ in range(3)],
            }
        )
    return items


def ours_rasterise(item: dict) -> list[np.ndarray]:
    """Both maps of one item through the run rasteriser (what the pipeline uses)."""
    return ours_rasterise_batch([item])


def ours_rasterise_batch(items: Sequence[dict]) -> list[np.ndarray]:
    """Both maps of every item in one rasterise_votes call (the pipeline's way), each map's
    8-bit values painted; the figures (votes, overlaps) come with them."""
    jobs = []
    for item in items:
        g = RasterGeometry(*item["size"], OUT, OUT, RADIUS_FRACTION)
        jobs += [(item["implausible"], g), (item["misaligned"], g)]
    return [votes.values for votes in rasterise_votes(jobs)]


def numpy_rasterise_batch(items: Sequence[dict]) -> list[np.ndarray]:
    """The same as ours_rasterise_batch through the numpy run rasteriser (the fallback when
    numba is missing), for the same-run comparison with the compiled kernel."""
    jobs = []
    for item in items:
        g = RasterGeometry(*item["size"], OUT, OUT, RADIUS_FRACTION)
        jobs += [(item["implausible"], g), (item["misaligned"], g)]
    return [votes.values for votes in rasterise_votes_numpy(jobs)]


def masks_rasterise(item: dict) -> list[np.ndarray]:
    """The previous rasteriser (per-rater masks by window broadcast + slice-OR), for reference."""
    w, h = item["size"]
    g = RasterGeometry(w, h, OUT, OUT, RADIUS_FRACTION)
    return [counts_to_uint8(vote_counts(rater_masks(item[kind], g)), 3) for kind in ("implausible", "misaligned")]


def baseline_rasterise(item: dict) -> list[np.ndarray]:
    """One PIL image per rater, ImageDraw.ellipse per point; the same vote count and 8-bit
    rounding as ours, so the comparison is of the drawing alone."""
    w, h = item["size"]
    r = RADIUS_FRACTION * h
    rx, ry = r * OUT / w, r * OUT / h
    out = []
    for kind in ("implausible", "misaligned"):
        layers = []
        for points in item[kind]:
            img = Image.new("L", (OUT, OUT), 0)
            draw = ImageDraw.Draw(img)
            for x, y in points:
                cx, cy = x * OUT, y * OUT
                draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=1)
            layers.append(np.asarray(img, dtype=bool))
        out.append(counts_to_uint8(vote_counts(np.stack(layers)), 3))
    return out


def baseline_png(values: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(values, mode="L").save(buf, format="PNG")
    return buf.getvalue()


def timed_batches(items: Sequence, fn: Callable, batch: int) -> list[float]:
    """items/s of each batch."""
    rates = []
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        t0 = time.perf_counter()
        for it in chunk:
            fn(it)
        rates.append(len(chunk) / (time.perf_counter() - t0))
    return rates


def timed_chunks(items: Sequence, fn: Callable, batch: int, per_call: int) -> list[float]:
    """items/s of each batch, fn called on per_call items at a time."""
    rates = []
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        t0 = time.perf_counter()
        for at in range(0, len(chunk), per_call):
            fn(chunk[at : at + per_call])
        rates.append(len(chunk) / (time.perf_counter() - t0))
    return rates


def report(stage: str, ours: list[float], base: list[float] | None) -> None:
    m_ours = statistics.median(ours)
    line = f"{stage:<22} ours {m_ours:9.0f} items/s (median of {len(ours)} batches)"
    if base:
        m_base = statistics.median(base)
        line += f" | baseline {m_base:8.0f} items/s (median of {len(base)}) | ratio {m_ours / m_base:5.2f}x"
        if len(base) < len(ours):
            # The baseline runs on the first batches only; a load change later would move the
            # ratio of medians. The paired ratio compares each baseline batch with ours on the
            # same items, timed right beside it.
            paired = statistics.median(o / b for o, b in zip(ours, base, strict=False))
            line += f" | paired {paired:5.2f}x"
    print(line, flush=True)


def pure_stages(items: list[dict], n_base: int, batch: int) -> float:
    """Runs the item-level stages; returns the PNG-encoding rate (items/s), the pipeline's floor."""
    base_items = items[:n_base]
    # Exactness first: the run rasteriser gives the masks rasteriser's bytes (which the tests
    # check against a whole-grid evaluation of the definition).
    # (The first call also loads, or compiles, the numba kernel: timed apart here.)
    t0 = time.perf_counter()
    ours_rasterise_batch(items[:1])
    print(f"{'(first call)':<22} {time.perf_counter() - t0:.2f} s (numba import + kernel load or JIT compile)")
    for item in items[:200]:
        for a, b, c in zip(
            ours_rasterise_batch([item]), numpy_rasterise_batch([item]), masks_rasterise(item), strict=True
        ):
            assert np.array_equal(a, c) and np.array_equal(b, c), item
    # Rasterising (+ averaging to 8-bit values), both maps of an item. Ours and the baselines
    # take turns, batch by batch, so a change in the machine's load hits all of them alike.
    ours, ours_one, numpy_runs, masks, base = [], [], [], [], []
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        ours += timed_chunks(chunk, ours_rasterise_batch, batch, 4)
        ours_one += timed_chunks(chunk, ours_rasterise_batch, batch, 1)
        numpy_runs += timed_chunks(chunk, numpy_rasterise_batch, batch, 4)
        masks += timed_batches(chunk, masks_rasterise, batch)
        if start < n_base:
            base += timed_batches(chunk, baseline_rasterise, batch)
    report("rasterise (4/call)", ours, base)
    report("rasterise (1/call)", ours_one, base)
    report("rasterise (numpy 4/c)", numpy_runs, base)
    report("rasterise (masks)", masks, base)
    # How far the baseline's pixel rule is from ours (PIL's ellipse is not "centres within r").
    diffs = []
    for item in base_items[:200]:
        for a, b in zip(masks_rasterise(item), baseline_rasterise(item), strict=True):
            diffs.append(np.count_nonzero(a != b) / a.size)
    print(f"{'':<22} baseline differs from the definition on {100 * float(np.mean(diffs)):.3f}% of pixels")
    # PNG encoding of both maps (inputs prepared outside the timing).
    maps = [masks_rasterise(item) for item in items[: max(n_base, min(len(items), 4000))]]
    png_rates = timed_batches(maps, lambda m: [encode_png(v) for v in m], batch)
    report("png encode", png_rates, timed_batches(maps[:n_base], lambda m: [baseline_png(v) for v in m], batch))
    ours_size = statistics.mean(len(encode_png(v)) for m in maps[:500] for v in m)
    base_size = statistics.mean(len(baseline_png(v)) for m in maps[:500] for v in m)
    print(f"{'':<22} mean PNG size: ours {ours_size:.0f} B, Pillow default {base_size:.0f} B")
    return statistics.median(png_rates)


def db_stages(items: list[dict], n_base: int, batch: int, workers: int, png_rate: float, profile: bool = False) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import transaction
    from django.test import override_settings
    from django.utils import timezone

    from aggregation.models import ItemAggregate
    from aggregation.services.aggregates import (
        _UPDATE_FIELDS,
        _inputs_for,
        _row,
        _upsert,
        campaign_aggregation_settings,
        settings_fingerprint,
    )
    from aggregation.services.compute import compute_aggregate
    from annotation.models import Annotation, Assignment, AssignmentState, Campaign, Item

    User = get_user_model()
    now = timezone.now()
    name = f"bench-{uuid.uuid4().hex[:8]}"
    campaign = Campaign.objects.create(name=name)
    raters = [User.objects.create_user(username=f"{name}-r{i}") for i in range(3)]
    media = tempfile.mkdtemp(prefix="richhf-bench-media-")
    try:
        t0 = time.perf_counter()
        words = ["a", "red", "cat", "on", "a", "blue", "sofa"]
        rows = [
            Item(
                campaign=campaign,
                image=f"bench/{i}.png",
                width=it["size"][0],
                height=it["size"][1],
                prompt=" ".join(words),
                words=words,
                content_hash=f"{name}-{i}",
                completed_at=now,
            )
            for i, it in enumerate(items)
        ]
        db_items = Item.objects.bulk_create(rows, batch_size=2000)
        assignments = Assignment.objects.bulk_create(
            [
                Assignment(
                    item=item, rater=r, state=AssignmentState.SUBMITTED, leased_at=now, expires_at=now, finished_at=now
                )
                for item in db_items
                for r in raters
            ],
            batch_size=2000,
        )
        rng = np.random.default_rng(1)
        Annotation.objects.bulk_create(
            [
                Annotation(
                    assignment=a,
                    item=a.item,
                    rater=a.rater,
                    implausible_points=items[n // 3]["implausible"][n % 3],
                    misaligned_points=items[n // 3]["misaligned"][n % 3],
                    misaligned_words=sorted(set(rng.integers(0, 7, int(rng.integers(0, 3))).tolist())),
                    plausibility=int(rng.integers(1, 6)),
                    alignment=int(rng.integers(1, 6)),
                    aesthetics=int(rng.integers(1, 6)),
                    overall=int(rng.integers(1, 6)),
                )
                for n, a in enumerate(assignments)
            ],
            batch_size=2000,
        )
        print(
            f"{'(set-up)':<22} {len(db_items)} items, {len(assignments)} annotations in {time.perf_counter() - t0:.1f} s"
        )

        # Database writes only: rows are computed outside the timing, file names are dummies.
        fp, st = settings_fingerprint(campaign), campaign_aggregation_settings(campaign)
        by_item: dict[int, list] = {}
        for a in Annotation.objects.filter(item__campaign=campaign).order_by("id"):
            by_item.setdefault(a.item_id, []).append(a)
        items_by_id = {i.pk: i for i in Item.objects.filter(campaign=campaign).select_related("campaign")}

        def rows_for(ids: Sequence[int]) -> list:
            out = []
            for pk in ids:
                inputs = _inputs_for(items_by_id[pk], by_item[pk])
                computed = compute_aggregate(inputs)
                paths = {k: f"aggregates/bench/{pk}-{k}.png" for k in MAP_KINDS}
                out.append(
                    _row(
                        items_by_id[pk],
                        computed,
                        fingerprint=fp,
                        settings=st,
                        digest=inputs.digest(),
                        paths=paths,
                        now=now,
                    )
                )
            return out

        ids = sorted(items_by_id)
        n_db = min(len(ids), max(n_base, 2000))
        ours, base = [], []
        for start in range(0, n_db, batch):
            chunk_rows = rows_for(ids[start : start + batch])
            t0 = time.perf_counter()
            for s in range(0, len(chunk_rows), 50):  # the command's default chunk size
                _upsert(chunk_rows[s : s + 50])
            ours.append(len(chunk_rows) / (time.perf_counter() - t0))
            if start < n_base:
                t0 = time.perf_counter()
                for row in chunk_rows:
                    with transaction.atomic():
                        ItemAggregate.objects.update_or_create(
                            item_id=row["item_id"], defaults={f: row[f] for f in _UPDATE_FIELDS}
                        )
                base.append(len(chunk_rows) / (time.perf_counter() - t0))
        report("database writes", ours, base)
        ItemAggregate.objects.filter(item__campaign=campaign).delete()

        # The whole campaign, as an operator runs it: files on disk, rows upserted.
        if profile:
            # Where one process's time goes (--workers 1 under cProfile), then the timed run.
            import cProfile
            import pstats

            with override_settings(MEDIA_ROOT=media), cProfile.Profile() as prof:
                call_command("aggregate", "--campaign", name, "--all", "--workers", "1", stdout=io.StringIO())
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
            ItemAggregate.objects.filter(item__campaign=campaign).delete()
        with override_settings(MEDIA_ROOT=media):
            t0 = time.perf_counter()
            call_command(
                "aggregate",
                "--campaign",
                name,
                "--all",
                "--workers",
                str(workers),
                stdout=io.StringIO(),
                stderr=io.StringIO(),
            )
            elapsed = time.perf_counter() - t0
        n_rows = ItemAggregate.objects.filter(item__campaign=campaign).count()
        print(
            f"{'whole campaign':<22} {n_rows} items in {elapsed:.1f} s = {n_rows / elapsed:.0f} items/s "
            f"(manage.py aggregate --all --workers {workers}; rasterise + agreement + PNG + files + upsert)"
        )
        # The floor: encoding both maps of every item, spread over the same worker processes
        # (the PNG stage above runs in one process; the work splits evenly over processes).
        floor = n_rows / (png_rate * min(workers, os.cpu_count() or 1))
        print(
            f"{'':<22} PNG-encoding floor {floor:.1f} s ({png_rate:.0f} items/s per process x "
            f"{min(workers, os.cpu_count() or 1)}) | ratio to the floor {elapsed / floor:5.2f}x (target <= 1.5x)"
        )
    finally:
        campaign.delete()
        User.objects.filter(pk__in=[r.pk for r in raters]).delete()
        import shutil

        shutil.rmtree(media, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=18_000)
    parser.add_argument("--baseline-items", type=int, default=2_000, help="items the (slow) baselines run on")
    parser.add_argument("--batch", type=int, default=250, help="items per timed batch")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes for the whole-campaign run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-db", action="store_true", help="skip the database stages")
    parser.add_argument("--profile", action="store_true", help="profile the whole campaign in one process first")
    args = parser.parse_args()
    items = synthetic_items(args.items, args.seed)
    n_base = min(args.baseline_items, args.items)
    n_points = sum(len(p) for it in items for k in ("implausible", "misaligned") for p in it[k])
    print(
        f"{args.items} items, 3 raters, {n_points / args.items:.1f} points per item, {OUT}x{OUT} maps, "
        f"baselines on {n_base} items; {os.cpu_count()} CPUs"
    )
    png_rate = pure_stages(items, n_base, args.batch)
    if args.no_db:
        return
    if "DATABASE_URL" not in os.environ:
        print("database stages skipped: set DATABASE_URL (PostgreSQL) to run them")
        return
    db_stages(items, n_base, args.batch, args.workers, png_rate, profile=args.profile)


if __name__ == "__main__":
    main()
