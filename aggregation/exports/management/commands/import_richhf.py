from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from aggregation.exports.importer import PromptsError, import_release
from annotation.models import Campaign


class Command(BaseCommand):
    help = (
        "Import release TFRecord files (the public RichHF-18K release or our own export) as items with "
        "pre-aggregated ground truth. Images are matched by the record filename's base name; prompts come "
        "from a CSV/JSONL/Parquet of (filename or id, caption). Bad records are reported as FILE#INDEX."
    )

    def add_arguments(self, parser):
        parser.add_argument("sources", nargs="+", help="a folder of *.tfrecord files, or the files themselves")
        parser.add_argument("--images", required=True, help="folder of images")
        parser.add_argument("--prompts", required=True, help="CSV, JSONL or Parquet with filename/id and caption")
        parser.add_argument("--campaign", required=True, help="campaign name (created if missing)")
        parser.add_argument(
            "--as-gold",
            action="store_true",
            help="make each record's item a gold item (its maps, scores and words the reference answer) "
            "instead of labelled ground truth",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        files: list[Path] = []
        for source in map(Path, opts["sources"]):
            if source.is_dir():
                found = sorted(source.glob("*.tfrecord"))
                if not found:
                    raise CommandError(f"{source}: no *.tfrecord files in this folder")
                files.extend(found)
            elif source.is_file():
                files.append(source)
            else:
                raise CommandError(f"{source}: no such file or folder")
        campaign, created = Campaign.objects.get_or_create(name=opts["campaign"])
        if created:
            self.stdout.write(f"Created campaign {campaign.name!r}.")
        bar = tqdm(desc="import", unit="record", disable=opts["no_progress"])
        try:
            report = import_release(
                campaign=campaign,
                tfrecords=files,
                images_dir=Path(opts["images"]),
                prompts_path=Path(opts["prompts"]),
                progress=bar.update,
                as_gold=opts["as_gold"],
            )
        except PromptsError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            bar.close()
        for problem in report.problems:
            self.stderr.write(problem)
        if report.problems:
            raise CommandError(report.summary())
        self.stdout.write(self.style.SUCCESS(report.summary()))
