"""`make demo` runs on SQLite with the filesystem broker. The services behind the leads' pages
must work there too: the dashboard recompute once used a PostgreSQL-only JSON function and
failed only in the demo, where no test looked."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

SCRIPT = """
import json
from annotation.models import Campaign
from annotation.services import AnnotationInput, annotation_submit, assignment_next
from django.contrib.auth import get_user_model
from aggregation.dashboard.services.recompute import campaign_stats_recompute
from aggregation.quality.models import QualityRun
from aggregation.quality.services.recompute import quality_run_execute
from aggregation.services import item_aggregates_recompute

campaign = Campaign.objects.get(name="demo")
users = get_user_model().objects.filter(username__in=["rater1", "rater2", "rater3"]).order_by("username")
item_ids = set()
for n, rater in enumerate(users):
    for _ in range(2):
        lease = assignment_next(rater=rater, campaign=campaign).assignment
        item_ids.add(lease.item_id)
        annotation_submit(
            assignment_id=lease.pk,
            rater=rater,
            data=AnnotationInput(
                implausible_points=[[0.2 + n / 10, 0.3]], misaligned_points=[], misaligned_words=[0],
                scores={"plausibility": 2 + n, "alignment": 3, "aesthetics": 4, "overall": 3},
                time_spent_ms=20000,
            ),
        )
item_aggregates_recompute(item_ids=sorted(item_ids))
stats = campaign_stats_recompute(campaign_id=campaign.pk)
# The answers above queued a (debounced) run already: execute that one, as the worker would.
run = QualityRun.objects.filter(campaign=campaign, state="queued").first() or QualityRun.objects.create(
    campaign=campaign
)
quality_run_execute(run_id=run.pk)
run.refresh_from_db()
print(json.dumps({"annotations": stats.payload["progress"]["annotations"], "quality": run.state}))
"""


def test_dashboard_and_quality_recompute_on_the_demo_database(tmp_path):
    env = {
        **os.environ,
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
        "RICHHF_VAR_DIR": str(tmp_path / "var"),
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    for args in (["migrate", "-v", "0"], ["seed_demo"]):
        subprocess.run([*manage, *args], env=env, cwd=ROOT, check=True, capture_output=True, timeout=300)
    done = subprocess.run(
        [*manage, "shell", "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"annotations": 6, "quality": "done"}
