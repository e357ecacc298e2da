"""A small crowd written straight to the database: careful raters near a hidden truth and one
spammer (random answers, fast), on items that complete with k answers."""

import random

from django.utils import timezone

from annotation.models import Item
from tests.conftest import submitted_annotation


def careful_and_spammer_crowd(campaign, careful, spammer, make_item, n_items=12, seed=1):
    rng = random.Random(seed)
    items = []
    for n in range(n_items):
        item = make_item(campaign, prompt=f"a red cat and a blue dog number {n}")
        truth = [rng.randint(2, 4) for _ in range(4)]
        word = rng.randrange(len(item.words))
        point = (rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.8))
        for user in [*careful[:2], spammer]:
            if user is spammer:
                submitted_annotation(
                    item,
                    user,
                    scores=[rng.randint(1, 5) for _ in range(4)],
                    words=rng.sample(range(len(item.words)), 3),
                    implausible=[(rng.random(), rng.random())],
                    time_ms=1000,
                )
            else:
                submitted_annotation(
                    item,
                    user,
                    scores=[max(1, min(5, s + rng.choice([0, 0, 1, -1]))) for s in truth],
                    words=[word],
                    implausible=[(point[0] + rng.gauss(0, 0.01), point[1])],
                    time_ms=rng.randint(20_000, 30_000),
                )
        Item.objects.filter(pk=item.pk).update(n_submitted=3, completed_at=timezone.now())
        careful = careful[1:] + careful[:1]
        items.append(item)
    return items
