"""`Authorization: Token <key>` with expiring, revocable, hashed tokens (richhf_site.models.ApiToken).

Its own module because DRF imports DEFAULT_AUTHENTICATION_CLASSES while defining APIView:
it must not import any view (richhf_site/auth.py has the token views and services).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Model
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from . import roles
from .models import ApiToken
from .sqltemplates import model_columns, models_from_row


def token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def token_ttl() -> timedelta | None:
    ttl = settings.RICHHF_TOKEN_TTL
    return ttl if ttl else None


class ExpiringTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>` against ApiToken: revoked, expired and inactive users' tokens
    are refused with 401.

    Keys of DRF's own Token table (rest_framework.authtoken) are still accepted, with the same
    lifetime counted from their creation, because bench/api.py, simulate_raters and a
    concurrency test create them directly; revoking one means deleting it in the admin.
    """

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        now = timezone.now()
        # The user and their roles ride on the same query (EXISTS columns): every API view
        # checks them. Written out: the ORM compiled this on every API request (issue 16).
        found = _token_and_user(ApiToken, "key_hash", token_hash(key))
        if found is None:
            return self._legacy_credentials(key, now=now)
        token, user = found
        if token.revoked_at is not None:
            raise AuthenticationFailed("This token was revoked.")
        if token.expires_at is not None and token.expires_at <= now:
            raise AuthenticationFailed("This token has expired; get a new one from POST /api/auth/token/.")
        if not user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        return user, token

    def _legacy_credentials(self, key: str, *, now: Any) -> tuple[Any, Any]:
        found = _token_and_user(self.get_model(), "key", key)
        if found is None:
            raise AuthenticationFailed(_("Invalid token."))
        legacy, user = found
        if not user.is_active:
            raise AuthenticationFailed(_("User inactive or deleted."))
        ttl = token_ttl()
        if ttl and legacy.created + ttl <= now:
            raise AuthenticationFailed("This token has expired; get a new one from POST /api/auth/token/.")
        return user, legacy


def _token_and_user(model: type[Model], key_column: str, value: str) -> tuple[Any, Any] | None:
    """The token whose `key_column` is `value`, with its user (roles cached on it), in one
    written-out statement; None if there is no such token."""
    user_model = get_user_model()
    roles_sql, roles_params = roles.role_columns_sql("u")
    sql = (
        f"SELECT {model_columns(model, 't')}, {model_columns(user_model, 'u')}, {roles_sql} "
        f"FROM {model._meta.db_table} t JOIN {user_model._meta.db_table} u ON u.id = t.user_id "
        f"WHERE t.{key_column} = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*roles_params, value])
        row = cursor.fetchone()
    if row is None:
        return None
    (token, user), role_flags = models_from_row(row, model, user_model)
    token.user = user
    roles.roles_cache_set(user=user, flags=role_flags)
    return token, user
