"""Fixtures for active learning: synthetic items with known truth, a training worker."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.conf import settings
from PIL import Image

from tests.conftest import start_celery_worker, stop_celery_worker


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
                data=ItemInput(
                    image_bytes=buffer.getvalue(),
                    filename=f"s{i}.png",
                    prompt=truth.prompt,
                    split=split,
                    priority=10.0 if split == "dev" else 0.0,
                ),
            )
            items.append(item)
        return campaign, items

    return make


def tiny_learning(campaign, **overrides):
    from aggregation.learning.services.settings import learning_settings_update

    fields = {
        "strategy": "low_plausibility",
        "random_share": 0.0,
        "max_steps": 2,
        "batch_size": 4,
        "config_name": "tiny",
    }
    return learning_settings_update(campaign=campaign, **(fields | overrides))


@pytest.fixture(scope="session")
def training_worker(celery_worker_proc, tmp_path_factory):
    """A real worker on this run's training queue, on the test database. It shares the media
    folder of the default queue's worker (which aggregates what the simulated raters submit),
    so tests set settings.MEDIA_ROOT = training_worker.media_root before creating items."""
    var_dir = tmp_path_factory.mktemp("training-worker-var")
    proc = start_celery_worker(
        name="training",
        queues=[settings.RICHHF_TRAINING_QUEUE],
        var_dir=var_dir,
        media_root=celery_worker_proc.media_root,
        extra_env={"RICHHF_LEARNING_DIR": str(var_dir / "learning"), "OMP_NUM_THREADS": "1"},
        concurrency=1,
    )
    yield proc
    stop_celery_worker(proc)
