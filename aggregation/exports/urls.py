from django.urls import path

from . import apis

app_name = "exports"

urlpatterns = [
    path("campaigns/<int:campaign_id>/exports/", apis.CampaignExportsApi.as_view(), name="campaign-exports"),
    path("exports/<int:job_id>/", apis.ExportJobApi.as_view(), name="job"),
    path("exports/<int:job_id>/download/", apis.ExportDownloadApi.as_view(), name="download"),
    path("campaigns/<int:campaign_id>/imports/", apis.CampaignImportsApi.as_view(), name="campaign-imports"),
    path("imports/<int:job_id>/", apis.ImportJobApi.as_view(), name="import-job"),
]
