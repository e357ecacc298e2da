from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView
from rest_framework.authtoken.views import obtain_auth_token

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("annotation.urls")),
    path("api/", include("aggregation.urls")),
    path("api/", include("aggregation.exports.urls")),
    path("api/auth/token/", obtain_auth_token, name="api-token"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Redoc from our own static files (drf-spectacular-sidecar): the docs work offline.
    path(
        "api/docs/",
        SpectacularRedocView.as_view(url_name="api-schema", template_name="richhf_site/redoc.html"),
        name="api-docs",
    ),
    path("", include("aggregation.dashboard.urls")),
    path("", include("aggregation.learning.urls")),
    path("", include("frontend.urls")),
]
