"""Export throughput and peak memory: streaming writers vs a naive build-everything-first baseline.

Creates N synthetic complete items (default 18,000) with aggregates and their heatmap PNG
files in a fresh PostgreSQL database, then exports them to TFRecord and Parquet, each run in
its own child process so its peak RSS is its own. The naive baseline first loads every
record into a list (TFRecord) or builds one in-memory table (Parquet), then writes.
The TFRecord runs also report the time spent in tf.train.Example encoding, and the SHA-256
of the streamed TFRecord files, so a codec change can be checked for byte-identical output
on the same database (--skip-prepare).

    .venv/bin/python bench/export.py [--items 18000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "richhf_bench_export"
VAR = ROOT / "build" / "bench-export"
os.environ.setdefault(
    "DJANGO_SECRET_KEY", "bench-only-" + secrets.token_urlsafe(50)
)  # off DEBUG a real key is required
ENV = {
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
    "RICHHF_VAR_DIR": str(VAR),
    "DJANGO_SETTINGS_MODULE": "richhf_site.settings",
}


def setup_django() -> None:
    os.environ.update(ENV)
    import django

    django.setup()


def prepare(n_items: int) -> None:
    import numpy as np

    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB_NAME], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB_NAME], check=True)
    setup_django()
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.core.management import call_command
    from django.utils import timezone
    from tqdm import tqdm

    from aggregation.models import ItemAggregate
    from aggregation.services.aggregates import campaign_aggregation_settings, settings_fingerprint
    from annotation.models import Campaign, Item
    from modeling.heatmaps import encode_png
    from modeling.text import split_prompt_words

    call_command("migrate", verbosity=0)
    campaign = Campaign.objects.create(name="bench-export")
    fingerprint, agg_settings = settings_fingerprint(campaign), campaign_aggregation_settings(campaign)
    rng = np.random.default_rng(0)
    now = timezone.now()
    yy, xx = np.mgrid[0:512, 0:512]
    batch_items, batch_aggs = [], []
    for i in tqdm(range(n_items), desc="synthetic items"):
        prompt = f"a red cube number {i} next to a blue sphere on a wooden table"
        words = split_prompt_words(prompt)
        split = ("train", "dev", "test")[0 if i % 18 < 16 else (1 if i % 18 == 16 else 2)]
        item = Item(
            campaign=campaign,
            image="items/shared.png",
            width=512,
            height=512,
            prompt=prompt,
            words=words,
            source_id=f"{i:08d}.png",
            split=split,
            content_hash=f"{i:064x}",
            completed_at=now,
        )
        maps = {}
        for kind in ("implausibility", "misalignment"):
            values = np.zeros((512, 512), dtype=np.uint8)
            for _ in range(rng.integers(0, 4)):  # a few disks per map, as three raters leave
                cy, cx = rng.integers(0, 512, size=2)
                values[(yy - cy) ** 2 + (xx - cx) ** 2 <= 26**2] += 85
            name = f"bench/{i:08d}-{kind}.png"
            default_storage.save(name, ContentFile(encode_png(values)))
            maps[kind] = name
        batch_items.append(item)
        batch_aggs.append(
            dict(
                settings_fingerprint=fingerprint,
                settings=agg_settings,
                inputs_digest="bench",
                n_annotations=3,
                annotation_ids=[],
                **{
                    f"{s}_{f}": v
                    for s in ("plausibility", "alignment", "aesthetics", "overall")
                    for f, v in (("mean", 3.0), ("normalised", 0.5), ("maxdiff", 0.25))
                },
                word_votes=[0] * len(words),
                misaligned_words=[],
                prompt_misalignment_label=" ".join("1" for _ in words),
                tagged_target=" ".join(words),
                keyword_unanimity=1.0,
                implausibility_map=maps["implausibility"],
                misalignment_map=maps["misalignment"],
                **{f"{m}_{f}": 0.1 for m in ("implausibility", "misalignment") for f in ("max", "mean", "coverage")},
                implausibility_points=3,
                misalignment_points=1,
                computed_at=now,
            )
        )
        if len(batch_items) == 1000 or i == n_items - 1:
            created = Item.objects.bulk_create(batch_items)
            ItemAggregate.objects.bulk_create(
                [ItemAggregate(item=it, **a) for it, a in zip(created, batch_aggs, strict=True)]
            )
            batch_items, batch_aggs = [], []


def run(mode: str, out: Path) -> None:
    setup_django()
    import pyarrow as pa
    import pyarrow.parquet as pq

    from aggregation.exports.records import iter_export_records
    from aggregation.exports.writers import PARQUET_SCHEMA, _parquet_row, export_campaign, release_record
    from annotation.models import Campaign
    from modeling.data.tfrecord import TFRecordWriter

    campaign = Campaign.objects.get(name="bench-export")
    if mode.endswith("tfrecord"):
        _time_encoder(out.parent / f"{mode}.encode-seconds")
    if mode == "stream-tfrecord":
        export_campaign(campaign=campaign, fmt="tfrecord", out_dir=out)
    elif mode == "stream-parquet":
        export_campaign(campaign=campaign, fmt="parquet", out_dir=out)
    elif mode == "naive-tfrecord":
        records = list(iter_export_records(campaign))  # everything in memory first
        for split in ("train", "dev", "test"):
            with TFRecordWriter(out / f"{split}.tfrecord") as writer:
                for r in records:
                    if r.split == split:
                        writer.write_example(release_record(r).to_features())
    elif mode == "naive-parquet":
        rows = [_parquet_row(r, False, lambda name: b"") for r in iter_export_records(campaign)]
        pq.write_table(pa.Table.from_pylist(rows, schema=PARQUET_SCHEMA), out / "richhf.parquet", compression="zstd")
    else:
        raise SystemExit(f"unknown mode {mode}")


def _time_encoder(report: Path) -> None:
    """Wrap encode_example to add up its time; the total goes to ``report`` at exit."""
    import atexit

    import modeling.data.tfrecord as tfrecord

    encode = tfrecord.encode_example
    total = [0.0]

    def timed(features: Mapping[str, tfrecord.FeatureInput]) -> bytes:
        start = time.perf_counter()
        try:
            return encode(features)
        finally:
            total[0] += time.perf_counter() - start

    tfrecord.encode_example = timed  # TFRecordWriter.write_example looks it up in the module
    atexit.register(lambda: report.write_text(f"{total[0]}\n"))


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for split in ("train", "dev", "test"):
        digest.update((folder / f"{split}.tfrecord").read_bytes())
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=18000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--skip-prepare", action="store_true", help="reuse the bench database from a previous run")
    args = parser.parse_args()
    if args.run:
        run(args.run, Path(args.out))
        return
    if not args.skip_prepare:
        prepare(args.items)
    else:  # the schema may have moved on since the database was filled
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env={**os.environ, **ENV}, check=True
        )
    results: dict[str, list[tuple[float, float]]] = {}
    encoding: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for mode in ("stream-tfrecord", "naive-tfrecord", "stream-parquet", "naive-parquet"):
            out = VAR / "out" / mode
            out.mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            child = subprocess.Popen(
                [sys.executable, __file__, "--run", mode, "--out", str(out)], env={**os.environ, **ENV}
            )
            _, status, usage = os.wait4(child.pid, 0)
            elapsed = time.perf_counter() - t0
            if status != 0:
                raise SystemExit(f"{mode} failed")
            results.setdefault(mode, []).append((elapsed, usage.ru_maxrss / 1024))
            if mode.endswith("tfrecord"):
                encoding.setdefault(mode, []).append(float((out.parent / f"{mode}.encode-seconds").read_text()))
    n = args.items
    print(f"\n{n} items, {args.repeats} runs each (medians; wall time includes process start-up)")
    print(f"{'mode':<16} | {'items/s':>8} | {'seconds':>8} | {'peak RSS MiB':>12}")
    for mode, values in results.items():
        seconds = statistics.median(v[0] for v in values)
        rss = statistics.median(v[1] for v in values)
        print(f"{mode:<16} | {n / seconds:>8.0f} | {seconds:>8.1f} | {rss:>12.0f}")
    for fmt in ("tfrecord", "parquet"):
        s = results[f"stream-{fmt}"]
        b = results[f"naive-{fmt}"]
        speed = statistics.median(v[0] for v in b) / statistics.median(v[0] for v in s)
        memory = statistics.median(v[1] for v in b) / statistics.median(v[1] for v in s)
        print(f"{fmt}: streaming is {speed:.2f}x the naive speed and uses 1/{memory:.1f} of its peak memory")
    for mode, values in encoding.items():
        seconds = statistics.median(values)
        print(f"{mode}: tf.train.Example encoding {seconds:.2f} s ({seconds / n * 1e6:.0f} us per item)")
    print(f"sha256 of stream-tfrecord train+dev+test: {_digest(VAR / 'out' / 'stream-tfrecord')}")


if __name__ == "__main__":
    main()
