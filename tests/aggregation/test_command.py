"""`manage.py aggregate`: selection (stale vs --all), parallel workers, Celery fan-out, errors."""

import io

import pytest
from django.core.management import CommandError, call_command

from aggregation.models import ItemAggregate
from aggregation.services import item_aggregates_recompute, items_without_current_aggregate
from tests.aggregation.conftest import answer


def run(*args) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("aggregate", *args, stdout=out, stderr=err)
    return out.getvalue()


@pytest.fixture
def campaign_with_items(raters, make_item, annotate):
    campaign, users = raters
    items = [make_item(campaign, prompt=f"a red cat number {n}") for n in range(7)]
    for n, item in enumerate(items[:6]):
        annotate(item, users, [answer(implausible=[[0.1 * n, 0.3]], words=[1])] * 3)
    return campaign, items


@pytest.mark.django_db
def test_unknown_campaign_is_a_clear_error(raters):
    with pytest.raises(CommandError, match="no campaign named 'nope'.*rated"):
        run("--campaign", "nope")


@pytest.mark.django_db
def test_default_run_fills_only_missing_or_stale_and_all_recomputes_everything(campaign_with_items):
    campaign, items = campaign_with_items
    item_aggregates_recompute(item_ids=[items[0].pk])
    first = ItemAggregate.objects.get(item=items[0]).computed_at

    out = run("--campaign", campaign.name, "--workers", "1")
    assert "5 computed" in out  # items 1..5; item 0 was current, item 6 is not complete
    assert ItemAggregate.objects.count() == 6
    assert ItemAggregate.objects.get(item=items[0]).computed_at == first
    assert "nothing to aggregate" in run("--campaign", campaign.name, "--workers", "1")

    out = run("--campaign", campaign.name, "--all", "--workers", "1", "--chunk-size", "4")
    assert "6 computed" in out
    assert ItemAggregate.objects.get(item=items[0]).computed_at > first
    assert not ItemAggregate.objects.filter(item=items[6]).exists()


@pytest.mark.django_db(transaction=True)
def test_parallel_processes_write_the_same_rows(campaign_with_items):
    campaign, items = campaign_with_items
    out = run("--campaign", campaign.name, "--workers", "2", "--chunk-size", "2")
    assert "6 computed" in out
    assert ItemAggregate.objects.count() == 6
    assert not items_without_current_aggregate(campaign=campaign).exists()
    assert {a.prompt_misalignment_label for a in ItemAggregate.objects.all()} == {"1 0 1 1 1"}


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_celery_fan_out_waits_for_the_workers(celery_worker_proc, campaign_with_items, settings):
    settings.MEDIA_ROOT = celery_worker_proc.media_root
    campaign, items = campaign_with_items
    out = run("--campaign", campaign.name, "--celery", "--timeout", "60")
    assert "6/6 items aggregated by workers" in out
    assert ItemAggregate.objects.count() == 6
