from django.contrib import admin

from .models import ItemAggregate


@admin.register(ItemAggregate)
class ItemAggregateAdmin(admin.ModelAdmin):
    list_display = ["item", "n_annotations", "computed_at"]
    raw_id_fields = ["item"]
