"""Fine-tuning selection (JSON lines) from the active model's predicted scores."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from aggregation.learning.services.exports import finetune_selection_export
from annotation.models import Campaign


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True)
        parser.add_argument("--out", required=True, type=Path)
        parser.add_argument("--min-plausibility", type=float, default=0.5)
        parser.add_argument("--min-alignment", type=float, default=0.5)
        parser.add_argument("--best-per-prompt", type=int, default=1)

    def handle(self, *args, **options):
        campaign = Campaign.objects.filter(name=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"no campaign named {options['campaign']!r}")
        rows = finetune_selection_export(
            campaign=campaign,
            thresholds={"plausibility": options["min_plausibility"], "alignment": options["min_alignment"]},
            best_per_prompt=options["best_per_prompt"],
        )
        options["out"].parent.mkdir(parents=True, exist_ok=True)
        options["out"].write_text("".join(json.dumps(r) + "\n" for r in rows))
        self.stdout.write(f"{len(rows)} items selected, written to {options['out']}")
