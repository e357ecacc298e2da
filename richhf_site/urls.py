from csp.decorators import csp_update
from django.contrib import admin
from django.urls import include, path
from django.utils import timezone
from django.views.decorators.http import last_modified
from django.views.i18n import JavaScriptCatalog
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

from . import auth

# The JavaScript catalog changes only with a deploy: browsers revalidate it (304) instead of
# downloading it on every page. Its URL carries the language (base.html), so a switch of
# language is a different URL and never gets the other language's cached copy.
_catalog_changed_at = timezone.now()

urlpatterns = [
    path("admin/", admin.site.urls),
    # i18n (issue 15): set_language (the language switch's POST) and the JavaScript catalog
    # (window.gettext & co.) with the strings of frontend/ and LOCALE_PATHS, not the admin's.
    path("i18n/", include("django.conf.urls.i18n")),
    path(
        "jsi18n/",
        last_modified(lambda request, **kwargs: _catalog_changed_at)(JavaScriptCatalog.as_view(packages=["frontend"])),
        name="javascript-catalog",
    ),
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
    path("", include("frontend.manage_urls")),
    path("", include("aggregation.quality.urls")),
    path("", include("frontend.urls")),
]

# Under /api/ every error answers JSON {"detail", "errors"} (richhf_site/errors.py); other
# pages keep Django's HTML.
handler400 = "richhf_site.errors.bad_request"
handler403 = "richhf_site.errors.permission_denied"
handler404 = "richhf_site.errors.page_not_found"
handler500 = "richhf_site.errors.server_error"
