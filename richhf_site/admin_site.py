"""The admin site: staff and the admin role get in, however the role was granted.

A module of its own, with no ModelAdmin registration: Django imports it while it builds
admin.site, so registering here would register on a half-built site.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from . import roles


class RichHFAdminSite(admin.AdminSite):
    """Django's own check is is_staff only, which user_add_role never set and adding the
    user to the "admin" group in the Django admin does not set either."""

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return user.is_active and (user.is_staff or roles.is_admin(user))
