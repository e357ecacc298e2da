"""Recompute + upsert, staleness and reconciliation on the real database."""

from datetime import timedelta

import numpy as np
import pytest
from django.core.files.storage import default_storage

from aggregation.models import ItemAggregate
from aggregation.services import (
    aggregates_reconcile,
    item_aggregate_upsert,
    item_aggregates_recompute,
    items_without_current_aggregate,
    settings_fingerprint,
)
from modeling.heatmaps import decode_heatmap_png as decode_png
from tests.aggregation.conftest import answer

pytestmark = pytest.mark.django_db

# An 80x80 image on an 8x8 map: output pixel centres at 5, 15, ... 75 original pixels, and a
# radius of 0.05 * 80 = 4 px, so a point on a pixel centre covers exactly that pixel.


def centre(col: int, row: int) -> tuple[float, float]:
    return ((col + 0.5) / 8, (row + 0.5) / 8)


@pytest.fixture
def small(raters, make_item):
    campaign, users = raters
    campaign.heatmap_width = campaign.heatmap_height = 8
    campaign.save()
    item = make_item(campaign, prompt="a yellow cat, on a red sofa.", width=80, height=80)
    return campaign, users, item


def stored_files(root) -> set[str]:
    base = root / "aggregates"
    return {str(p.relative_to(root)) for p in base.rglob("*.png")} if base.exists() else set()


def test_aggregate_holds_the_release_values(small, annotate, settings):
    campaign, users, item = small
    assert item.words == ["a", "yellow", "cat", "on", "a", "red", "sofa"]
    annotate(
        item,
        users,
        [
            answer(implausible=[centre(0, 0), centre(3, 2)], misaligned=[centre(7, 7)], words=[1, 5], plausibility=2),
            answer(implausible=[centre(3, 2)], words=[1], plausibility=3, overall=5),
            answer(implausible=[centre(3, 2), centre(3, 2)], words=[5, 6], plausibility=5, overall=1),
        ],
    )
    agg = item_aggregate_upsert(item_id=item.pk)

    assert agg.n_annotations == 3
    assert agg.plausibility_mean == pytest.approx(10 / 3)
    assert agg.plausibility_normalised == pytest.approx((10 / 3 - 1) / 4)
    assert agg.plausibility_maxdiff == pytest.approx(0.75)  # 2 and 5: (5 - 2) / 4
    assert agg.alignment_mean == 3 and agg.alignment_normalised == 0.5 and agg.alignment_maxdiff == 0
    assert agg.overall_mean == pytest.approx(10 / 3) and agg.overall_maxdiff == 1.0
    # Votes: yellow 2, red 2, sofa 1 -> majority (2 of 3) marks yellow and red.
    assert agg.word_votes == [0, 2, 0, 0, 0, 2, 1]
    assert agg.misaligned_words == [1, 5]
    assert agg.prompt_misalignment_label == "1 0 1 1 1 0 1"
    assert agg.tagged_target == "a yellow_0 cat on a red_0 sofa"
    assert agg.keyword_unanimity == pytest.approx(4 / 7)  # a, cat, on, a

    implausibility = decode_png(default_storage.open(agg.implausibility_map.name).read())
    expected = np.zeros((8, 8), dtype=np.uint8)
    expected[0, 0] = 85  # one rater of three
    expected[2, 3] = 255  # all three (rater 3's duplicate point does not count twice)
    assert np.array_equal(implausibility, expected)
    misalignment = decode_png(default_storage.open(agg.misalignment_map.name).read())
    expected = np.zeros((8, 8), dtype=np.uint8)
    expected[7, 7] = 85
    assert np.array_equal(misalignment, expected)

    assert agg.implausibility_max == 1.0 and agg.implausibility_coverage == 2 / 64
    assert agg.implausibility_mean == pytest.approx(4 / (3 * 64))  # four rater-pixels of 3 x 64
    assert agg.implausibility_points == 5 and agg.misalignment_points == 1
    # Pairs (1,2), (1,3): IoU 1/2; (2,3): IoU 1.
    assert agg.implausibility_iou == pytest.approx(2 / 3)
    # Misalignment: rater 1 alone marked a pixel; IoU 0 with each, 1 for the two empty maps.
    assert agg.misalignment_iou == pytest.approx(1 / 3)
    assert agg.misalignment_cc is None  # every pair has an empty (constant) map
    assert agg.settings_fingerprint == settings_fingerprint(campaign)
    assert agg.settings == {"version": 1, "radius_fraction": "0.05", "heatmap_width": 8, "heatmap_height": 8}
    assert stored_files(settings.MEDIA_ROOT) == {agg.implausibility_map.name, agg.misalignment_map.name}


