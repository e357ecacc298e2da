"""Export to the release format and back: independent reader, round trip, corrupt input."""

import json
import random
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from aggregation.exports.models import ExportJob, ImportedLabel
from aggregation.exports.writers import export_campaign
from aggregation.services.aggregates import item_aggregate_upsert
from annotation.models import Campaign, Item
from annotation.services import AnnotationInput, annotation_submit, assignment_next
from modeling.data.tfrecord import decode_example, iter_records
from modeling.heatmaps import decode_heatmap_png
from tests.conftest import api_client_for, wait_for

pytestmark = pytest.mark.django_db

PROMPTS = [
    "a yellow cat on a red sofa",
    "RichHF-18K: a dataset, for rich feedback.",
    "two dogs and a ball",
    "an astronaut riding a horse",
]
RELEASE_TYPES = {
    "filename": "bytes",
    "aesthetics_score": "float",
    "artifact_score": "float",
    "misalignment_score": "float",
    "overall_score": "float",
    "artifact_map": "bytes",
    "misalignment_map": "bytes",
    "prompt_misalignment_label": "bytes",
}


@pytest.fixture
def worker_media(celery_worker_proc, settings):
    """Files written by this test process and by the worker land in one media folder."""
    settings.MEDIA_ROOT = celery_worker_proc.media_root
    return celery_worker_proc


@pytest.fixture
def annotated(raters, make_item, settings):
    """A campaign of 8 items in three splits; 6 complete with aggregates, 2 still open."""
    campaign, users = raters
    rng = random.Random(4)
    items = []
    for i in range(8):
        split = ["train", "train", "dev", "test"][i % 4]
        items.append(
            make_item(
                campaign, prompt=PROMPTS[i % 4], width=96 + 8 * i, height=64, split=split, source_id=f"pick_{i:03d}.png"
            )
        )
    for item in items[:6]:
        for user in users:
            a = assignment_next(rater=user, campaign=campaign).assignment
            assert a.item == item  # the queue finishes the oldest open item first
            n = len(a.item.words)
            annotation_submit(
                assignment_id=a.pk,
                rater=user,
                data=AnnotationInput(
                    implausible_points=[[rng.random(), rng.random()] for _ in range(rng.randint(0, 3))],
                    misaligned_points=[[rng.random(), rng.random()] for _ in range(rng.randint(0, 2))],
                    misaligned_words=sorted(rng.sample(range(n), rng.randint(0, 2))),
                    scores={s: rng.randint(1, 5) for s in ("plausibility", "alignment", "aesthetics", "overall")},
                ),
            )
    for item in items[:6]:
        item.refresh_from_db()
        assert item.completed_at is not None
        assert item_aggregate_upsert(item_id=item.pk) is not None
    return campaign, items


def decoded_tfrecords(folder: Path) -> dict[str, list[dict]]:
    out = {}
    for split in ("train", "dev", "test"):
        rows = []
        for payload in iter_records(folder / f"{split}.tfrecord"):
            features = decode_example(payload)
            rows.append(
                {
                    "filename": features["filename"].values[0],
                    **{
                        k: features[k].values[0]
                        for k in ("aesthetics_score", "artifact_score", "misalignment_score", "overall_score")
                    },
                    "prompt_misalignment_label": features["prompt_misalignment_label"].values[0],
                    "artifact_map": decode_heatmap_png(features["artifact_map"].values[0]),
                    "misalignment_map": decode_heatmap_png(features["misalignment_map"].values[0]),
                }
            )
        out[split] = rows
    return out


