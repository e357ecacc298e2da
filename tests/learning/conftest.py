"""Fixtures for active learning: synthetic items with known truth, a training worker."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from django.conf import settings
from PIL import Image

from tests.conftest import ARTIFACTS, ROOT


@pytest.fixture
def synthetic_campaign(make_campaign):
    """A campaign of synthetic images (modeling.data.synthetic): 8 train + 4 dev items; dev
    items get priority 10 so they are annotated first (the dev metric needs them)."""
    from annotation.services import ItemInput, item_create
    from modeling.data.synthetic import generate_example

    def make(name: str = "al", n_train: int = 8, n_dev: int = 4, **campaign_kwargs):
        campaign = make_campaign(name, raters_per_item=3, **campaign_kwargs)
        rng = np.random.default_rng(7)
        items = []
        for i in range(n_train + n_dev):
            image, truth, _ = generate_example(rng, image_size=64)
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="PNG")
            split = "dev" if i >= n_train else "train"
            item, _ = item_create(
                campaign=campaign,
                data=ItemInput(image_bytes=buffer.getvalue(), filename=f"s{i}.png", prompt=truth.prompt, split=split,
                               priority=10.0 if split == "dev" else 0.0),
            )  # fmt: skip
            items.append(item)
        return campaign, items

    return make


def tiny_learning(campaign, **overrides):
    from aggregation.learning.services import learning_settings_update

    fields = {"strategy": "low_plausibility", "random_share": 0.0, "max_steps": 2, "batch_size": 4,
              "config_name": "tiny"}  # fmt: skip
    return learning_settings_update(campaign=campaign, **(fields | overrides))


@pytest.fixture(scope="session")
def training_worker(django_db_setup, redis_broker_url, tmp_path_factory):
    """A real worker that consumes only the "training" queue, on the test database. Tests
    set settings.MEDIA_ROOT = training_worker.media_root before creating items."""
    db = settings.DATABASES["default"]
    url = f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    var_dir = tmp_path_factory.mktemp("training-worker-var")
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": redis_broker_url,
        "RICHHF_VAR_DIR": str(var_dir),
        "DJANGO_MEDIA_ROOT": str(var_dir / "media"),
        "RICHHF_LEARNING_DIR": str(var_dir / "learning"),
        "OMP_NUM_THREADS": "1",
    }
    log = ARTIFACTS / f"celery-training-worker-{os.getpid()}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    handle = log.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "richhf_site", "worker", "-l", "INFO", "-c", "1", "-Q", "training",
         "--without-gossip", "--without-mingle", "-n", f"training-{os.getpid()}@%h"],
        cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    deadline = time.time() + 90
    while "ready." not in log.read_text():
        if proc.poll() is not None or time.time() > deadline:
            pytest.fail(f"training worker did not start; see {log}")
        time.sleep(0.3)
    proc.log = log  # type: ignore[attr-defined]
    proc.media_root = var_dir / "media"  # type: ignore[attr-defined]
    yield proc
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    handle.close()
