from celery import shared_task

from . import services


@shared_task(name="aggregation.aggregate_item", acks_late=True, ignore_result=True)
def aggregate_item(item_id: int) -> None:
    services.item_aggregate_upsert(item_id=item_id)