def test_tfrecord_export_reads_back_with_an_independent_reader(annotated, tmp_path):
    from tfrecord.reader import tfrecord_loader

    campaign, items = annotated
    result = export_campaign(campaign=campaign, fmt="tfrecord", out_dir=tmp_path)
    assert result.items == 6
    assert sum(result.left_out.values()) == 2 and "still being annotated" in next(iter(result.left_out))
    counts = {f.name: f.records for f in result.files}
    assert counts == {"train.tfrecord": 4, "dev.tfrecord": 1, "test.tfrecord": 1}

    description = {
        "filename": "byte",
        "aesthetics_score": "float",
        "artifact_score": "float",
        "misalignment_score": "float",
        "overall_score": "float",
        "artifact_map": "byte",
        "misalignment_map": "byte",
        "prompt_misalignment_label": "byte",
    }
    rows = list(tfrecord_loader(str(tmp_path / "train.tfrecord"), None, description))
    assert len(rows) == 4
    by_name = {bytes(r["filename"]).decode(): r for r in rows}
    item = items[0]
    row = by_name[item.source_id]
    agg = item.aggregate
    assert row["artifact_score"][0] == pytest.approx(agg.plausibility_normalised, abs=1e-7)
    assert row["misalignment_score"][0] == pytest.approx(agg.alignment_normalised, abs=1e-7)
    assert row["overall_score"][0] == pytest.approx(agg.overall_normalised, abs=1e-7)
    label = bytes(row["prompt_misalignment_label"]).decode()
    assert len(label.split()) == len(item.words) and set(label.split()) <= {"0", "1"}
    for key in ("artifact_map", "misalignment_map"):
        heatmap = decode_heatmap_png(bytes(row[key]))
        assert heatmap.shape == (512, 512) and heatmap.dtype == np.uint8
    # Exactly the eight release features with the release's types, nothing else.
    features = decode_example(next(iter_records(tmp_path / "dev.tfrecord")))
    assert {k: f.kind for k, f in features.items()} == RELEASE_TYPES
    manifest = json.loads((tmp_path / "manifest-tfrecord.json").read_text())
    assert [f["sha256"] for f in manifest["files"]] == [f.sha256 for f in result.files]
    # The manifest says which of our scores each release score holds (artifact = plausibility).
    assert manifest["score_mapping"] == {
        "artifact_score": "plausibility",
        "misalignment_score": "alignment",
        "aesthetics_score": "aesthetics",
        "overall_score": "overall",
    }


def write_release_inputs(items, folder: Path) -> tuple[Path, Path]:
    images = folder / "images"
    images.mkdir(parents=True)
    for item in items:
        (images / item.source_id).write_bytes(item.image.read())
    prompts = folder / "prompts.jsonl"
    prompts.write_text(
        "".join(json.dumps({"filename": Path(i.source_id).stem, "caption": i.prompt}) + "\n" for i in items)
    )
    return images, prompts


def test_round_trip_export_import_export_is_identical(annotated, tmp_path):
    campaign, items = annotated
    first = tmp_path / "first"
    export_campaign(campaign=campaign, fmt="tfrecord", out_dir=first)
    images, prompts = write_release_inputs(items, tmp_path)

    def import_copy() -> None:
        args = ["--images", str(images), "--prompts", str(prompts), "--campaign", "copy", "--no-progress"]
        call_command("import_richhf", str(first), *args)

    import_copy()
    copy = Campaign.objects.get(name="copy")
    assert ImportedLabel.objects.filter(item__campaign=copy).count() == 6
    assert not copy.items.filter(completed_at__isnull=True).exists()  # never enters the raters' queue
    second = tmp_path / "second"
    export_campaign(campaign=copy, fmt="tfrecord", out_dir=second)
    a, b = decoded_tfrecords(first), decoded_tfrecords(second)
    for split in a:
        assert len(a[split]) == len(b[split])
        left = sorted(a[split], key=lambda r: r["filename"])
        right = sorted(b[split], key=lambda r: r["filename"])
        for x, y in zip(left, right, strict=True):
            for key in x:
                if key.endswith("_map"):
                    np.testing.assert_array_equal(x[key], y[key])
                else:
                    assert x[key] == y[key], key
    # A second import of the same files adds nothing.
    import_copy()
    assert ImportedLabel.objects.filter(item__campaign=copy).count() == 6


