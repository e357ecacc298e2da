"""Query counts of the rater's two hot paths and of every list endpoint (Zulip's habit).

Each test runs its request once over one row and once over many, under the same bound. A
bound that holds for one row and for MANY rows does not grow with the rows: an N+1 would need
MANY - 1 more queries. The bounds are the counts measured when they were written, so a new
query on these paths fails here and has to be argued for (raise the bound in the same change).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from aggregation.dashboard import tasks as dashboard_tasks
from aggregation.exports.models import ExportJob
from aggregation.learning.models import ItemPrediction, ModelVersion, Strategy
from aggregation.services import item_aggregates_recompute
from annotation.models import Annotation, Assignment, AssignmentState
from annotation.services import AnnotationInput, annotation_submit, assignment_next, campaign_add_raters
from richhf_site.auth import token_create
from tests.conftest import api_client_for, submitted_annotation, valid_submission

pytestmark = pytest.mark.django_db

MANY = 8
ONE_AND_MANY = pytest.mark.parametrize("n", [1, MANY], ids=["one", "many"])

# Measured counts (see the module docstring). Rater paths first, then the list endpoints.
# Inside a test's transaction, atomic() shows as SAVEPOINT/RELEASE and counts (in production
# it is BEGIN/COMMIT, which count too); pages count their session and user look-ups. The rater
# hot paths authenticate as a rater's page does, with an API token, whose look-up also reads
# the roles. Their counts:
# - next_item_one (one request leasing one item): token + roles; SAVEPOINT; the lock statement
#   (membership check, campaign, standing, the rater's lock, and the queue walk that locks the
#   first free item, SKIP LOCKED); the insert, which recounts the item's slots and the rater's
#   live leases under both locks and returns the item's row; RELEASE; the lease payload hook
#   (learning's suggestions). 6, the bound. (annotation/services.py: _lock_membership_and_walk,
#   _lease_fast; the race test and its mutation checks cover the two rechecks in the insert.)
# - next_item_lease: the same with lookahead 1, so a second queue walk and insert.
# - next_item_held: token, SAVEPOINT, lock, held leases, RELEASE, suggestions.
# - submit (of the k-th answer): token; SAVEPOINT; the assignment and item locked with the
#   membership check; the answer's insert with the assignment's update (one WITH statement);
#   the item's recount-and-complete (UPDATE ... RETURNING); RELEASE.
MAX_QUERIES = {
    "next_item_one": 6,
    "next_item_lease": 8,
    "next_item_held": 6,
    "submit": 6,
    "my_assignments": 3,
    "campaigns_rater": 2,
    "campaigns_lead": 2,
    "home_page": 4,
    "campaign_aggregates": 4,
    "export_jobs": 3,
    "dashboard_stats": 3,
    "dashboard_stats_csv": 2,
    "dashboard_page": 6,
    "dashboard_item": 3,
    "dashboard_item_page": 4,
    "learning_versions": 3,
    "learning_queue": 4,
    "learning_page": 8,
}

SCORES = {"plausibility": 4, "alignment": 3, "aesthetics": 5, "overall": 4}


def _predict(version: ModelVersion, item, rank: int) -> ItemPrediction:
    # File names only: these paths never open the prediction's maps.
    return ItemPrediction.objects.create(
        item=item,
        version=version,
        scores={"plausibility": 0.5},
        misaligned_indices=[1],
        implausibility_map=f"predictions/i{item.pk}.png",
        misalignment_map=f"predictions/m{item.pk}.png",
        strategy=Strategy.UNCERTAINTY,
        acquisition=0.5,
        queue_rank=rank,
    )


def _version(campaign, **kwargs) -> ModelVersion:
    return ModelVersion.objects.create(campaign=campaign, status="done", combined_metric=0.3, **kwargs)


def _submitted(item, user) -> Annotation:
    return submitted_annotation(item, user, scores=tuple(SCORES.values()), words=[1], implausible=[[0.5, 0.5]])


def _page_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def suggesting_campaign(make_campaign, make_item, make_user):
    """suggesting_campaign(n_items) -> (campaign, rater): suggestions on, every item predicted."""

    def make(n_items: int):
        campaign = make_campaign("suggesting", show_suggestions=True)
        rater = make_user("rater", "rater")
        campaign_add_raters(campaign=campaign, users=[rater])
        version = _version(campaign, is_active=True)
        for rank in range(n_items):
            _predict(version, make_item(campaign), rank)
        return campaign, rater

    return make


# --------------------------------------------------------------------------- rater hot paths


def _token_client(user) -> APIClient:
    """A client that authenticates as a rater's page does, with an API token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_create(user=user).key}")
    return client


