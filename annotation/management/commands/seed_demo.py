"""A demo campaign from real photographs shipped inside scikit-image, plus demo users."""

from __future__ import annotations

from pathlib import Path

import skimage
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from annotation.models import Campaign, Split
from annotation.services import ItemInput, campaign_add_raters, item_create
from richhf_site.roles import ADMIN, LEAD, RATER, user_add_role

DATA_DIR = Path(skimage.__file__).parent / "data"

# (file, prompt, category, photorealistic). Prompts marked MISMATCH say something the photo
# does not show, so the keyword task has real answers.
DEMO_ITEMS: list[tuple[str, str, str, bool]] = [
    (
        "astronaut.png",
        "A portrait of a smiling astronaut in a white spacesuit in front of an American flag",
        "people",
        True,
    ),
    ("chelsea.png", "A ginger tabby cat looking to the side, close-up photo", "animals", True),
    # MISMATCH: the cup and saucer are red, and there is no croissant.
    ("coffee.png", "A blue cup of coffee with a croissant on a white saucer", "food", True),
    # MISMATCH: one rocket, at dusk under floodlights.
    ("rocket.jpg", "Three rockets on a launch pad in bright daylight", "vehicles", True),
    ("motorcycle_left.png", "A red motorcycle parked in a garage, side view", "vehicles", True),
    ("camera.png", "A black and white photo of a man with a camera on a tripod", "people", True),
    (
        "horse.png",
        "A silhouette of a galloping horse with two riders",
        "animals",
        False,
    ),  # MISMATCH: standing, no riders
    ("coins.png", "Twenty-four old coins arranged in a grid on a dark background", "objects", True),
    ("hubble_deep_field.jpg", "Deep space photograph full of colourful galaxies", "space", True),
    ("retina.jpg", "A blue eye seen from the front with long eyelashes", "medical", True),  # MISMATCH: a retina scan
    ("brick.png", "A clean wall of grey bricks with white mortar", "textures", True),
    ("grass.png", "A field of green grass with three yellow flowers", "nature", True),  # MISMATCH: grey, no flowers
]

DEMO_USERS: list[tuple[str, str, str]] = [
    ("rater1", "rater1-demo-pass", RATER),
    ("rater2", "rater2-demo-pass", RATER),
    ("rater3", "rater3-demo-pass", RATER),
    ("lead", "lead-demo-pass", LEAD),
    ("admin", "admin-demo-pass", ADMIN),
]
DEMO_CAMPAIGN = "demo"


class Command(BaseCommand):
    help = "Create the demo campaign (real photos from scikit-image) and demo users; safe to run twice."

    def add_arguments(self, parser):
        parser.add_argument("--campaign", default=DEMO_CAMPAIGN)

    def handle(self, *args, **opts):
        User = get_user_model()
        with transaction.atomic():
            campaign, _ = Campaign.objects.get_or_create(
                name=opts["campaign"],
                defaults={
                    "description": "Real photographs from scikit-image with hand-written prompts, some deliberately wrong."
                },
            )
            users = {}
            for username, password, role in DEMO_USERS:
                user, user_created = User.objects.get_or_create(username=username)
                if user_created:
                    user.set_password(password)
                    user.is_staff = role == ADMIN
                    user.is_superuser = role == ADMIN
                    user.save()
                user_add_role(user=user, role=role)
                users[username] = user
            campaign_add_raters(campaign=campaign, users=[u for name, u in users.items() if name.startswith("rater")])
        created = 0
        for index, (filename, prompt, category, photo) in enumerate(DEMO_ITEMS):
            # Every fourth item goes to dev so exports and the model have a dev split to work with.
            split = Split.DEV if index % 4 == 3 else Split.TRAIN
            _, was_created = item_create(
                campaign=campaign,
                data=ItemInput(
                    image_bytes=(DATA_DIR / filename).read_bytes(),
                    filename=filename,
                    prompt=prompt,
                    source_id=filename,
                    category=category,
                    photorealistic=photo,
                    split=split,
                ),
            )
            created += was_created
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo campaign {campaign.name!r}: {created} new items, {campaign.items.count()} in all."
            )
        )
        self.stdout.write("Demo logins (username / password):")
        for username, password, role in DEMO_USERS:
            self.stdout.write(f"  {role:6} {username:7} / {password}")
