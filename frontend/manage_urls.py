"""The admins' pages (frontend/manage_views.py), under /manage/, and the invite links."""

from django.urls import path
from django.views.generic import RedirectView

from . import manage_views as views

app_name = "manage"

urlpatterns = [
    path("manage/", RedirectView.as_view(pattern_name="manage:campaigns"), name="index"),
    path("manage/campaigns/", views.campaign_list, name="campaigns"),
    path("manage/campaigns/new/", views.campaign_new, name="campaign-new"),
    path("manage/campaigns/<int:campaign_id>/", views.campaign_edit, name="campaign-edit"),
    path("manage/campaigns/<int:campaign_id>/invite/", views.campaign_invite, name="campaign-invite"),
    path("manage/campaigns/<int:campaign_id>/invite-link/", views.campaign_invite_link, name="campaign-invite-link"),
    path("manage/guidelines-preview/", views.guidelines_preview, name="guidelines-preview"),
    path("manage/uploads/", views.uploads, name="uploads"),
    path("manage/imports/", views.imports, name="imports"),
    path("manage/imports/<int:job_id>/", views.import_job_detail, name="import-job"),
    path("manage/exports/", views.exports, name="exports"),
    path("invite/<str:token>/", views.invite_accept, name="invite-accept"),
]
