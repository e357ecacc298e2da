"""A small campaign for the lead pages' browser tests: three generators, photos from
scikit-image's own files, three raters per item through the database, aggregates computed by
the real service, an active model with predictions for the unrated items, and one gold item
(which no statistic may count)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image

from aggregation.dashboard.services import campaign_stats_recompute
from aggregation.learning.models import ItemPrediction, ModelVersion
from aggregation.services.aggregates import item_aggregate_upsert
from annotation.models import Campaign, Item
from annotation.services import ItemInput, campaign_add_raters, item_create
from modeling.heatmaps import encode_heatmap_png
from tests.conftest import submitted_annotation

GENERATORS = {"SDXL": 3.9, "Imagen": 3.3, "Muse": 2.6}  # mean rating each generator's images get
PROMPTS = [
    "an astronaut holding a flag in front of a rocket",
    "a ginger cat sitting on a red sofa",
    "a cup of coffee with latte art on a wooden table",
    "a rocket launching at dawn over the sea",
]


def _photos() -> list[np.ndarray]:
    from skimage import data

    return [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]


def _png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def _blob(rng: np.random.Generator, size: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:size, 0:size] / size
    cx, cy = rng.uniform(0.25, 0.75, 2)
    return np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / 0.02).astype(np.float32)


@dataclass
class World:
    campaign: Campaign
    raters: list
    lead: object
    admin: object
    rated: list[Item]
    unrated: list[Item]
    gold: Item
    version: ModelVersion | None


def prediction_create(*, item: Item, version: ModelVersion, rng: np.random.Generator, plausibility: float) -> None:
    row = ItemPrediction(
        item=item,
        version=version,
        scores={"plausibility": plausibility, "alignment": 0.6, "aesthetics": 0.55, "overall": plausibility * 0.9},
        strategy="uncertainty",
        acquisition=float(rng.random()),
        queue_rank=0,
    )
    row.implausibility_map.save(f"p{item.pk}-i.png", ContentFile(encode_heatmap_png(_blob(rng))), save=False)
    row.misalignment_map.save(f"p{item.pk}-m.png", ContentFile(encode_heatmap_png(_blob(rng))), save=False)
    row.save()


def build_world(make_user, *, per_generator: int = 6, unrated_per_generator: int = 2, with_model: bool = True) -> World:
    rng = np.random.default_rng(11)
    campaign = Campaign.objects.create(name="Cats, rockets and coffee", raters_per_item=3)
    raters = [make_user(name, "rater") for name in ("ana", "ben", "chloe")]
    campaign_add_raters(campaign=campaign, users=raters)
    lead = make_user("lead", "lead")
    admin = make_user("admin", "admin")
    photos = _photos()
    version = None
    if with_model:
        version = ModelVersion.objects.create(
            campaign=campaign,
            status="done",
            is_active=True,
            activated_by="rule",
            combined_metric=1.21,
            data_counts={"train": 14, "dev": 4},
            dev_metrics={
                "combined": 1.21,
                "scores": {
                    "plausibility": {"plcc": 0.62, "srcc": 0.57, "n": 40},
                    "alignment": {"plcc": 0.41, "srcc": 0.38, "n": 40},
                    "aesthetics": {"plcc": 0.55, "srcc": 0.52, "n": 40},
                    "overall": {"plcc": 0.58, "srcc": 0.55, "n": 40},
                },
            },
        )
    rated: list[Item] = []
    unrated: list[Item] = []
    n = 0

    def new_item(generator: str) -> Item:
        nonlocal n
        n += 1
        photo = photos[n % len(photos)]
        h, w = photo.shape[:2]
        crop = photo[(n * 7) % (h // 4) :, (n * 11) % (w // 4) :][: h * 3 // 4, : w * 3 // 4]
        image = np.asarray(Image.fromarray(crop).resize((320, 240)))
        item, _ = item_create(
            campaign=campaign,
            data=ItemInput(image_bytes=_png(image), filename=f"img{n}.png", prompt=PROMPTS[n % len(PROMPTS)]),
        )
        Item.objects.filter(pk=item.pk).update(generator=generator)
        item.generator = generator
        return item

    for generator, mean in GENERATORS.items():
        for _ in range(per_generator):
            item = new_item(generator)
            for rater in raters:
                scores = tuple(int(v) for v in np.clip(np.rint(rng.normal(mean, 0.6, 4)), 1, 5))
                k = int(rng.integers(0, 3)) if mean < 3.5 else int(rng.integers(0, 2))
                implausible = [tuple(rng.uniform(0.3, 0.7, 2)) for _ in range(k)]
                misaligned = [tuple(rng.uniform(0.2, 0.8, 2)) for _ in range(int(rng.integers(0, 2)))]
                words = [1] if rng.random() < 0.6 else [1, 2]
                submitted_annotation(
                    item, rater, scores=scores, implausible=implausible, misaligned=misaligned, words=words
                )
            Item.objects.filter(pk=item.pk).update(completed_at=timezone.now())
            assert item_aggregate_upsert(item_id=item.pk) is not None
            rated.append(item)
        for _ in range(unrated_per_generator):
            item = new_item(generator)
            if version is not None:
                prediction_create(item=item, version=version, rng=rng, plausibility=(mean - 1) / 4)
            unrated.append(item)
    gold = new_item("SDXL")
    Item.objects.filter(pk=gold.pk).update(is_gold=True)
    for rater in raters:
        submitted_annotation(gold, rater, scores=(1, 1, 1, 1))
    campaign_stats_recompute(campaign_id=campaign.pk)
    return World(campaign, raters, lead, admin, rated, unrated, gold, version)


def watch_csp(page) -> list[str]:
    """Collects the page's Content-Security-Policy violations (Chromium logs each as a console
    error "Refused to ..."); a test asserts the list stays empty."""
    seen: list[str] = []
    page.on("console", lambda m: m.type == "error" and "Content Security Policy" in m.text and seen.append(m.text))
    return seen
