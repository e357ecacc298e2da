from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from . import auth

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("annotation.urls")),
    path("api/", include("aggregation.urls")),
    path("api/", include("aggregation.exports.urls")),
    path("api/", include("aggregation.webhooks.urls")),
    path("api/auth/token/", auth.TokenObtainApi.as_view(), name="api-token"),
    path("api/auth/tokens/", auth.TokenListApi.as_view(), name="api-tokens"),
    path("api/auth/tokens/<int:token_id>/", auth.TokenRevokeApi.as_view(), name="api-token-revoke"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("aggregation.dashboard.urls")),
    path("", include("aggregation.learning.urls")),
    path("", include("frontend.urls")),
]