def media_files(settings) -> set[str]:
    root = Path(settings.MEDIA_ROOT)
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def test_corrupt_records_are_reported_and_the_good_ones_imported(annotated, tmp_path, settings, capsys):
    campaign, items = annotated
    out = tmp_path / "export"
    export_campaign(campaign=campaign, fmt="tfrecord", out_dir=out)
    images, prompts = write_release_inputs(items, tmp_path)
    train = (out / "train.tfrecord").read_bytes()
    # Flip one byte inside the first record's payload: its data CRC no longer matches.
    flipped = bytearray(train)
    flipped[12 + 40] ^= 0xFF
    (out / "train.tfrecord").write_bytes(bytes(flipped))
    # Truncate the test file in the middle of its only record.
    test_bytes = (out / "test.tfrecord").read_bytes()
    (out / "test.tfrecord").write_bytes(test_bytes[: len(test_bytes) // 2])
    # Give one dev prompt a word too many, so its labels no longer fit.
    dev_items = [i for i in items[:6] if i.split == "dev"]
    lines = [json.loads(line) for line in prompts.read_text().splitlines()]
    for line in lines:
        if line["filename"] == Path(dev_items[0].source_id).stem:
            line["caption"] += " extra"
    prompts.write_text("".join(json.dumps(line) + "\n" for line in lines))
    before = media_files(settings)
    with pytest.raises(CommandError, match="3 imported, 0 already present, 3 problems"):
        call_command(
            "import_richhf",
            str(out),
            "--images",
            str(images),
            "--prompts",
            str(prompts),
            "--campaign",
            "broken",
            "--no-progress",
        )
    err = capsys.readouterr().err
    assert f"{out / 'train.tfrecord'}#0: data CRC mismatch" in err
    assert f"{out / 'test.tfrecord'}#0: truncated data" in err
    assert f"{out / 'dev.tfrecord'}#" in err and "labels for" in err
    imported = Item.objects.filter(campaign__name="broken")
    assert imported.count() == 3 == ImportedLabel.objects.filter(item__campaign__name="broken").count()
    # Nothing half-written: exactly one image and two maps per imported record.
    assert len(media_files(settings) - before) == 3 * 3


def test_missing_feature_and_missing_image_are_named(annotated, tmp_path, capsys):
    from modeling.data.tfrecord import TFRecordWriter, encode_example

    campaign, items = annotated
    out = tmp_path / "export"
    export_campaign(campaign=campaign, fmt="tfrecord", out_dir=out)
    images, prompts = write_release_inputs(items, tmp_path)
    records = [decode_example(p) for p in iter_records(out / "dev.tfrecord")]
    del records[0]["artifact_score"]
    with TFRecordWriter(tmp_path / "dev.tfrecord") as writer:
        for features in records:
            writer.write(encode_example(features))
    (images / items[1].source_id).unlink()  # a train record's image
    with pytest.raises(CommandError):
        call_command(
            "import_richhf",
            str(tmp_path / "dev.tfrecord"),
            str(out / "train.tfrecord"),
            "--images",
            str(images),
            "--prompts",
            str(prompts),
            "--campaign",
            "partial",
            "--no-progress",
        )
    err = capsys.readouterr().err
    assert "#0: not a release record: missing feature(s) artifact_score" in err
    assert f"{out / 'train.tfrecord'}#1: no image named {Path(items[1].source_id).stem}.*" in err


def test_parquet_loads_in_pandas_and_datasets(annotated, tmp_path):
    import datasets
    import pandas as pd

    campaign, items = annotated
    export_campaign(campaign=campaign, fmt="parquet", out_dir=tmp_path, include_image_bytes=True)
    frame = pd.read_parquet(tmp_path / "richhf.parquet")
    assert len(frame) == 6 and set(frame["split"]) == {"train", "dev", "test"}
    row = frame.set_index("item_id").loc[items[0].pk]
    agg = items[0].aggregate
    assert (
        row["plausibility_mean"] == agg.plausibility_mean and row["plausibility_score"] == agg.plausibility_normalised
    )
    assert list(row["words"]) == items[0].words and list(row["word_votes"]) == agg.word_votes
    assert bytes(row["image"]) == items[0].image.read()
    assert decode_heatmap_png(bytes(row["artifact_map"])).shape == (512, 512)
    ds = datasets.Dataset.from_parquet(str(tmp_path / "richhf.parquet"))
    assert ds.num_rows == 6 and "prompt_misalignment_label" in ds.column_names


def test_jsonl_has_every_raw_answer_with_pseudonyms(annotated, tmp_path):
    campaign, _ = annotated
    result = export_campaign(campaign=campaign, fmt="jsonl", out_dir=tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "annotations.jsonl").read_text().splitlines()]
    assert len(rows) == 18 and result.items == 6
    assert len({r["rater"] for r in rows}) == 3
    assert not any(r["rater"] in ("r1", "r2", "r3") for r in rows)
    assert all(set(r["scores"]) == {"plausibility", "alignment", "aesthetics", "overall"} for r in rows)


def test_failed_export_keeps_the_previous_one(annotated, tmp_path, monkeypatch):
    campaign, _ = annotated
    export_campaign(campaign=campaign, fmt="tfrecord", out_dir=tmp_path)
    before = (tmp_path / "train.tfrecord").read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("aggregation.exports.writers.release_record", boom)
    with pytest.raises(RuntimeError):
        export_campaign(campaign=campaign, fmt="tfrecord", out_dir=tmp_path)
    assert (tmp_path / "train.tfrecord").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".export-")]


