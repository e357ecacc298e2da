from django.urls import path

from . import apis, views

app_name = "quality"

urlpatterns = [
    path("dashboard/quality/<int:campaign_id>/", views.quality_page, name="page"),
    path("api/quality/campaigns/<int:campaign_id>/", apis.QualitySummaryApi.as_view(), name="api-summary"),
    path("api/quality/campaigns/<int:campaign_id>/history/", apis.QualityHistoryApi.as_view(), name="api-history"),
    path("api/quality/campaigns/<int:campaign_id>/audit/", apis.QualityAuditApi.as_view(), name="api-audit"),
    path("api/quality/campaigns/<int:campaign_id>/policy/", apis.PolicyApi.as_view(), name="api-policy"),
    path("api/quality/campaigns/<int:campaign_id>/runs/", apis.QualityRunApi.as_view(), name="api-run"),
    path(
        "api/quality/campaigns/<int:campaign_id>/runs/<int:run_id>/",
        apis.QualityRunDetailApi.as_view(),
        name="api-run-detail",
    ),
    path("api/quality/campaigns/<int:campaign_id>/pause/", apis.RaterPauseApi.as_view(), name="api-pause"),
    path("api/quality/campaigns/<int:campaign_id>/resume/", apis.RaterResumeApi.as_view(), name="api-resume"),
    path("api/quality/campaigns/<int:campaign_id>/exclude/", apis.ExcludeApi.as_view(), name="api-exclude"),
    path(
        "api/quality/campaigns/<int:campaign_id>/actions/<int:action_id>/undo/",
        apis.ActionUndoApi.as_view(),
        name="api-undo",
    ),
    path(
        "api/quality/campaigns/<int:campaign_id>/actions/<int:action_id>/apply/",
        apis.ProposalApplyApi.as_view(),
        name="api-apply",
    ),
    path(
        "api/quality/campaigns/<int:campaign_id>/actions/<int:action_id>/dismiss/",
        apis.ProposalDismissApi.as_view(),
        name="api-dismiss",
    ),
]
