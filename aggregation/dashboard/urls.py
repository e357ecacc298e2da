from django.urls import path

from . import apis, views

app_name = "dashboard"

urlpatterns = [
    path("dashboard/campaigns/<int:campaign_id>/", views.campaign_dashboard, name="campaign"),
    path("dashboard/items/<int:item_id>/", views.item_compare, name="item"),
    path("api/dashboard/campaigns/<int:campaign_id>/stats/", apis.CampaignStatsApi.as_view(), name="api-stats"),
    path(
        "api/dashboard/campaigns/<int:campaign_id>/stats.csv", apis.CampaignStatsCsvApi.as_view(), name="api-stats-csv"
    ),
    path(
        "api/dashboard/campaigns/<int:campaign_id>/refresh/", apis.CampaignStatsRefreshApi.as_view(), name="api-refresh"
    ),
    path(
        "api/dashboard/campaigns/<int:campaign_id>/freshness/",
        apis.CampaignStatsFreshnessApi.as_view(),
        name="api-freshness",
    ),
    path("api/dashboard/items/<int:item_id>/", apis.ItemCompareApi.as_view(), name="api-item"),
    path(
        "api/dashboard/items/<int:item_id>/maps/<str:source>/<str:kind>.png",
        apis.ItemMapApi.as_view(),
        name="api-item-map",
    ),
    path("api/dashboard/items/<int:item_id>/extra-rater/", apis.ExtraRaterRequestApi.as_view(), name="api-extra-rater"),
]
