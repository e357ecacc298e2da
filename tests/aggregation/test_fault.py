"""A worker killed with SIGKILL in the middle of aggregating loses nothing.

Our own worker consumes a dedicated queue (so the session worker cannot do its work for it);
it is killed while a task is in flight (a message delivered but not acknowledged), then
restarted. The killed task's message stays unacknowledged in Redis until the visibility
timeout, so, as in production, the reconciler (what beat runs) re-enqueues what is missing.
Afterwards every complete item has exactly one aggregate, equal to a fresh computation, and
the files on disk are exactly the ones the rows point to.
"""

from __future__ import annotations

import signal
import subprocess
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import redis
from django.conf import settings as django_settings

from aggregation.models import ItemAggregate
from aggregation.services import aggregates_reconcile
from aggregation.services.aggregates import _inputs_for
from aggregation.services.compute import compute_aggregate
from aggregation.tasks import aggregate_item
from annotation.models import Item
from modeling.heatmaps import decode_heatmap_png as decode_png
from tests.aggregation.conftest import answer
from tests.conftest import start_celery_worker, stop_celery_worker, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]

QUEUE = "aggregation-fault-test"


def start_worker(media_root: Path, tag: str) -> subprocess.Popen:
    return start_celery_worker(
        name=f"fault-{tag}",
        queues=[QUEUE, django_settings.CELERY_TASK_DEFAULT_QUEUE],
        var_dir=media_root.parent,
        media_root=media_root,
        concurrency=1,
    )


@pytest.mark.django_db(transaction=True)
def test_sigkill_mid_task_then_restart_leaves_one_correct_aggregate_per_item(
    celery_worker_proc, raters, make_item, annotate, settings
):
    # Shares the session worker's media folder, so whichever worker picks up the reconciler's
    # tasks writes where this test looks.
    settings.MEDIA_ROOT = celery_worker_proc.media_root
    campaign, users = raters
    # Large maps and many points make each task take a noticeable time, so the kill lands
    # inside one.
    campaign.heatmap_width = campaign.heatmap_height = 2048
    campaign.radius_fraction = 0.1
    campaign.save()
    rng = np.random.default_rng(5)
    items = []
    for n in range(16):
        item = make_item(campaign, prompt=f"a green bird number {n}", width=300, height=200)
        annotate(item, users, [answer(implausible=rng.random((15, 2)).tolist(), words=[n % 5]) for _ in range(3)])
        items.append(item)
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)

    worker = start_worker(celery_worker_proc.media_root, "first")
    try:
        for item in items:
            aggregate_item.apply_async((item.pk,), queue=QUEUE)
        wait_for(
            lambda: ItemAggregate.objects.count() >= 2 and broker.hlen("unacked") >= 1,
            timeout=60,
            interval=0.02,
            what="two aggregates and a task in flight",
        )
        stop_celery_worker(worker, signal.SIGKILL)
    finally:
        stop_celery_worker(worker, signal.SIGKILL)
    done_at_kill = ItemAggregate.objects.count()
    assert done_at_kill < len(items), "the worker finished everything before the kill; make the tasks slower"
    in_flight = broker.hlen("unacked")
    assert in_flight >= 1  # the killed task's message: delivered, never acknowledged

    worker = start_worker(celery_worker_proc.media_root, "restarted")
    try:
        # What beat does every few minutes, without waiting for it.
        wait_for(lambda: not broker.llen(QUEUE), timeout=60, what="the restarted worker to drain its queue")
        aggregates_reconcile(grace=timedelta(0))
        wait_for(lambda: ItemAggregate.objects.count() == len(items), timeout=90, what="every item aggregated")
    finally:
        stop_celery_worker(worker)

    for item in Item.objects.filter(pk__in=[i.pk for i in items]).select_related("campaign"):
        rows = list(ItemAggregate.objects.filter(item=item))
        assert len(rows) == 1
        row = rows[0]
        fresh = compute_aggregate(_inputs_for(item, list(item.annotations.order_by("id"))))
        assert row.prompt_misalignment_label == fresh.label
        assert row.inputs_digest == _inputs_for(item, list(item.annotations.order_by("id"))).digest()
        for kind in ("implausibility", "misalignment"):
            stored = decode_png((celery_worker_proc.media_root / getattr(row, f"{kind}_map").name).read_bytes())
            assert np.array_equal(stored, fresh.maps[kind].values), (item.pk, kind)
    on_disk = {
        str(p.relative_to(celery_worker_proc.media_root))
        for p in (celery_worker_proc.media_root / "aggregates" / str(campaign.pk)).rglob("*.png")
    }
    rows = ItemAggregate.objects.filter(item__campaign=campaign)
    assert on_disk == {r.implausibility_map.name for r in rows} | {r.misalignment_map.name for r in rows}
