"""The events a webhook endpoint can subscribe to: one home for their names."""

from django.db import models


class Event(models.TextChoices):
    ITEM_COMPLETED = "item.completed", "An item received its k-th answer"
    EXPORT_FINISHED = "export.finished", "An export job succeeded"
    MODEL_ACTIVATED = "model.activated", "A model version became the campaign's active one"
    # Reserved for rater quality control: accepted in an endpoint's event list so that
    # subscriptions can be made now; nothing emits it yet.
    RATER_PAUSED = "rater.paused", "A rater was paused by quality control"


EVENT_NAMES: tuple[str, ...] = tuple(Event.values)
