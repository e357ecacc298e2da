from django.apps import AppConfig


class QualityConfig(AppConfig):
    name = "aggregation.quality"
    label = "quality"
    verbose_name = "Rater quality control"

    def ready(self) -> None:
        # annotation announces its events through hooks and imports nothing from here.
        from annotation import hooks

        from .tasks import item_answers_changed_enqueue, item_completed_schedule_recompute

        hooks.item_answers_changed_connect(name="quality.reaggregate", receiver=item_answers_changed_enqueue)
        hooks.item_completed_connect(name="quality.recompute_soon", receiver=item_completed_schedule_recompute)

        from aggregation.exports.writers import ExtraColumns, extra_columns_register

        from .services import exports

        extra_columns_register(
            name="quality",
            columns=ExtraColumns(
                parquet_fields=exports.PARQUET_FIELDS, parquet=exports.parquet_columns, jsonl=exports.jsonl_columns
            ),
        )
