"""import_items, seed_demo and simulate_raters as an admin runs them."""

import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Annotation, Assignment, Campaign, Item
from tests.conftest import png_bytes

pytestmark = pytest.mark.django_db


def write_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "a.png").write_bytes(png_bytes(40, 30, seed=1))
    (folder / "b.png").write_bytes(png_bytes(50, 20, seed=2))
    (folder / "copy_of_a.png").write_bytes(png_bytes(40, 30, seed=1))
    (folder / "broken.png").write_bytes(png_bytes(40, 30, seed=3)[:60])
    (folder / "notes.txt").write_text("not an image")
    rows = [
        {
            "image": "a.png",
            "prompt": "RichHF-18K: a dataset for rich human feedback on generative images.",
            "split": "dev",
        },
        {"image": "b.png", "prompt": "a red bus", "category": "vehicles", "photorealistic": True, "priority": 2},
        {"image": "copy_of_a.png", "prompt": "same bytes as a.png"},
        {"image": "missing.png", "prompt": "no such file"},
        {"image": "broken.png", "prompt": "truncated png"},
        {"image": "notes.txt", "prompt": "a text file"},
        {"image": "b.png", "prompt": "   "},
    ]
    lines = [json.dumps(r) for r in rows]
    lines.insert(3, "{this is not json")
    (folder / "items.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_import_reports_bad_rows_by_file_and_line_and_imports_the_rest(tmp_path, capsys):
    folder = write_folder(tmp_path)
    with pytest.raises(CommandError) as err:
        call_command("import_items", str(folder), "--campaign", "batch", "--no-progress")
    assert "2 imported, 1 already present, 5 with errors" in str(err.value)
    stderr = capsys.readouterr().err
    manifest = folder / "items.jsonl"
    assert f"{manifest}:4: not valid JSON" in stderr
    assert f"{manifest}:5: image 'missing.png' not found" in stderr
    assert f"{manifest}:6: broken.png: not a readable image" in stderr
    assert f"{manifest}:7: notes.txt: not a readable image" in stderr
    assert f"{manifest}:8: no prompt" in stderr

    items = {i.source_id: i for i in Item.objects.filter(campaign__name="batch")}
    assert set(items) == {"a.png", "b.png"}
    a, b = items["a.png"], items["b.png"]
    assert (a.width, a.height, a.split) == (40, 30, "dev")
    assert len(a.words) == 10  # the spec's own example sentence
    assert (b.category, b.photorealistic, b.priority) == ("vehicles", True, 2.0)
    assert a.image.read().startswith(b"\x89PNG")

    # A rerun imports nothing twice and still reports the same bad rows.
    with pytest.raises(CommandError) as again:
        call_command("import_items", str(folder), "--campaign", "batch", "--no-progress")
    assert "0 imported, 3 already present" in str(again.value)
    assert Item.objects.filter(campaign__name="batch").count() == 2


def test_import_csv_manifest(tmp_path):
    folder = tmp_path / "csv"
    folder.mkdir()
    (folder / "x.png").write_bytes(png_bytes(10, 10, seed=5))
    (folder / "items.csv").write_text('file_name,caption,split\nx.png,"a cat, sitting",test\n')
    call_command("import_items", str(folder / "items.csv"), "--campaign", "csvc", "--no-progress")
    item = Item.objects.get(campaign__name="csvc")
    assert item.words == ["a", "cat", "sitting"] and item.split == "test"


def test_import_refuses_paths_outside_the_folder(tmp_path, capsys):
    folder = tmp_path / "evil"
    folder.mkdir()
    (tmp_path / "secret.png").write_bytes(png_bytes(10, 10, seed=9))
    (folder / "items.jsonl").write_text(json.dumps({"image": "../secret.png", "prompt": "x"}) + "\n")
    with pytest.raises(CommandError):
        call_command("import_items", str(folder), "--campaign", "evil", "--no-progress")
    assert "points outside" in capsys.readouterr().err
    assert not Item.objects.exists()


def test_import_without_manifest_names_the_folder(tmp_path):
    with pytest.raises(CommandError, match="no items.jsonl"):
        call_command("import_items", str(tmp_path), "--campaign", "x")


def test_seed_demo_is_repeatable_and_has_mismatched_prompts(capsys):
    call_command("seed_demo")
    call_command("seed_demo")
    campaign = Campaign.objects.get(name="demo")
    assert campaign.items.count() >= 10
    assert campaign.raters.count() == 3
    assert {"train", "dev"} <= set(campaign.items.values_list("split", flat=True))
    coffee = campaign.items.get(source_id="coffee.png")
    assert "blue" in coffee.words  # the cup in the photo is red: a real keyword task
    out = capsys.readouterr().out
    assert "rater1" in out and "admin" in out


def test_simulate_raters_completes_a_campaign_through_the_api():
    call_command("seed_demo")
    call_command("simulate_raters", "--campaign", "demo", "--raters", "4", "--seed", "3", "--no-progress")
    campaign = Campaign.objects.get(name="demo")
    assert campaign.items.filter(completed_at__isnull=True).count() == 0
    for item in campaign.items.all():
        assert Annotation.objects.filter(item=item).count() == 3
    # Simulated raters differ: not every rater gives the same scores.
    assert Annotation.objects.values_list("overall", flat=True).distinct().count() > 1
    assert Assignment.objects.filter(state="leased").count() == 0
