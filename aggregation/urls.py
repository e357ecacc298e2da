from django.urls import path

from . import apis

app_name = "aggregation"

urlpatterns = [
    path("items/<int:item_id>/aggregate/", apis.ItemAggregateApi.as_view(), name="item-aggregate"),
    path("items/<int:item_id>/aggregate/<str:kind>.png", apis.ItemHeatmapApi.as_view(), name="item-heatmap"),
    path(
        "campaigns/<int:campaign_id>/aggregates/", apis.CampaignAggregateListApi.as_view(), name="campaign-aggregates"
    ),
]
