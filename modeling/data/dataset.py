"""Reading the project's exports for training and evaluation.

Export layout (what the web app writes and the synthetic generator produces)::

    ROOT/train.tfrecord, dev.tfrecord, test.tfrecord   release schema (any subset of splits)
    ROOT/images/<filename>                              the images named by ``filename``
    ROOT/prompts.jsonl                                  {"filename": ..., "caption": ...} lines
                                                        (or prompts.csv with those two columns)

or ``ROOT/<split>.parquet`` with the eight release columns plus ``caption`` (and optionally
``image`` bytes). Heatmap columns hold PNG bytes in both formats.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from modeling.data.release import RichHFRecord, read_release_tfrecord
from modeling.data.tables import read_table_rows
from modeling.processing import RAHFProcessor, resize_heatmap
from modeling.protocol import MAP_KINDS, RELEASE_FEATURES, SCORE_NAMES
from modeling.text import labels_to_misaligned_indices, split_prompt_words, tagged_target

SPLITS = ("train", "dev", "test")


@dataclass
class Sample:
    """One training/evaluation example: a release record joined with its prompt and image."""

    record: RichHFRecord
    prompt: str
    image_path: Path | None = None
    image_bytes: bytes | None = None
    source: str = ""

    @property
    def filename(self) -> str:
        """The record's image file name."""
        return self.record.filename

    def words(self) -> list[str]:
        """The prompt's words (docs/protocol.md section 4)."""
        return split_prompt_words(self.prompt)

    def misaligned_indices(self) -> list[int]:
        """Indices of misaligned words; ``ValueError`` names the source on a count mismatch."""
        try:
            return labels_to_misaligned_indices(self.record.prompt_misalignment_label, len(self.words()))
        except ValueError as exc:
            raise ValueError(f"{self.source}: {self.filename}: keyword labels: {exc}") from exc

    def target(self) -> str:
        """The decoder's target: the prompt with misaligned words suffixed "_0"."""
        return tagged_target(self.words(), self.misaligned_indices())

    def scores(self) -> np.ndarray:
        """(4,) float32 in SCORE_NAMES order."""
        values = self.record.scores()
        return np.asarray([values[name] for name in SCORE_NAMES], dtype=np.float32)

    def heatmaps(self, size: int | None = None) -> np.ndarray:
        """(2, H, W) float32 in [0,1], MAP_KINDS order, resized to ``size`` if given."""
        maps = [self.record.heatmap(kind) for kind in MAP_KINDS]
        if size is not None:
            maps = [resize_heatmap(m, size) for m in maps]
        return np.stack(maps)

    def open_image(self) -> Image.Image:
        """The RGB image; ``ValueError`` names the file when it cannot be read."""
        try:
            if self.image_bytes is not None:
                with Image.open(io.BytesIO(self.image_bytes)) as handle:
                    return handle.convert("RGB")
            if self.image_path is None:
                raise ValueError("no image path or bytes")
            with Image.open(self.image_path) as handle:
                return handle.convert("RGB")
        except (OSError, ValueError) as exc:
            where = self.image_path or f"{self.source} ({self.filename})"
            raise ValueError(f"{where}: cannot read image: {exc}") from exc


def load_prompts(root: str | os.PathLike[str]) -> dict[str, str]:
    """filename -> caption from ``prompts.jsonl`` or ``prompts.csv`` under ``root``."""
    root = Path(root)
    for path in (root / "prompts.jsonl", root / "prompts.csv"):
        if not path.exists():
            continue
        prompts: dict[str, str] = {}
        for row in read_table_rows(path):
            if row.error:
                raise ValueError(f"{row.where}: {row.error}")
            filename, caption = row.fields.get("filename"), row.fields.get("caption")
            if filename is None or caption is None:
                raise ValueError(f"{row.where}: expected filename and caption")
            prompts[str(filename)] = str(caption)
        return prompts
    raise FileNotFoundError(f"{root}: no prompts.jsonl or prompts.csv")


