"""import_richhf --as-gold: release records become gold items with their reference answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from aggregation.exports.models import ImportedLabel
from annotation.models import GoldReference, GoldSource, Item
from annotation.services import assignment_next, campaign_add_raters
from modeling.data.release import RichHFRecord
from modeling.data.synthetic import generate_release
from modeling.data.tfrecord import decode_example, iter_records
from modeling.heatmaps import decode_heatmap_png
from modeling.text import labels_to_misaligned_indices

pytestmark = pytest.mark.django_db


@pytest.fixture
def release(tmp_path: Path) -> Path:
    out = tmp_path / "release"
    generate_release(out, splits={"train": 3}, seed=3, image_size=32, progress=False)
    return out


def import_richhf(release: Path, *extra: str, campaign: str = "gold-camp") -> None:
    call_command(
        "import_richhf",
        str(release / "train.tfrecord"),
        "--images",
        str(release / "images"),
        "--prompts",
        str(release / "prompts.jsonl"),
        "--campaign",
        campaign,
        "--no-progress",
        *extra,
    )


def records(release: Path) -> dict[str, RichHFRecord]:
    with (release / "train.tfrecord").open("rb") as handle:
        found = [RichHFRecord.from_features(decode_example(r)) for r in iter_records(handle)]
    return {r.filename: r for r in found}


def test_as_gold_makes_gold_items_with_the_records_as_references(release: Path) -> None:
    import_richhf(release, "--as-gold")
    items = list(Item.objects.filter(campaign__name="gold-camp"))
    assert len(items) == 3
    assert all(item.is_gold and item.completed_at is None for item in items)
    # Reference, not ground truth: nothing reaches the exports' imported labels.
    assert not ImportedLabel.objects.exists()
    by_name = records(release)
    for item in items:
        ref = GoldReference.objects.get(item=item)
        record = by_name[item.source_id]
        assert ref.source == GoldSource.IMPORT
        assert ref.scores == pytest.approx(record.scores())
        assert ref.misaligned_words == labels_to_misaligned_indices(record.prompt_misalignment_label, len(item.words))
        with ref.implausible_map.open("rb") as handle:
            stored = decode_heatmap_png(handle.read())
        assert np.array_equal(stored, decode_heatmap_png(record.map_png("implausibility")))
        assert ref.misaligned_map.name.endswith("-misalignment.png")


def test_gold_items_are_not_real_work(release: Path, make_user) -> None:
    import_richhf(release, "--as-gold")
    rater = make_user("r1", "rater")
    campaign = Item.objects.first().campaign
    campaign_add_raters(campaign=campaign, users=[rater])
    result = assignment_next(rater=rater, campaign=campaign)
    assert result.assignment is None and result.reason == "done"


def test_importing_again_reports_already_present(release: Path, capsys) -> None:
    import_richhf(release, "--as-gold")
    import_richhf(release, "--as-gold")
    assert "0 imported, 3 already present" in capsys.readouterr().out
    assert GoldReference.objects.count() == 3


def test_ground_truth_and_gold_do_not_mix(release: Path, capsys) -> None:
    import_richhf(release)  # as ground truth
    with pytest.raises(CommandError, match="3 problems"):
        import_richhf(release, "--as-gold")
    assert "already imported as ground truth" in capsys.readouterr().err
    assert not GoldReference.objects.exists() and not Item.objects.filter(is_gold=True).exists()

    import_richhf(release, "--as-gold", campaign="other")
    with pytest.raises(CommandError, match="3 problems"):
        import_richhf(release, campaign="other")
    assert "is a gold item here" in capsys.readouterr().err
    assert not ImportedLabel.objects.filter(item__campaign__name="other").exists()
