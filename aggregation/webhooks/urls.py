from django.urls import path

from . import apis

app_name = "webhooks"

urlpatterns = [
    path("campaigns/<int:campaign_id>/webhooks/", apis.CampaignWebhooksApi.as_view(), name="campaign-webhooks"),
    path("webhooks/<int:endpoint_id>/", apis.WebhookEndpointApi.as_view(), name="endpoint"),
    path(
        "campaigns/<int:campaign_id>/webhook-deliveries/",
        apis.CampaignWebhookDeliveriesApi.as_view(),
        name="campaign-deliveries",
    ),
]
