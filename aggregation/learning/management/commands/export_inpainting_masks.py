"""Inpainting masks (PNG, white = inpaint) from the active model's implausibility heatmaps."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from aggregation.learning.services.exports import inpainting_masks_export
from annotation.models import Campaign


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True)
        parser.add_argument("--out", required=True, type=Path)
        parser.add_argument("--items", type=int, nargs="*", help="item ids (default: every predicted item)")
        parser.add_argument("--threshold", type=float, default=0.3)
        parser.add_argument("--dilation", type=int, default=8)

    def handle(self, *args, **options):
        campaign = Campaign.objects.filter(name=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"no campaign named {options['campaign']!r}")
        paths = inpainting_masks_export(
            campaign=campaign,
            out_dir=options["out"],
            item_ids=options["items"],
            threshold=options["threshold"],
            dilation=options["dilation"],
        )
        self.stdout.write(f"{len(paths)} masks written to {options['out']}")
