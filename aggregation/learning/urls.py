from django.urls import path

from . import apis, views

app_name = "learning"

urlpatterns = [
    path("learning/campaigns/<int:campaign_id>/", views.campaign_learning, name="campaign"),
    path("api/learning/campaigns/<int:campaign_id>/versions/", apis.VersionListApi.as_view(), name="api-versions"),
    path("api/learning/campaigns/<int:campaign_id>/retrain/", apis.RetrainApi.as_view(), name="api-retrain"),
    path("api/learning/campaigns/<int:campaign_id>/settings/", apis.SettingsApi.as_view(), name="api-settings"),
    path("api/learning/campaigns/<int:campaign_id>/queue/", apis.QueueApi.as_view(), name="api-queue"),
    path("api/learning/versions/<int:version_id>/activate/", apis.VersionActivateApi.as_view(), name="api-activate"),
    path(
        "api/learning/assignments/<int:assignment_id>/suggestion/<str:task>.png",
        apis.SuggestionMapApi.as_view(),
        name="api-suggestion-map",
    ),
]
