from django.apps import AppConfig


class LearningConfig(AppConfig):
    name = "aggregation.learning"
    label = "learning"
    verbose_name = "Active learning"
    default_auto_field = "django.db.models.BigAutoField"
