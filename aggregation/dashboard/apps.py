from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "aggregation.dashboard"
    label = "dashboard"
    verbose_name = "Agreement dashboard"
    default_auto_field = "django.db.models.BigAutoField"
