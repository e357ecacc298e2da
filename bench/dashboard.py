"""Agreement dashboard at RichHF-18K size: recompute time, and page load from the cache.

Creates a campaign of N items x 3 raters (54,000 annotations by default) in a fresh
PostgreSQL database, runs the statistics recompute, then loads the lead's page from the
cached figures. The baseline, in the same run, is what a page that computed its figures on
every request would cost: the recompute itself. The ratio is the figure.

    .venv/bin/python bench/dashboard.py [--items 18000] [--loads 5]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import random
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = "richhf_bench_dashboard"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=18000)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--dump", type=Path, help="write the recomputed payload here as JSON (to compare versions)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the recompute")
    args = parser.parse_args()
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB_NAME], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB_NAME], check=True)
    os.environ.setdefault(
        "DJANGO_SECRET_KEY", "bench-only-" + secrets.token_urlsafe(50)
    )  # off DEBUG a real key is required
    os.environ.update(
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
        RICHHF_VAR_DIR=str(ROOT / "build" / "bench-dashboard"),
        DJANGO_SETTINGS_MODULE="richhf_site.settings",
    )
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from django.urls import reverse
    from django.utils import timezone

    from aggregation.dashboard.services import campaign_stats_recompute
    from annotation.models import Annotation, Assignment, AssignmentState, Campaign, Item
    from richhf_site.roles import LEAD, RATER, user_add_role

    call_command("migrate", verbosity=0)
    rng = random.Random(0)
    User = get_user_model()
    campaign = Campaign.objects.create(name="bench-dashboard")
    raters = []
    for i in range(30):
        user = User.objects.create_user(username=f"b{i}")
        user_add_role(user=user, role=RATER)
        raters.append(user)
    lead = User.objects.create_user(username="lead")
    user_add_role(user=lead, role=LEAD)
    now = timezone.now()
    words = "a photo of a red car parked next to a tall tree".split()
    print(f"creating {args.items} items x 3 raters...", flush=True)
    items = Item.objects.bulk_create(
        (
            Item(
                campaign=campaign,
                image=f"items/x/{i}.png",
                width=512,
                height=512,
                prompt=" ".join(words),
                words=words,
                content_hash=f"{i:064x}",
                completed_at=now,
                n_submitted=3,
            )
            for i in range(args.items)
        ),
        batch_size=5000,
    )
    pairs = [(item, r) for item in items for r in rng.sample(raters, 3)]
    assignments = Assignment.objects.bulk_create(
        (
            Assignment(
                item=item, rater=r, state=AssignmentState.SUBMITTED, leased_at=now, expires_at=now, finished_at=now
            )
            for item, r in pairs
        ),
        batch_size=5000,
    )
    truth = {item.pk: rng.randint(1, 5) for item in items}

    def score(pk: int) -> int:
        return min(5, max(1, truth[pk] + rng.choice((-1, 0, 0, 1))))

    Annotation.objects.bulk_create(
        (
            Annotation(
                assignment=a,
                item_id=a.item_id,
                rater_id=a.rater_id,
                implausible_points=[[rng.random(), rng.random()]] if rng.random() < 0.5 else [],
                misaligned_points=[],
                misaligned_words=[4] if rng.random() < 0.3 else [],
                plausibility=score(a.item_id),
                alignment=score(a.item_id),
                aesthetics=score(a.item_id),
                overall=score(a.item_id),
                time_spent_ms=rng.randint(5_000, 60_000),
            )
            for a in assignments
        ),
        batch_size=5000,
    )
    profiler = cProfile.Profile() if args.profile else None
    started, started_cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    stats = campaign_stats_recompute(campaign_id=campaign.pk)
    recompute_s = time.perf_counter() - started
    recompute_cpu_s = time.process_time() - started_cpu
    if profiler:
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)
    if args.dump:
        args.dump.write_text(json.dumps(stats.payload, sort_keys=True, indent=1))
    if stats.payload["progress"]["annotations"] != 3 * args.items:
        raise SystemExit("the recompute did not see every annotation")
    client = Client()
    client.force_login(lead)
    url = reverse("dashboard:campaign", args=[campaign.pk])
    client.get(url, HTTP_HOST="localhost")  # warm templates
    timings = []
    for _ in range(args.loads):
        t0 = time.perf_counter()
        response = client.get(url, HTTP_HOST="localhost")
        timings.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise SystemExit(f"page answered {response.status_code}")
    page_ms = 1000 * statistics.median(timings)
    print(f"\n{args.items} items, {3 * args.items} annotations")
    print(f"recompute (Celery task body): {recompute_s:.2f} s ({recompute_cpu_s:.2f} s CPU in this process)")
    print(f"page from cache: median {page_ms:.1f} ms over {args.loads} loads ({len(response.content)} bytes)")
    print(f"ratio: computing on every request would be {recompute_s * 1000 / page_ms:.0f}x slower than the cached page")


if __name__ == "__main__":
    main()
