"""Import image-prompt pairs from a folder of images and a JSONL or CSV manifest."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotation.imports import ManifestError, items_import_rows, manifest_find, manifest_read
from annotation.models import Campaign, Split


class Command(BaseCommand):
    help = (
        "Import a folder of images with prompts. PATH is the folder (holding items.jsonl, items.csv, "
        "prompts.jsonl or prompts.csv) or the manifest file itself; image paths are relative to the "
        "manifest's folder. Columns: image (or file_name), prompt (or caption), and optional source_id, "
        "category, photorealistic, split (train/dev/test), priority, generator (the model that made the image)."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--campaign", required=True, help="campaign name (created if missing)")
        parser.add_argument("--split", default=None, choices=Split.values, help="split for rows that name none")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        try:
            manifest = manifest_find(Path(opts["path"]))
            # The whole manifest first: a file that is not UTF-8 is refused before anything,
            # even the campaign, is written.
            rows = manifest_read(manifest)
        except ManifestError as exc:
            raise CommandError(str(exc)) from exc
        campaign, made = Campaign.objects.get_or_create(name=opts["campaign"])
        if made:
            self.stdout.write(f"Created campaign {campaign.name!r}.")
        bar = tqdm(total=len(rows), desc="import", unit="item", disable=opts["no_progress"])

        def progress(done: int, total: int) -> None:
            bar.n = done
            bar.refresh()

        try:
            report = items_import_rows(
                campaign=campaign,
                rows=rows,
                base=manifest.parent,
                label=str(manifest),
                default_split=opts["split"],
                progress=progress,
            )
        finally:
            bar.close()
        for line in report.problems:
            self.stderr.write(line)
        summary = f"{report.summary()} into {campaign.name!r}."
        if report.problems:
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary))
