from django.urls import path

from . import apis

app_name = "api"

urlpatterns = [
    path("me/", apis.MeApi.as_view(), name="me"),
    path("campaigns/", apis.CampaignListApi.as_view(), name="campaign-list"),
    path("campaigns/<int:campaign_id>/next/", apis.NextItemApi.as_view(), name="next-item"),
    path("campaigns/<int:campaign_id>/progress/", apis.CampaignProgressApi.as_view(), name="campaign-progress"),
    path("assignments/<int:assignment_id>/heartbeat/", apis.HeartbeatApi.as_view(), name="heartbeat"),
    path("assignments/<int:assignment_id>/submit/", apis.SubmitApi.as_view(), name="submit"),
    path("assignments/<int:assignment_id>/skip/", apis.SkipApi.as_view(), name="skip"),
    path("assignments/<int:assignment_id>/draft/", apis.DraftApi.as_view(), name="draft"),
    path("me/assignments/", apis.MyAssignmentListApi.as_view(), name="my-assignments"),
    path("me/assignments/<int:assignment_id>/", apis.MyAssignmentDetailApi.as_view(), name="my-assignment"),
    path("items/<int:item_id>/image/", apis.ItemImageApi.as_view(), name="item-image"),
]
