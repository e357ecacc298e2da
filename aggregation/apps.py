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

        # A Celery worker's parent loads the compiled rasteriser before it forks its pool, so
        # no child pays numba's load (or compile) on its first aggregate (issue 16).
        from celery.signals import worker_init

        worker_init.connect(_warm_rasteriser, weak=False, dispatch_uid="aggregation.warm_rasteriser")


def _warm_rasteriser(**_: object) -> None:
    from .services import rasteriser_warm

    rasteriser_warm()
