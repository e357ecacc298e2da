"""What a run reads and leaves behind: its work folder, the training export (written once
per version, so a resumed run reuses it) and the best checkpoint uploaded to storage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage

from ..models import ModelVersion
from ..selectors import extra_training_campaign


def work_dir(version: ModelVersion) -> Path:
    return Path(settings.RICHHF_LEARNING_DIR) / "runs" / f"campaign{version.campaign_id}-v{version.pk}"


def work_dir_remove(version: ModelVersion) -> None:
    """Drops a finished run's local folder. Its export and checkpoints are scratch: what other
    machines need was uploaded to storage (checkpoint_upload), and with many workers the next
    run may start anywhere. A failed run keeps its folder, so a retry here resumes."""
    shutil.rmtree(work_dir(version), ignore_errors=True)


def training_data_export(*, version: ModelVersion, data: Path) -> dict[str, int]:
    """The campaign's current aggregates (+ the extra campaign's train split) in the release
    layout modeling.train reads; returns the items per split. Written once per version: a
    resumed run reuses it."""
    from aggregation.exports.writers import export_campaign

    marker = data / "counts.json"
    if marker.exists():
        return json.loads(marker.read_text())
    if data.exists():
        shutil.rmtree(data)
    export_campaign(campaign=version.campaign, fmt="tfrecord", out_dir=data, with_images=True)
    extra = extra_training_campaign(version=version)
    counts = _count_splits(data)
    if extra is not None:
        extra_dir = data.parent / "extra"
        shutil.rmtree(extra_dir, ignore_errors=True)
        export_campaign(campaign=extra, fmt="tfrecord", out_dir=extra_dir, with_images=True)
        # TFRecord files are plain sequences of records: appending keeps both readable.
        if (extra_dir / "train.tfrecord").exists():
            with open(data / "train.tfrecord", "ab") as out, open(extra_dir / "train.tfrecord", "rb") as src:
                shutil.copyfileobj(src, out)
            with open(data / "prompts.jsonl", "a", encoding="utf-8") as out:
                out.write((extra_dir / "prompts.jsonl").read_text(encoding="utf-8"))
            for image in (extra_dir / "images").iterdir():
                if not (data / "images" / image.name).exists():
                    shutil.copy2(image, data / "images" / image.name)
        counts["extra_train"] = _count_splits(extra_dir).get("train", 0)
        shutil.rmtree(extra_dir, ignore_errors=True)
    marker.write_text(json.dumps(counts))
    return counts


def _count_splits(data: Path) -> dict[str, int]:
    from modeling.data.release import read_release_tfrecord

    return {
        split: sum(1 for _ in read_release_tfrecord(data / f"{split}.tfrecord"))
        for split in ("train", "dev", "test")
        if (data / f"{split}.tfrecord").exists()
    }


def checkpoint_upload(*, version: ModelVersion, directory: Path) -> tuple[str, list[str]]:
    """Copies the checkpoint folder to storage (replacing a previous attempt's files);
    returns the storage prefix and the relative file names."""
    prefix = f"learning/checkpoints/campaign{version.campaign_id}/v{version.pk}"
    names = []
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        relative = path.relative_to(directory).as_posix()
        target = f"{prefix}/{relative}"
        if default_storage.exists(target):
            default_storage.delete(target)
        with path.open("rb") as handle:
            default_storage.save(target, handle)
        names.append(relative)
    return prefix, names
