from django.apps import AppConfig


def _item_completed(item_id: int) -> None:
    from .services import item_completed_emit

    item_completed_emit(item_id=item_id)


class WebhooksConfig(AppConfig):
    name = "aggregation.webhooks"
    label = "webhooks"
    verbose_name = "Webhooks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # annotation imports nothing from webhooks: a completed item reaches us through its
        # hook, after the commit that completed it.
        from annotation import hooks

        hooks.item_completed_connect(name="webhooks.item_completed", receiver=_item_completed)
