"""The three roles as Django groups. Admin also covers Django superusers."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.db.models import Exists, OuterRef

RATER = "rater"
LEAD = "lead"
ADMIN = "admin"
ALL_ROLES = (RATER, LEAD, ADMIN)


def user_roles(user: Any) -> set[str]:
    """The user's roles, cached on the user object for the rest of the request."""
    if not user.is_authenticated:
        return set()
    cached = getattr(user, "_richhf_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))
        if user.is_superuser:
            cached.add(ADMIN)
        user._richhf_roles = cached
    return cached


def role_annotations(user_id_field: str) -> dict[str, Exists]:
    """EXISTS columns, one per role, to add to a query that fetches a user (the token look-up
    does): the roles then cost no query of their own. Read them back with roles_cache_from()."""
    membership = Group.user_set.through.objects.filter(user_id=OuterRef(user_id_field))
    return {f"richhf_role_{role}": Exists(membership.filter(group__name=role)) for role in ALL_ROLES}


def roles_cache_from(*, user: Any, row: Any) -> None:
    """Caches on user the roles that role_annotations() fetched as row's attributes."""
    cached = {role for role in ALL_ROLES if getattr(row, f"richhf_role_{role}")}
    if user.is_superuser:
        cached.add(ADMIN)
    user._richhf_roles = cached


def is_rater(user: Any) -> bool:
    return RATER in user_roles(user)


def is_lead_or_admin(user: Any) -> bool:
    return bool(user_roles(user) & {LEAD, ADMIN})


def is_admin(user: Any) -> bool:
    return ADMIN in user_roles(user)


def user_add_role(*, user: Any, role: str) -> None:
    if role not in ALL_ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ALL_ROLES)}")
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.add(group)
    if hasattr(user, "_richhf_roles"):
        del user._richhf_roles
