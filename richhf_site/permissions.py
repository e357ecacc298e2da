"""DRF permission classes for the three roles, checked on the server for every request."""

from rest_framework.permissions import BasePermission

from . import roles


class IsRater(BasePermission):
    message = "This endpoint is for raters."

    def has_permission(self, request, view) -> bool:
        return roles.is_rater(request.user)


class IsLeadOrAdmin(BasePermission):
    message = "This endpoint is for project leads and admins."

    def has_permission(self, request, view) -> bool:
        return roles.is_lead_or_admin(request.user)


class IsAdmin(BasePermission):
    message = "This endpoint is for admins."

    def has_permission(self, request, view) -> bool:
        return roles.is_admin(request.user)
