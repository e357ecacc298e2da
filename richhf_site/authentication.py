"""`Authorization: Token <key>` with expiring, revocable, hashed tokens (richhf_site.models.ApiToken).

Its own module because DRF imports DEFAULT_AUTHENTICATION_CLASSES while defining APIView:
it must not import any view (richhf_site/auth.py has the token views and services).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from . import roles
from .models import ApiToken


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
        # The user's roles ride on the same query (EXISTS columns): every API view checks them.
        token = (
            ApiToken.objects.select_related("user")
            .annotate(**roles.role_annotations("user_id"))
            .filter(key_hash=token_hash(key))
            .first()
        )
        if token is None:
            return self._legacy_credentials(key, now=now)
        if token.revoked_at is not None:
            raise AuthenticationFailed("This token was revoked.")
        if token.expires_at is not None and token.expires_at <= now:
            raise AuthenticationFailed("This token has expired; get a new one from POST /api/auth/token/.")
        if not token.user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        roles.roles_cache_from(user=token.user, row=token)
        return token.user, token

    def _legacy_credentials(self, key: str, *, now: Any) -> tuple[Any, Any]:
        legacy = (
            self.get_model()
            .objects.select_related("user")
            .annotate(**roles.role_annotations("user_id"))
            .filter(key=key)
            .first()
        )
        if legacy is None:
            raise AuthenticationFailed(_("Invalid token."))
        user = legacy.user
        if not user.is_active:
            raise AuthenticationFailed(_("User inactive or deleted."))
        roles.roles_cache_from(user=user, row=legacy)
        ttl = token_ttl()
        if ttl and legacy.created + ttl <= now:
            raise AuthenticationFailed("This token has expired; get a new one from POST /api/auth/token/.")
        return user, legacy
