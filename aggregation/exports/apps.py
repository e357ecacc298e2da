from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "aggregation.exports"
    label = "exports"
    verbose_name = "Dataset export and import"
