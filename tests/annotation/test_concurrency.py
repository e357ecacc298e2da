"""Many raters at once against a live server on PostgreSQL: exactly k distinct raters per item."""

import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from rest_framework.authtoken.models import Token

from annotation.models import Annotation, Assignment, AssignmentState
from annotation.services import campaign_add_raters
from tests.conftest import valid_submission

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

N_RATERS = 16
N_ITEMS = 60
K = 3


def test_sixteen_concurrent_raters_fill_every_item_exactly_k_times(live_server, make_user, make_campaign, make_item):
    campaign = make_campaign("race", raters_per_item=K)
    items = [make_item(campaign, prompt=f"item number {i} with a cat") for i in range(N_ITEMS)]
    users = [make_user(f"racer{i:02d}", "rater") for i in range(N_RATERS)]
    campaign_add_raters(campaign=campaign, users=users)
    tokens = {u.username: Token.objects.create(user=u).key for u in users}
    accepted: list[tuple[str, int]] = []
    statuses: Counter = Counter()
    lock = threading.Lock()
    base = live_server.url

    def rater(username: str, seed: int) -> None:
        rng = random.Random(seed)
        session = requests.Session()
        session.headers["Authorization"] = f"Token {tokens[username]}"
        next_url = f"{base}/api/campaigns/{campaign.pk}/next/"
        idle_rounds = 0
        while idle_rounds < 40:
            # Impatient raters double-click: two "next" requests at once must give one lease.
            if rng.random() < 0.2:
                with ThreadPoolExecutor(2) as pair:
                    responses = list(pair.map(lambda _: session.post(next_url, json={}, timeout=60), range(2)))
                ids = {r.json()["assignment"]["id"] for r in responses if r.json().get("assignment")}
                assert len(ids) <= 1, f"{username} got two leases from a double click: {ids}"
                response = responses[0]
            else:
                response = session.post(next_url, json={"lookahead": rng.choice([0, 1])}, timeout=60)
            with lock:
                statuses[response.status_code] += 1
            assert response.status_code == 200, response.text
            body = response.json()
            if body["status"] == "done":
                return
            if body["status"] == "busy":
                idle_rounds += 1
                continue
            idle_rounds = 0
            assignment = body["assignment"]
            if rng.random() < 0.05:
                r = session.post(
                    f"{base}/api/assignments/{assignment['id']}/skip/", json={"reason": "load test"}, timeout=60
                )
                with lock:
                    statuses[r.status_code] += 1
                continue
            r = session.post(
                f"{base}/api/assignments/{assignment['id']}/submit/",
                json=valid_submission(misaligned_words=[]),
                timeout=60,
            )
            with lock:
                statuses[r.status_code] += 1
                if r.status_code == 201:
                    accepted.append((username, assignment["id"]))
            assert r.status_code in (201, 409), r.text

    with ThreadPoolExecutor(N_RATERS) as pool:
        futures = [pool.submit(rater, u.username, i) for i, u in enumerate(users)]
        for future in futures:
            future.result()

    assert not [code for code in statuses if code >= 500], statuses
    for item in items:
        raters = list(Annotation.objects.filter(item=item).values_list("rater__username", flat=True))
        assert len(raters) == K and len(set(raters)) == K, (item.pk, raters)
        item.refresh_from_db()
        assert item.completed_at is not None
    # No lost submission: every 201 the clients saw is a stored annotation, and nothing more.
    stored = set(Annotation.objects.values_list("assignment_id", flat=True))
    assert stored == {assignment_id for _, assignment_id in accepted}
    assert len(stored) == N_ITEMS * K
    # Leases held by lookahead on nothing-left items were released by the end, or are open
    # leases on complete items no one else needed: neither counts.
    assert not Assignment.objects.filter(state=AssignmentState.SUBMITTED).exclude(annotation__isnull=False).exists()
