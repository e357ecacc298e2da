"""End to end on a real Celery worker (Redis broker, PostgreSQL): three raters submit through
the API, and the aggregate appears in the database and on disk with the expected values."""

import numpy as np
import pytest
from django.urls import reverse

from aggregation.models import ItemAggregate
from modeling.heatmaps import RasterGeometry
from modeling.heatmaps import decode_heatmap_png as decode_png
from tests.conftest import api_client_for, valid_submission, wait_for

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def expected_map(points_per_rater, geometry: RasterGeometry) -> np.ndarray:
    """The definition evaluated on the whole grid (no windows), then averaged and scaled."""
    counts = np.zeros((geometry.out_height, geometry.out_width), dtype=np.int64)
    for points in points_per_rater:
        mask = np.zeros_like(counts, dtype=bool)
        for x, y in points:
            dx = geometry.col_centres - x * geometry.image_width
            dy = geometry.row_centres - y * geometry.image_height
            mask |= (dx * dx)[None, :] <= (geometry.radius * geometry.radius - dy * dy)[:, None]
        counts += mask
    return np.floor(counts * 255 / len(points_per_rater) + 0.5).astype(np.uint8)


@pytest.mark.django_db(transaction=True)
def test_three_submissions_through_the_api_produce_the_aggregate(
    celery_worker_proc, raters, make_item, make_user, settings
):
    settings.MEDIA_ROOT = celery_worker_proc.media_root  # the worker writes, we read
    campaign, users = raters
    item = make_item(campaign, prompt="a yellow cat on a red sofa", width=96, height=64)
    answers = [
        valid_submission(implausible_points=[[0.25, 0.5], [0.75, 0.25]], misaligned_words=[1, 5]),
        valid_submission(
            implausible_points=[[0.25, 0.5]],
            misaligned_words=[1],
            scores={"plausibility": 2, "alignment": 3, "aesthetics": 5, "overall": 4},
        ),
        valid_submission(implausible_points=[[0.26, 0.5]], misaligned_points=[[0.0, 1.0]], misaligned_words=[]),
    ]
    for user, body in zip(users, answers, strict=True):
        client = api_client_for(user)
        leased = client.post(reverse("api:next-item", args=[campaign.pk]), {}, format="json").json()
        assert leased["assignment"]["item"]["id"] == item.pk
        response = client.post(reverse("api:submit", args=[leased["assignment"]["id"]]), body, format="json")
        assert response.status_code == 201, response.content

    agg = wait_for(lambda: ItemAggregate.objects.filter(item=item).first(), timeout=30, what="the aggregate row")
    assert agg.n_annotations == 3
    assert agg.plausibility_mean == pytest.approx(10 / 3)
    assert agg.plausibility_normalised == pytest.approx(7 / 12)
    assert agg.plausibility_maxdiff == 0.5
    assert agg.word_votes == [0, 2, 0, 0, 0, 1, 0]
    assert agg.prompt_misalignment_label == "1 0 1 1 1 1 1"
    assert agg.tagged_target == "a yellow_0 cat on a red sofa"

    geometry = RasterGeometry(96, 64, 512, 512, 1 / 20)
    implausibility = decode_png((celery_worker_proc.media_root / agg.implausibility_map.name).read_bytes())
    want = expected_map([p["implausible_points"] for p in answers], geometry)
    assert np.array_equal(implausibility, want)
    # Spot checks a reader can verify by eye: all three near (0.25, 0.5); rater 1 alone at
    # (0.75, 0.25); nothing in the corners.
    assert implausibility[256, 128] == 255 and implausibility[128, 384] == 85 and implausibility[0, 0] == 0
    assert set(np.unique(implausibility).tolist()) <= {0, 85, 170, 255}
    misalignment = decode_png((celery_worker_proc.media_root / agg.misalignment_map.name).read_bytes())
    assert np.array_equal(misalignment, expected_map([p["misaligned_points"] for p in answers], geometry))
    assert misalignment[511, 0] == 85 and agg.misalignment_points == 1

    # A lead reads it through the API, PNG included.
    lead = api_client_for(make_user("lead1", "lead"))
    body = lead.get(reverse("aggregation:item-aggregate", args=[item.pk])).json()
    assert body["prompt_misalignment_label"] == "1 0 1 1 1 1 1"
    png = lead.get(body["heatmaps"]["implausibility"]["url"])
    assert png.status_code == 200
    assert np.array_equal(decode_png(b"".join(png.streaming_content)), want)