def test_running_twice_changes_nothing_and_force_rewrites_the_same_result(small, annotate, settings):
    campaign, users, item = small
    annotate(item, users, [answer(implausible=[centre(1, 1)])] * 3)
    first = item_aggregate_upsert(item_id=item.pk)
    report = item_aggregates_recompute(item_ids=[item.pk])
    assert report.unchanged == [item.pk] and report.computed == []
    again = ItemAggregate.objects.get(item=item)
    assert again.computed_at == first.computed_at

    forced = item_aggregates_recompute(item_ids=[item.pk], force=True)
    assert forced.computed == [item.pk]
    rows = ItemAggregate.objects.filter(item=item)
    assert rows.count() == 1
    row = rows.get()
    assert row.computed_at > first.computed_at
    assert row.implausibility_map.name == first.implausibility_map.name
    assert stored_files(settings.MEDIA_ROOT) == {first.implausibility_map.name, first.misalignment_map.name}


def test_truncated_file_from_a_killed_writer_is_replaced(small, annotate):
    campaign, users, item = small
    annotate(item, users, [answer(implausible=[centre(1, 1)])] * 3)
    agg = item_aggregate_upsert(item_id=item.pk)
    name = agg.implausibility_map.name
    good = default_storage.open(name).read()
    default_storage.delete(name)
    default_storage.save(name, __import__("io").BytesIO(good[:20]))
    # The fast path notices nothing wrong with the row, so only force (or the missing-file
    # check) rewrites; force must not trust a same-named file with the wrong bytes.
    item_aggregates_recompute(item_ids=[item.pk], force=True)
    assert default_storage.open(name).read() == good


def test_missing_file_makes_the_aggregate_recompute(small, annotate):
    campaign, users, item = small
    annotate(item, users, [answer(implausible=[centre(1, 1)])] * 3)
    agg = item_aggregate_upsert(item_id=item.pk)
    default_storage.delete(agg.misalignment_map.name)
    report = item_aggregates_recompute(item_ids=[item.pk])
    assert report.computed == [item.pk]
    assert default_storage.exists(agg.misalignment_map.name)


def test_incomplete_item_is_skipped(small, annotate, make_item):
    campaign, users, _ = small
    other = make_item(campaign, prompt="two dogs")
    report = item_aggregates_recompute(item_ids=[other.pk, 999_999])
    assert report.skipped == [other.pk, 999_999] and report.computed == []
    assert not ItemAggregate.objects.exists()


def test_changed_radius_makes_aggregates_stale_and_recompute_replaces_files(
    small, annotate, settings, django_capture_on_commit_callbacks
):
    campaign, users, item = small
    annotate(item, users, [answer(implausible=[centre(4, 4)])] * 3)
    old = item_aggregate_upsert(item_id=item.pk)
    assert not items_without_current_aggregate(campaign=campaign).exists()

    campaign.radius_fraction = 0.15  # r = 12 px: the point now also covers its 4 neighbours
    campaign.save()
    assert list(items_without_current_aggregate(campaign=campaign)) == [item]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        new = item_aggregate_upsert(item_id=item.pk)
    assert len(callbacks) == 1  # the old file is removed only once the new row is committed
    values = decode_png(default_storage.open(new.implausibility_map.name).read())
    assert int(np.count_nonzero(values)) == 5 and values[4, 4] == values[3, 4] == values[4, 5] == 255
    assert new.implausibility_map.name != old.implausibility_map.name
    assert not items_without_current_aggregate(campaign=campaign).exists()
    # The replaced map is gone; the unchanged (empty) misalignment map is still in use.
    assert stored_files(settings.MEDIA_ROOT) == {new.implausibility_map.name, new.misalignment_map.name}
    assert new.misalignment_map.name == old.misalignment_map.name


def test_changed_output_size_makes_aggregates_stale(small, annotate):
    campaign, users, item = small
    annotate(item, users, [answer()] * 3)
    item_aggregate_upsert(item_id=item.pk)
    campaign.heatmap_width = 16
    campaign.save()
    assert list(items_without_current_aggregate(campaign=campaign)) == [item]
    agg = item_aggregate_upsert(item_id=item.pk)
    assert decode_png(default_storage.open(agg.implausibility_map.name).read()).shape == (8, 16)