def load_split(root: str | os.PathLike[str], split: str, *, check_images: bool = True) -> list[Sample]:
    """Join a split's records with prompts and images; errors name the offending file."""
    root = Path(root)
    parquet = root / f"{split}.parquet"
    tfrecord = root / f"{split}.tfrecord"
    if tfrecord.exists():
        prompts = load_prompts(root)
        samples = []
        for record in read_release_tfrecord(tfrecord):
            if record.filename not in prompts:
                raise ValueError(f"{tfrecord}: {record.filename}: no caption in {root}/prompts.*")
            image_path = root / "images" / record.filename
            if check_images and not image_path.exists():
                raise FileNotFoundError(f"{image_path}: image of {tfrecord} record missing")
            samples.append(Sample(record, prompts[record.filename], image_path, source=str(tfrecord)))
    elif parquet.exists():
        samples = _load_parquet(parquet, root, check_images)
    else:
        raise FileNotFoundError(f"{root}: neither {split}.tfrecord nor {split}.parquet")
    for sample in samples:
        sample.misaligned_indices()  # fail at load time, not in the middle of an epoch
    return samples


def _load_parquet(path: Path, root: Path, check_images: bool) -> list[Sample]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    columns = set(table.column_names)
    needed = {*RELEASE_FEATURES, "caption"}
    if not needed <= columns:
        raise ValueError(f"{path}: missing column(s) {', '.join(sorted(needed - columns))}")
    samples = []
    for row in table.to_pylist():
        record = RichHFRecord.from_release_values(row)
        image_bytes = row.get("image")
        image_path = None if image_bytes else root / "images" / record.filename
        if check_images and image_path is not None and not image_path.exists():
            raise FileNotFoundError(f"{image_path}: image of {path} row missing")
        samples.append(Sample(record, row["caption"], image_path, image_bytes, source=str(path)))
    return samples


def write_parquet(path: str | os.PathLike[str], samples: Sequence[Sample], *, embed_images: bool = False) -> None:
    """Write samples as a Parquet export (same columns the reader expects)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    # The release's columns with the caption after the filename.
    columns = ("filename", "caption", *(key for key in RELEASE_FEATURES if key != "filename"))
    rows: dict[str, list[Any]] = {key: [] for key in columns}
    if embed_images:
        rows["image"] = []
    for sample in samples:
        values = {**sample.record.release_values(), "caption": sample.prompt}
        for key in columns:
            rows[key].append(values[key])
        if embed_images:
            buffer = io.BytesIO()
            sample.open_image().save(buffer, format="PNG")
            rows["image"].append(buffer.getvalue())
    pq.write_table(pa.table(rows), path)


class RichHFDataset(Dataset):
    """Torch dataset: image tensor, heatmaps at the head's size, scores, prompt, target."""

    def __init__(self, samples: Sequence[Sample], processor: RAHFProcessor):
        self.samples = list(samples)
        self.processor = processor

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.samples[index]
        size = self.processor.config.heatmap_size
        return {
            "pixel_values": self.processor.image_tensor(sample.open_image()),
            "heatmaps": torch.from_numpy(sample.heatmaps(size)),
            "scores": torch.from_numpy(sample.scores()),
            "prompt": sample.prompt,
            "target": sample.target(),
            "index": index,
        }


def make_collate(processor: RAHFProcessor) -> Callable[[list[dict[str, Any]]], dict[str, Any]]:
    """Batch items and tokenize prompts (per task for the augmented variant) and targets."""

    def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
        prompts = [item["prompt"] for item in items]
        input_ids, attention_mask = processor.prompts(prompts)
        return {
            "pixel_values": torch.stack([item["pixel_values"] for item in items]),
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": processor.targets([item["target"] for item in items]),
            "target_heatmaps": torch.stack([item["heatmaps"] for item in items]),
            "target_scores": torch.stack([item["scores"] for item in items]),
            "prompts": prompts,
            "targets": [item["target"] for item in items],
            "index": [item["index"] for item in items],
        }

    return collate
