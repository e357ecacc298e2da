"""Two writers aggregating the same items at once leave one row per item (real connections)."""

import threading

import pytest
from django.db import connection

from aggregation.models import ItemAggregate
from aggregation.services import item_aggregates_recompute
from tests.aggregation.conftest import answer


@pytest.mark.django_db(transaction=True)
def test_concurrent_recomputes_leave_one_row_per_item(raters, make_item, annotate, settings):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    campaign, users = raters
    items = [make_item(campaign, prompt=f"a cat number {n}") for n in range(6)]
    for n, item in enumerate(items):
        annotate(item, users, [answer(implausible=[[0.1 * n, 0.5]], words=[1])] * 3)
    ids = [i.pk for i in items]
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def run(order):
        try:
            barrier.wait()
            for _ in range(3):
                item_aggregates_recompute(item_ids=order, force=True)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(ids if n % 2 else ids[::-1],)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    rows = ItemAggregate.objects.filter(item_id__in=ids)
    assert rows.count() == len(ids)
    assert all(r.prompt_misalignment_label == "1 0 1 1" for r in rows)
    files = {str(p.relative_to(settings.MEDIA_ROOT)) for p in (settings.MEDIA_ROOT / "aggregates").rglob("*.png")}
    assert files == {r.implausibility_map.name for r in rows} | {r.misalignment_map.name for r in rows}