def test_reconcile_enqueues_missing_and_stale_but_not_current_or_fresh(small, annotate, make_item, monkeypatch):
    from aggregation import tasks

    campaign, users, current = small
    missing, stale, fresh, incomplete = (make_item(campaign, prompt=f"item {n}") for n in range(4))
    for item in (current, missing, stale):
        annotate(item, users, [answer()] * 3)
    annotate(fresh, users, [answer()] * 3, completed_ago=timedelta(seconds=5))
    item_aggregates_recompute(item_ids=[current.pk, stale.pk])
    ItemAggregate.objects.filter(item=stale).update(settings_fingerprint="computed-under-old-settings")

    sent: list[int] = []
    monkeypatch.setattr(tasks.aggregate_item, "delay", lambda item_id: sent.append(item_id))
    assert aggregates_reconcile(grace=timedelta(seconds=60)) == sent
    assert sorted(sent) == sorted([missing.pk, stale.pk])
    sent.clear()
    aggregates_reconcile(grace=timedelta(0))
    assert sorted(sent) == sorted([missing.pk, stale.pk, fresh.pk])
    sent.clear()
    aggregates_reconcile(grace=timedelta(0), limit=1)
    assert len(sent) == 1


def test_reconcile_task_body_runs_the_reconciler(small, annotate, monkeypatch):
    from aggregation import tasks

    campaign, users, item = small
    annotate(item, users, [answer()] * 3)
    sent: list[int] = []
    monkeypatch.setattr(tasks.aggregate_item, "delay", lambda item_id: sent.append(item_id))
    assert tasks.reconcile_aggregates.run(grace_s=0) == 1 and sent == [item.pk]


def test_excluded_answers_do_not_count(small, annotate):
    # Quality review excluded rater 3's answer: the aggregate is the two others' alone.
    from django.utils import timezone

    campaign, users, item = small
    kept = annotate(
        item,
        users,
        [
            answer(implausible=[centre(1, 1)], plausibility=2),
            answer(implausible=[centre(1, 1)], plausibility=4),
            answer(implausible=[centre(6, 6)], plausibility=5),
        ],
    )
    kept[2].excluded_at = timezone.now()
    kept[2].save(update_fields=["excluded_at"])
    agg = item_aggregate_upsert(item_id=item.pk)
    assert agg.n_annotations == 2
    assert agg.annotation_ids == [kept[0].pk, kept[1].pk]
    assert agg.plausibility_mean == 3
    values = decode_png(default_storage.open(agg.implausibility_map.name).read())
    assert values[1, 1] == 255 and values[6, 6] == 0  # both of 2 raters; the excluded disk is absent
    assert agg.implausibility_iou == 1.0


def test_a_chunk_is_computed_as_each_item_alone(raters, make_item, annotate):
    """The recompute rasterises a whole chunk's maps in one vectorised pass: every row and file
    must be what the item gets when it is aggregated on its own (different image sizes and
    rater counts side by side, so nothing leaks between items)."""
    campaign, users = raters
    campaign.heatmap_width, campaign.heatmap_height = 40, 30
    campaign.save()
    rng = np.random.default_rng(5)
    items = []
    for n, (w, h) in enumerate([(80, 80), (120, 60), (37, 311), (512, 768), (100, 100), (64, 48)]):
        item = make_item(campaign, prompt="a red cat on a blue sofa", width=w, height=h)
        k = 1 + n % len(users)
        body = [
            answer(
                implausible=rng.random((int(rng.integers(0, 6)), 2)).tolist(),
                misaligned=rng.random((int(rng.integers(0, 6)), 2)).tolist(),
                words=[int(rng.integers(0, 6))],
                plausibility=int(rng.integers(1, 6)),
            )
            for _ in range(k)
        ]
        annotate(item, users[:k], body)
        items.append(item)
    ids = [i.pk for i in items]

    def snapshot() -> dict:
        out = {}
        for agg in ItemAggregate.objects.filter(item_id__in=ids):
            row = {f.name: getattr(agg, f.name) for f in ItemAggregate._meta.concrete_fields}
            for kind in ("implausibility_map", "misalignment_map"):
                row[kind] = default_storage.open(row[kind].name).read()
            for name in ("id", "computed_at"):
                row.pop(name)
            out[agg.item_id] = row
        return out

    assert item_aggregates_recompute(item_ids=ids).computed == sorted(ids)
    together = snapshot()
    ItemAggregate.objects.filter(item_id__in=ids).delete()
    for pk in ids:
        item_aggregates_recompute(item_ids=[pk])
    assert snapshot() == together
    assert len(together) == len(items)
