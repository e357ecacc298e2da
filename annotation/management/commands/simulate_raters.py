"""Simulated raters who annotate a campaign through the real API.

Each item gets a latent truth (a quality level, a few defect regions, some misaligned words)
drawn from a seed; each simulated rater sees it through their own bias and noise, so
dashboards, exports and benchmarks get realistic disagreement. Requests go through Django's
full request stack in-process by default, or over HTTP to a running server with --url.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import requests
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.test import Client
from rest_framework.authtoken.models import Token
from tqdm import tqdm

from annotation.models import Campaign
from annotation.services import campaign_add_raters
from richhf_site.roles import RATER, user_add_role


@dataclass
class RaterProfile:
    bias: float  # added to every Likert score before rounding
    noise: float  # score noise (standard deviation, Likert points)
    jitter: float  # click noise, as a fraction of the image side
    recall: float  # chance to mark a truly misaligned word / click a true defect
    false_word: float  # chance to mark an aligned word


def make_profile(rng: random.Random) -> RaterProfile:
    return RaterProfile(
        bias=rng.gauss(0, 0.35),
        noise=rng.uniform(0.3, 0.8),
        jitter=rng.uniform(0.005, 0.03),
        recall=rng.uniform(0.6, 0.95),
        false_word=rng.uniform(0.0, 0.05),
    )


@dataclass
class LatentTruth:
    quality: float
    defects: list[tuple[float, float]]
    misfits: list[tuple[float, float]]
    bad_words: set[int]


def latent_truth(item_id: int, n_words: int, seed: int) -> LatentTruth:
    rng = random.Random(f"{seed}:{item_id}")
    defects = [(rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9)) for _ in range(rng.choice([0, 0, 1, 1, 2, 3]))]
    bad_words = {i for i in range(n_words) if rng.random() < 0.1}
    misfits = [(rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9)) for _ in bad_words]
    quality = max(1.0, min(5.0, rng.gauss(3.4 - 0.5 * len(defects), 0.8)))
    return LatentTruth(quality, defects, misfits, bad_words)


def simulated_answer(truth: LatentTruth, n_words: int, profile: RaterProfile, rng: random.Random) -> dict:
    def clicks(centres):
        points = []
        for cx, cy in centres:
            if rng.random() > profile.recall:
                continue
            for _ in range(rng.randint(1, 3)):  # a few points cover a region (docs/protocol.md section 1)
                x = min(1.0, max(0.0, cx + rng.gauss(0, profile.jitter)))
                y = min(1.0, max(0.0, cy + rng.gauss(0, profile.jitter)))
                points.append([round(x, 5), round(y, 5)])
        return points

    def likert(centre: float) -> int:
        return int(min(5, max(1, round(centre + profile.bias + rng.gauss(0, profile.noise)))))

    words = sorted(
        i
        for i in range(n_words)
        if (i in truth.bad_words and rng.random() < profile.recall)
        or (i not in truth.bad_words and rng.random() < profile.false_word)
    )
    alignment_centre = 5.0 - 1.5 * len(truth.bad_words)
    return {
        "implausible_points": clicks(truth.defects),
        "misaligned_points": clicks(truth.misfits),
        "misaligned_words": words,
        "scores": {
            "plausibility": likert(truth.quality + 0.3),
            "alignment": likert(alignment_centre),
            "aesthetics": likert(truth.quality),
            "overall": likert((truth.quality + alignment_centre) / 2),
        },
        "time_spent_ms": int(rng.lognormvariate(10.3, 0.4)),
    }


class InProcessApi:
    """The API through Django's whole request stack (middleware, auth, views), no socket."""

    def __init__(self, user):
        self.client = Client()
        self.client.force_login(user)

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        response = self.client.post(path, body, content_type="application/json", HTTP_HOST="localhost")
        return response.status_code, response.json()


class HttpApi:
    def __init__(self, base_url: str, user):
        self.base = base_url.rstrip("/")
        self.session = requests.Session()
        token, _ = Token.objects.get_or_create(user=user)
        self.session.headers["Authorization"] = f"Token {token.key}"

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        response = self.session.post(self.base + path, json=body, timeout=60)
        return response.status_code, response.json()


class Command(BaseCommand):
    help = "Drive simulated raters through the real API until the campaign needs no more answers."

    def add_arguments(self, parser):
        parser.add_argument("--campaign", required=True)
        parser.add_argument(
            "--raters", type=int, default=5, help="number of simulated raters (at least raters_per_item)"
        )
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--max-items", type=int, default=None, help="stop after this many submissions")
        parser.add_argument("--url", default=None, help="base URL of a running server (default: in-process)")
        parser.add_argument("--skip-rate", type=float, default=0.0, help="chance that a rater skips an item")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **opts):
        campaign = Campaign.objects.filter(name=opts["campaign"]).first()
        if campaign is None:
            raise CommandError(f"no campaign named {opts['campaign']!r}")
        if opts["raters"] < campaign.raters_per_item:
            raise CommandError(f"--raters must be at least the campaign's raters_per_item ({campaign.raters_per_item})")
        rng = random.Random(opts["seed"])
        User = get_user_model()
        users = []
        for index in range(opts["raters"]):
            user, created = User.objects.get_or_create(username=f"sim-rater-{index + 1:02d}")
            if created:
                user.set_unusable_password()
                user.save()
            user_add_role(user=user, role=RATER)
            users.append(user)
        campaign_add_raters(campaign=campaign, users=users)
        apis = [HttpApi(opts["url"], u) if opts["url"] else InProcessApi(u) for u in users]
        profiles = [make_profile(random.Random(f"{opts['seed']}:{u.username}")) for u in users]

        needed = campaign.items.filter(completed_at__isnull=True).count() * campaign.raters_per_item
        budget = opts["max_items"] if opts["max_items"] is not None else needed
        bar = tqdm(total=min(budget, needed), desc="simulated answers", unit="ann", disable=opts["no_progress"])
        active = list(range(len(users)))
        submitted = skipped = 0
        next_path = f"/api/campaigns/{campaign.pk}/next/"
        while active and submitted < budget:
            progressed = False
            for index in list(active):
                status, body = apis[index].post(next_path, {})
                if status != 200:
                    raise CommandError(f"next item for {users[index].username}: HTTP {status} {body}")
                assignment = body["assignment"]
                if assignment is None:
                    if body["status"] == "done":
                        active.remove(index)
                    continue
                item = assignment["item"]
                if rng.random() < opts["skip_rate"]:
                    apis[index].post(f"/api/assignments/{assignment['id']}/skip/", {"reason": "simulated skip"})
                    skipped += 1
                    progressed = True
                    continue
                truth = latent_truth(item["id"], len(item["words"]), opts["seed"])
                answer = simulated_answer(truth, len(item["words"]), profiles[index], rng)
                status, body = apis[index].post(f"/api/assignments/{assignment['id']}/submit/", answer)
                if status not in (200, 201):
                    raise CommandError(f"submit for {users[index].username}: HTTP {status} {body}")
                submitted += 1
                progressed = True
                bar.update(1)
                if submitted >= budget:
                    break
            if not progressed and active:
                # Everyone left is waiting on leases held by people outside this simulation.
                break
        bar.close()
        left = campaign.items.filter(completed_at__isnull=True).count()
        self.stdout.write(
            self.style.SUCCESS(f"{submitted} answers submitted, {skipped} skipped; {left} items still need raters.")
        )
