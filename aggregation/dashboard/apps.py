from django.apps import AppConfig


def _item_completed(item_id: int) -> None:
    from .services import extra_rater_requests_settle

    extra_rater_requests_settle(item_id=item_id)


class DashboardConfig(AppConfig):
    name = "aggregation.dashboard"
    label = "dashboard"
    verbose_name = "Agreement dashboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # An extra rater's answer completes the item again (its rater target was raised), so
        # the request is settled right then, not at the next dashboard recompute.
        from annotation import hooks

        hooks.item_completed_connect(name="dashboard.extra_rater_settle", receiver=_item_completed)
