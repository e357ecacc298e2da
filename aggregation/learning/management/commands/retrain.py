"""Retrain a campaign's model now, synchronously (the same service the Celery task calls)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from aggregation.learning.services.runs import retrain_request, retrain_run
from annotation.models import Campaign


class Command(BaseCommand):
    help = "Export the campaign's aggregates, train, register a model version and, if it wins, re-order the queue."

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True)

    def handle(self, *args, **options):
        campaign = Campaign.objects.filter(name=options["campaign"]).first()
        if campaign is None:
            raise CommandError(f"no campaign named {options['campaign']!r}")
        request = retrain_request(campaign=campaign, reason="manual (command)")
        if not request.started:
            raise CommandError(f"version {request.version.pk} is already {request.version.status} for this campaign")
        if retrain_run(version_id=request.version.pk) is None:
            raise CommandError(f"version {request.version.pk} is already running or finished")
        version = request.version
        version.refresh_from_db()
        self.stdout.write(
            f"version {version.pk}: {version.status}, dev combined {version.combined_metric}, "
            f"active={version.is_active}, {version.duration_s:.1f} s {version.error}"
        )
