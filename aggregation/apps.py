from django.apps import AppConfig


class AggregationConfig(AppConfig):
    name = "aggregation"
    verbose_name = "Aggregation"

    def ready(self) -> None:
        # annotation imports nothing from aggregation: it announces a completed item through
        # its hook, after the commit that completes it, and aggregation enqueues the item here.
        from annotation import hooks

        from .tasks import item_completed_enqueue

        hooks.item_completed_connect(name="aggregation.aggregate_item", receiver=item_completed_enqueue)
