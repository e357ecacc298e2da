"""Release records, the export reader (TFRecord and Parquet) and the synthetic generator."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tfrecord.reader import tfrecord_loader

from modeling.config import get_config
from modeling.data.dataset import (
    RichHFDataset,
    load_prompts,
    load_split,
    make_collate,
    write_parquet,
)
from modeling.data.release import RichHFRecord, read_release_tfrecord, write_release_tfrecord
from modeling.data.synthetic import _rater_points, _raters_map, generate_example, generate_release
from modeling.data.tfrecord import TFRecordCorruptError, TFRecordWriter
from modeling.heatmaps import decode_heatmap_png, encode_heatmap_png
from modeling.processing import RAHFProcessor, load_tokenizer, resize_heatmap
from modeling.text import labels_to_misaligned_indices, split_prompt_words


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    generate_release(root, splits={"train": 12, "dev": 4}, seed=7, progress=False)
    return root


def test_heatmap_png_is_lossless() -> None:
    levels = np.array([0, 1 / 3, 2 / 3, 1.0])
    heat = levels[np.random.default_rng(0).integers(0, 4, (512, 512))]
    decoded = decode_heatmap_png(encode_heatmap_png(heat))
    assert decoded.dtype == np.uint8 and decoded.shape == (512, 512)
    np.testing.assert_array_equal(decoded, (heat * 255).round().astype(np.uint8))


def test_release_record_round_trip_and_reference_reader(tmp_path: Path) -> None:
    heat = np.zeros((512, 512))
    heat[10:40, 20:60] = 2 / 3
    record = RichHFRecord(
        filename="abc.png",
        artifact_score=0.25,
        misalignment_score=0.5,
        aesthetics_score=0.75,
        overall_score=1.0,
        artifact_map_png=encode_heatmap_png(heat),
        misalignment_map_png=encode_heatmap_png(np.zeros((512, 512))),
        prompt_misalignment_label="1 0 1",
    )
    path = tmp_path / "train.tfrecord"
    assert write_release_tfrecord(path, [record, record]) == 2
    assert list(read_release_tfrecord(path)) == [record, record]
    ref = next(iter(tfrecord_loader(str(path), None)))
    assert set(ref) == {
        "filename",
        "aesthetics_score",
        "artifact_score",
        "misalignment_score",
        "overall_score",
        "artifact_map",
        "misalignment_map",
        "prompt_misalignment_label",
    }
    assert bytes(ref["prompt_misalignment_label"]) == b"1 0 1"
    np.testing.assert_allclose(ref["aesthetics_score"], [0.75])
    assert record.heatmap("implausibility").max() == pytest.approx(170 / 255)


def test_release_reader_names_record_missing_a_feature(tmp_path: Path) -> None:
    path = tmp_path / "bad.tfrecord"
    with TFRecordWriter(path) as writer:
        writer.write_example({"filename": b"x.png"})
    with pytest.raises(TFRecordCorruptError, match="record 0: not a release record: missing"):
        list(read_release_tfrecord(path))


def test_synthetic_example_truth_is_consistent() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        image, truth, labels = generate_example(rng, 128)
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8
        words = split_prompt_words(truth.prompt)
        label = labels_to_misaligned_indices(labels["prompt_misalignment_label"], len(words))
        assert set(label) <= set(range(len(words)))
        for key in ("artifact_map", "misalignment_map"):
            heat = labels[key]
            assert heat.shape == (512, 512)
            # Three raters, union of disks each: averaged values are multiples of 1/3.
            np.testing.assert_allclose(heat * 3, np.round(heat * 3), atol=1e-9)
        if not truth.artifact_regions:
            assert labels["artifact_score"] >= 0.5
        for key in ("artifact_score", "misalignment_score", "aesthetics_score", "overall_score"):
            assert 0.0 <= labels[key] <= 1.0


def test_synthetic_raters_disks_follow_the_pixel_centre_rule() -> None:
    """The generator's maps come from the web app's rasteriser: an output pixel is inside a
    disk of radius H/20 when its CENTRE is, checked here on the whole grid."""
    regions = [(30.0, 40.0, 14.0), (100.0, 90.0, 14.0), (5.0, 120.0, 10.0)]
    heat = _raters_map(np.random.default_rng(4), regions, 128, 1.0)
    same_draws = np.random.default_rng(4)
    raters = [_rater_points(same_draws, regions, 128, 1.0) for _ in range(3)]
    centres = (np.arange(512) + 0.5) * (128 / 512)  # original pixels
    expected = np.zeros((3, 512, 512), dtype=bool)
    for k, points in enumerate(raters):
        assert points
        for x, y in points:
            dx, dy = centres - x * 128, centres - y * 128
            expected[k] |= (dx * dx)[None, :] <= (6.4 * 6.4 - dy * dy)[:, None]
    np.testing.assert_array_equal(heat, expected.mean(axis=0))


def test_load_split_and_dataset_batch(synthetic_root: Path) -> None:
    samples = load_split(synthetic_root, "train")
    assert len(samples) == 12
    prompts = load_prompts(synthetic_root)
    assert all(prompts[s.filename] == s.prompt for s in samples)
    config = get_config("tiny")
    processor = RAHFProcessor(config, load_tokenizer("byt5"))
    dataset = RichHFDataset(samples, processor)
    batch = make_collate(processor)([dataset[i] for i in range(3)])
    assert batch["pixel_values"].shape == (3, 3, 64, 64)
    assert batch["target_heatmaps"].shape == (3, 2, 64, 64)
    assert batch["target_scores"].shape == (3, 4)
    assert batch["input_ids"].shape[:2] == (1, 3)
    # ByT5: one token per byte plus EOS; padding is -100 so the loss ignores it.
    for row, target in zip(batch["labels"], batch["targets"], strict=True):
        assert int((row != -100).sum()) == len(target.encode()) + 1
    assert float(batch["target_heatmaps"].max()) <= 1.0
    assert all(t.replace("_0", "") == p for t, p in zip(batch["targets"], batch["prompts"], strict=True))


def test_parquet_export_reads_the_same(synthetic_root: Path, tmp_path: Path) -> None:
    samples = load_split(synthetic_root, "dev")
    write_parquet(tmp_path / "dev.parquet", samples, embed_images=True)
    again = load_split(tmp_path, "dev")
    assert [s.record for s in again] == [s.record for s in samples]
    assert [s.prompt for s in again] == [s.prompt for s in samples]
    assert np.array_equal(np.asarray(again[0].open_image()), np.asarray(samples[0].open_image()))


def test_reader_errors_name_the_file(synthetic_root: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(synthetic_root, root)
    first = next(iter(read_release_tfrecord(root / "dev.tfrecord")))
    (root / "images" / first.filename).unlink()
    with pytest.raises(FileNotFoundError, match=first.filename):
        load_split(root, "dev")
    with pytest.raises(FileNotFoundError, match="neither test.tfrecord nor test.parquet"):
        load_split(root, "test")
    # A label count that does not match the prompt's words.
    lines = (root / "prompts.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    rows[0]["caption"] = "only two"
    (root / "prompts.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(ValueError, match=r"train.tfrecord: synthetic_train_000000.png: keyword labels"):
        load_split(root, "train")
    (root / "prompts.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match=r"prompts.jsonl:1"):
        load_split(root, "train")


def test_resize_heatmap_keeps_small_regions() -> None:
    heat = np.zeros((512, 512), np.float32)
    heat[100:104, 200:204] = 1.0  # smaller than one output pixel's footprint
    small = resize_heatmap(heat, 64)
    assert small.shape == (64, 64) and small.max() > 0
    assert float(torch.tensor(small).sum()) == pytest.approx(16 / 64, rel=1e-3)
