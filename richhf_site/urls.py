from csp.decorators import csp_update
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
    # Redoc from our own static files (drf-spectacular-sidecar): the docs work offline. Redoc
    # injects its own styles and runs a blob: worker, so this one page relaxes the CSP for those.
    path(
        "api/docs/",
        csp_update({"style-src": ["'unsafe-inline'"], "worker-src": ["'self'", "blob:"]})(
            SpectacularRedocView.as_view(url_name="api-schema", template_name="richhf_site/redoc.html")
        ),
        name="api-docs",
    ),
    path("", include("aggregation.dashboard.urls")),
    path("", include("aggregation.learning.urls")),
    path("", include("aggregation.quality.urls")),
    path("", include("frontend.urls")),
]

# Under /api/ every error answers JSON {"detail", "errors"} (richhf_site/errors.py); other
# pages keep Django's HTML.
handler400 = "richhf_site.errors.bad_request"
handler403 = "richhf_site.errors.permission_denied"
handler404 = "richhf_site.errors.page_not_found"
handler500 = "richhf_site.errors.server_error"
