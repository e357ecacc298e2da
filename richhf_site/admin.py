"""The admin site (the admin role gets in however it was granted) and API tokens in it."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from . import roles


class RichHFAdminSite(admin.AdminSite):
    """Lets in staff and the admin role. Django's own check is is_staff only, which
    user_add_role never set and adding the user to the "admin" group does not set either."""

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return user.is_active and (user.is_staff or roles.is_admin(user))


# Defined above before anything registers: the first admin.site access imports this class.
from .auth import tokens_revoke  # noqa: E402
from .models import ApiToken  # noqa: E402


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("prefix", "user", "name", "created_at", "expires_at", "revoked_at")
    list_filter = ("revoked_at", "expires_at")
    search_fields = ("user__username", "name", "prefix")
    readonly_fields = ("user", "name", "prefix", "created_at", "expires_at", "revoked_at")
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # keys are shown once, to their owner, by POST /api/auth/token/

    @admin.action(description="Revoke selected tokens")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        n = tokens_revoke(tokens=queryset)
        self.message_user(request, f"{n} token(s) revoked.")
