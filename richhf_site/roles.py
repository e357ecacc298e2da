"""The three roles as Django groups. Admin also covers Django superusers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import Group

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


def role_columns_sql(user_alias: str) -> tuple[str, list[str]]:
    """EXISTS columns, one per role in ALL_ROLES' order, for a written-out query that fetches a
    user (the token look-up does), and their parameters: the roles then cost no query of their
    own. Hand the columns' values to roles_cache_set()."""
    through = Group.user_set.through
    user_col = through._meta.get_field("user").column
    group_col = through._meta.get_field("group").column
    column = (
        f"EXISTS(SELECT 1 FROM {through._meta.db_table} rm JOIN {Group._meta.db_table} rg "
        f"ON rg.id = rm.{group_col} WHERE rm.{user_col} = {user_alias}.id AND rg.name = %s)"
    )
    return ", ".join([column] * len(ALL_ROLES)), list(ALL_ROLES)


def roles_cache_set(*, user: Any, flags: Sequence[Any]) -> None:
    """Caches on user the roles whose role_columns_sql() columns came back true."""
    cached = {role for role, flag in zip(ALL_ROLES, flags, strict=True) if flag}
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
