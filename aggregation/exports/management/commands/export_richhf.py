from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from aggregation.exports.writers import FORMATS, export_campaign
from annotation.models import Campaign


class Command(BaseCommand):
    help = (
        "Export a campaign: tfrecord (drop-in for the RichHF-18K release: train/dev/test.tfrecord), "
        "parquet (one row per item) or jsonl (raw per-rater answers). Only items with a current "
        "aggregate (or imported ground truth) are exported; the rest are counted with the reason."
    )

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True)
        parser.add_argument("--format", required=True, choices=FORMATS)
        parser.add_argument("--out", required=True, help="output folder (created if missing)")
        parser.add_argument("--image-bytes", action="store_true", help="parquet: embed image bytes, not paths")
        parser.add_argument(
            "--with-images",
            action="store_true",
            help="tfrecord: also write images/<filename> and prompts.jsonl (the layout `python -m modeling.train --data` reads)",
        )
        parser.add_argument("--split", choices=("train", "dev", "test"), help="export this split only")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        campaign = Campaign.objects.filter(name=opts["campaign"]).first()
        if campaign is None:
            raise CommandError(f"no campaign named {opts['campaign']!r}")
        out = Path(opts["out"])
        if out.exists() and not out.is_dir():
            raise CommandError(f"{out}: exists and is not a folder")
        bar = tqdm(desc=f"export {opts['format']}", unit="item", disable=opts["no_progress"])

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            result = export_campaign(
                campaign=campaign,
                fmt=opts["format"],
                out_dir=out,
                progress=progress,
                include_image_bytes=opts["image_bytes"],
                with_images=opts["with_images"],
                split=opts["split"],
            )
        finally:
            bar.close()
        for f in result.files:
            self.stdout.write(f"  {out / f.name}  {f.records} records  {f.bytes} bytes  sha256 {f.sha256}")
        self.stdout.write(self.style.SUCCESS(result.summary()))
