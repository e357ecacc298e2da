"""Quality columns in Parquet and raw JSONL; the TFRecord release carries none of them."""

import json

import pyarrow.parquet as pq
import pytest

from aggregation.exports.writers import export_campaign
from aggregation.quality.models import QualityRun
from aggregation.quality.services.actions import answers_exclude_action
from aggregation.quality.services.recompute import items_reaggregate, quality_run_execute
from aggregation.services import item_aggregates_recompute
from annotation.models import Annotation

from .factories import careful_and_spammer_crowd

pytestmark = pytest.mark.django_db


@pytest.fixture
def exported(make_campaign, make_user, make_item):
    campaign = make_campaign("exp")
    careful = [make_user(f"careful{i}", "rater") for i in range(3)]
    spammer = make_user("spammer", "rater")
    campaign.raters.add(*careful, spammer)
    items = careful_and_spammer_crowd(campaign, careful, spammer, make_item, n_items=10)
    item_aggregates_recompute(item_ids=[i.pk for i in items])
    quality_run_execute(run_id=QualityRun.objects.create(campaign=campaign).pk)
    first = Annotation.objects.filter(rater=spammer, item=items[0]).get()
    answers_exclude_action(campaign=campaign, annotation_ids=[first.pk], reason="random")
    items_reaggregate(item_ids=[items[0].pk])  # what the worker's quality.reaggregate_items does
    return campaign, items, spammer


def test_parquet_gets_weighted_columns_and_jsonl_the_exclusion(exported, tmp_path):
    campaign, items, spammer = exported
    export_campaign(campaign=campaign, fmt="parquet", out_dir=tmp_path)
    table = pq.read_table(tmp_path / "richhf.parquet").to_pylist()
    rows = {r["item_id"]: r for r in table}
    assert rows[items[0].pk]["qc_excluded_answers"] == 1 and rows[items[1].pk]["qc_excluded_answers"] == 0
    # Item 0's aggregate is the two careful answers' plain mean, the excluded one left out.
    kept = items[0].annotations.filter(excluded_at__isnull=True)
    assert rows[items[0].pk]["overall_mean"] == pytest.approx(sum(a.overall for a in kept) / 2)
    assert rows[items[0].pk]["n_raters"] == 2
    for r in rows.values():
        assert 1 <= r["qc_weighted_overall_mean"] <= 5
        assert len(r["qc_weighted_word_votes"]) == len(r["words"])
    # On an item with the spammer, the weighted mean sits closer to the careful raters than
    # the plain mean does (the spammer's weight is its low reliability).
    careful_means = {i.pk: sum(a.overall for a in i.annotations.exclude(rater=spammer)) / 2 for i in items[1:]}
    closer = [
        abs(rows[pk]["qc_weighted_overall_mean"] - m) <= abs(rows[pk]["overall_mean"] - m) + 1e-9
        for pk, m in careful_means.items()
    ]
    assert sum(closer) >= 8

    export_campaign(campaign=campaign, fmt="jsonl", out_dir=tmp_path)
    lines = [json.loads(line) for line in (tmp_path / "annotations.jsonl").read_text().splitlines()]
    assert len(lines) == 30
    excluded = [r for r in lines if r["excluded"]]
    assert len(excluded) == 1 and excluded[0]["item_id"] == items[0].pk and excluded[0]["excluded_reason"] == "random"
    assert all(r["rater_reliability"] is not None for r in lines)


def test_tfrecord_release_has_no_quality_columns(exported, tmp_path):
    campaign, _, _ = exported
    export_campaign(campaign=campaign, fmt="tfrecord", out_dir=tmp_path)
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("*.tfrecord"))
    assert blob and b"qc_" not in blob and b"excluded" not in blob
