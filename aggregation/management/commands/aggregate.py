"""Recompute a campaign's aggregates in bulk, on this machine's cores or on Celery workers.

python manage.py aggregate --campaign NAME            # missing or stale aggregates only
python manage.py aggregate --campaign NAME --all      # every complete item, recomputed
python manage.py aggregate --campaign NAME --celery   # fan out tasks, watch progress
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Iterator, Sequence

from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.utils import timezone
from tqdm import tqdm

from aggregation.models import ItemAggregate
from aggregation.services import item_aggregates_recompute, items_without_current_aggregate, rasteriser_warm
from annotation.models import Campaign, Item


def _recompute_chunk(args: tuple[list[int], bool]) -> tuple[int, int, int]:
    ids, force = args
    report = item_aggregates_recompute(item_ids=ids, force=force)
    return len(report.computed), len(report.unchanged), len(report.skipped)


def _chunks(ids: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def _forget_inherited_connections() -> None:
    """In a forked child: new connection objects, leaving the parent's sockets untouched (the
    child ends with os._exit, so nothing closes them from here either)."""
    for inherited in connections.all(initialized_only=True):
        connections[inherited.alias] = type(inherited)(inherited.settings_dict, inherited.alias)


class Command(BaseCommand):
    help = "Recompute the aggregates of a campaign's complete items (heatmaps, scores, keywords, agreement)."

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True, help="campaign name")
        parser.add_argument("--all", action="store_true", help="recompute every complete item, not only stale ones")
        parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: CPU cores)")
        parser.add_argument("--chunk-size", type=int, default=50, help="items per database transaction")
        parser.add_argument("--celery", action="store_true", help="enqueue one task per item instead")
        parser.add_argument("--timeout", type=float, default=3600, help="--celery: seconds to wait for the workers")

    def handle(self, *args, **opts):
        campaign = Campaign.objects.filter(name=opts["campaign"]).first()
        if campaign is None:
            known = ", ".join(Campaign.objects.order_by("name").values_list("name", flat=True)[:20]) or "none"
            raise CommandError(f"no campaign named {opts['campaign']!r} (campaigns: {known})")
        if opts["workers"] < 1 or opts["chunk_size"] < 1:
            raise CommandError("--workers and --chunk-size must be at least 1")
        if opts["all"]:
            qs = Item.objects.filter(campaign=campaign, completed_at__isnull=False).order_by("id")
        else:
            qs = items_without_current_aggregate(campaign=campaign)
        ids = list(qs.values_list("id", flat=True))
        if not ids:
            self.stdout.write(f"{campaign.name}: nothing to aggregate")
            return
        started = time.perf_counter()
        if opts["celery"]:
            done = self._fan_out(ids, force=opts["all"], timeout=opts["timeout"])
            self.stdout.write(f"{campaign.name}: {done}/{len(ids)} items aggregated by workers")
        else:
            computed, unchanged, skipped = self._local(
                ids, force=opts["all"], workers=opts["workers"], chunk=opts["chunk_size"]
            )
            self.stdout.write(f"{campaign.name}: {computed} computed, {unchanged} already current, {skipped} skipped")
        elapsed = time.perf_counter() - started
        self.stdout.write(f"{len(ids)} items in {elapsed:.1f} s ({len(ids) / elapsed:.0f} items/s)")

    def _bar_stream(self):
        # OutputWrapper appends a newline to every write, which breaks tqdm's in-place redraw.
        return getattr(self.stderr, "_out", self.stderr)

    def _local(self, ids: list[int], *, force: bool, workers: int, chunk: int) -> tuple[int, int, int]:
        totals = [0, 0, 0]
        jobs = [(c, force) for c in _chunks(ids, chunk)]
        bar = tqdm(total=len(ids), unit="item", file=self._bar_stream(), disable=None)

        def add(result: tuple[int, int, int]) -> None:
            for i, n in enumerate(result):
                totals[i] += n
            bar.update(sum(result))

        if workers == 1:
            for job in jobs:
                add(_recompute_chunk(job))
        else:
            # Forked children must not share the parent's database socket: close it first,
            # and each child starts from fresh connection objects and opens its own on first
            # use (a connection the parent could not close, e.g. one inside an atomic block,
            # would otherwise be used by two processes at once).
            connections.close_all()
            rasteriser_warm()  # loaded once here, inherited by every child (issue 16)
            with multiprocessing.get_context("fork").Pool(workers, initializer=_forget_inherited_connections) as pool:
                for result in pool.imap_unordered(_recompute_chunk, jobs):
                    add(result)
        bar.close()
        return totals[0], totals[1], totals[2]

    def _fan_out(self, ids: list[int], *, force: bool, timeout: float) -> int:
        from aggregation.tasks import aggregate_item

        since = timezone.now()
        for item_id in ids:
            aggregate_item.delay(item_id, force=force)
        done = 0
        deadline = time.monotonic() + timeout
        with tqdm(total=len(ids), unit="item", file=self._bar_stream(), disable=None) as bar:
            while done < len(ids):
                now_done = ItemAggregate.objects.filter(item_id__in=ids, computed_at__gte=since).count()
                bar.update(now_done - done)
                done = now_done
                if done >= len(ids):
                    break
                if time.monotonic() > deadline:
                    raise CommandError(f"timed out: {done}/{len(ids)} items aggregated; the rest stay queued")
                time.sleep(0.5)
        return done