@pytest.mark.parametrize("n_items", [1, MANY], ids=["one", "many"])
def test_next_item_leasing_one_item_in_constant_queries(n_items, suggesting_campaign, django_assert_max_num_queries):
    campaign, rater = suggesting_campaign(n_items)
    client = _token_client(rater)
    with django_assert_max_num_queries(MAX_QUERIES["next_item_one"]):
        response = client.post(reverse("api:next-item", args=[campaign.pk]), {}, format="json")
    body = response.json()
    assert body["status"] == "leased" and body["upcoming"] == []
    assert body["assignment"]["suggestion"]["misaligned_words"] == [1]
    # The item comes back from the lease's own statement (raw row): the same payload as the ORM's.
    lease = Assignment.objects.select_related("item").get(pk=body["assignment"]["id"])
    assert lease.rater == rater and lease.state == AssignmentState.LEASED
    assert body["assignment"]["item"]["words"] == lease.item.words and isinstance(lease.item.words, list)
    assert body["assignment"]["item"]["prompt"] == lease.item.prompt


def test_next_item_in_a_campaign_without_suggestions_skips_the_predictions_query(
    make_campaign, make_item, make_user, django_assert_max_num_queries
):
    """Suggestions are off by default: the lease payload hook then asks nothing (the lease's
    campaign is already in memory), so a plain lease costs one query less than the bound."""
    campaign = make_campaign("plain")
    rater = make_user("rater", "rater")
    campaign_add_raters(campaign=campaign, users=[rater])
    version = _version(campaign, is_active=True)
    _predict(version, make_item(campaign), 0)  # a prediction exists but must not be shown
    client = _token_client(rater)
    with django_assert_max_num_queries(MAX_QUERIES["next_item_one"] - 1) as captured:
        response = client.post(reverse("api:next-item", args=[campaign.pk]), {}, format="json")
    body = response.json()
    assert body["status"] == "leased" and body["assignment"]["suggestion"] is None
    assert not any("learning_itemprediction" in q["sql"] for q in captured.captured_queries)


@pytest.mark.parametrize("n_items", [2, MANY], ids=["two", "many"])
def test_next_item_leases_in_queries_independent_of_campaign_size(
    n_items, suggesting_campaign, django_assert_max_num_queries
):
    campaign, rater = suggesting_campaign(n_items)
    client = _token_client(rater)
    with django_assert_max_num_queries(MAX_QUERIES["next_item_lease"]):
        response = client.post(reverse("api:next-item", args=[campaign.pk]), {"lookahead": 1}, format="json")
    body = response.json()
    assert body["status"] == "leased" and len(body["upcoming"]) == 1
    assert body["assignment"]["suggestion"]["misaligned_words"] == [1]
    assert body["upcoming"][0]["suggestion"]["misaligned_words"] == [1]


@pytest.mark.parametrize(("n_leases", "lookahead"), [(1, 0), (2, 1)], ids=["one", "two"])
def test_next_item_returns_held_leases_with_suggestions_in_constant_queries(
    n_leases, lookahead, suggesting_campaign, django_assert_max_num_queries
):
    campaign, rater = suggesting_campaign(n_leases)
    client = _token_client(rater)
    url = reverse("api:next-item", args=[campaign.pk])
    first = client.post(url, {"lookahead": lookahead}, format="json").json()
    with django_assert_max_num_queries(MAX_QUERIES["next_item_held"]):
        body = client.post(url, {"lookahead": lookahead}, format="json").json()
    assert body == first  # the same leases, suggestions included
    leases = [body["assignment"], *body["upcoming"]]
    assert len(leases) == n_leases and all(lease["suggestion"] for lease in leases)