def test_export_command_errors_name_the_problem(tmp_path):
    with pytest.raises(CommandError, match="no campaign named 'nope'"):
        call_command("export_richhf", "--campaign", "nope", "--format", "tfrecord", "--out", str(tmp_path))


def test_exports_api_is_for_admins_only(annotated, raters, make_user):
    campaign, _ = annotated
    r1 = raters[1][0]
    url = reverse("exports:campaign-exports", args=[campaign.pk])
    assert api_client_for(r1).post(url, {"format": "tfrecord"}, format="json").status_code == 403
    assert api_client_for(make_user("boss", "lead")).post(url, {"format": "tfrecord"}, format="json").status_code == 403
    bad = api_client_for(make_user("root", "admin")).post(url, {"format": "csv"}, format="json")
    assert bad.status_code == 400 and "format" in bad.json()["errors"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_background_export_job_with_a_real_worker(worker_media, annotated, make_user):
    import hashlib

    campaign, _ = annotated
    admin = api_client_for(make_user("root", "admin"))
    response = admin.post(reverse("exports:campaign-exports", args=[campaign.pk]), {"format": "parquet"}, format="json")
    assert response.status_code == 202
    job_id = response.json()["id"]
    job = wait_for(
        lambda: ExportJob.objects.filter(pk=job_id, status__in=["succeeded", "failed"]).first(),
        timeout=60,
        what="export job",
    )
    assert job.status == "succeeded", job.error
    assert job.progress == 1.0 and job.items_exported == 6 and sum(job.left_out.values()) == 2
    body = admin.get(reverse("exports:job", args=[job_id])).json()
    download = admin.get(body["download_url"])
    blob = b"".join(download.streaming_content)
    assert hashlib.sha256(blob).hexdigest() == job.sha256 == download["X-Checksum-SHA256"]


def test_tfrecord_export_with_images_is_what_modeling_trains_on(annotated, tmp_path):
    from modeling.data.dataset import load_split

    campaign, items = annotated
    call_command(
        "export_richhf",
        "--campaign",
        campaign.name,
        "--format",
        "tfrecord",
        "--out",
        str(tmp_path),
        "--with-images",
        "--no-progress",
    )
    train = load_split(tmp_path, "train")
    assert len(train) == 4
    sample = next(s for s in train if s.filename == items[0].source_id)
    assert sample.prompt == items[0].prompt
    assert sample.open_image().size == (items[0].width, items[0].height)
    assert sample.misaligned_indices() == items[0].aggregate.misaligned_words