@pytest.mark.parametrize("k", [1, MANY], ids=["one", "many"])
def test_submit_of_the_kth_answer_in_queries_independent_of_k(
    k, make_campaign, make_item, make_user, django_assert_max_num_queries
):
    campaign = make_campaign("submit", raters_per_item=k)
    item = make_item(campaign)
    users = [make_user(f"r{i}", "rater") for i in range(k)]
    campaign_add_raters(campaign=campaign, users=users)
    for user in users[:-1]:
        lease = assignment_next(rater=user, campaign=campaign).assignment
        annotation_submit(assignment_id=lease.pk, rater=user, data=AnnotationInput(scores=SCORES))
    last = assignment_next(rater=users[-1], campaign=campaign).assignment
    client = _token_client(users[-1])
    with django_assert_max_num_queries(MAX_QUERIES["submit"]):
        response = client.post(reverse("api:submit", args=[last.pk]), valid_submission(), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["assignment"]["annotation"]["overall"] == 4
    item.refresh_from_db()
    assert item.n_submitted == k and item.completed_at is not None


# --------------------------------------------------------------------------- annotation lists


@ONE_AND_MANY
def test_my_assignments_list(n, suggesting_campaign, django_assert_max_num_queries):
    campaign, rater = suggesting_campaign(n)
    now = timezone.now()
    states = [AssignmentState.LEASED, AssignmentState.SUBMITTED, AssignmentState.SKIPPED]
    for i, item in enumerate(campaign.items.order_by("id")):
        state = states[i % 3]
        if state == AssignmentState.SUBMITTED:
            _submitted(item, rater)
        else:
            Assignment.objects.create(
                item=item,
                rater=rater,
                state=state,
                leased_at=now,
                expires_at=now + timedelta(minutes=30),
                skip_reason="unclear" if state == AssignmentState.SKIPPED else "",
            )
    with django_assert_max_num_queries(MAX_QUERIES["my_assignments"]):
        response = api_client_for(rater).get(reverse("api:my-assignments"))
    rows = response.json()["results"]
    assert len(rows) == n
    assert {row["state"]: bool(row["suggestion"]) for row in rows}["leased"] is True
    assert all(row["annotation"]["overall"] == 4 for row in rows if row["state"] == "submitted")


@ONE_AND_MANY
def test_campaign_list_for_a_rater_and_a_lead(n, make_campaign, make_user, django_assert_max_num_queries):
    rater, lead = make_user("rater", "rater"), make_user("lead", "lead")
    for i in range(n):
        campaign_add_raters(campaign=make_campaign(f"c{i}"), users=[rater])
    make_campaign("not-invited")
    with django_assert_max_num_queries(MAX_QUERIES["campaigns_rater"]):
        mine = api_client_for(rater).get(reverse("api:campaign-list")).json()
    with django_assert_max_num_queries(MAX_QUERIES["campaigns_lead"]):
        everything = api_client_for(lead).get(reverse("api:campaign-list")).json()
    assert len(mine) == n and len(everything) == n + 1
    page_client = _page_client(lead)
    with django_assert_max_num_queries(MAX_QUERIES["home_page"]):
        page = page_client.get(reverse("home"))
    assert page.status_code == 200 and "not-invited" in page.content.decode()


# --------------------------------------------------------------------------- aggregation lists


@ONE_AND_MANY
def test_campaign_aggregates_list(n, make_campaign, make_item, make_user, django_assert_max_num_queries):
    campaign = make_campaign("agg", raters_per_item=1, heatmap_width=16, heatmap_height=16)
    rater = make_user("rater", "rater")
    items = [make_item(campaign) for _ in range(n)]
    for item in items:
        _submitted(item, rater)
        item.completed_at = timezone.now()
        item.save(update_fields=["completed_at"])
    assert item_aggregates_recompute(item_ids=[item.pk for item in items]).computed
    client = api_client_for(make_user("lead", "lead"))
    with django_assert_max_num_queries(MAX_QUERIES["campaign_aggregates"]):
        response = client.get(reverse("aggregation:campaign-aggregates", args=[campaign.pk]))
    rows = response.json()["results"]
    assert len(rows) == n and all(row["is_current"] and row["words"] for row in rows)


@ONE_AND_MANY
def test_export_job_list(n, make_campaign, make_user, django_assert_max_num_queries):
    campaign, admin = make_campaign("exports"), make_user("admin", "admin")
    for i in range(n):
        ExportJob.objects.create(
            campaign=campaign, format="jsonl", requested_by=admin, status="succeeded" if i % 2 == 0 else "queued"
        )
    with django_assert_max_num_queries(MAX_QUERIES["export_jobs"]):
        response = api_client_for(admin).get(reverse("exports:campaign-exports", args=[campaign.pk]))
    jobs = response.json()
    assert len(jobs) == n and all(job["campaign"] == "exports" for job in jobs)
    assert jobs[-1]["download_url"] and jobs[-1]["download_url"].endswith("/download/")


# --------------------------------------------------------------------------- dashboard


@ONE_AND_MANY
def test_dashboard_stats_pages_and_item_compare(n, make_campaign, make_item, make_user, django_assert_max_num_queries):
    campaign = make_campaign("dash")
    users = [make_user(f"r{i}", "rater") for i in range(n)]
    items = [make_item(campaign) for _ in range(n)]
    for item in items:
        for user in users:
            _submitted(item, user)
    dashboard_tasks.recompute_campaign_stats.run(campaign.pk)
    lead = make_user("lead", "lead")
    client, page_client = api_client_for(lead), _page_client(lead)

    with django_assert_max_num_queries(MAX_QUERIES["dashboard_stats"]):
        stats = client.get(reverse("dashboard:api-stats", args=[campaign.pk]))
    assert len(stats.json()["stats"]["raters"]) == n
    with django_assert_max_num_queries(MAX_QUERIES["dashboard_stats_csv"]):
        table = client.get(reverse("dashboard:api-stats-csv", args=[campaign.pk]), {"table": "raters"})
    assert len(table.content.decode().strip().splitlines()) == 1 + n
    with django_assert_max_num_queries(MAX_QUERIES["dashboard_page"]):
        assert page_client.get(reverse("dashboard:campaign", args=[campaign.pk])).status_code == 200
    with django_assert_max_num_queries(MAX_QUERIES["dashboard_item"]):
        compare = client.get(reverse("dashboard:api-item", args=[items[0].pk]))
    assert [rater["username"] for rater in compare.json()["raters"]] == [user.username for user in users]
    with django_assert_max_num_queries(MAX_QUERIES["dashboard_item_page"]):
        assert page_client.get(reverse("dashboard:item", args=[items[0].pk])).status_code == 200


# --------------------------------------------------------------------------- learning


@ONE_AND_MANY
def test_learning_versions_queue_and_page(n, make_campaign, make_item, make_user, django_assert_max_num_queries):
    campaign = make_campaign("learning")
    versions = [_version(campaign) for _ in range(n)]
    ModelVersion.objects.filter(pk=versions[-1].pk).update(is_active=True)
    for rank in range(n):
        _predict(versions[-1], make_item(campaign), rank)
    lead = make_user("lead", "lead")
    client = api_client_for(lead)
    with django_assert_max_num_queries(MAX_QUERIES["learning_versions"]):
        listed = client.get(reverse("learning:api-versions", args=[campaign.pk])).json()
    assert len(listed) == n
    with django_assert_max_num_queries(MAX_QUERIES["learning_queue"]):
        queue = client.get(reverse("learning:api-queue", args=[campaign.pk])).json()
    assert [row["rank"] for row in queue["head"]] == list(range(n))
    page_client = _page_client(lead)
    with django_assert_max_num_queries(MAX_QUERIES["learning_page"]):
        page = page_client.get(reverse("learning:campaign", args=[campaign.pk]))
    assert page.status_code == 200 and f"v{versions[-1].pk}" in page.content.decode()
